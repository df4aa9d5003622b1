"""`xuetu decide`: prompt, retrieve or fine-tune? Measured on the user's own questions, not argued.

The questions are split (seeded) into a training part and held-out test questions. On the same test
questions it then runs (a) the base model with a good prompt, (b) the base model with RAG over the
documents, (c) a LoRA fine-tuned on the training part within the time budget, and (d) that LoRA with RAG,
and reports quality with 95% intervals, seconds per answer, training time and memory for each, and a
recommendation read off the numbers: the cheapest setup that no other is significantly better than.

Everything it builds is reused when nothing changed: the knowledge base is named after the documents'
contents, the LoRA after the base model, training data and settings, and answers come from the cache.
"""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path

from xuetu.notify import say
from xuetu.errors import XuetuError
from xuetu.evaluate import report
from xuetu.evaluate.compare import _one_engine, compare, comparison_doc
from xuetu.evaluate.examples import file_digest, load_examples
from xuetu.evaluate.generate import Models
from xuetu.evaluate.run import EvalSpec, cache_get, cache_key, cache_put
from xuetu.evaluate.scoring import LABELS
from xuetu.evaluate.stats import paired_bootstrap

ROWS = {"prompt": "(a) prompt", "rag": "(b) RAG", "lora": "(c) LoRA", "lora+rag": "(d) LoRA + RAG",
        "api": "(e) API model", "api+rag": "(f) API model + RAG"}
COST = ["prompt", "rag", "lora", "lora+rag", "api", "api+rag"]
"""Cheapest first: what a tie is broken towards. An API model comes last: every answer costs money and sends
the question (and, with RAG, the documents) to the provider."""


def _keys(result: dict) -> list[str]:
    return [k for k in COST if k in result["rows"]]


class PeakMemory:
    """Peak resident memory of this process (and peak CUDA memory) while the block runs."""

    def __init__(self, every: float = 0.1):
        self.every, self.peak, self.cuda_peak = every, 0, None
        self._stop = threading.Event()

    def __enter__(self):
        import psutil

        proc = psutil.Process()
        self.peak = proc.memory_info().rss

        def watch():
            while not self._stop.wait(self.every):
                self.peak = max(self.peak, proc.memory_info().rss)

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc):
        import psutil
        import torch

        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, psutil.Process().memory_info().rss)
        if torch.cuda.is_available():
            self.cuda_peak = torch.cuda.max_memory_allocated()


def split(path: str, folder: Path, test_fraction: float, seed: int) -> tuple[Path, Path, int, int]:
    """train.jsonl and test.jsonl in `folder`, a seeded shuffle of the examples."""
    examples = load_examples(path)
    if len(examples) < 4:
        raise XuetuError(f"{path} has {len(examples)} examples; deciding needs at least 4 (some to train on, "
                         "some to test)", "Collect more question/answer pairs: 50 or more give useful intervals.")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_test = min(len(examples) - 2, max(2, round(len(examples) * test_fraction)))
    parts = {"test": sorted(order[:n_test]), "train": sorted(order[n_test:])}
    paths = {}
    for name, idx in parts.items():
        paths[name] = folder / f"{name}.jsonl"
        with open(paths[name], "w", encoding="utf-8") as f:
            for i in idx:
                ex = examples[i]
                row = {"messages": ([{"role": "system", "content": ex.system}] if ex.system else []) + ex.messages
                       + [{"role": "assistant", "content": ex.reference}],
                       **({"keywords": ex.keywords} if ex.keywords else {}), **({"label": ex.label} if ex.label else {})}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return paths["train"], paths["test"], len(parts["train"]), n_test


def knowledge_base(docs: str, progress: bool) -> tuple[str, float]:
    """A knowledge base over `docs`, named after their contents (reused when unchanged); (name, build seconds)."""
    from xuetu.rag import ingest
    from xuetu.rag import kb as kbs

    if not Path(docs).exists():
        raise XuetuError(f"the documents {docs} do not exist", "Pass --docs DIR, a folder of .md/.txt/.pdf/.docx files.")
    name = f"decide-{file_digest(docs)[:12]}"
    if name in kbs.list_names():
        return name, 0.0
    start = time.perf_counter()
    base = kbs.create(name)
    try:
        added = ingest.add(base, [docs], progress=progress)
    finally:
        base.close()
    if not (added.added or added.updated):
        kbs.remove(name)
        raise XuetuError(f"nothing in {docs} could be read into a knowledge base",
                         "Give it Markdown, text, PDF, Word or HTML files.")
    return name, time.perf_counter() - start


