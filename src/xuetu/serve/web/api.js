// The app's only way to the server: the public HTTP API (docs/api.md), with the bearer key when one is needed.
import { t } from "./i18n.js";

const KEY = "xuetu.key";  // sessionStorage: kept for this browser session only
let asking = null;

export function hasKey() { return Boolean(sessionStorage.getItem(KEY)); }

function headers(extra = {}) {
  const key = sessionStorage.getItem(KEY);
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

/** Ask for the key once, however many requests were refused at the same time. */
function askKey(refused) {
  if (!asking) {
    asking = new Promise((resolve) => {
      const dialog = document.getElementById("auth-dialog");
      const input = document.getElementById("auth-key");
      document.getElementById("auth-error").hidden = !refused;
      dialog.addEventListener("close", function done() {
        dialog.removeEventListener("close", done);
        sessionStorage.setItem(KEY, input.value.trim());
        document.getElementById("key-button").hidden = false;
        asking = null;
        resolve();
      });
      input.value = "";
      dialog.showModal();
      input.focus();
    });
  }
  return asking;
}

export function changeKey() { return askKey(false); }

/** The error message a reply carries, in OpenAI's shape ({error: {message}}) or Ollama's ({error: "..."}). */
export async function errorOf(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  const e = body && body.error;
  const message = (e && (e.message || (typeof e === "string" ? e : null))) || (body && body.detail) || response.statusText;
  const error = new Error(`${response.status}: ${message}`);
  error.status = response.status;
  error.kind = "http";
  return error;
}

/** An Error that says what failed: kind "network" (no answer at all), "http" (an error status), "cut" (a stream
 * that stopped part-way) or "stream" (the server's own error, sent part-way through a stream). */
function failure(kind, message) {
  const error = new Error(message);
  error.kind = kind;
  return error;
}

/** fetch() through the API: asks for a key on 401 and tries again; throws an Error with the server's message. */
export async function request(path, { method = "GET", json, body, signal, headers: extra } = {}) {
  for (let attempt = 0; ; attempt++) {
    const init = { method, signal, headers: headers(extra) };
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers["Content-Type"] = "application/json";
    } else if (body !== undefined) init.body = body;
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw failure("network", t("error.network", { msg: e.message }));
    }
    if (response.status === 401 && attempt < 5) {
      await askKey(attempt > 0 || hasKey());
      continue;
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }
}

export async function getJSON(path, options) { return (await request(path, options)).json(); }

/** Yield each JSON object of a streamed reply: server-sent events (`data: {...}`) or newline-delimited JSON. */
export async function* streamJSON(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    let part;
    try {
      part = await reader.read();
    } catch (e) {  // the connection dropped part-way (a server stopped, a network gone)
      if (e.name === "AbortError") throw e;
      throw failure("cut", e.message);
    }
    const { value, done } = part;
    buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
    let cut;
    while ((cut = buffer.indexOf("\n")) >= 0) {
      let line = buffer.slice(0, cut).trim();
      buffer = buffer.slice(cut + 1);
      if (line.startsWith("data:")) line = line.slice(5).trim();
      if (!line || line === "[DONE]") continue;
      const item = JSON.parse(line);
      if (item.error) throw failure("stream", item.error.message || item.error);
      yield item;
    }
    if (done) return;
  }
}

// Small DOM helpers shared by the views.

/** el("div.a.b", {attrs}, children...): builds an element; strings become text nodes (never HTML). */
export function el(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const node = document.createElement(tag || "div");
  if (classes.length) node.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else if (k in node && k !== "list") node[k] = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

export function toast(message, kind = "info") {
  const box = el(`div.toast.${kind}`, { text: message, role: kind === "error" ? "alert" : "status" });
  document.getElementById("toasts").append(box);
  setTimeout(() => box.remove(), kind === "error" ? 8000 : 4000);
}

export function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }  // decimal, as the seeds count memory
  return `${n.toFixed(n >= 10 || i === 0 ? 0 : 1)} ${units[i]}`;
}

// What Markdown from a model (or a training report) may become: text formatting, lists, tables, code, links and
// same-server images. No forms, inputs or buttons (a prompt-injected answer could show a fake login), no <style>
// or style attributes (it could restyle the page), no SVG, media, frames or srcset (more ways to load things).
const ALLOWED_TAGS = ["a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em",
  "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small",
  "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul"];
const ALLOWED_ATTR = ["href", "src", "alt", "title", "align", "class", "start", "lang", "dir"];
const SANITIZE = { ALLOWED_TAGS, ALLOWED_ATTR, ALLOW_DATA_ATTR: false, ALLOW_ARIA_ATTR: false };

/** An image from this server or a data: URL; any other would tell a remote server what the page shows. */
function sameOrigin(src) {
  if (/^data:image\//i.test(src)) return true;
  try { return new URL(src, window.location.href).origin === window.location.origin; } catch { return false; }
}

let hooked = false;
function hook() {
  window.DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    const src = node.getAttribute("src");
    if (node.tagName === "IMG" && (!src || !sameOrigin(src))) {  // no src left (a srcset was taken): nothing to show
      node.replaceWith(document.createTextNode(node.getAttribute("alt") || ""));  // the words stay, the request goes
    }
    if (node.tagName === "A") node.setAttribute("rel", "noopener noreferrer");
  });
  // The only class kept is a code block's language: the app's own classes could dress an answer up as its UI.
  window.DOMPurify.addHook("uponSanitizeAttribute", (node, data) => {
    if (data.attrName === "class" && !/^language-[\w+#.-]{1,40}$/.test(data.attrValue)) data.keepAttr = false;
  });
  hooked = true;
}

/** Markdown to safe HTML: marked renders, DOMPurify keeps only the tags above and removes anything that could
 * run or load from elsewhere. The page's Content-Security-Policy blocks remote loads again if anything slips. */
export function markdown(text) {
  if (!hooked) hook();
  return window.DOMPurify.sanitize(window.marked.parse(text || "", { gfm: true, breaks: true }), SANITIZE);
}
