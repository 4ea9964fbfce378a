// One job: source and result side by side and as a before/after slider, a 1:1 crop, the cutout
// over a checkerboard or a colour, options, output, timings, history, events, retry and links.
import { api, el, onJob, progressBar, seconds, shortName, statusBadge, when } from "./common.js";

const CROP = 320; // px of the result shown at 1:1

function table(entries) {
  const body = el("tbody");
  for (const [k, v] of entries) {
    const value = typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);
    body.append(el("tr", {}, el("th", { text: k }), el("td", { text: value })));
  }
  return el("table", { class: "kv" }, body);
}

function section(title, ...children) {
  return el("section", { class: "card" }, el("h2", { text: title }), ...children);
}

function timingsBar(job) {
  const total = job.stages.reduce((sum, s) => sum + s.s, 0);
  if (!total) return el("p", { class: "muted", text: "no timings yet" });
  const bar = el("div", { class: "stages" });
  const legend = el("ul", { class: "legend" });
  job.stages.forEach((s, i) => {
    const part = el("span", { class: `stage c${i}`, title: `${s.stage} ${seconds(s.s)}` });
    part.style.flexGrow = String(Math.max(s.s, total / 200));
    bar.append(part);
    legend.append(el("li", {}, el("span", { class: `swatch c${i}` }), `${s.stage} ${seconds(s.s)}`));
  });
  const plan = job.time_plan && job.time_plan.total_s ? ` · planned ~${seconds(job.time_plan.total_s)}` : "";
  return el("div", {}, bar, legend, el("p", { class: "muted", text: `total ${seconds(job.timings.total_s || total)}${plan}` }));
}

function timeline(job) {
  const list = el("ol", { class: "timeline" });
  for (const h of job.history) {
    const notes = [];
    if (h.attempt) notes.push(`attempt ${h.attempt}`);
    if (h.retry) notes.push("retry");
    if (h.waiting_for) notes.push(`waiting for ${h.waiting_for}, attempt given back`);
    if (h.waited) notes.push("waited past the horizon");
    if (h.options) notes.push("options refused");
    if (h.run) notes.push(`run ${h.run}`);
    list.append(
      el("li", { class: `s-${h.status}` }, el("time", { text: when(h.at) }), " ", el("b", { text: h.status }), notes.length ? ` (${notes.join(", ")})` : ""),
    );
  }
  return list;
}

function events(job) {
  if (!job.events.length) return el("p", { class: "muted", text: "none yet" });
  const body = el("tbody");
  for (const e of job.events) body.append(el("tr", {}, el("td", { text: e.type }), el("td", { class: "mono", text: e.id }), el("td", { text: when(e.at) })));
  return el("table", { class: "kv" }, el("thead", {}, el("tr", {}, el("th", { text: "ce-type" }), el("th", { text: "ce-id" }), el("th", { text: "at" }))), body);
}

function links(job, side) {
  const l = job.links[side];
  if (!l || !l.uri) return null;
  return el(
    "li",
    {},
    `${side}: `,
    el("span", { class: "mono", text: l.uri }),
    " · ",
    el("a", { href: `/api/jobs/${job.job_id}/${side}/download`, download: "", text: "download full size" }),
    l.cloud ? [" · ", el("a", { href: l.cloud, target: "_blank", rel: "noopener", text: "Cloud console" })] : null,
  );
}

function preview(job, side, max) {
  const url = `/api/jobs/${job.job_id}/${side}/preview?max=${max}`;
  const img = el("img", { src: url, alt: `${side} of ${shortName(job)}`, "data-side": side });
  // A file that is no image (the job failed for it) has no preview: say why, not a broken icon.
  img.addEventListener("error", () =>
    api(url).catch((error) => img.replaceWith(el("p", { class: "error", text: `no preview: ${error.message}` }))),
  );
  return img;
}

