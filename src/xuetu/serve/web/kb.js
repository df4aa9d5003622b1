// Knowledge bases: create one, drop files on it, see its documents and their chunks, try a query.
import { bytes, el, getJSON, request, toast } from "./api.js";
import { onLangChange, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
let selected = null;
let onChange = () => {};

export async function refreshKbs() {
  const { data } = await getJSON("/v1/kb");
  if (selected && !data.some((k) => k.name === selected)) selected = null;
  $("kb-list").replaceChildren(...(data.length ? data.map((k) => el("li", { className: k.name === selected ? "active" : "" },
    el("button.link", { text: k.name, onclick: () => show(k.name) }),
    el("span.muted", { text: ` ${k.documents} · ${k.chunks}` }))) : [el("li.muted", { text: t("kb.none") })]));
  return data;
}

async function show(name) {
  selected = name;
  await refreshKbs();
  const kb = await getJSON(`/v1/kb/${encodeURIComponent(name)}`);
  const input = el("input", { type: "file", multiple: true, id: "kb-files", className: "sr-only",
                             onchange: (e) => upload(name, [...e.target.files]) });
  const drop = el("div.dropzone", { id: "kb-drop", tabIndex: 0, role: "button",
                                    onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") input.click(); } },
    el("span", { text: t("kb.drop") + " " }), el("label.link", { htmlFor: "kb-files", text: t("kb.browse") }), input);
  for (const type of ["dragenter", "dragover"]) drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); upload(name, [...e.dataTransfer.files]); });

  const rows = kb.documents_list.map((d) => el("tr", {},
    el("td", {}, el("button.link", { text: d.source, onclick: () => chunks(name, d.source) })),
    el("td", { text: d.chunks }), el("td", { text: bytes(d.size) }),
    el("td", { text: d.added ? new Date(d.added * 1000).toLocaleString() : "" }),
    el("td", {}, el("button.danger.small", { text: t("kb.delete"), "aria-label": `${t("kb.delete")} ${d.source}`,
      onclick: () => removeDoc(name, d.source) }))));
  const query = el("form.row", { id: "kb-query", onsubmit: (e) => { e.preventDefault(); search(name); } },
    el("label.sr-only", { htmlFor: "kb-q", text: t("kb.query") }),
    el("input", { id: "kb-q", required: true, placeholder: t("kb.query") }),
    el("label.sr-only", { htmlFor: "kb-mode", text: t("kb.mode") }),
    el("select", { id: "kb-mode" }, ["hybrid", "dense", "bm25"].map((m) => el("option", { value: m, text: m }))),
    el("button.primary", { text: t("kb.search") }));
  $("kb-detail").replaceChildren(
    el("div.panel-head", {}, el("h2", { text: kb.name }),
      el("button.danger", { text: t("kb.deleteKb"), onclick: () => removeKb(name) })),
    el("p.muted", { text: t("kb.summary", { docs: kb.documents, chunks: kb.chunks, embedder: kb.embedder, store: kb.store }) }),
    drop, el("ul.uploads", { id: "kb-uploads", "aria-live": "polite" }),
    el("h3", { text: t("kb.documents") }),
    rows.length ? el("table.table", {}, el("thead", {}, el("tr", {}, ["kb.source", "kb.chunks", "kb.size", "kb.added", ""]
      .map((k) => el("th", { text: k ? t(k) : "" })))), el("tbody", {}, rows)) : el("p.muted", { text: t("kb.none") }),
    el("h3", { text: t("kb.query") }), query, el("div", { id: "kb-results" }), el("div", { id: "kb-chunks" }));
}

async function upload(name, files) {
  const log = $("kb-uploads");
  for (const file of files) {
    const line = el("li", { text: t("kb.uploading", { name: file.name }) });
    log.append(line);
    try {
      const r = await getJSON(`/v1/kb/${encodeURIComponent(name)}/documents/${encodeURIComponent(file.name)}`,
                              { method: "PUT", body: file });
      if (r.skipped.length) {
        line.textContent = t("kb.skipped", { name: file.name, why: r.skipped[0].reason || r.skipped[0].why || JSON.stringify(r.skipped[0]) });
        line.className = "error";
      } else if (r.unchanged.length) line.textContent = t("kb.unchanged", { name: file.name });
      else line.textContent = t("kb.uploaded", { name: file.name, chunks: r.chunks });
    } catch (e) {
      line.textContent = `${file.name}: ${e.message}`;
      line.className = "error";
    }
  }
  const lines = [...log.children];
  await show(name);
  $("kb-uploads").replaceChildren(...lines);
  onChange();
}

async function chunks(name, source) {
  const r = await getJSON(`/v1/kb/${encodeURIComponent(name)}/documents/${encodeURIComponent(source)}/chunks`);
  $("kb-chunks").replaceChildren(el("h3", { text: t("kb.showChunks", { name: source }) }),
    el("ol.chunks", {}, r.data.map((c) => el("li", {},
      el("div.muted", { text: [c.page ? t("chat.page", { page: c.page }) : "", c.heading || "", `${c.start}–${c.end}`].filter(Boolean).join(" · ") }),
      el("div.chunk-text", { text: c.text })))));
  $("kb-chunks").scrollIntoView({ behavior: "smooth", block: "start" });
}

async function search(name) {
  const box = $("kb-results");
  try {
    const r = await getJSON(`/v1/kb/${encodeURIComponent(name)}/query`,
                            { method: "POST", json: { query: $("kb-q").value, mode: $("kb-mode").value, k: 5 } });
    box.replaceChildren(el("h3", { text: t("kb.results") }), r.data.length ? el("ol.results", {}, r.data.map((c) => el("li", {},
      el("div", {}, el("b", { text: c.source }), el("span.muted", { text: (c.page ? " · " + t("chat.page", { page: c.page }) : "")
        + (c.heading ? " · " + c.heading : "") + ` · ${c.score.toFixed(4)}` })),
      el("div.chunk-text", { text: c.text })))) : el("p.muted", { text: t("kb.noResults") }));
  } catch (e) { toast(e.message, "error"); }
}

async function removeDoc(name, source) {
  if (!confirm(t("kb.confirmDoc", { name: source, kb: name }))) return;
  try { await request(`/v1/kb/${encodeURIComponent(name)}/documents/${encodeURIComponent(source)}`, { method: "DELETE" }); }
  catch (e) { toast(e.message, "error"); }
  await show(name);
  onChange();
}

async function removeKb(name) {
  if (!confirm(t("kb.confirmKb", { kb: name }))) return;
  try { await request(`/v1/kb/${encodeURIComponent(name)}`, { method: "DELETE" }); }
  catch (e) { toast(e.message, "error"); }
  selected = null;
  $("kb-detail").replaceChildren(el("p.empty", { text: t("kb.pick") }));
  await refreshKbs();
  onChange();
}

export function setupKb(changed) {
  onChange = changed;
  $("kb-create").addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = $("kb-new-name").value.trim();
    try {
      await request("/v1/kb", { method: "POST", json: { name } });
      $("kb-new-name").value = "";
      await show(name);
      onChange();
    } catch (err) { toast(err.message, "error"); }
  });
  onLangChange(() => { refreshKbs(); if (selected) show(selected); });
}
