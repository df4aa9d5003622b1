"""Side by side: several models, adapters, prompts or setups on the same examples.

Every row is an ordinary evaluation (so cached rows return at once). Each later row is paired with the
first on the same examples: the difference of the primary metric with a paired-bootstrap interval, the
share of resamples in which it is better, and wins / ties / losses per example, with the examples where
it gains (and loses) most, so "B is better" comes with the questions that show it. On preference pairs the
primary metric is the margin (chosen minus rejected log-likelihood) by default, and the accuracy is shown too.
"""

from __future__ import annotations

import time
from pathlib import Path

from xuetu.errors import XuetuError
from xuetu.evaluate import report
from xuetu.evaluate.doc import Doc
from xuetu.evaluate.generate import Models
from xuetu.evaluate.preference import SCORE_KEY
from xuetu.evaluate.run import EvalSpec, evaluate
from xuetu.evaluate.scoring import LABELS
from xuetu.evaluate.stats import paired_bootstrap
from xuetu.evaluate.toolscore import shown

PAIRABLE = ("pref_margin", "pref_accuracy", "classification", "rougeL", "token_f1", "rouge1", "rouge2", "keyword_hit", "exact_match", "bleu", "judge",
            "tool_name", "tool_args", "tool_schema")
SHOWN = 4  # examples listed per direction


def pick_primary(metrics: list[str], primary: str | None) -> str:
    if primary:
        if primary not in metrics or primary not in PAIRABLE:
            raise XuetuError(f"--primary {primary} is not one of the scored per-answer metrics",
                             f"Choose from: {', '.join(m for m in metrics if m in PAIRABLE)}.")
        return primary
    found = next((m for m in PAIRABLE if m in metrics), None)
    if found is None:
        raise XuetuError("nothing to compare per answer", "Compare with a generation metric such as rougeL.")
    return found


def pair(first: dict, other: dict, metric: str) -> dict:
    key = SCORE_KEY.get(metric, metric)
    a = [e["scores"][key] for e in first["examples"]]
    b = [e["scores"][key] for e in other["examples"]]
    keep = [i for i in range(len(a)) if a[i] is not None and b[i] is not None]
    a, b = [a[i] for i in keep], [b[i] for i in keep]
    diff = paired_bootstrap(a, b)
    deltas = sorted(((b[j] - a[j], keep[j]) for j in range(len(keep))), reverse=True)
    return {"metric": metric, "delta": diff.delta.mean, "low": diff.delta.low, "high": diff.delta.high,
            "p_better": diff.p_better, "significant": diff.significant,
            "wins": sum(d > 1e-9 for d, _ in deltas), "losses": sum(d < -1e-9 for d, _ in deltas),
            "ties": sum(abs(d) <= 1e-9 for d, _ in deltas),
            "gains": [i for d, i in deltas[:SHOWN] if d > 1e-9], "drops": [i for d, i in deltas[::-1][:SHOWN] if d < -1e-9]}


def judge_pairs(first: dict, other: dict, judge_spec: dict, progress: bool) -> dict:
    """LLM-as-judge verdicts of `other` against `first` per question, each asked in both orders (cached)."""
    from tqdm import tqdm

    from xuetu.evaluate import judge
    from xuetu.evaluate.run import cache_get, cache_key, cache_put

    name, url, key_, rubric = judge_spec["judge"], judge_spec.get("judge_url"), judge_spec.get("judge_key"), \
        judge_spec.get("rubric") or judge.RUBRIC
    items = [(e["question"], shown(e["answer"], e.get("answer_calls")), shown(o["answer"], o.get("answer_calls")),
              shown(e["reference"], e.get("calls"))) for e, o in zip(first["examples"], other["examples"])]
    key = cache_key("pairwise", name, url, rubric, items)
    cached = cache_get(key)
    if cached is None:
        ask = judge.api_judge(name, url, key_ or "unused") if url else judge.engine_judge(name)
        verdicts = [judge.pairwise(ask, q, a, b, ref, rubric)
                    for q, a, b, ref in tqdm(items, desc=f"judging with {name}", disable=not progress)]
        cached = {"verdicts": [{"winner": v.winner, "consistent": v.consistent} for v in verdicts]}
        cache_put(key, cached)
    verdicts = cached["verdicts"]
    return {"judge": name, "a": sum(v["winner"] == "a" for v in verdicts), "b": sum(v["winner"] == "b" for v in verdicts),
            "tie": sum(v["winner"] == "tie" for v in verdicts),
            "inconsistent": sum(not v["consistent"] for v in verdicts), "verdicts": [v["winner"] for v in verdicts]}


