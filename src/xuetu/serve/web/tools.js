// Tool calls in a chat (docs/api.md, "Tools"): the tool list from the settings, calls accumulated from a streamed
// answer, their compact summaries, and which calls still wait for a result. Everything the model wrote is shown
// with textContent (el's text), never as HTML.
import { el } from "./api.js";
import { t } from "./i18n.js";

const clip = (text, n) => (text.length > n ? text.slice(0, n) + "…" : text);

function parseJSON(text) {
  try { return JSON.parse(text); } catch { return undefined; }
}

/** The tool definitions pasted in the settings: a list, [] when the box is empty, null when it is not a JSON list. */
export function parseTools(text) {
  if (!(text || "").trim()) return [];
  const tools = parseJSON(text);
  return Array.isArray(tools) ? tools : null;
}

/** Join streamed delta.tool_calls into OpenAI's shape: the first piece names the call, the rest add arguments. */
export function addCallDeltas(reply, deltas) {
  reply.tool_calls ??= [];
  for (const d of deltas) {
    const call = reply.tool_calls[d.index ?? 0] ??= { id: "", type: "function", function: { name: "", arguments: "" } };
    if (d.id) call.id = d.id;
    if (d.type) call.type = d.type;
    if (d.function?.name) call.function.name = d.function.name;
    if (d.function?.arguments) call.function.arguments += d.function.arguments;
  }
}

function compactValue(value) {
  return clip(typeof value === "string" ? value : JSON.stringify(value), 32);
}

/** city=Paris, unit=celsius: strings unquoted, long values cut; arguments that are not JSON stay as they came. */
export function argsSummary(raw) {
  const args = parseJSON(raw || "");
  if (args === undefined) return clip(raw || "", 80);
  if (args && typeof args === "object" && !Array.isArray(args)) {
    return Object.entries(args).map(([k, v]) => `${k}=${compactValue(v)}`).join(", ");
  }
  return compactValue(args);
}

export function callText(call) {
  return `${call.function.name}(${argsSummary(call.function.arguments)})`;
}

function prettyArgs(raw) {
  const args = parseJSON(raw || "");
  return args === undefined ? raw || "" : JSON.stringify(args, null, 2);
}

export function toolCallNode(call) {
  const summary = t("chat.called", { name: call.function.name, args: argsSummary(call.function.arguments) });
  return el("details.tool-call", {}, el("summary", { text: summary }), el("pre", { text: prettyArgs(call.function.arguments) }));
}

export function toolResultNode(m) {
  const text = t("chat.returned", { name: m.name || "?", text: clip((m.content || "").replace(/\s+/g, " "), 60) });
  return el("details.tool-result", {}, el("summary", { text }), el("pre", { text: m.content }));
}

/** The calls of the last assistant message that no tool message after it answers yet, in order. */
export function pendingCalls(c) {
  const messages = c?.messages || [];
  let i = messages.length - 1;
  while (i >= 0 && messages[i].role === "tool") i--;
  const asked = messages[i];
  if (!asked || asked.role !== "assistant" || !asked.tool_calls?.length) return [];
  const answered = new Set(messages.slice(i + 1).map((m) => m.tool_call_id));
  return asked.tool_calls.filter((call) => !answered.has(call.id));
}

/** A stored message as the API takes it: calls and results keep their pairing; the app's own fields stay home. */
export function wire(m) {
  if (m.role === "tool") return { role: "tool", tool_call_id: m.tool_call_id, content: m.content };
  const out = { role: m.role, content: m.content };
  if (m.tool_calls?.length) out.tool_calls = m.tool_calls;
  return out;
}
