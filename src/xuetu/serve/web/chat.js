// Chat: streamed answers as Markdown, stop and regenerate, conversations kept in the browser (localStorage),
// system prompt and sampling settings, a knowledge-base switch whose answers list their sources, and tools: the
// model's calls are shown, the user types each result, and the model is asked again once every call has one.
// No message is lost: it is stored before it is sent, it waits for the model list if that has not come yet, and
// a failure (no model, server down, an error status, a stream cut off) is shown on it with a Retry button.
import { el, getJSON, markdown, request, streamJSON } from "./api.js";
import { onLangChange, t } from "./i18n.js";
import { addCallDeltas, callText, parseTools, pendingCalls, toolCallNode, toolResultNode, wire } from "./tools.js";

const STORE = "xuetu.conversations";
const SETTINGS = "xuetu.settings";
const DRAFT = "xuetu.draft";  // what is typed in the composer, not sent yet
const $ = (id) => document.getElementById(id);

let conversations = load(STORE, []);
let settings = { temperature: 0.2, top_p: 0.95, max_tokens: 512, model: "", kb: "", useKb: false, tools: "",
                 tool_choice: "auto", ...load(SETTINGS, {}) };
let current = conversations[0]?.id || null;
let controller = null;  // the AbortController of the answer being streamed
let waiting = false;  // a message waits for the model list
let chatModels = null;  // the chat models' names once /api/tags has answered; null until then
let listing = null;  // the /api/tags request in flight, shared by everyone who needs the list
let kbNames = null;  // the knowledge bases' names once /v1/kb has answered

// A question left unanswered when the page closed (it waited for the list, or its answer was streaming) offers
// a Retry when the page opens again.
for (const c of conversations) {
  const last = c.messages[c.messages.length - 1];
  if (last?.role === "user" && !last.error) last.error = t("chat.unanswered");
  if (last) delete last.waiting;
}

function load(key, fallback) {
  try { return JSON.parse(localStorage.getItem(key)) ?? fallback; } catch { return fallback; }
}
function save() {
  localStorage.setItem(STORE, JSON.stringify(conversations.slice(0, 200)));
  localStorage.setItem(SETTINGS, JSON.stringify(settings));
}
function conversation() { return conversations.find((c) => c.id === current); }

function newConversation() {
  const c = { id: crypto.randomUUID?.() || String(Date.now() + Math.random()), title: "", messages: [],
              system: $("system-prompt").value, updated: Date.now() };
  conversations.unshift(c);
  current = c.id;
  save();
  return c;
}

// ---- rendering -------------------------------------------------------------------------------------------

function renderList() {
  const list = $("conversations");
  list.replaceChildren(...conversations.map((c) => el("li", { className: c.id === current ? "active" : "" },
    el("button.link", { text: c.title || t("chat.untitled"), title: c.title, "aria-current": c.id === current ? "true" : null,
                        onclick: () => { current = c.id; $("system-prompt").value = c.system || ""; renderAll(); closeSidebar(); } }),
    el("button.icon", { text: "×", "aria-label": t("chat.delete"), title: t("chat.delete"),
                        onclick: () => removeConversation(c.id) }))));
}

function removeConversation(id) {
  conversations = conversations.filter((c) => c.id !== id);
  if (current === id) current = conversations[0]?.id || null;
  save();
  renderAll();
}

function sourcesBlock(citations) {
  if (!citations || !citations.length) return null;
  return el("details.sources", { open: true },
    el("summary", { text: `${t("chat.sources")} (${citations.length})` }),
    el("ol", {}, citations.map((c) => el("li", { className: c.cited ? "cited" : "uncited", value: c.n },
      el("span.source", { text: c.source }),
      c.page ? el("span.page", { text: " · " + t("chat.page", { page: c.page }) }) : null,
      c.heading ? el("span.heading", { text: " · " + c.heading }) : null,
      c.cited ? null : el("span.muted", { text: ` (${t("chat.notCited")})` }),
      el("blockquote", { text: c.text })))));
}

function statsLine(m) {
  if (!m.stats) return null;
  const s = m.stats;
  const text = t("chat.stats", { tokens: s.completion_tokens ?? "?", speed: s.tokens_per_s ?? "?", prompt: s.prompt_tokens ?? "?" });
  return el("div.stats", { text: text + (m.stopped ? ` · ${t("chat.stopped")}` : "") });
}

/** Why the message went unanswered, what to do, and a Retry that asks again (on the conversation's last message). */
function failureNode(m, last) {
  if (!m.error) return null;
  return el("div.failed", { role: "alert" }, el("span", { text: m.error }), last
    ? el("button.small.retry", { type: "button", text: t("chat.retry"), onclick: () => retry(conversation()) }) : null);
}