def compare(rows: list[tuple[str, EvalSpec]], primary: str | None = None, models: Models | None = None,
            progress: bool = True, title: str | None = None, judge: dict | None = None) -> dict:
    """`judge` ({"judge": model, "judge_url", "judge_key", "rubric"}) adds pairwise verdicts against the first row."""
    if len(rows) < 2:
        raise XuetuError("a comparison needs at least two models or prompts", "Give e.g. --models A,B.")
    labels = [label for label, _ in rows]
    if len(set(labels)) != len(labels):
        raise XuetuError(f"the rows need distinct names, got {', '.join(labels)}")
    own = models is None
    models = models or Models(_one_engine(rows), rows[0][1].batch)
    try:
        results = {label: evaluate(spec, models, progress) for label, spec in rows}
    finally:
        if own:
            models.close()
    first = results[labels[0]]
    if not first.get("examples"):
        raise XuetuError("a comparison needs question/answer data", "Use xuetu eval for perplexity or choice files.")
    if first.get("task") == "kto":
        raise XuetuError("compare pairs models on chosen/rejected pairs, and KTO-labelled answers have none",
                         "Run xuetu eval on each model for its desirable/undesirable log-likelihoods, or compare on "
                         "a file of pairs.")
    metric = pick_primary(list(first["metrics"]), primary)
    out = {"kind": "compare", "title": title or f"{' vs '.join(labels)} on {Path(rows[0][1].data).name}",
           "models": labels, "data": rows[0][1].data, "n": first["n"], "primary": metric,
           "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "rows": {k: {x: v for x, v in r.items() if x != "examples"} for k, r in results.items()},
           "pairs": {k: pair(first, results[k], metric) for k in labels[1:]}}
    if judge and judge.get("judge"):
        for k in labels[1:]:
            out["pairs"][k]["pairwise"] = judge_pairs(first, results[k], judge, progress)
    if first.get("task") == "preference":
        out.update(task="preference", examples=_pref_examples(results, labels, metric))
        return out
    out["examples"] = [{"id": e["id"], "question": e["question"], "reference": shown(e["reference"], e.get("calls")),
                        "answers": {k: shown(results[k]["examples"][i]["answer"],
                                             results[k]["examples"][i].get("answer_calls")) for k in labels},
                        "scores": {k: results[k]["examples"][i]["scores"].get(metric) for k in labels},
                        "sources": {k: results[k]["examples"][i]["sources"] for k in labels
                                    if "sources" in results[k]["examples"][i]}}
                       for i, e in enumerate(first["examples"])]
    return out


def _pref_examples(results: dict, labels: list[str], metric: str) -> list[dict]:
    """Each pair with every model's margin and its score by the primary metric."""
    key = SCORE_KEY.get(metric, metric)
    rows = {k: results[k]["examples"] for k in labels}
    return [{"id": e["id"], "question": e["question"], "chosen": e["chosen"], "rejected": e["rejected"],
             "margins": {k: rows[k][i]["scores"]["pref_margin"] for k in labels},
             "scores": {k: rows[k][i]["scores"][key] for k in labels}}
            for i, e in enumerate(rows[labels[0]])]


def _one_engine(rows: list[tuple[str, EvalSpec]]) -> str:
    """The engine every row runs on: differences must come from the models, not from two engines' numerics.
    When "auto" would split them (a GGUF base on llama.cpp, its LoRA on transformers), all go to transformers."""
    from xuetu import engines, models

    asked = {spec.engine for _, spec in rows}
    if len(asked) > 1:
        raise XuetuError(f"the rows ask for different engines ({', '.join(sorted(asked))})", "Compare on one engine.")
    engine = asked.pop()
    local = [ref for ref in (models.resolve(spec.model) for _, spec in rows) if ref.remote is None]
    if engine == "auto" and len({engines.choose(ref) for ref in local}) > 1:
        return "transformers"
    return engine


COST_HEADER = "cost per 1,000 answers"


def is_remote(row: dict) -> bool:
    return (row.get("engine") or {}).get("device") == "remote"