// The cutout's backdrop: a checkerboard, or a colour the person picks.
function backdrop(frames) {
  const check = el("input", { type: "radio", name: "backdrop", value: "checker", checked: true });
  const solid = el("input", { type: "radio", name: "backdrop", value: "colour" });
  const colour = el("input", { type: "color", value: "#3a7bd5", "aria-label": "backdrop colour" });
  function apply() {
    for (const f of frames) {
      f.classList.toggle("checker", check.checked);
      f.style.backgroundColor = solid.checked ? colour.value : "";
    }
  }
  for (const i of [check, solid, colour]) i.addEventListener("input", apply);
  colour.addEventListener("input", () => {
    solid.checked = true;
    apply();
  });
  apply();
  return el("div", { class: "backdrop" }, "show the cutout over ", el("label", {}, check, " a checkerboard"), el("label", {}, solid, " a colour "), colour);
}

function slider(job, onPick) {
  const after = preview(job, "result", 1600);
  const before = preview(job, "source", 1600);
  const top = el("div", { class: "before" }, before);
  const frame = el("div", { class: "slider checker", "data-testid": "slider" }, after, top, el("span", { class: "tag left", text: "before" }), el("span", { class: "tag right", text: "after" }));
  const range = el("input", { type: "range", min: 0, max: 100, value: 50, "aria-label": "before/after" });
  const set = () => {
    top.style.width = `${range.value}%`;
  };
  range.addEventListener("input", set);
  set();
  frame.addEventListener("click", (event) => {
    const box = after.getBoundingClientRect();
    onPick((event.clientX - box.left) / box.width, (event.clientY - box.top) / box.height);
  });
  // Shown at least 720 px wide (a small image is enlarged to compare), at most the card's
  // width; the source is drawn at the result's box.
  const fit = () => {
    const room = frame.parentElement ? frame.parentElement.clientWidth : after.naturalWidth;
    after.style.width = `${Math.min(room, Math.max(after.naturalWidth, 720))}px`;
    before.style.width = `${after.clientWidth}px`;
    before.style.height = `${after.clientHeight}px`;
  };
  after.addEventListener("load", fit);
  window.addEventListener("resize", fit);
  return { node: el("div", {}, frame, range), frame };
}

function cropView(job, sizes) {
  const holder = el("div", { class: "crops" }, el("p", { class: "muted", text: "click the before/after image to see that spot at 1:1" }));
  async function pick(fx, fy) {
    fx = Math.min(1, Math.max(0, fx));
    fy = Math.min(1, Math.max(0, fy));
    const r = sizes.result;
    const s = sizes.source;
    const w = Math.min(CROP, r.width);
    const h = Math.min(CROP, r.height);
    const inside = (v, size, whole) => Math.max(0, Math.min(Math.round(v), whole - size));
    const rx = inside(fx * r.width - w / 2, w, r.width);
    const ry = inside(fy * r.height - h / 2, h, r.height);
    const sw = Math.max(1, Math.round((w * s.width) / r.width));
    const sh = Math.max(1, Math.round((h * s.height) / r.height));
    const sx = inside((rx / r.width) * s.width, sw, s.width);
    const sy = inside((ry / r.height) * s.height, sh, s.height);
    const src = el("img", { class: "pixelated", alt: "source at the same spot", src: `/api/jobs/${job.job_id}/source/crop?x=${sx}&y=${sy}&w=${sw}&h=${sh}` });
    const res = el("img", { alt: "result at 1:1", src: `/api/jobs/${job.job_id}/result/crop?x=${rx}&y=${ry}&w=${w}&h=${h}` });
    for (const img of [src, res]) {
      img.style.width = `${w}px`;
      img.style.height = `${h}px`;
    }
    const scale = r.width / s.width;
    holder.replaceChildren(
      el("figure", {}, src, el("figcaption", { text: `source ${sw}×${sh} px, shown ×${scale.toFixed(2)}` })),
      el("figure", { class: "result-frame checker" }, res, el("figcaption", { text: `result ${w}×${h} px at 1:1 (x ${rx}, y ${ry})` })),
    );
  }
  return { node: holder, pick };
}