function messageNode(m, i, all) {
  if (m.role === "tool") return toolMessageNode(m);
  const body = el("div.content");
  if (m.role === "assistant") { body.innerHTML = markdown(m.content); addCopyButtons(body); }
  else body.textContent = m.content;
  return el(`article.message.${m.role}`, { "aria-label": m.role === "user" ? t("chat.you") : t("chat.assistant") },
    el("div.who", { text: m.role === "user" ? t("chat.you") : (m.model || t("chat.assistant")) }),
    body, (m.tool_calls || []).map(toolCallNode), m.role === "assistant" ? sourcesBlock(m.citations) : null, statsLine(m),
    m.waiting ? el("p.note.waiting", { role: "status", text: t("chat.waiting") }) : null,
    failureNode(m, i === all.length - 1));
}

function toolMessageNode(m) {
  return el("article.message.tool", { "aria-label": t("chat.toolResult") },
    el("div.who", { text: t("chat.toolResult") }), toolResultNode(m));
}

function addCopyButtons(root) {
  for (const pre of root.querySelectorAll("pre")) {
    const button = el("button.copy", { type: "button", text: t("chat.copy"), onclick: async () => {
      await navigator.clipboard?.writeText(pre.innerText);
      button.textContent = t("chat.copied");
    } });
    pre.prepend(button);
  }
}

function renderMessages() {
  const box = $("messages");
  const c = conversation();
  if (!c || !c.messages.length) {
    box.replaceChildren(el("p.empty", { text: t("chat.empty") }));
  } else {
    box.replaceChildren(...c.messages.map(messageNode));
    box.scrollTop = box.scrollHeight;
  }
  $("regenerate").disabled = !c || !c.messages.some((m) => m.role === "assistant") || Boolean(controller) || waiting;
  composerMode(c);
}

/** While calls wait for results, the composer names the next one and what is sent becomes its result. */
function composerMode(c) {
  const call = controller ? null : pendingCalls(c)[0];
  $("tool-mode").hidden = !call;
  $("tool-mode").textContent = call ? t("chat.resultFor", { call: callText(call) }) : "";
  $("prompt").placeholder = t(call ? "chat.resultHint" : "chat.placeholder");
}

function showToolsError() {
  $("tools-error").hidden = parseTools(settings.tools) !== null;
  $("tools-error").textContent = t("chat.toolsInvalid");
}

function renderAll() { renderList(); renderMessages(); }

// ---- asking ----------------------------------------------------------------------------------------------

function payload(c) {
  const messages = [];
  if (c.system && c.system.trim()) messages.push({ role: "system", content: c.system.trim() });
  for (const m of c.messages) if (m.content || m.tool_calls?.length || m.role === "tool") messages.push(wire(m));
  const body = { model: settings.model, messages, stream: true, stream_options: { include_usage: true },
                 temperature: Number(settings.temperature), top_p: Number(settings.top_p),
                 max_tokens: Number(settings.max_tokens) };
  if (settings.useKb && settings.kb) body.kb = settings.kb;
  addTools(body, c);
  return body;
}

/** The tools from the settings, unless their JSON is not a list (the settings show why). "required" forces a call
 * on every request, so the request that carries tool results sends "auto" instead: the model can then answer. */
function addTools(body, c) {
  const tools = parseTools(settings.tools);
  if (!tools || !tools.length) return;
  const carriesResults = c.messages[c.messages.length - 1]?.role === "tool";
  body.tools = tools;
  body.tool_choice = settings.tool_choice === "required" && carriesResults ? "auto" : settings.tool_choice;
}

function busy(on) {
  $("send").hidden = on;
  $("stop").hidden = !on;
  $("regenerate").disabled = on;
}

/** A failure in words: what went wrong and what to do about it. */
function explain(e) {
  if (e.kind === "network") return t("error.down", { msg: e.message });
  if (e.kind === "cut") return t("error.cutOff");
  if (e.kind === "stream") return t("error.stream", { msg: e.message });
  if (e.kind === "http" && e.status >= 500) return t("error.server", { msg: e.message });
  if (e.kind === "http") return t("error.refused", { msg: e.message });
  return e.message;
}

/** The message stays (it is saved already); the failure is shown on it, with a Retry. */
function failed(c, m, message) {
  m.error = message;
  c.updated = Date.now();
  save();
  renderAll();
}

/** Until /api/tags has answered, a message waits for it, marked as waiting, and is sent when it comes. */
async function modelChosen(c, asked) {
  if (chatModels !== null) return true;
  waiting = true;
  asked.waiting = true;
  $("send").disabled = true;
  renderMessages();
  try {
    await loadModels();
    return true;
  } catch (e) {
    failed(c, asked, t("error.models", { msg: e.message }));
    return false;
  } finally {
    waiting = false;
    delete asked.waiting;
    $("send").disabled = false;
  }
}

