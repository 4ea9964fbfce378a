// The page shell: routes the address to a view, keeps links inside the page.
import { el, getMeta, go } from "./common.js";
import { jobsView } from "./jobs.js";
import { jobView } from "./job.js";
import { submitView } from "./submit.js";
import { overviewView } from "./overview.js";

let leave = null;

async function route() {
  if (leave) leave();
  leave = null;
  const view = document.getElementById("view");
  view.replaceChildren();
  const path = location.pathname;
  const page = path.startsWith("/submit") ? "submit" : path.startsWith("/overview") ? "overview" : "jobs";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("here", a.dataset.page === page);
  try {
    const meta = await getMeta();
    const match = path.match(/^\/jobs\/([0-9a-f]{32})$/);
    if (match) leave = await jobView(view, meta, match[1]);
    else if (page === "submit") leave = await submitView(view, meta);
    else if (page === "overview") leave = await overviewView(view, meta);
    else leave = await jobsView(view, meta);
  } catch (error) {
    view.append(el("p", { class: "error", text: String(error.message || error) }));
  }
}


document.addEventListener("click", (event) => {
  const a = event.target.closest("a");
  if (!a || a.hasAttribute("download") || a.target || event.ctrlKey || event.metaKey || event.shiftKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
  event.preventDefault();
  go(url.pathname + url.search);
});

window.addEventListener("popstate", route);

getMeta().then((meta) => {
  const where = meta.local ? "local stack" : `project ${meta.project}`;
  document.getElementById("target").textContent = `${where} · gs://${meta.bucket}`;
});
route();
