"""Report folders under XUETU_HOME/evals/<name>/: report.json (everything), report.md and report.html
(the same content; the HTML is one self-contained page with its figures inlined), and the figures as PNG.
The web app lists and shows them through /v1/evals."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from xuetu.errors import NotFound
from xuetu.evaluate.doc import Doc
from xuetu.evaluate.scoring import LABELS
from xuetu.evaluate.toolscore import shown
from xuetu.home import atomic_write_json, atomic_write_text, inside, xuetu_home


def evals_root() -> Path:
    root = xuetu_home() / "evals"
    root.mkdir(parents=True, exist_ok=True)
    return root


def new_folder(*parts: str) -> Path:
    stem = re.sub(r"[^a-z0-9._-]+", "-", "-".join(parts).lower()).strip("-.")[:80] or "eval"
    name = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = evals_root() / name, 1
    while path.exists():
        n += 1
        path = evals_root() / f"{name}-{n}"
    path.mkdir(parents=True)
    return path


def folder(name: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name or "") or name == "cache":
        raise NotFound(f"no evaluation report named {name!r}")
    path = inside(evals_root(), evals_root() / name)
    if not (path / "report.json").is_file():
        raise NotFound(f"no evaluation report named {name!r}", "See `xuetu eval --list` or GET /v1/evals.")
    return path


def list_reports() -> list[dict]:
    rows = []
    for path in sorted(evals_root().glob("*/report.json"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        rows.append({"name": path.parent.name, "kind": data.get("kind"), "title": data.get("title"),
                     "created": data.get("created"), "models": data.get("models") or [data.get("model")],
                     "data": data.get("data"), "n": data.get("n")})
    return rows


def fmt(metric: str, row: dict | None) -> str:
    if not row or row.get("value") is None or row["value"] != row["value"]:
        return "–"
    digits = 1 if metric in ("bleu", "judge") else 2 if metric == "perplexity" else 3
    if "low" not in row:
        return f"{row['value']:.{digits}f}"
    return f"{row['value']:.{digits}f} [{row['low']:.{digits}f}, {row['high']:.{digits}f}]"


def finite(value):
    """The result with NaN and infinities as None, so report.json is strict JSON (browsers reject NaN)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def save(path: Path, result: dict, doc: Doc) -> Path:
    atomic_write_json(path / "report.json", finite(result))
    atomic_write_text(path / "report.md", doc.markdown() + "\n")
    atomic_write_text(path / "report.html", doc.html())
    return path


