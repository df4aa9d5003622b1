// Chinese and English. Chinese is the default when the browser prefers it; the switch is remembered.
const STRINGS = {
  en: {
    skip: "Skip to content",
    "nav.chat": "Chat", "nav.kb": "Knowledge", "nav.models": "Models", "nav.train": "Training", "nav.evals": "Evaluations",
    "evals.list": "Reports", "evals.how": "Made by xuetu eval, compare, prompt compare and decide.",
    "evals.pick": "Pick a report to see its scores, plots and answers.", "evals.none": "No reports yet: run xuetu eval.",
    "evals.report": "Evaluation report", "evals.download": "Download Markdown", "evals.examples": "{n} examples",
    "evals.kind.eval": "eval", "evals.kind.compare": "comparison", "evals.kind.decide": "decision",
    "chat.new": "New chat", "chat.history": "Conversations", "chat.settings": "System prompt and settings",
    "chat.system": "System prompt", "chat.systemHint": "You are a patient AI tutor…",
    "chat.temperature": "Temperature", "chat.topP": "Top-p", "chat.maxTokens": "Max tokens",
    "chat.menu": "Menu", "chat.model": "Model", "chat.useKb": "Knowledge base", "chat.kbName": "Knowledge base name",
    "chat.message": "Message", "chat.placeholder": "Ask something… (Enter to send, Shift+Enter for a new line)",
    "chat.regenerate": "Regenerate", "chat.stop": "Stop", "chat.send": "Send",
    "chat.untitled": "New chat", "chat.delete": "Delete conversation", "chat.you": "You", "chat.assistant": "Assistant",
    "chat.sources": "Sources", "chat.page": "p. {page}", "chat.notCited": "not cited",
    "chat.stats": "{tokens} tokens · {speed} tokens/s · prompt {prompt}", "chat.stopped": "stopped",
    "chat.noModels": "No chat model yet: pull one under Models, then retry.",
    "chat.noKb": "no knowledge base yet — create one", "chat.createKb": "Create a knowledge base",
    "chat.kbFailed": "knowledge bases could not be loaded", "chat.loadingKbs": "loading knowledge bases…",
    "chat.loadingModels": "loading models…", "chat.modelsFailed": "models could not be loaded",
    "chat.waiting": "Waiting for the model list: this message is sent as soon as it comes.",
    "chat.retry": "Retry", "chat.unanswered": "Not answered: the page was closed before the answer came. Retry to ask again.",
    "chat.empty": "Ask the model anything. Turn on a knowledge base to answer from your documents, with sources.",
    "chat.copy": "Copy", "chat.copied": "Copied",
    "chat.tools": "Tools (JSON)", "chat.toolsHint": "[{\"type\": \"function\", \"function\": {\"name\": …, \"parameters\": …}}]",
    "chat.toolsInvalid": "Tools must be a JSON list of tool definitions, [{…}, …]; they are not sent until this is fixed.",
    "chat.toolChoice": "Tool choice", "chat.choiceAuto": "auto: the model decides",
    "chat.choiceRequired": "required: always call a tool", "chat.choiceNone": "none: never call a tool",
    "chat.called": "called {name}({args})", "chat.returned": "{name} returned: {text}", "chat.toolResult": "Tool result",
    "chat.resultFor": "Result for {call}", "chat.resultHint": "What the function returned (Enter to send)",
    "kb.newName": "New knowledge base", "kb.namePlaceholder": "notes", "kb.create": "Create",
    "kb.list": "Knowledge bases", "kb.pick": "Pick or create a knowledge base.",
    "kb.drop": "Drop files here (PDF, Markdown, HTML, Word, text, CSV/JSONL), or", "kb.browse": "choose files",
    "kb.documents": "Documents", "kb.source": "Source", "kb.chunks": "Chunks", "kb.size": "Size", "kb.added": "Added",
    "kb.none": "No documents yet.", "kb.query": "Try a query", "kb.search": "Search", "kb.mode": "Mode",
    "kb.delete": "Delete", "kb.deleteKb": "Delete knowledge base", "kb.confirmDoc": "Remove {name} from {kb}?",
    "kb.confirmKb": "Delete the knowledge base {kb} and everything in it?", "kb.uploading": "uploading {name}…",
    "kb.uploaded": "{name}: {chunks} chunks", "kb.unchanged": "{name}: unchanged", "kb.skipped": "{name} skipped: {why}",
    "kb.results": "Results", "kb.noResults": "Nothing found.", "kb.summary": "{docs} documents · {chunks} chunks · embedder {embedder} · {store}",
    "kb.showChunks": "Chunks of {name}",
    "models.pullLabel": "Pull a model", "models.pull": "Pull", "models.title": "Models", "models.name": "Name",
    "models.family": "Family", "models.params": "Parameters", "models.format": "Format", "models.size": "Size",
    "models.details": "Details", "models.delete": "Delete", "models.confirm": "Delete the model {name}?",
    "models.memory": "Memory the weights need", "models.precision": "Precision", "models.bytes": "Memory",
    "models.context": "Context length", "models.base": "Base model", "models.system": "System prompt",
    "models.parameters": "Parameters", "models.template": "Chat template", "models.pulled": "{name} is ready",
    "models.deleted": "{name} deleted", "models.none": "No models yet.", "models.adapter": "adapter of {base}",
    "train.start": "Start a LoRA fine-tune", "train.dataset": "Dataset (.jsonl, .json, .csv, .parquet)",
    "train.orUploaded": "or one uploaded before", "train.base": "Base model", "train.out": "New model name",
    "train.steps": "Steps", "train.go": "Start training", "train.runs": "Runs",
    "train.pick": "Pick a run to see its loss curve and report.", "train.none": "No runs yet.",
    "train.needData": "Choose a dataset file first.", "train.uploaded": "{name}: {records} records ({format})",
    "train.started": "Training {out}…", "train.cancel": "Cancel", "train.loss": "loss", "train.valLoss": "validation loss",
    "train.step": "step", "train.report": "Evaluation: base against tuned", "train.log": "Log",
    "train.progress": "step {steps} of {total}", "train.chat": "Chat with {out}", "train.noMetrics": "No steps yet.",
    "status.starting": "starting", "status.running": "running", "status.evaluating": "evaluating",
    "status.finished": "finished", "status.failed": "failed", "status.cancelled": "cancelled",
    "status.interrupted": "interrupted",
    "auth.title": "This server needs an API key", "auth.label": "API key", "auth.wrong": "That key was refused.",
    "auth.save": "Continue", "auth.change": "API key",
    "error.network": "Cannot reach the server: {msg}",
    "error.down": "Not sent: the server does not answer ({msg}). Check that `xuetu serve` is running, then retry.",
    "error.cutOff": "The answer was cut off: the connection to the server was lost. Check that `xuetu serve` is running, then retry.",
    "error.stream": "The server stopped the answer: {msg}. Retry; if it happens again, the server's log says why.",
    "error.server": "The server failed ({msg}). Retry; if it fails again, the server's log says why.",
    "error.refused": "The server refused the message ({msg}). Change the model or the settings, then retry.",
    "error.models": "Not sent: the model list could not be loaded ({msg}). Check that `xuetu serve` is running, then retry.",
  },
  zh: {
    skip: "跳到正文",
    "nav.chat": "对话", "nav.kb": "知识库", "nav.models": "模型", "nav.train": "训练", "nav.evals": "评估",
    "evals.list": "评估报告", "evals.how": "由 xuetu eval、compare、prompt compare 和 decide 生成。",
    "evals.pick": "选择一份报告，查看分数、图表和每条回答。", "evals.none": "还没有报告：先运行 xuetu eval。",
    "evals.report": "评估报告", "evals.download": "下载 Markdown", "evals.examples": "{n} 条样例",
    "evals.kind.eval": "评估", "evals.kind.compare": "对比", "evals.kind.decide": "决策",
    "chat.new": "新对话", "chat.history": "会话", "chat.settings": "系统提示词与参数",
    "chat.system": "系统提示词", "chat.systemHint": "你是一位耐心的 AI 学习助手……",
    "chat.temperature": "温度", "chat.topP": "Top-p", "chat.maxTokens": "最多生成 token 数",
    "chat.menu": "菜单", "chat.model": "模型", "chat.useKb": "知识库", "chat.kbName": "知识库名称",
    "chat.message": "消息", "chat.placeholder": "输入问题……（Enter 发送，Shift+Enter 换行）",
    "chat.regenerate": "重新生成", "chat.stop": "停止", "chat.send": "发送",
    "chat.untitled": "新对话", "chat.delete": "删除会话", "chat.you": "你", "chat.assistant": "助手",
    "chat.sources": "来源", "chat.page": "第 {page} 页", "chat.notCited": "未引用",
    "chat.stats": "{tokens} 个 token · {speed} token/秒 · 提示 {prompt}", "chat.stopped": "已停止",
    "chat.noModels": "还没有对话模型：请先在“模型”页拉取一个，然后重试。",
    "chat.noKb": "还没有知识库——新建一个", "chat.createKb": "新建知识库",
    "chat.kbFailed": "无法加载知识库列表", "chat.loadingKbs": "正在加载知识库……",
    "chat.loadingModels": "正在加载模型……", "chat.modelsFailed": "无法加载模型列表",
    "chat.waiting": "正在等待模型列表：列表一到就发送这条消息。",
    "chat.retry": "重试", "chat.unanswered": "未回答：回答到达之前页面已关闭。点“重试”再问一次。",
    "chat.empty": "问模型任何问题。打开知识库开关，就会根据你的文档回答并标注来源。",
    "chat.copy": "复制", "chat.copied": "已复制",
    "chat.tools": "工具（JSON）", "chat.toolsHint": "[{\"type\": \"function\", \"function\": {\"name\": …, \"parameters\": …}}]",
    "chat.toolsInvalid": "工具必须是由工具定义组成的 JSON 列表 [{…}, …]；改正之前不会发送。",
    "chat.toolChoice": "工具调用方式", "chat.choiceAuto": "自动：由模型决定",
    "chat.choiceRequired": "必须：总是调用工具", "chat.choiceNone": "不调用：从不调用工具",
    "chat.called": "调用了 {name}({args})", "chat.returned": "{name} 返回：{text}", "chat.toolResult": "工具结果",
    "chat.resultFor": "{call} 的返回结果", "chat.resultHint": "填写函数返回的结果（Enter 发送）",
    "kb.newName": "新建知识库", "kb.namePlaceholder": "笔记", "kb.create": "创建",
    "kb.list": "知识库", "kb.pick": "选择或新建一个知识库。",
    "kb.drop": "把文件拖到这里（PDF、Markdown、HTML、Word、文本、CSV/JSONL），或", "kb.browse": "选择文件",
    "kb.documents": "文档", "kb.source": "来源", "kb.chunks": "分块", "kb.size": "大小", "kb.added": "添加时间",
    "kb.none": "还没有文档。", "kb.query": "试试检索", "kb.search": "检索", "kb.mode": "方式",
    "kb.delete": "删除", "kb.deleteKb": "删除知识库", "kb.confirmDoc": "从 {kb} 中删除 {name}？",
    "kb.confirmKb": "删除知识库 {kb} 及其全部内容？", "kb.uploading": "正在上传 {name}……",
    "kb.uploaded": "{name}：{chunks} 个分块", "kb.unchanged": "{name}：没有变化", "kb.skipped": "已跳过 {name}：{why}",
    "kb.results": "结果", "kb.noResults": "没有找到。", "kb.summary": "{docs} 篇文档 · {chunks} 个分块 · 嵌入模型 {embedder} · {store}",
    "kb.showChunks": "{name} 的分块",
    "models.pullLabel": "拉取模型", "models.pull": "拉取", "models.title": "模型", "models.name": "名称",
    "models.family": "架构", "models.params": "参数量", "models.format": "格式", "models.size": "大小",
    "models.details": "详情", "models.delete": "删除", "models.confirm": "删除模型 {name}？",
    "models.memory": "权重所需内存", "models.precision": "精度", "models.bytes": "内存",
    "models.context": "上下文长度", "models.base": "基座模型", "models.system": "系统提示词",
    "models.parameters": "生成参数", "models.template": "对话模板", "models.pulled": "{name} 已就绪",
    "models.deleted": "已删除 {name}", "models.none": "还没有模型。", "models.adapter": "{base} 的适配器",
    "train.start": "开始 LoRA 微调", "train.dataset": "数据集（.jsonl、.json、.csv、.parquet）",
    "train.orUploaded": "或选择已上传的数据集", "train.base": "基座模型", "train.out": "新模型名称",
    "train.steps": "训练步数", "train.go": "开始训练", "train.runs": "训练记录",
    "train.pick": "选择一次训练，查看损失曲线和评估报告。", "train.none": "还没有训练记录。",
    "train.needData": "请先选择数据集文件。", "train.uploaded": "{name}：{records} 条（{format}）",
    "train.started": "正在训练 {out}……", "train.cancel": "取消训练", "train.loss": "训练损失", "train.valLoss": "验证损失",
    "train.step": "步", "train.report": "评估：微调前后对比", "train.log": "日志",
    "train.progress": "第 {steps} / {total} 步", "train.chat": "和 {out} 对话", "train.noMetrics": "还没有训练步。",
    "status.starting": "启动中", "status.running": "训练中", "status.evaluating": "评估中",
    "status.finished": "已完成", "status.failed": "失败", "status.cancelled": "已取消",
    "status.interrupted": "已中断",
    "auth.title": "此服务需要 API 密钥", "auth.label": "API 密钥", "auth.wrong": "密钥不正确。",
    "auth.save": "继续", "auth.change": "API 密钥",
    "error.network": "无法连接服务器：{msg}",
    "error.down": "未发送：服务器没有响应（{msg}）。请确认 `xuetu serve` 正在运行，然后重试。",
    "error.cutOff": "回答中断了：与服务器的连接断开。请确认 `xuetu serve` 正在运行，然后重试。",
    "error.stream": "服务器中止了回答：{msg}。请重试；如果再次出现，请查看服务器日志。",
    "error.server": "服务器出错（{msg}）。请重试；如果仍然失败，请查看服务器日志。",
    "error.refused": "服务器拒绝了这条消息（{msg}）。请更换模型或调整设置，然后重试。",
    "error.models": "未发送：无法加载模型列表（{msg}）。请确认 `xuetu serve` 正在运行，然后重试。",
  },
};

function preferred() {
  const saved = localStorage.getItem("xuetu.lang");
  if (saved === "en" || saved === "zh") return saved;
  const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
  return String(langs[0]).toLowerCase().startsWith("zh") ? "zh" : "en";
}

export let lang = preferred();
const listeners = [];

export function t(key, vars = {}) {
  const text = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** Fill every element marked with data-i18n (text), data-i18n-placeholder and data-i18n-title. */
export function translate(root = document) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
}

export function setLang(next) {
  lang = next;
  localStorage.setItem("xuetu.lang", next);
  translate();
  for (const fn of listeners) fn(next);
}

export function onLangChange(fn) { listeners.push(fn); }
