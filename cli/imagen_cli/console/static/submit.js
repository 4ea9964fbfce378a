// Submit: drop files onto a model; its options as a form, checked by the server's options code;
// each file's upload and job followed live, the result shown when done.
import { api, el, onJob, progressBar, statusBadge } from "./common.js";

function field(f) {
  let input;
  if (f.kind === "choice") {
    input = el("select", { name: f.name }, el("option", { value: "", text: "(default)" }), ...f.choices.map((c) => el("option", { value: c, text: c })));
  } else if (f.kind === "number") {
    input = el("input", { name: f.name, type: "number", min: f.min, max: f.max, step: f.step, placeholder: "(default)" });
  } else {
    input = el("input", { name: f.name, type: "text", placeholder: "e.g. #ffffff or white" });
  }
  input.dataset.key = f.name;
  return el("label", { class: "field" }, el("span", { class: "key", text: f.name }), input, el("small", { class: "muted", text: f.help }));
}

export async function submitView(view, meta) {
  const model = el("select", { name: "model", "aria-label": "model" }, ...meta.models.map((m) => el("option", { value: m, text: m })));
  model.value = new URLSearchParams(location.search).get("model") || meta.models[0];
  const form = el("div", { class: "form" });
  const verdict = el("p", { class: "verdict" });
  const folder = el("input", { name: "folder", type: "text", placeholder: "folder under the prefix (optional)" });
  const files = el("input", { type: "file", multiple: true, accept: "image/*", id: "files" });
  const zone = el("div", { class: "drop", "data-testid": "drop" }, el("p", {}, "Drop images here, or "), el("label", { class: "pick" }, files, "choose files"));
  const list = el("ol", { class: "uploads" });

  view.append(
    el("h1", { text: "Submit" }),
    el("div", { class: "card" }, el("label", { class: "field" }, el("span", { class: "key", text: "model" }), model), form, el("label", { class: "field" }, el("span", { class: "key", text: "folder" }), folder), verdict),
    zone,
    list,
  );

  function values() {
    const out = {};
    for (const input of form.querySelectorAll("[data-key]")) if (input.value.trim()) out[input.dataset.key] = input.value.trim();
    return out;
  }

  async function check() {
    try {
      const ok = await api(`/api/options/${model.value}`, { json: values() });
      const keys = Object.entries(ok.metadata).map(([k, v]) => `${k}=${v}`);
      verdict.className = "verdict ok";
      verdict.textContent = keys.length ? `options: ${keys.join(", ")}` : "the model's defaults";
      return true;
    } catch (error) {
      verdict.className = "verdict bad";
      verdict.textContent = error.message;
      return false;
    }
  }

  function buildForm() {
    form.replaceChildren(...meta.forms[model.value].map(field));
    check();
  }
  model.addEventListener("change", buildForm);
  form.addEventListener("change", check);
  buildForm();

  const items = new Map(); // job id → item
  function follow(row) {
    const item = items.get(row.job_id);
    if (!item) return;
    item.job.replaceChildren(statusBadge(row), " ", progressBar(row), row.status === "running" ? ` ${Math.round(row.progress * 100)}%` : "");
    if (row.note) item.job.append(el("div", { class: "reason", text: row.note }));
    if (row.status === "done" && !item.shown) {
      item.shown = true;
      item.result.replaceChildren(
        el("a", { href: `/jobs/${row.job_id}` }, el("img", { class: "thumb checker", alt: "result", src: `/api/jobs/${row.job_id}/result/preview?max=320` })),
      );
    }
  }
  const stop = onJob(follow);

  function upload(file) {
    const bar = el("progress", { max: 100, value: 0 });
    const job = el("span", { class: "muted", text: "uploading…" });
    const result = el("div");
    const li = el("li", { class: "upload" }, el("span", { class: "name", text: file.name }), bar, job, result);
    list.prepend(li);
    const q = new URLSearchParams({ filename: file.name });
    if (folder.value.trim()) q.set("folder", folder.value.trim());
    for (const [k, v] of Object.entries(values())) q.set(`o.${k}`, v);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/submit/${model.value}?${q}`);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
    });
    xhr.addEventListener("load", async () => {
      const body = JSON.parse(xhr.responseText || "{}");
      if (xhr.status !== 202) {
        job.textContent = body.error || xhr.statusText;
        job.className = "error";
        return;
      }
      bar.value = 100;
      li.dataset.job = body.job_id;
      const item = { job, result, shown: false };
      items.set(body.job_id, item);
      job.replaceChildren(el("a", { href: `/jobs/${body.job_id}`, text: `job ${body.job_id.slice(0, 8)}…` }), " waiting for the job");
      try {
        const row = await api(`/api/jobs/${body.job_id}`);
        follow(row);
      } catch {
        // not created yet: the feed brings it
      }
    });
    xhr.addEventListener("error", () => {
      job.textContent = "the upload failed";
    });
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.send(file);
  }

  async function send(fileList) {
    if (!(await check())) return;
    for (const file of fileList) upload(file);
  }
  files.addEventListener("change", () => {
    send([...files.files]);
    files.value = "";
  });
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    send([...e.dataTransfer.files]);
  });
  return stop;
}
