// Shared by the pages: DOM building (text only, never HTML strings), the JSON API, the live feed.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const SVG = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(path, options = {}) {
  const init = { credentials: "same-origin", ...options };
  if (options.json !== undefined) {
    init.method = init.method || "POST";
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(options.json);
  }
  const response = await fetch(path, init);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body.error || response.statusText);
  return body;
}

let meta = null;
export async function getMeta() {
  if (!meta) meta = await api("/api/meta");
  return meta;
}

// One EventSource for the whole page; views subscribe while they are shown.
const listeners = new Set();
let source = null;
export function onJob(listener) {
  listeners.add(listener);
  if (!source) {
    source = new EventSource("/api/live");
    const dot = document.getElementById("live");
    source.addEventListener("open", () => dot.classList.add("on"));
    source.addEventListener("error", () => dot.classList.remove("on"));
    source.addEventListener("job", (event) => {
      const row = JSON.parse(event.data);
      for (const fn of listeners) fn(row);
    });
  }
  return () => listeners.delete(listener);
}

export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  const time = d.toLocaleTimeString([], { hour12: false });
  return today ? time : `${d.toISOString().slice(0, 10)} ${time}`;
}

export function seconds(s) {
  if (s === null || s === undefined) return "";
  if (s < 10) return `${s.toFixed(2)} s`;
  if (s < 120) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export function elapsed(row) {
  if (row.duration_s !== null && row.duration_s !== undefined) return row.duration_s;
  if (!row.created_at) return null;
  return Math.max(0, (Date.now() - new Date(row.created_at).getTime()) / 1000);
}

export function statusBadge(row) {
  const label = row.waiting_for ? `${row.status}, waiting for ${row.waiting_for}` : row.status;
  return el("span", { class: `status s-${row.status}`, "data-status": row.status, text: label });
}

export function progressBar(row) {
  const fraction = row.status === "done" || row.status === "failed" ? 1 : row.status === "running" ? row.progress : 0;
  const fill = el("span", { class: `fill s-${row.status}` });
  fill.style.width = `${Math.round(fraction * 100)}%`;
  return el("span", { class: "progress", title: `${Math.round(fraction * 100)}%` }, fill);
}

export function shortName(row) {
  const name = row.object || "";
  return name.startsWith(`${row.model}/`) ? name.slice(row.model.length + 1) : name;
}

// Move to another view inside the page (main.js routes on popstate).
export function go(href) {
  history.pushState(null, "", href);
  window.dispatchEvent(new PopStateEvent("popstate"));
}