def train_lora(model: str, train: Path, budget_minutes: float, overrides: list[str], progress: bool) -> dict:
    """The LoRA for rows (c) and (d): trained once per (base, data, settings), then reused from the store."""
    from xuetu import models
    from xuetu.train import args as targs
    from xuetu.train.finetune import finetune

    base = models.resolve(model, pull_missing=True, progress=progress)
    settings = dict(model=base.name, data=str(train), method="lora", max_minutes=budget_minutes, evaluate=False,
                    val_fraction=0.0)
    key = cache_key("decide-lora", base.manifest, file_digest(train), budget_minutes, sorted(overrides))
    out = f"{base.name.split(':')[0].split('/')[-1]}-decide:{key[:10]}"
    known = cache_get(key)
    if known and any(r.name == out for r in models.list_models()):
        return {**known, "reused": True}
    args = targs.load(targs.TrainArgs, overrides=overrides, **settings, out=out)
    start = time.perf_counter()
    with PeakMemory() as mem:
        result = finetune(args, progress=progress)
    info = {"model": result.model, "train_seconds": time.perf_counter() - start, "steps": result.steps,
            "train_loss": result.train_loss, "peak_rss_bytes": mem.peak, "cuda_peak_bytes": mem.cuda_peak,
            "stopped_early": result.stopped_early}
    cache_put(key, info)
    return {**info, "reused": False}


def recommend(result: dict, metric: str) -> tuple[str, list[str]]:
    """The cheapest setup no other beats significantly, and the sentences that justify it."""
    rows, name, keys = result["rows"], LABELS.get(metric, metric), _keys(result)
    by_id = {e_key: [e["scores"][e_key] for e in result["examples"]] for e_key in keys}
    best = max(keys, key=lambda k: rows[k]["metrics"][metric]["value"])
    choice = best
    versus = {}
    for k in keys:
        versus[k] = paired_bootstrap(by_id[k], by_id[best])  # how much better `best` is than k
    for k in keys:  # cheapest first
        if k == best or not versus[k].significant:
            choice = k
            break
    value = lambda k: rows[k]["metrics"][metric]["value"]  # noqa: E731
    why = [f"Best {name}: {ROWS[best]} at {value(best):.3f}."]
    if choice != best:
        d = versus[choice].delta
        why.append(f"{ROWS[choice]} is cheaper and not significantly worse ({value(choice):.3f}; {ROWS[best]}'s "
                   f"lead of {d.mean:+.3f} has a 95% interval [{d.low:+.3f}, {d.high:+.3f}] that includes 0).")
    for k in keys:
        if k not in (choice, best) and versus[k].significant:
            d = versus[k].delta
            why.append(f"{ROWS[k]} is significantly worse: {d.mean:.3f} lower [{d.low:.3f}, {d.high:.3f}].")
    for k in keys[keys.index(choice) + 1:]:
        if k != best and not versus[k].significant:
            why.append(f"{ROWS[k]} is within noise of {ROWS[best]} ({value(k):.3f}) but costs more.")
    lat = {k: rows[k].get("latency", {}).get("p50", 0.0) for k in keys}
    why.append("Seconds per answer: " + ", ".join(f"{ROWS[k]} {lat[k]:.2f}" for k in keys) + ".")
    if result["n"] < 30:
        why.append(f"Only {result['n']} held-out questions: intervals this wide hide real differences; "
                   "more data gives a sharper answer.")
    return choice, why


