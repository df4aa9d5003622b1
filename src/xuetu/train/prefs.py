"""From preference records to tokens, and the log-probabilities every preference objective is built on.

A pair becomes two sequences, the conversation ending in the chosen answer and the same one ending in the
rejected answer; a KTO example is one sequence with its label. Only the last answer's tokens carry labels:
that is the answer being compared. A batch holds B pairs as 2B rows (chosen rows first, then rejected),
so one forward pass scores both sides.

    examples, report = build_pref_examples(records, tokenizer, max_length=512)
    batch = collate_prefs([examples[i] for i in idx], pad_id)
    lp = sequence_logps(model, **batch)          # Logps(sum, mean, tokens) per row
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from xuetu.data.record import Record
from xuetu.data.template import IGNORE, tokenize_for_training
from xuetu.errors import XuetuError


@dataclass
class PrefExample:
    ids: list[int]
    labels: list[int]
    """The chosen (or KTO's labelled) conversation; labels only on its last answer."""
    rejected_ids: list[int] | None = None
    rejected_labels: list[int] | None = None
    label: bool | None = None
    """KTO: whether the answer is desirable."""
    kl_ids: list[int] | None = None
    kl_labels: list[int] | None = None
    """KTO: this prompt with another example's answer, for the KL estimate."""

    def rows(self) -> list[tuple[list[int], list[int]]]:
        if self.rejected_ids is not None:
            return [(self.ids, self.labels), (self.rejected_ids, self.rejected_labels)]
        return [(self.ids, self.labels), (self.kl_ids, self.kl_labels)]

    @property
    def tokens(self) -> int:
        return sum(len(ids) for ids, _ in self.rows())


@dataclass
class PrefReport:
    records: int = 0
    kept: int = 0
    dropped_too_long: int = 0
    dropped_same: int = 0
    pairs: int = 0
    desirable: int = 0
    undesirable: int = 0


def last_answer(tokenizer, messages: list[dict], system: str | None, max_length: int) -> tuple[list[int], list[int]] | None:
    """Token ids and labels of a conversation, labels only on its final answer; None when it does not fit."""
    ex = tokenize_for_training(tokenizer, Record(messages=messages, system=system))
    labels = list(ex.labels)
    end = len(labels)
    while end and labels[end - 1] == IGNORE:
        end -= 1
    start = end
    while start and labels[start - 1] != IGNORE:
        start -= 1
    labels[:start] = [IGNORE] * start
    if len(ex.input_ids) > max_length or start == end:
        return None
    return list(ex.input_ids), labels


def kto_records(records: list[Record]) -> list[Record]:
    """KTO trains on labelled examples: each pair gives a desirable and an undesirable one."""
    from xuetu.data.prefs import to_kto

    return [k for r in records for k in to_kto(r)]


def build_pref_examples(records: list[Record], tokenizer, max_length: int, paired: bool
                        ) -> tuple[list[PrefExample], PrefReport]:
    """Pairs (paired objectives: DPO, ORPO, SimPO) or labelled examples with their KL partners (KTO)."""
    report = PrefReport(records=len(records))
    if paired:
        if any(r.rejected is None for r in records):
            raise XuetuError("this objective needs chosen/rejected pairs, and some records have only a label (KTO data)",
                             "Train KTO on labelled data (--method kto), or give pairs (prompt/chosen/rejected).")
        out = [ex for r in records if (ex := _pair(r, tokenizer, max_length, report))]
    else:
        kept = [(r, ex) for r in kto_records(records) if (ex := _labelled(r, tokenizer, max_length, report))]
        _partner(kept, tokenizer, max_length)
        out = [ex for _, ex in kept]
    report.kept = len(out)
    return out, report


def _pair(r: Record, tokenizer, max_length: int, report: PrefReport) -> PrefExample | None:
    if r.messages[-1]["content"].strip() == r.rejected["content"].strip():
        report.dropped_same += 1
        return None
    chosen = last_answer(tokenizer, r.messages, r.system, max_length)
    rejected = last_answer(tokenizer, r.rejected_messages(), r.system, max_length)
    if chosen is None or rejected is None:
        report.dropped_too_long += 1
        return None
    report.pairs += 1
    return PrefExample(*chosen, *rejected)


def _labelled(r: Record, tokenizer, max_length: int, report: PrefReport) -> PrefExample | None:
    seq = last_answer(tokenizer, r.messages, r.system, max_length)
    if seq is None:
        report.dropped_too_long += 1
        return None
    report.desirable += bool(r.label)
    report.undesirable += not r.label
    return PrefExample(*seq, label=bool(r.label))


def _partner(kept: list[tuple[Record, PrefExample]], tokenizer, max_length: int) -> None:
    """KTO's KL estimate scores each prompt with an answer that is not its own: the next example's (fixed,
    so the reference log-probabilities of these rows can be computed once)."""
    for i, (r, ex) in enumerate(kept):
        other = kept[(i + 1) % len(kept)][0]
        seq = last_answer(tokenizer, r.messages[:-1] + [other.messages[-1]], r.system, max_length * 2) \
            if len(kept) > 1 else None
        ex.kl_ids, ex.kl_labels = seq if seq else (ex.ids, ex.labels)


def collate_prefs(examples: list[PrefExample], pad: int, packed: bool = False) -> dict:
    """2B rows: the first sides (chosen, or KTO's own answers), then the second (rejected, or KL partners),
    right-padded to the longest. `packed`: the 2B sequences one after another in a single row, no padding, their
    position ids restarting at 0 (for a model under train/attention.py's packed attention, where no sequence
    attends to another)."""
    rows = [ex.rows()[0] for ex in examples] + [ex.rows()[1] for ex in examples]
    if packed:
        ids = torch.tensor([t for row, _ in rows for t in row])[None]
        # A sequence's first token is never a target: in a packed row it would be predicted from the one before.
        labels = torch.tensor([t for _, lab in rows for t in [IGNORE, *lab[1:]]])[None]
        return {"input_ids": ids, "labels": labels,
                "attention_mask": torch.ones_like(ids),
                "position_ids": torch.cat([torch.arange(len(row)) for row, _ in rows])[None]}
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (ids, lab) in enumerate(rows):
        input_ids[i, :len(ids)] = torch.tensor(ids)
        labels[i, :len(lab)] = torch.tensor(lab)
        mask[i, :len(ids)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": mask}


@dataclass
class Logps:
    """Per row: the summed and the mean log-probability of the answer's tokens, and their count."""

    sum: torch.Tensor
    mean: torch.Tensor
    tokens: torch.Tensor

    def halves(self) -> tuple["Logps", "Logps"]:
        n = self.sum.shape[0] // 2
        return (Logps(self.sum[:n], self.mean[:n], self.tokens[:n]),
                Logps(self.sum[n:], self.mean[n:], self.tokens[n:]))

    def detach(self) -> "Logps":
        return Logps(self.sum.detach(), self.mean.detach(), self.tokens.detach())


def _parts(model):
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder(), base.get_output_embeddings()


def _sequence_index(labels: torch.Tensor, position_ids: torch.Tensor | None) -> tuple[torch.Tensor, int]:
    """Per position, the sequence it belongs to, and how many sequences: one per row, or, in a packed row, a new
    one wherever the position ids restart at 0."""
    if position_ids is None:
        rows = labels.shape[0]
        return torch.arange(rows, device=labels.device)[:, None].expand_as(labels), rows
    starts = position_ids == 0
    return starts.flatten().cumsum(0).view_as(position_ids) - 1, int(starts.sum())


def label_logps(model, input_ids, labels, attention_mask,
                position_ids=None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The log-probability of every labelled token (N,), the sequence each belongs to (N,), and how many sequences
    (one per row, or per sequence of a packed row: see collate_prefs). Only labelled positions are projected
    through the vocabulary: a prompt never becomes (tokens x vocabulary) logits."""
    decoder, head = _parts(model)
    hidden = decoder(input_ids=input_ids, attention_mask=attention_mask,
                     position_ids=position_ids).last_hidden_state[:, :-1]
    targets = labels[:, 1:]
    keep = targets != IGNORE
    logits = head(hidden[keep]).float()  # (N, vocab)
    token_lp = logits.gather(1, targets[keep][:, None]).squeeze(1) - torch.logsumexp(logits, dim=1)
    seq, n = _sequence_index(labels, position_ids)
    # A labelled target is never a sequence's first token (the prompt comes first), so it is in its predictor's
    # sequence: index by the target's position.
    return token_lp, seq[:, 1:][keep], n


def per_row(values: torch.Tensor, row: torch.Tensor, rows: int) -> torch.Tensor:
    return torch.zeros(rows, dtype=values.dtype, device=values.device).index_add(0, row, values)


def sequence_logps(model, input_ids, labels, attention_mask, position_ids=None) -> Logps:
    """Summed and mean log-probabilities of each sequence's labelled tokens."""
    token_lp, row, n = label_logps(model, input_ids, labels, attention_mask, position_ids)
    total = per_row(token_lp, row, n)
    count = per_row(torch.ones_like(row), row, n)
    return Logps(total, total / count.clamp(min=1), count)
