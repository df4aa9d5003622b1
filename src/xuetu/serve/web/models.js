// Models: the store's models (Ollama's /api/tags), details and memory per precision (/api/show),
// pull with progress (/api/pull, streamed) and delete (/api/delete).
import { bytes, el, getJSON, request, streamJSON, toast } from "./api.js";
import { onLangChange, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
let onChange = () => {};
let shown = null;

export async function refreshModels() {
  const { models } = await getJSON("/api/tags");
  const body = $("models-table").querySelector("tbody");
  body.replaceChildren(...models.map((m) => el("tr", { className: m.name === shown ? "active" : "" },
    el("td", {}, el("button.link", { text: m.name, onclick: () => details(m.name) }),
      m.details.parent_model ? el("div.muted", { text: t("models.adapter", { base: m.details.parent_model }) }) : null),
    el("td", { text: m.details.family }), el("td", { text: m.details.parameter_size }),
    el("td", { text: [m.details.format, m.details.quantization_level].filter(Boolean).join(" ") }),
    el("td", { text: bytes(m.size) }),
    el("td", {}, el("button.danger.small", { text: t("models.delete"), "aria-label": `${t("models.delete")} ${m.name}`,
      onclick: () => remove(m.name) })))));
  if (!models.length) body.append(el("tr", {}, el("td", { colSpan: 6, className: "muted", text: t("models.none") })));
  return models;
}

async function details(name) {
  shown = name;
  refreshModels();
  const m = await getJSON("/api/show", { method: "POST", json: { model: name } });
  const info = m.model_info || {};
  const context = Object.entries(info).find(([k]) => k.endsWith(".context_length"))?.[1];
  const facts = [
    [t("models.family"), m.details.family], [t("models.params"), m.details.parameter_size],
    [t("models.context"), context], [t("models.base"), m.details.parent_model],
    [t("models.size"), bytes(m.size)], [t("models.system"), m.system],
  ].filter(([, v]) => v);
  const memory = Object.entries(m.memory || {});
  $("model-detail").replaceChildren(el("section.card", { "aria-label": `${t("models.details")}: ${name}` },
    el("h2", { text: name }),
    el("dl.facts", {}, facts.map(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])),
    memory.length ? el("table.table.memory", {}, el("caption", { text: t("models.memory") }),
      el("thead", {}, el("tr", {}, el("th", { text: t("models.precision") }), el("th", { text: t("models.bytes") }))),
      el("tbody", {}, memory.map(([k, v]) => el("tr", {}, el("td", { text: k }), el("td", { text: bytes(v) }))))) : null,
    m.parameters ? el("details", {}, el("summary", { text: t("models.parameters") }), el("pre", { text: m.parameters })) : null,
    m.template ? el("details", {}, el("summary", { text: t("models.template") }), el("pre", { text: m.template })) : null));
}

async function remove(name) {
  if (!confirm(t("models.confirm", { name }))) return;
  try {
    await request("/api/delete", { method: "DELETE", json: { model: name } });
    toast(t("models.deleted", { name }));
    if (shown === name) { shown = null; $("model-detail").replaceChildren(); }
  } catch (e) { toast(e.message, "error"); }
  await refreshModels();
  onChange();
}

async function pull(name) {
  const bar = $("pull-bar"), status = $("pull-status");
  $("pull-progress").hidden = false;
  bar.removeAttribute("value");  // indeterminate until sizes are known
  status.textContent = name;
  const files = {};
  try {
    const response = await request("/api/pull", { method: "POST", json: { model: name, stream: true } });
    for await (const line of streamJSON(response)) {
      if (line.total) files[line.digest] = [line.completed || 0, line.total];
      const done = Object.values(files).reduce((a, [c]) => a + c, 0);
      const total = Object.values(files).reduce((a, [, n]) => a + n, 0);
      if (total) { bar.max = total; bar.value = done; }
      status.textContent = total ? `${line.status} · ${bytes(done)} / ${bytes(total)}` : line.status;
    }
    bar.max = 1; bar.value = 1;
    status.textContent = t("models.pulled", { name });
    toast(t("models.pulled", { name }));
  } catch (e) {
    status.textContent = e.message;
    toast(e.message, "error");
  }
  await refreshModels();
  onChange();
}

export function setupModels(changed) {
  onChange = changed;
  $("pull-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("pull-name").value.trim();
    if (name) pull(name);
  });
  onLangChange(() => { refreshModels(); if (shown) details(shown); });
}
