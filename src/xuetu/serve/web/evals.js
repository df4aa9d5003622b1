// Evaluation reports: the list from /v1/evals, and one report's own page (report.html) in a sandboxed frame.
import { el, getJSON, request, toast } from "./api.js";
import { onLangChange, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
let selected = null;

const KINDS = { eval: "evals.kind.eval", compare: "evals.kind.compare", decide: "evals.kind.decide" };

export async function refreshEvals() {
  const { data } = await getJSON("/v1/evals");
  $("eval-list").replaceChildren(...(data.length ? data.map((r) => el("li", { className: r.name === selected ? "active" : "" },
    el("button.link", { text: r.title || r.name, onclick: () => show(r.name) }), " ",
    el("span.badge", { text: t(KINDS[r.kind] || "evals.kind.eval") }),
    el("div.muted.small", { text: [r.created && r.created.slice(0, 16).replace("T", " "), r.n && t("evals.examples", { n: r.n })].filter(Boolean).join(" · ") })))
    : [el("li.muted", { text: t("evals.none") })]));
  return data;
}

async function show(name) {
  selected = name;
  let page;
  try {
    const response = await request(`/v1/evals/${encodeURIComponent(name)}/report.html`);
    page = await response.text();
  } catch (e) { toast(e.message, "error"); return; }
  if (selected !== name) return;
  // sandbox without allow-scripts: the report shows model output, and nothing in it may run
  const frame = el("iframe.report-frame", { title: t("evals.report"), sandbox: "" });
  frame.srcdoc = page;
  const download = el("button", { text: t("evals.download"), onclick: () => save(name) });
  $("eval-detail").replaceChildren(el("div.panel-head", {}, el("h2", { text: name }), download), frame);
  await refreshEvals();
}

async function save(name) {
  try {
    const response = await request(`/v1/evals/${encodeURIComponent(name)}/report.md`);
    const url = URL.createObjectURL(new Blob([await response.text()], { type: "text/markdown" }));
    const a = el("a", { href: url, download: `${name}.md` });
    document.body.append(a);
    a.click();
    a.remove();
    URL.revokeObjectURL(url);
  } catch (e) { toast(e.message, "error"); }
}

export function setupEvals() {
  onLangChange(() => { refreshEvals(); });
}