def cost_cell(row: dict) -> str:
    """A row's API cost per 1,000 answers at the price the user set; what runs here costs no tokens."""
    if not is_remote(row):
        return "local"
    cost = row.get("cost")
    if cost is None:
        return "no price set"
    return f"{cost['per_answer'] * 1000:.4g} {cost['currency']}"


def comparison_doc(path: Path, result: dict, heading: str | None = None) -> Doc:
    from xuetu.evaluate import plots

    labels, metric = result["models"], result["primary"]
    doc = Doc(heading or f"Comparison: {result['title']}")
    doc.p(f"{result['n']} examples from {Path(result['data']).name}; 95% bootstrap intervals; each row is paired "
          f"with {labels[0]} on the same questions by {LABELS.get(metric, metric)}.")
    names = [k for k in result["rows"][labels[0]]["metrics"] if k != "perplexity"]
    timed = result.get("task") != "preference"
    priced = timed and any(is_remote(result["rows"][k]) for k in labels)
    doc.h("Scores").table(["", *[LABELS.get(k, k) for k in names], *(["s/answer (p50)"] if timed else []),
                           *([COST_HEADER] if priced else [])],
                          [[label, *[report.fmt(k, result["rows"][label]["metrics"].get(k)) for k in names],
                            *([f"{result['rows'][label].get('latency', {}).get('p50', 0):.2f}"] if timed else []),
                            *([cost_cell(result["rows"][label])] if priced else [])]
                           for label in labels], set(range(1, len(names) + 2)))
    doc.figure(plots.metric_bars(path / "scores.png", {k: result["rows"][k]["metrics"] for k in labels}, LABELS),
               "scores with 95% intervals")
    if not timed:
        doc.figure(plots.margins(path / "margins.png", {k: [e["margins"][k] for e in result["examples"]]
                                                         for k in labels}), "distribution of the margins")
    doc.h(f"Paired against {labels[0]}")
    doc.table(["", f"Δ {LABELS.get(metric, metric)} [95% CI]", "P(better)", "wins / ties / losses", "verdict"],
              [[k, f"{p['delta']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}]", f"{p['p_better']:.2f}",
                f"{p['wins']} / {p['ties']} / {p['losses']}", verdict(k, labels[0], p)]
               for k, p in result["pairs"].items()], {1, 2})
    judged = {k: p["pairwise"] for k, p in result["pairs"].items() if "pairwise" in p}
    if judged:
        doc.h("LLM as judge, pairwise")
        doc.p("Each question judged twice with the answers' order swapped; a verdict that flips with the order "
              "counts as a tie (position bias cancelled).")
        doc.table(["", f"{labels[0]} wins", "wins", "ties", "order-dependent verdicts", "judge"],
                  [[k, j["a"], j["b"], j["tie"], j["inconsistent"], j["judge"]] for k, j in judged.items()], {1, 2, 3, 4})
    _where(doc, result)
    return doc


def _where(doc: Doc, result: dict) -> None:
    """The examples where each row gains (and loses) most against the first."""
    ordered, first = result["examples"], result["models"][0]
    for k, p in result["pairs"].items():
        for title, ids in ((f"Where {k} wins", p["gains"]), (f"Where {k} loses", p["drops"])):
            if not ids:
                continue
            doc.h(title, 3)
            if result.get("task") == "preference":
                doc.table(["prompt", "chosen", "rejected", f"{first} margin", f"{k} margin"],
                          [[ex["question"], ex["chosen"], ex["rejected"], f"{ex['margins'][first]:+.3f}",
                            f"{ex['margins'][k]:+.3f}"] for ex in (ordered[i] for i in ids)], {3, 4})
                continue
            doc.table(["question", "reference", first, k],
                      [[ex["question"], ex["reference"], f"{ex['answers'][first]} ({ex['scores'][first]:.2f})",
                        f"{ex['answers'][k]} ({ex['scores'][k]:.2f})"] for ex in (ordered[i] for i in ids)])


def verdict(b: str, a: str, p: dict) -> str:
    if not p["significant"]:
        return "no significant difference"
    return f"{b} better" if p["delta"] > 0 else f"{a} better"


def write_comparison(result: dict, path: Path | None = None) -> Path:
    path = path or report.new_folder("compare", *result["models"][:3])
    path.mkdir(parents=True, exist_ok=True)
    return report.save(path, result, comparison_doc(path, result))
