"""Preference accuracy: does the model find the chosen answer likelier than the rejected one?

Each conversation is rendered with the model's chat template and tokenized exactly as training tokenizes it
(`data.template.tokenize_for_training`); the tokens of its last assistant turn (end-of-turn included) are
scored given everything before them, through perplexity's `score_windows` (sliding windows when a conversation
is longer than the model holds). An answer's figure is its mean per-token log-likelihood in nats, so a long
answer is not penalised for its length.

Per pair: `pref_correct`, 1 when the chosen answer's figure beats the rejected one's (a tie is 0), and
`pref_margin`, chosen minus rejected. For the set: preference accuracy (the share of pairs ordered right) and
the mean margin, each with a bootstrap interval. A DPO- or ORPO-tuned model should raise both over its base.

KTO's labelled examples have no pairs: each answer's mean log-likelihood is reported, desirable and undesirable
apart, and the gap between the two means.
"""

from __future__ import annotations

from dataclasses import dataclass

from xuetu.data.record import Record
from xuetu.errors import XuetuError
from xuetu.evaluate.stats import bootstrap_ci

PAIR_METRICS = ("pref_accuracy", "pref_margin")
KTO_METRICS = ("desirable_loglik", "undesirable_loglik", "kto_gap")
SCORE_KEY = {"pref_accuracy": "pref_correct"}
"""The per-example score a set metric averages, where its name differs."""


@dataclass
class Scored:
    loglik: list[float]
    """Mean per-token log-likelihood of each record's last answer (the chosen one for a pair)."""
    rejected: list[float | None]
    """The same for each pair's rejected answer; None for a KTO example."""
    tokens: list[int]
    """Answer tokens scored per record (chosen and rejected together for a pair)."""


def data_kind(path) -> str | None:
    """"pairs" or "kto" when the file's first record is preference data, else None."""
    from xuetu import data

    try:
        first = next(iter(data.load(path)), None)
    except XuetuError:
        return None  # not data `xuetu data` reads: the other metrics say why
    if first is None or not first.is_preference:
        return None
    return "pairs" if first.is_pair else "kto"


def load_records(path, limit: int | None = None) -> list[Record]:
    """The preference records of a file: all pairs or all KTO-labelled, each ending with an assistant answer."""
    from xuetu import data

    out: list[Record] = []
    for i, record in enumerate(data.load(path)):
        where = record.meta.get("source", f"record {i + 1}")
        if not record.is_preference:
            raise XuetuError(f"{where} is not preference data" + (", but earlier records are" if out else ""),
                             "Give a file of chosen/rejected pairs ({\"prompt\", \"chosen\", \"rejected\"}) or "
                             "of KTO-labelled answers ({\"prompt\", \"completion\", \"label\"}).")
        if out and record.is_pair != out[0].is_pair:
            raise XuetuError(f"{where} mixes chosen/rejected pairs with KTO-labelled answers",
                             "Evaluate pairs and labelled answers in separate files.")
        if len(record.messages) < 2 or record.messages[-1]["role"] != "assistant":
            raise XuetuError(f"{where}: a preference example needs a prompt and an assistant answer")
        out.append(record)
        if limit and len(out) >= limit:
            break
    if not out:
        raise XuetuError(f"{path} holds no preference data")
    return out


def last_answer(tokenizer, record: Record) -> tuple[list[int], int, int]:
    """(token ids, start, end) of the record's last assistant turn, rendered and labelled as training does."""
    from xuetu.data.template import IGNORE, tokenize_for_training

    example = tokenize_for_training(tokenizer, record)
    ids, labels = example.input_ids, example.labels
    end = next((i + 1 for i in range(len(labels) - 1, -1, -1) if labels[i] != IGNORE), 0)
    start = end
    while start > 0 and labels[start - 1] != IGNORE:
        start -= 1
    if end == 0:
        raise XuetuError(f"{record.meta.get('source', 'a record')}: the answer has no tokens to score")
    return ids, start, end