async function answer(c) {
  const asked = c.messages[c.messages.length - 1];  // the message this answer is for
  for (const m of c.messages) delete m.error;  // asked again: old failures are past
  if (!await modelChosen(c, asked)) return;
  if (!settings.model) { failed(c, asked, t("chat.noModels")); return; }
  const reply = { role: "assistant", content: "", model: settings.model };
  const body = payload(c);
  c.messages.push(reply);
  renderMessages();
  const node = $("messages").lastElementChild;
  const content = node.querySelector(".content");
  node.classList.add("streaming");
  controller = new AbortController();
  busy(true);
  const started = performance.now();
  let first = null, usage = null, pending = false, finished = false;
  const paint = () => {
    pending = false;
    content.innerHTML = markdown(reply.content);
    $("messages").scrollTop = $("messages").scrollHeight;
  };
  try {
    const response = await request("/v1/chat/completions", { method: "POST", json: body, signal: controller.signal });
    for await (const chunk of streamJSON(response)) {
      const delta = chunk.choices?.[0]?.delta;
      if (delta?.content) {
        first ??= performance.now();
        reply.content += delta.content;
        if (!pending) { pending = true; requestAnimationFrame(paint); }
      }
      if (delta?.tool_calls) addCallDeltas(reply, delta.tool_calls);  // sent whole at the end: speed counts from the start
      if (chunk.citations) reply.citations = chunk.citations;
      if (chunk.usage) usage = chunk.usage;
      if (chunk.choices?.[0]?.finish_reason) finished = true;
    }
    if (!finished) { const cut = new Error("no finish_reason"); cut.kind = "cut"; throw cut; }  // ended part-way
  } catch (e) {
    if (e.name === "AbortError") reply.stopped = true;
    else reply.error = explain(e);
  } finally {
    controller = null;
    busy(false);
  }
  const seconds = ((performance.now() - (first ?? started)) / 1000) || 1e-3;
  const completion = usage?.completion_tokens ?? null;
  reply.stats = { prompt_tokens: usage?.prompt_tokens ?? null, completion_tokens: completion,
                  tokens_per_s: completion ? (completion / seconds).toFixed(1) : null };
  if (reply.tool_calls) reply.tool_calls = reply.tool_calls.filter(Boolean);
  if (!reply.content && !reply.tool_calls?.length && reply.error) {  // nothing came: the failure is the question's
    c.messages.pop();
    asked.error = reply.error;
  }
  c.updated = Date.now();
  save();
  renderAll();
}

async function send(text) {
  const c = conversation() || newConversation();
  c.system = $("system-prompt").value;
  c.messages.push({ role: "user", content: text });
  if (!c.title) c.title = text.slice(0, 40);
  conversations = [c, ...conversations.filter((x) => x !== c)];
  save();
  renderAll();
  await answer(c);
}

/** The user's text as the result of the next pending call; with the last result in, the model answers again. */
async function sendResult(c, call, text) {
  c.messages.push({ role: "tool", tool_call_id: call.id, name: call.function.name, content: text });
  c.updated = Date.now();
  save();
  renderAll();
  if (!pendingCalls(c).length) await answer(c);
}

/** Ask again for the conversation's last message; an answer cut off part-way is dropped and asked for whole. */
async function retry(c) {
  if (!c || controller || waiting) return;
  if (c.messages[c.messages.length - 1]?.role === "assistant") c.messages.pop();
  if (!c.messages.length) return;
  renderMessages();
  await answer(c);
}

async function regenerate() {
  const c = conversation();
  if (!c || controller || waiting) return;
  while (c.messages.length && c.messages[c.messages.length - 1].role === "assistant") c.messages.pop();
  if (!c.messages.length) return;
  renderMessages();
  await answer(c);
}

// ---- pickers ---------------------------------------------------------------------------------------------
// Each picker fills when its own list comes, and says what it holds meanwhile: "loading models…", or the
// reason the list could not be had; "no knowledge base yet — create one" with a link to create one.

/** The chat models from /api/tags; one request at a time, whoever asks (the view, a waiting message, a retry). */
export function loadModels() {
  listing ??= (async () => {
    try {
      const tags = await getJSON("/api/tags");
      chatModels = tags.models.filter((m) => !(m.capabilities || []).includes("embedding")).map((m) => m.name);
      const wanted = new URLSearchParams(location.search).get("model") || settings.model;
      settings.model = chatModels.includes(wanted) ? wanted
        : (chatModels.find((n) => n.startsWith("smollm2")) || chatModels[0] || "");
      save();
    } finally {
      listing = null;
      fillModelPicker();
    }
  })();
  fillModelPicker();
  return listing;
}

