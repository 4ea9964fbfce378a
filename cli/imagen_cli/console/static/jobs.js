// The jobs table: a page at a time from the server, filtered there; live rows from the feed.
import { api, el, elapsed, go, onJob, progressBar, seconds, shortName, statusBadge, when } from "./common.js";

const PAGE = 50;

function filtersFromUrl() {
  const q = new URLSearchParams(location.search);
  return { model: q.get("model") || "", status: q.get("status") || "", name: q.get("name") || "" };
}

function matches(f, row) {
  return (
    (!f.model || row.model === f.model) &&
    (!f.status || row.status === f.status) &&
    (!f.name || row.object.toLowerCase().includes(f.name.toLowerCase()) || row.job_id === f.name)
  );
}

function cells(row) {
  const running = row.status === "running";
  return [
    el("td", { class: "when", text: when(row.created_at) }),
    el("td", { class: "name" }, el("a", { href: `/jobs/${row.job_id}`, text: shortName(row), title: row.object })),
    el("td", { text: row.model }),
    el("td", {}, statusBadge(row)),
    el("td", { class: "bar-cell" }, progressBar(row), running ? ` ${Math.round(row.progress * 100)}%` : ""),
    el("td", { class: "num", text: String(row.attempts) }),
    el("td", { class: "num", "data-elapsed": running || row.status === "queued" ? "1" : null }, seconds(elapsed(row))),
    el("td", { class: "reason", text: row.note, title: row.note }),
  ];
}

export async function jobsView(view, meta) {
  const f = filtersFromUrl();
  const rows = new Map(); // job id → { tr, row }
  let next = "";
  let oldest = null; // created_at of the last row loaded: live rows older than it are left to paging

  const model = el("select", { name: "model", "aria-label": "model" }, el("option", { value: "", text: "every model" }));
  for (const m of meta.models) model.append(el("option", { value: m, text: m }));
  const status = el("select", { name: "status", "aria-label": "status" }, el("option", { value: "", text: "every status" }));
  for (const s of meta.statuses) status.append(el("option", { value: s, text: s }));
  const name = el("input", { name: "name", type: "search", placeholder: "name contains… or a job id", "aria-label": "name" });
  model.value = f.model;
  status.value = f.status;
  name.value = f.name;

  const body = el("tbody");
  const more = el("button", { class: "more", type: "button", text: "Load more" });
  const info = el("span", { class: "muted" });
  const table = el(
    "table",
    { class: "jobs" },
    el(
      "thead",
      {},
      el("tr", {}, ...["created", "name", "model", "status", "progress", "attempts", "duration", "reason"].map((h) => el("th", { text: h }))),
    ),
    body,
  );
  view.append(
    el("div", { class: "filters" }, model, status, name, info),
    table,
    el("div", { class: "pager" }, more),
  );

  function put(row, atTop) {
    const known = rows.get(row.job_id);
    const tr = el("tr", { "data-job": row.job_id, "data-status": row.status }, cells(row));
    tr.addEventListener("click", (event) => {
      if (!event.target.closest("a")) go(`/jobs/${row.job_id}`);
    });
    if (known) {
      known.tr.replaceWith(tr);
      tr.classList.add("changed");
    } else if (atTop) {
      // before the first row (in the table's order) created no later than it
      const before = [...body.children].find((r) => (rows.get(r.dataset.job)?.row.created_at || "") <= (row.created_at || ""));
      body.insertBefore(tr, before || null);
      tr.classList.add("new");
    } else {
      body.append(tr);
    }
    rows.set(row.job_id, { tr, row });
    count();
  }

  let searched = "";
  function count() {
    info.textContent = `${rows.size} shown${searched}`;
  }

  async function load(after) {
    const q = new URLSearchParams({ limit: String(PAGE) });
    for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
    if (after) q.set("after", after);
    more.disabled = true;
    const page = await api(`/api/jobs?${q}`);
    for (const row of page.jobs) put(row, false);
    if (page.jobs.length) oldest = page.jobs[page.jobs.length - 1].created_at;
    next = page.next;
    more.hidden = !next;
    more.disabled = false;
    searched =
      (page.scanned ? ` · ${page.scanned} jobs searched for the name` : "") +
      (page.partial ? " (more may match: load more)" : "");
    count();
  }

  function refilter() {
    const q = new URLSearchParams();
    if (model.value) q.set("model", model.value);
    if (status.value) q.set("status", status.value);
    if (name.value.trim()) q.set("name", name.value.trim());
    go(`/jobs${q.toString() ? `?${q}` : ""}`);
  }
  model.addEventListener("change", refilter);
  status.addEventListener("change", refilter);
  let typing = null;
  name.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(refilter, 400);
  });
  more.addEventListener("click", () => load(next));

  await load("");
  if (f.name) {
    name.focus();
    name.setSelectionRange(name.value.length, name.value.length);
  }

  const stop = onJob((row) => {
    const known = rows.get(row.job_id);
    if (!matches(f, row)) {
      if (known) {
        known.tr.remove();
        rows.delete(row.job_id);
        count();
      }
      return;
    }
    if (known || !next || !oldest || (row.created_at || "") >= oldest) put(row, !known);
  });
  const ticking = setInterval(() => {
    for (const { tr, row } of rows.values()) {
      const cell = tr.querySelector("[data-elapsed]");
      if (cell) cell.textContent = seconds(elapsed(row));
    }
  }, 1000);
  return () => {
    stop();
    clearInterval(ticking);
  };
}