def decide(model: str, data: str, docs: str, budget_minutes: float = 10.0, metrics: list[str] | None = None,
           prompt: str = "clear", test_fraction: float = 0.25, seed: int = 42, max_tokens: int = 128, k: int = 3,
           batch: int = 8, train_overrides: list[str] | None = None, progress: bool = True,
           folder: Path | None = None, api: str | None = None) -> tuple[dict, Path]:
    """`api`, a remote model, adds rows (e) and (f): is the fine-tuned small model good enough to replace it?"""
    if not 0 < budget_minutes <= 24 * 60:
        raise XuetuError(f"the budget must be between 0 and 1440 minutes, got {budget_minutes}")
    if not 0 < test_fraction < 1:
        raise XuetuError(f"the test fraction must be between 0 and 1, got {test_fraction}")
    folder = folder or report.new_folder("decide", model, Path(data).stem)
    train, test, n_train, n_test = split(data, folder, test_fraction, seed)
    if progress:
        say(f"{n_train} questions to train on, {n_test} held out for testing")
    kb_name, kb_seconds = knowledge_base(docs, progress)
    lora = train_lora(model, train, budget_minutes, list(train_overrides or []), progress)
    common = dict(data=str(test), metrics=metrics, max_tokens=max_tokens, batch=batch)
    rows = [("prompt", EvalSpec(model=model, prompt=prompt, **common)),
            ("rag", EvalSpec(model=model, prompt=prompt, kb=kb_name, k=k, **common)),
            ("lora", EvalSpec(model=lora["model"], **common)),
            ("lora+rag", EvalSpec(model=lora["model"], kb=kb_name, k=k, **common))]
    if api:
        rows += [("api", EvalSpec(model=api, prompt=prompt, **common)),
                 ("api+rag", EvalSpec(model=api, prompt=prompt, kb=kb_name, k=k, **common))]
    with Models(_one_engine(rows), batch=batch) as pool:
        result = compare(rows, models=pool, progress=progress, title=f"prompt, RAG or LoRA for {model}")
    result.update(kind="decide", data=str(data), docs=str(docs), n_train=n_train, budget_minutes=budget_minutes,
                  prompt=prompt, kb=kb_name, kb_seconds=kb_seconds, lora=lora, api=api,
                  models=[key for key, _ in rows])
    result["resources"] = {
        key: {"train_seconds": lora["train_seconds"] if "lora" in key else 0.0,
              "train_peak_rss_bytes": lora["peak_rss_bytes"] if "lora" in key else None,
              "model_bytes": (result["rows"][key].get("engine") or {}).get("weights_bytes", 0)
              + ((result["rows"][key].get("engine") or {}).get("adapter_bytes", 0)),
              "index_seconds": kb_seconds if "rag" in key else 0.0} for key, _ in rows}
    choice, why = recommend(result, result["primary"])
    result["recommendation"] = {"choice": choice, "label": ROWS[choice], "why": why}
    doc = decide_doc(folder, result)
    report.save(folder, result, doc)
    return result, folder


def table_rows(result: dict) -> list[list[str]]:
    metric = result["primary"]
    from xuetu.evaluate.compare import cost_cell, is_remote

    out = []
    for key in _keys(result):
        row, res = result["rows"][key], result["resources"][key]
        mem = res["train_peak_rss_bytes"]
        out.append([ROWS[key], report.fmt(metric, row["metrics"][metric]), f"{row['latency'].get('p50', 0):.2f}",
                    f"{res['train_seconds'] / 60:.1f} min" if res["train_seconds"] else "–",
                    f"{mem / 2**20:.0f} MB" if mem else "–",
                    "at the provider" if is_remote(row) else f"{res['model_bytes'] / 2**20:.0f} MB", cost_cell(row)])
    return out


HEADERS = ["setup", "{metric} [95% CI]", "s/answer", "training", "training memory (peak RSS)", "model memory",
           "cost per 1,000 answers"]


def decide_doc(folder: Path, result: dict):
    metric = LABELS.get(result["primary"], result["primary"])
    doc = comparison_doc(folder, {**result, "models": [ROWS[k] for k in _keys(result)],
                                  "rows": {ROWS[k]: v for k, v in result["rows"].items()},
                                  "pairs": {ROWS[k]: v for k, v in result["pairs"].items()},
                                  "examples": [{**e, "answers": {ROWS[k]: v for k, v in e["answers"].items()},
                                                "scores": {ROWS[k]: v for k, v in e["scores"].items()},
                                                "sources": {ROWS[k]: v for k, v in e.get("sources", {}).items()}}
                                               for e in result["examples"]]},
                         heading=f"Prompt, RAG or fine-tune? {result['title']}")
    rec = result["recommendation"]
    head = [("h", 2, "Decision"), ("table", [h.format(metric=metric) for h in HEADERS], table_rows(result), {1, 2}),
            ("p", f"Recommendation: {rec['label']}. " + " ".join(rec["why"]), True),
            ("p", f"{result['n_train']} questions trained on, {result['n']} held out; LoRA trained within "
                  f"{result['budget_minutes']:g} minutes ({result['lora']['steps']} steps"
                  + (", reused" if result["lora"].get("reused") else "") + f"); prompt template {result['prompt']}; "
                  f"knowledge base {result['kb']} over {result['docs']}"
                  + (f"; API model {result['api']}." if result.get("api") else "."), False)]
    doc.blocks = head + doc.blocks
    return doc