function fillModelPicker() {
  const select = $("model-select");
  const loading = chatModels === null && Boolean(listing);
  select.setAttribute("aria-busy", String(loading));
  if (chatModels === null) {
    select.replaceChildren(el("option", { value: "", text: t(loading ? "chat.loadingModels" : "chat.modelsFailed") }));
    select.disabled = true;
    return;
  }
  select.disabled = false;
  select.replaceChildren(...chatModels.map((n) => el("option", { value: n, text: n })));
  if (!chatModels.length) select.append(el("option", { value: "", text: t("chat.noModels") }));
  select.value = settings.model;
}

async function loadKbs() {
  let kbs;
  try {
    kbs = await getJSON("/v1/kb");
  } catch {  // a key without knowledge bases, or no server: the picker says so, the chat goes on without one
    kbNames = null;
    fillKbPicker();
    return;
  }
  kbNames = kbs.data.map((k) => k.name);
  const kbWanted = new URLSearchParams(location.search).get("kb");
  if (kbWanted && kbNames.includes(kbWanted)) { settings.kb = kbWanted; settings.useKb = true; }
  if (!kbNames.includes(settings.kb)) settings.kb = kbNames[0] || "";
  save();
  fillKbPicker();
}

function fillKbPicker() {
  const names = kbNames || [];
  const kbSelect = $("kb-select");
  kbSelect.replaceChildren(...names.map((n) => el("option", { value: n, text: n })));
  if (!names.length) kbSelect.append(el("option", { value: "", text: t(kbNames ? "chat.noKb" : "chat.kbFailed") }));
  kbSelect.value = settings.kb;
  $("kb-empty").hidden = kbNames === null || names.length > 0;
  $("kb-toggle").checked = settings.useKb && Boolean(settings.kb);
  $("kb-toggle").disabled = !names.length;
  kbSelect.disabled = !$("kb-toggle").checked;
}

/** Both pickers, each filled as soon as its own list comes (the model list never waits for the knowledge bases). */
export async function refreshPickers() {
  await Promise.all([loadModels(), loadKbs()]);
}

function closeSidebar() {
  $("chat-sidebar").classList.remove("open");
  $("sidebar-toggle").setAttribute("aria-expanded", "false");
}

export function setupChat() {
  const bind = (id, key, out) => {
    const input = $(id);
    input.value = settings[key];
    if (out) $(out).textContent = input.value;
    input.addEventListener("input", () => { settings[key] = input.value; if (out) $(out).textContent = input.value; save(); });
  };
  bind("temperature", "temperature", "temperature-out");
  bind("top-p", "top_p", "top-p-out");
  bind("max-tokens", "max_tokens");
  bind("tools", "tools");
  bind("tool-choice", "tool_choice");
  $("tools").addEventListener("change", showToolsError);
  showToolsError();
  $("system-prompt").value = conversation()?.system || "";
  $("system-prompt").addEventListener("change", () => { const c = conversation(); if (c) { c.system = $("system-prompt").value; save(); } });
  $("model-select").addEventListener("change", (e) => { settings.model = e.target.value; save(); });
  $("kb-select").addEventListener("change", (e) => { settings.kb = e.target.value; save(); });
  $("kb-toggle").addEventListener("change", (e) => {
    settings.useKb = e.target.checked;
    $("kb-select").disabled = !e.target.checked;
    save();
  });
  $("new-chat").addEventListener("click", () => { newConversation(); renderAll(); closeSidebar(); $("prompt").focus(); });
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("prompt").value.trim();
    if (!text || controller || waiting) return;  // the text stays in the composer (and its draft) until it can go
    $("prompt").value = "";
    localStorage.removeItem(DRAFT);
    const call = pendingCalls(conversation())[0];
    if (call) sendResult(conversation(), call, text);
    else send(text);
  });
  $("prompt").value = localStorage.getItem(DRAFT) || "";
  $("prompt").addEventListener("input", () => localStorage.setItem(DRAFT, $("prompt").value));
  $("prompt").addEventListener("keydown", (e) => {  // Enter sends; Shift+Enter (or an IME composition) does not
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("composer").requestSubmit(); }
  });
  $("stop").addEventListener("click", () => controller?.abort());
  $("regenerate").addEventListener("click", regenerate);
  $("sidebar-toggle").addEventListener("click", () => {
    const open = $("chat-sidebar").classList.toggle("open");
    $("sidebar-toggle").setAttribute("aria-expanded", String(open));
  });
  document.addEventListener("click", (e) => {  // on a phone, a tap beside the open menu closes it
    if ($("chat-sidebar").classList.contains("open") && !e.target.closest("#chat-sidebar, #sidebar-toggle")) closeSidebar();
  });
  onLangChange(() => { renderAll(); showToolsError(); fillModelPicker(); fillKbPicker(); });
  renderAll();
}
