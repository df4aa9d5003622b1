// Training: the runs with a live loss curve (redrawn from /v1/runs/RUN while it trains) and the eval report;
// start a LoRA fine-tune from an uploaded dataset, the embedded model as the default base.
import { el, getJSON, markdown, request, toast } from "./api.js";
import { onLangChange, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const ACTIVE = new Set(["starting", "running", "evaluating"]);
const SVG = "http://www.w3.org/2000/svg";
let selected = null;
let timer = null;
let onChange = () => {};

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A line chart of loss (and validation loss) against the optimizer step. */
export function lossChart(metrics) {
  const W = 640, H = 260, L = 48, R = 12, T = 12, B = 32;
  const series = [
    { key: "loss", label: t("train.loss"), cls: "train" },
    { key: "val_loss", label: t("train.valLoss"), cls: "val" },
  ].map((s) => ({ ...s, points: metrics.filter((m) => Number.isFinite(m[s.key])).map((m) => [m.step, m[s.key]]) }))
   .filter((s) => s.points.length);
  const all = series.flatMap((s) => s.points);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": t("train.loss") });
  if (!all.length) { chart.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, t("train.noMetrics"))); return chart; }
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y1 - y0 < 1e-6) { y0 -= 0.5; y1 += 0.5; }
  const X = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const Y = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const digits = Math.max(2, Math.ceil(-Math.log10(y1 - y0)) + 2);  // enough to tell the grid lines apart
  for (let i = 0; i <= 4; i++) {  // grid and y labels
    const v = y0 + ((y1 - y0) * i) / 4;
    chart.append(svg("line", { x1: L, x2: W - R, y1: Y(v), y2: Y(v), class: "grid" }),
                 svg("text", { x: L - 6, y: Y(v) + 4, "text-anchor": "end" }, v.toFixed(digits)));
  }
  chart.append(svg("text", { x: L, y: H - 8 }, `${t("train.step")} ${x0}`),
               svg("text", { x: W - R, y: H - 8, "text-anchor": "end" }, `${x1}`));
  series.forEach((s, i) => {
    chart.append(svg("polyline", { class: `line ${s.cls}`, points: s.points.map(([x, y]) => `${X(x)},${Y(y)}`).join(" ") }));
    if (s.points.length === 1 || s.cls === "val") for (const [x, y] of s.points) chart.append(svg("circle", { cx: X(x), cy: Y(y), r: 3, class: s.cls }));
    chart.append(svg("text", { x: L + 8 + i * 150, y: T + 12, class: `legend ${s.cls}` }, `— ${s.label}`));
  });
  return chart;
}

const badge = (status) => el(`span.badge.${status}`, { text: t(`status.${status}`) });

export async function refreshRuns() {
  const { data } = await getJSON("/v1/runs");
  $("run-list").replaceChildren(...(data.length ? data.map((r) => el("li", { className: r.run === selected ? "active" : "" },
    el("button.link", { text: r.out || r.run, onclick: () => show(r.run) }), " ", badge(r.status)))
    : [el("li.muted", { text: t("train.none") })]));
  return data;
}

async function show(run) {
  selected = run;
  clearTimeout(timer);
  let r;
  try { r = await getJSON(`/v1/runs/${encodeURIComponent(run)}`); } catch (e) { toast(e.message, "error"); return; }
  if (selected !== run) return;
  const active = ACTIVE.has(r.status);
  const last = r.metrics.filter((m) => m.loss !== undefined).at(-1);
  const done = r.steps ?? last?.step ?? 0;
  $("run-detail").replaceChildren(...[
    el("div.panel-head", {}, el("h2", {}, r.out || r.run, " ", badge(r.status)),
      active && r.status !== "evaluating" ? el("button.danger", { text: t("train.cancel"), onclick: () => cancel(run) }) : null,
      r.status === "finished" && r.out ? el("a.button", { href: `/?model=${encodeURIComponent(r.out)}`, text: t("train.chat", { out: r.out }) }) : null),
    el("p.muted", { text: [r.method, r.base, r.dataset].filter(Boolean).join(" · ") }),
    r.total_steps ? el("div.progress-block", {}, el("progress", { max: r.total_steps, value: done }),
      el("span", { text: " " + t("train.progress", { steps: done, total: r.total_steps }) })) : null,
    r.error ? el("p.error", { text: r.error }) : null,
    lossChart(r.metrics),
    r.report ? el("section.report", { "aria-label": t("train.report") }, reportNode(r.report)) : null,
    r.log ? el("details", { open: r.status === "failed" }, el("summary", { text: t("train.log") }), el("pre.log", { text: r.log })) : null,
  ].filter(Boolean));
  await refreshRuns();
  if (active) timer = setTimeout(() => show(run), 2000);
  else if (r.status === "finished") onChange();
}

function reportNode(text) {
  const node = el("div.markdown");
  node.innerHTML = markdown(text.replace(/!\[[^\]]*\]\([^)]*\)/g, ""));  // the report's picture is the chart above
  return node;
}

async function cancel(run) {
  try { await request(`/v1/runs/${encodeURIComponent(run)}/cancel`, { method: "POST" }); }
  catch (e) { toast(e.message, "error"); }
  show(run);
}

async function refreshDatasets() {
  const { data } = await getJSON("/v1/datasets");
  const keep = $("train-existing").value;
  $("train-existing").replaceChildren(el("option", { value: "", text: "—" }),
    ...data.map((d) => el("option", { value: d.name, text: `${d.name} (${d.records})` })));
  if (data.some((d) => d.name === keep)) $("train-existing").value = keep;
}

export async function refreshTrainForm(models) {
  await refreshDatasets();
  const bases = models.filter((m) => !(m.capabilities || []).includes("embedding") && !m.details.parent_model).map((m) => m.name);
  const keep = $("train-base").value;
  $("train-base").replaceChildren(...bases.map((n) => el("option", { value: n, text: n })));
  $("train-base").value = bases.includes(keep) ? keep : (bases.find((n) => n.startsWith("smollm2")) || bases[0] || "");
}

async function start() {
  const message = $("train-message");
  message.className = "note";
  try {
    let data = $("train-existing").value;
    const file = $("train-file").files[0];
    if (file) {
      const d = await getJSON(`/v1/datasets/${encodeURIComponent(file.name)}`, { method: "PUT", body: file });
      message.textContent = t("train.uploaded", { name: d.name, records: d.records, format: d.format });
      data = d.name;
      await refreshDatasets();
    }
    if (!data) throw new Error(t("train.needData"));
    const body = { data, model: $("train-base").value };
    if ($("train-out").value.trim()) body.out = $("train-out").value.trim();
    if ($("train-steps").value) body.max_steps = Number($("train-steps").value);
    const r = await getJSON("/v1/runs", { method: "POST", json: body });
    message.textContent = t("train.started", { out: r.out });
    $("train-file").value = "";
    await show(r.run);
  } catch (e) {
    message.textContent = e.message;
    message.className = "note error";
  }
}

export function setupTrain(changed) {
  onChange = changed;
  $("train-form").addEventListener("submit", (e) => { e.preventDefault(); start(); });
  onLangChange(() => { refreshRuns(); if (selected) show(selected); });
}