def answer_logliks(model, tokenizer, records: list[Record], batch_size: int = 8, progress: bool = True,
                   max_length: int = 1024, stride: int = 512) -> tuple[list[float], list[int]]:
    """Mean per-token log-likelihood of each record's last assistant turn given the conversation before it,
    and the tokens scored. Windows that hold no answer token are not run."""
    from xuetu.evaluate.perplexity import model_max_length, score_windows, windows

    max_length = min(max_length, model_max_length(model, tokenizer))
    stride = min(stride, max_length - 1)
    encoded, work = [], []
    for t, record in enumerate(records):
        ids, start, end = last_answer(tokenizer, record)
        encoded.append(ids[:end])
        work += [(t, b, e, max(f, start)) for b, e, f in windows(end, max_length, stride) if e > max(f, start)]
    nll, count = score_windows(model, tokenizer, encoded, work, batch_size, progress, desc="preference")
    return [-x / c for x, c in zip(nll, count)], count


def score(model, tokenizer, records: list[Record], batch_size: int = 8, progress: bool = True) -> Scored:
    """Every answer (chosen and rejected alike) scored in one batched pass."""
    rejected = [Record(messages=r.rejected_messages(), system=r.system, tools=r.tools, meta=r.meta)
                for r in records if r.is_pair]
    logliks, counts = answer_logliks(model, tokenizer, records + rejected, batch_size, progress)
    n, out_rej, out_tok, k = len(records), [], [], 0
    for i, r in enumerate(records):
        if r.is_pair:
            out_rej.append(logliks[n + k])
            out_tok.append(counts[i] + counts[n + k])
            k += 1
        else:
            out_rej.append(None)
            out_tok.append(counts[i])
    return Scored(logliks[:n], out_rej, out_tok)


def _ci(values: list[float]) -> dict:
    ci = bootstrap_ci(values)
    return {"value": ci.mean, "low": ci.low, "high": ci.high, "n": len(values)}


def summarise(records: list[Record], scored: Scored) -> tuple[dict, list[dict]]:
    """(metrics, examples) for a result: each example's prompt, answers, log-likelihoods and scores."""
    if records[0].is_pair:
        return _pairs(records, scored)
    good = [x for r, x in zip(records, scored.loglik) if r.label]
    bad = [x for r, x in zip(records, scored.loglik) if not r.label]
    gap = sum(good) / len(good) - sum(bad) / len(bad) if good and bad else float("nan")
    metrics = {"desirable_loglik": _ci(good), "undesirable_loglik": _ci(bad), "kto_gap": {"value": gap}}
    examples = [{"id": str(i), "question": _prompt(r), "answer": r.messages[-1]["content"], "label": bool(r.label),
                 "source": r.meta.get("source", ""), "tokens": scored.tokens[i], "scores": {"loglik": x}}
                for i, (r, x) in enumerate(zip(records, scored.loglik))]
    return metrics, examples


def _pairs(records: list[Record], scored: Scored) -> tuple[dict, list[dict]]:
    margins = [c - r for c, r in zip(scored.loglik, scored.rejected)]
    correct = [1.0 if m > 0 else 0.0 for m in margins]
    metrics = {"pref_accuracy": _ci(correct), "pref_margin": _ci(margins)}
    examples = [{"id": str(i), "question": _prompt(r), "chosen": r.messages[-1]["content"],
                 "rejected": r.rejected["content"], "source": r.meta.get("source", ""),
                 "chosen_loglik": scored.loglik[i], "rejected_loglik": scored.rejected[i], "tokens": scored.tokens[i],
                 "scores": {"pref_correct": correct[i], "pref_margin": margins[i]}}
                for i, r in enumerate(records)]
    return metrics, examples


def _prompt(record: Record) -> str:
    """The last user turn before the answer (what a report shows as the question)."""
    return next((m["content"] for m in reversed(record.messages[:-1]) if m["role"] == "user"), "")
