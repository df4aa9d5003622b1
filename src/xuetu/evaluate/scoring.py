"""Scores per example and for the whole set, each with a bootstrap confidence interval.

Per-example scores are what comparisons pair up ("where B wins") and what intervals resample. The set's
figure is the mean of them, except BLEU: sacrebleu's corpus BLEU, whose interval resamples the corpus
(sentence BLEU is kept per example for pairing). Scales: BLEU 0-100, everything else 0-1, judge 1-10.
"""

from __future__ import annotations

import re

import numpy as np

from xuetu.errors import XuetuError
from xuetu import metrics as m
from xuetu.evaluate.examples import Example
from xuetu.evaluate.stats import bootstrap_ci
from xuetu.evaluate.toolscore import TOOL_METRICS

GENERATION = ("rougeL", "rouge1", "rouge2", "bleu", "token_f1", "exact_match", "keyword_hit")
SPECIAL = ("classification", "perplexity", "choice", "judge", "preference")
TOOLS = TOOL_METRICS  # scored in evaluate/toolscore.py
KNOWN = GENERATION + SPECIAL + TOOLS
LABELS = {"rougeL": "ROUGE-L", "rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "bleu": "BLEU", "token_f1": "token F1",
          "exact_match": "exact match", "keyword_hit": "keyword hit rate", "classification": "accuracy",
          "judge": "judge score (1-10)", "perplexity": "perplexity", "choice": "multiple-choice accuracy",
          "tool_name": "tool-name accuracy", "tool_args": "argument exact match", "tool_schema": "schema validity",
          "pref_accuracy": "preference accuracy", "pref_margin": "preference margin",
          "pref_correct": "chosen preferred", "desirable_loglik": "log-likelihood, desirable",
          "undesirable_loglik": "log-likelihood, undesirable", "kto_gap": "desirable - undesirable",
          "loglik": "log-likelihood/token"}
OTHER = "(other)"


def check_metrics(names: list[str]) -> list[str]:
    aliases = {"rouge-l": "rougeL", "rougel": "rougeL", "rouge_l": "rougeL", "rouge-1": "rouge1", "rouge-2": "rouge2",
               "f1": "token_f1", "em": "exact_match", "keywords": "keyword_hit", "accuracy": "classification",
               "ppl": "perplexity", "mc": "choice", "pref": "preference", "rouge": "rougeL", "tools": "tool_name"}
    out = []
    for raw in names:
        name = aliases.get(raw.strip().lower(), raw.strip())
        if name not in KNOWN:
            from xuetu.models.names import closest

            near = closest(raw, list(KNOWN))
            raise XuetuError(f"unknown metric {raw!r}", (f"Did you mean {' or '.join(near)}? " if near else "")
                             + f"Known: {', '.join(KNOWN)}.")
        if name not in out:
            out.append(name)
    return out


def default_metrics(examples: list[Example]) -> list[str]:
    if any(e.tools for e in examples):  # a tool-calling test file
        return list(TOOLS)
    chosen = ["rougeL", "bleu", "token_f1", "exact_match"]
    if any(e.keywords for e in examples):
        chosen.append("keyword_hit")
    if any(e.label for e in examples):
        chosen.insert(0, "classification")
    return chosen


def _norm(text: str) -> str:
    return re.sub(r"[\s\W_]+", " ", text.lower()).strip()


def to_label(answer: str, labels: list[str]) -> str:
    """The label an answer gives: an exact match, else the label named earliest in it, else "(other)"."""
    norm = _norm(answer)
    for label in labels:
        if norm == _norm(label):
            return label
    found = [(norm.find(_norm(lab)), -len(lab), lab) for lab in labels if _norm(lab) and _norm(lab) in norm]
    return min(found)[2] if found else OTHER


def per_example(metric: str, answers: list[str], examples: list[Example], chinese: str = "char") -> list[float]:
    refs = [e.reference for e in examples]
    if metric in ("rougeL", "rouge1", "rouge2"):
        return [m.rouge([a], [r], chinese, (metric,))[metric] for a, r in zip(answers, refs)]
    if metric == "bleu":
        import sacrebleu

        zh = sum(m.is_chinese(r) for r in refs) > len(refs) / 2
        return [float(sacrebleu.sentence_bleu(a, [r], tokenize="zh" if zh else "13a").score) for a, r in zip(answers, refs)]
    if metric == "token_f1":
        return [m.token_f1([a], [r], chinese) for a, r in zip(answers, refs)]
    if metric == "exact_match":
        return [m.exact_match([a], [r]) for a, r in zip(answers, refs)]
    if metric == "keyword_hit":
        if not any(e.keywords for e in examples):
            raise XuetuError("keyword_hit needs a `keywords` field on the examples",
                             'Add e.g. "keywords": ["LoRA", "低秩"] to each line, or leave the metric out.')
        return [m.keyword_hit_rate([a], [e.keywords or [e.reference]]) for a, e in zip(answers, examples)]
    if metric == "classification":
        labels = label_set(examples)
        return [float(to_label(a, labels) == gold) for a, gold in zip(answers, gold_labels(examples))]
    raise XuetuError(f"{metric} is not scored per answer")


def gold_labels(examples: list[Example]) -> list[str]:
    return [e.label if e.label is not None else e.reference.strip() for e in examples]


def label_set(examples: list[Example]) -> list[str]:
    return sorted(set(gold_labels(examples)))


def summarise(metric: str, scores: list[float], answers: list[str], examples: list[Example],
              n_boot: int = 1000) -> dict:
    """{value, low, high} for the set; classification adds the per-label table and confusion matrix."""
    if metric == "bleu":
        return _bleu_interval(answers, [e.reference for e in examples], n_boot)
    ci = bootstrap_ci(scores, n=n_boot)
    out = {"value": ci.mean, "low": ci.low, "high": ci.high}
    if metric == "classification":
        labels = label_set(examples)
        out["report"] = m.classification([to_label(a, labels) for a in answers], gold_labels(examples))
    return out


def _bleu_interval(answers: list[str], refs: list[str], n_boot: int) -> dict:
    """Corpus BLEU and its bootstrap interval, resampling sentences' n-gram counts (as sacrebleu's own paired
    bootstrap does) instead of re-tokenising the corpus for every resample."""
    from sacrebleu.metrics import BLEU

    zh = sum(m.is_chinese(r) for r in refs) > len(refs) / 2
    bleu = BLEU(tokenize="zh" if zh else "13a")
    stats = np.array(bleu._extract_corpus_statistics(answers, [refs]), dtype=np.int64)  # (n, 2 + 2 * 4)
    score = lambda rows: bleu._compute_score_from_stats(rows.sum(axis=0).tolist()).score  # noqa: E731
    rng = np.random.default_rng(0)
    samples = [score(stats[idx]) for idx in rng.integers(0, len(answers), size=(n_boot, len(answers)))]
    return {"value": float(score(stats)), "low": float(np.percentile(samples, 2.5)),
            "high": float(np.percentile(samples, 97.5))}