async function images(job) {
  const wrap = el("div");
  if (job.status !== "done" || !job.result_uri) {
    wrap.append(section("Source", el("div", { class: "frame" }, preview(job, "source", 800))));
    return wrap;
  }
  const [source, result] = await Promise.all([api(`/api/jobs/${job.job_id}/source/info`), api(`/api/jobs/${job.job_id}/result/info`)]);
  const crop = cropView(job, { source, result });
  const sl = slider(job, crop.pick);
  const sideBySide = el(
    "div",
    { class: "pair" },
    el("figure", { class: "frame" }, preview(job, "source", 800), el("figcaption", { text: `source ${source.width}×${source.height}` })),
    el("figure", { class: "frame result-frame checker" }, preview(job, "result", 800), el("figcaption", { text: `result ${result.width}×${result.height}` })),
  );
  const frames = [sl.frame, ...sideBySide.querySelectorAll(".result-frame")];
  const cutout = result.alpha ? backdrop(frames) : null;
  if (!result.alpha) for (const f of frames) f.classList.remove("checker");
  const observer = new MutationObserver(() => {
    if (result.alpha) for (const f of wrap.querySelectorAll(".crops .result-frame")) f.style.backgroundColor = frames[0].style.backgroundColor;
  });
  observer.observe(crop.node, { childList: true });
  wrap.append(
    section("Side by side", sideBySide, cutout),
    section("Before / after", sl.node),
    section("1:1", crop.node),
  );
  return wrap;
}

export async function jobView(view, meta, id) {
  let job = await api(`/api/jobs/${id}`);
  const head = el("div");
  const body = el("div");
  view.append(head, body);

  let notice = ""; // what the last Retry said (kept across re-renders)

  function header() {
    const retry = job.retryable ? el("button", { type: "button", class: "retry", text: "Retry" }) : null;
    if (retry) {
      retry.addEventListener("click", async () => {
        retry.disabled = true;
        try {
          await api(`/api/jobs/${id}/retry`, { method: "POST" });
          notice = "queued again";
        } catch (error) {
          notice = error.message;
        }
        header();
      });
    }
    const lines = [
      el("h1", {}, shortName(job), " ", statusBadge(job)),
      el(
        "p",
        { class: "muted" },
        `${job.model} · job ${job.job_id} · created ${when(job.created_at)} · attempts ${job.attempts}`,
        job.duration_s !== null ? ` · ${seconds(job.duration_s)}` : "",
      ),
      job.status === "running" ? el("p", {}, progressBar(job), ` ${Math.round(job.progress * 100)}%`) : null,
      job.reason ? el("p", { class: "reason-box", text: job.reason }) : null,
      job.last_error && job.status !== "done" ? el("p", { class: "muted", text: `last error: ${job.last_error}` }) : null,
      retry || notice ? el("p", {}, retry, " ", el("span", { class: "notice muted", text: notice })) : null,
    ];
    head.replaceChildren(...lines.filter(Boolean));
  }

  const pictures = el("div");
  const details = el("div");
  body.append(pictures, details);
  let shownStatus = null;

  async function render() {
    header();
    if (shownStatus !== job.status) {
      shownStatus = job.status; // the pictures change with the status only
      try {
        pictures.replaceChildren(await images(job));
      } catch (error) {
        pictures.replaceChildren(el("p", { class: "error", text: `no preview: ${error.message}` }));
      }
    }
    details.replaceChildren(
      el(
        "div",
        { class: "grid" },
        section("Options", Object.keys(job.options).length ? table(Object.entries(job.options)) : el("p", { class: "muted", text: "defaults" })),
        section("Timings", timingsBar(job)),
        section("Output", Object.keys(job.output).length ? table(Object.entries(job.output).filter(([k]) => k !== "time_plan")) : el("p", { class: "muted", text: "none yet" })),
        section("History", timeline(job)),
        section("Events published", events(job)),
        section("Objects", el("ul", { class: "links" }, links(job, "source"), links(job, "result"))),
      ),
    );
  }

  await render();
  // Each change of this job in the feed: read it again (changes that come meanwhile, once more).
  let busy = false;
  let again = false;
  async function reload() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      do {
        again = false;
        job = await api(`/api/jobs/${id}`);
        await render();
      } while (again);
    } finally {
      busy = false;
    }
  }
  const stop = onJob((row) => {
    if (row.job_id === id) reload();
  });
  return stop;
}