def eval_doc(path: Path, result: dict) -> Doc:
    from xuetu.evaluate import plots

    if result.get("task") in ("preference", "kto"):
        return preference_doc(path, result)
    doc = Doc(f"Evaluation: {result['model']} on {Path(result['data']).name}")
    spec = result["spec"]
    setup = [f"{result.get('n', 0)} examples", f"greedy answers up to {spec['max_tokens']} tokens"]
    if spec.get("prompt"):
        setup.append(f"prompt template {spec['prompt']}")
    if spec.get("kb"):
        setup.append(f"RAG over knowledge base {spec['kb']} (k={spec['k']})")
    if result.get("cached"):
        setup.append("answers from the cache")
    doc.p("; ".join(setup) + ". Intervals are 95% bootstrap confidence intervals.")
    metrics = result["metrics"]
    doc.h("Scores").table(["metric", "value [95% CI]"], [[LABELS.get(k, k), fmt(k, v)] for k, v in metrics.items()], {1})
    bars = {k: v for k, v in metrics.items() if "low" in v and k not in plots.UNBOUNDED}
    if bars:
        doc.figure(plots.metric_bars(path / "scores.png", {result["model"]: bars}, LABELS), "scores with 95% intervals")
    report = metrics.get("classification", {}).get("report")
    if report:
        doc.h("Classification")
        doc.table(["label", "precision", "recall", "F1", "support"],
                  [[lab, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", r["support"]]
                   for lab, r in report["labels"].items()]
                  + [["macro", *(f"{report['macro'][k]:.3f}" for k in ("precision", "recall", "f1")), ""]], {1, 2, 3, 4})
        doc.figure(plots.confusion(path / "confusion.png", report["confusion"]["labels"], report["confusion"]["matrix"]),
                   "confusion matrix (rows: true label)")
    if "choice" in metrics and metrics["choice"].get("per_subject"):
        doc.h("Multiple choice by subject").table(
            ["subject", "accuracy", "questions"],
            [[s, f"{r['accuracy']:.3f}", r["n"]] for s, r in metrics["choice"]["per_subject"].items()], {1, 2})
    lat = result.get("latency")
    if lat:
        doc.h("Speed").table(["s/answer mean", "p50", "p95", "tokens/s per answer", "tokens/s overall", "in flight"],
                             [[f"{lat['mean']:.2f}", f"{lat['p50']:.2f}", f"{lat['p95']:.2f}",
                               f"{lat['tokens_per_second']:.1f}", f"{lat.get('throughput_tokens_per_second', 0):.1f}",
                               lat.get("concurrency", 1)]], {0, 1, 2, 3, 4, 5})
    examples = result.get("examples") or []
    if examples:
        doc.h("Answers")
        names = list(examples[0]["scores"])
        doc.table(["#", "question", "reference", "answer", *[LABELS.get(k, k) for k in names]],
                  [[e["id"], e["question"], shown(e["reference"], e.get("calls")),
                    e.get("error") and f"ERROR: {e['error']}" or shown(e["answer"], e.get("answer_calls")),
                    *[("–" if e["scores"][k] is None else f"{e['scores'][k]:.2f}") for k in names]]
                   for e in examples], set(range(4, 4 + len(names))))
    return doc


def preference_doc(path: Path, result: dict) -> Doc:
    """Preference pairs (or KTO-labelled answers) scored by log-likelihood: scores, margins, every example."""
    from xuetu.evaluate import plots

    pairs = result["task"] == "preference"
    doc = Doc(f"Preference evaluation: {result['model']} on {Path(result['data']).name}")
    doc.p(f"{result.get('n', 0)} {'pairs' if pairs else 'labelled answers'}; each answer scored by its mean "
          "log-likelihood per token (nats) given the prompt, rendered with the model's chat template as training "
          "renders it. " + ("Preference accuracy is the share of pairs where the chosen answer is the likelier; "
                            "the margin is chosen minus rejected. " if pairs else "")
          + "Intervals are 95% bootstrap confidence intervals.")
    doc.h("Scores").table(["metric", "value [95% CI]"],
                          [[LABELS.get(k, k), fmt(k, v)] for k, v in result["metrics"].items()], {1})
    examples = result.get("examples") or []
    if not pairs:
        doc.h("Answers").table(["#", "prompt", "answer", "label", "log-likelihood/token"],
                               [[e["id"], e["question"], e["answer"], "desirable" if e["label"] else "undesirable",
                                 f"{e['scores']['loglik']:.3f}"] for e in examples], {4})
        return doc
    doc.figure(plots.margins(path / "margins.png", {result["model"]: [e["scores"]["pref_margin"] for e in examples]}),
               "distribution of the margins")
    doc.h("Pairs").table(["#", "prompt", "chosen", "rejected", "chosen ll", "rejected ll", "margin"],
                         [[e["id"], e["question"], e["chosen"], e["rejected"], f"{e['chosen_loglik']:.3f}",
                           f"{e['rejected_loglik']:.3f}", f"{e['scores']['pref_margin']:+.3f}"] for e in examples],
                         {4, 5, 6})
    return doc


def write_eval(result: dict, path: Path | None = None) -> Path:
    path = path or new_folder(result["model"], Path(result["data"]).stem)
    path.mkdir(parents=True, exist_ok=True)
    result = {**result, "title": f"{result['model']} on {Path(result['data']).name}"}
    return save(path, result, eval_doc(path, result))
