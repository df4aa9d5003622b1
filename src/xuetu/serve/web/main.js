// Entry point: tabs (the URL's #hash names the view), the language switch, the API key, first loads.
import { changeKey, hasKey, toast } from "./api.js";
import { refreshPickers, setupChat } from "./chat.js";
import { lang, setLang, translate } from "./i18n.js";
import { refreshEvals, setupEvals } from "./evals.js";
import { refreshKbs, setupKb } from "./kb.js";
import { refreshModels, setupModels } from "./models.js";
import { refreshRuns, refreshTrainForm, setupTrain } from "./train.js";

const VIEWS = ["chat", "kb", "models", "train", "evals"];
const quiet = (promise) => promise.catch((e) => toast(e.message, "error"));

async function refresh(view) {
  if (view === "chat") return refreshPickers();
  if (view === "kb") return refreshKbs();
  if (view === "models") return refreshModels();
  if (view === "evals") return refreshEvals();
  if (view === "train") {
    const [models] = await Promise.all([refreshModels(), refreshRuns()]);
    return refreshTrainForm(models);
  }
}

function showView(view) {
  if (!VIEWS.includes(view)) view = "chat";
  for (const v of VIEWS) {
    document.getElementById(`view-${v}`).hidden = v !== view;
    const tab = document.getElementById(`tab-${v}`);
    tab.setAttribute("aria-selected", String(v === view));
    tab.tabIndex = v === view ? 0 : -1;
  }
  quiet(refresh(view));
}

function langButton() {
  document.getElementById("lang-button").textContent = lang === "zh" ? "English" : "中文";
}

document.addEventListener("DOMContentLoaded", () => {
  translate();
  langButton();
  document.getElementById("key-button").hidden = !hasKey();
  document.getElementById("lang-button").addEventListener("click", () => { setLang(lang === "zh" ? "en" : "zh"); langButton(); });
  document.getElementById("key-button").addEventListener("click", () => quiet(changeKey().then(() => showView(location.hash.slice(1)))));
  const tabs = document.querySelector(".tabs");
  tabs.addEventListener("click", (e) => {
    const view = e.target.closest("[data-view]")?.dataset.view;
    if (view) location.hash = view;
  });
  tabs.addEventListener("keydown", (e) => {  // arrow keys move between tabs
    if (e.key !== "ArrowRight" && e.key !== "ArrowLeft") return;
    const current = VIEWS.indexOf(location.hash.slice(1) || "chat");
    const next = VIEWS[(current + (e.key === "ArrowRight" ? 1 : VIEWS.length - 1)) % VIEWS.length];
    location.hash = next;
    document.getElementById(`tab-${next}`).focus();
  });
  window.addEventListener("hashchange", () => showView(location.hash.slice(1)));
  setupChat();
  setupKb(() => quiet(refreshPickers()));
  setupModels(() => quiet(refreshPickers()));
  setupTrain(() => quiet(refreshPickers()));
  setupEvals();
  showView(location.hash.slice(1));
});
