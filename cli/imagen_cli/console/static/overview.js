// The overview: per model, the last hour in small inline SVG plots; failure reasons; services.
import { api, el, seconds, svg } from "./common.js";

const STATUSES = ["done", "failed", "running", "queued"];
const W = 240;
const H = 56;

function stacked(model) {
  const n = model.created.length;
  const most = Math.max(1, ...model.created.map((b) => STATUSES.reduce((s, k) => s + b[k], 0)));
  const bw = W / n;
  const bars = [];
  model.created.forEach((b, i) => {
    let y = H;
    for (const k of STATUSES) {
      const h = (b[k] / most) * (H - 4);
      if (!h) continue;
      y -= h;
      bars.push(svg("rect", { x: i * bw + 1, y, width: bw - 2, height: h, class: `f-${k}` }, svg("title", {}, document.createTextNode(`${b[k]} ${k}`))));
    }
  });
  return svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "plot", role: "img", "aria-label": "jobs by status" }, bars);
}

function spark(values) {
  const most = Math.max(1, ...values);
  const step = W / Math.max(1, values.length - 1);
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(H - 4 - (v / most) * (H - 8)).toFixed(1)}`).join(" ");
  return svg(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "plot", role: "img", "aria-label": "done per five minutes" },
    svg("polyline", { points, class: "line" }),
  );
}

function card(name, m) {
  const totals = STATUSES.map((k) => el("span", { class: `status s-${k}`, text: `${m.totals[k]} ${k}` }));
  return el(
    "section",
    { class: "card model", "data-model": name },
    el("h2", { text: name }),
    el("p", {}, ...totals),
    el("figure", {}, stacked(m), el("figcaption", { text: "jobs created, by status now, per 5 min" })),
    el("figure", {}, spark(m.done), el("figcaption", { text: `done per 5 min · ${m.per_minute}/min` })),
    el("p", {}, `duration p50 ${m.p50_s === null ? "–" : seconds(m.p50_s)} · p95 ${m.p95_s === null ? "–" : seconds(m.p95_s)}`),
  );
}

function services(states) {
  return el(
    "div",
    { class: "services" },
    Object.entries(states).map(([name, s]) =>
      el(
        "span",
        { class: `service ${s.ok === true ? "up" : s.ok === false ? "down" : "unknown"}`, "data-service": name, title: s.error || "" },
        `${name} ${s.ok === true ? "up" : s.ok === false ? "down" : "unknown"}`,
        s.ms !== undefined ? el("small", { text: ` ${Math.round(s.ms)} ms` }) : null,
      ),
    ),
  );
}

function reasons(list) {
  if (!list.length) return el("p", { class: "muted", text: "no failures" });
  const body = el("tbody");
  for (const r of list) body.append(el("tr", {}, el("td", { class: "num", text: String(r.count) }), el("td", { text: r.example }), el("td", { text: r.models.join(", ") })));
  return el("table", { class: "kv" }, el("thead", {}, el("tr", {}, el("th", { text: "jobs" }), el("th", { text: "reason (an example)" }), el("th", { text: "models" }))), body);
}

export async function overviewView(view, meta) {
  const holder = el("div");
  view.append(el("h1", { text: "Overview · the last hour" }), holder);
  async function load() {
    const o = await api("/api/overview");
    holder.replaceChildren(
      el("section", { class: "card" }, el("h2", { text: "Services" }), services(o.services)),
      el("div", { class: "models" }, meta.models.map((m) => card(m, o.models[m]))),
      el("section", { class: "card" }, el("h2", { text: "Most common failure reasons" }), reasons(o.failures)),
      el("p", { class: "muted", text: `${o.counted} jobs counted${o.capped ? " (capped: the newest only)" : ""} · ${new Date(o.now).toLocaleTimeString([], { hour12: false })}` }),
    );
  }
  await load();
  const timer = setInterval(() => load().catch(() => {}), 10000);
  return () => clearInterval(timer);
}
