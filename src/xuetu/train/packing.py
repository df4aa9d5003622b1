"""Turn training examples into batches: packing several examples per sequence without letting them
see each other (position ids restart and a block-diagonal causal mask separates them)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from xuetu.data.template import IGNORE, TrainingExample


@dataclass
class Sequence:
    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]
    segments: list[int]
    """Which example each token belongs to (0, 1, …) inside this sequence."""


def pack_sequences(examples: list[TrainingExample], max_length: int) -> list[Sequence]:
    """First-fit-decreasing: longest examples first, each into the first sequence with room. Deterministic."""
    order = sorted(range(len(examples)), key=lambda i: (-len(examples[i].input_ids), i))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = len(examples[i].input_ids)
        for b, free in enumerate(room):
            if n <= free:
                bins[b].append(i)
                room[b] -= n
                break
        else:
            bins.append([i])
            room.append(max_length - n)
    out = []
    for members in bins:
        seq = Sequence([], [], [], [])
        for seg, i in enumerate(sorted(members)):
            ex = examples[i]
            seq.input_ids += ex.input_ids
            seq.labels += ex.labels
            seq.position_ids += list(range(len(ex.input_ids)))
            seq.segments += [seg] * len(ex.input_ids)
        out.append(seq)
    return out


def one_per_sequence(examples: list[TrainingExample]) -> list[Sequence]:
    return [Sequence(list(e.input_ids), list(e.labels), list(range(len(e.input_ids))), [0] * len(e.input_ids))
            for e in examples]


def collate(seqs: list[Sequence], pad_id: int, dtype: torch.dtype, four_d: bool = True) -> dict:
    """Right-padded tensors. With four_d, the mask is (B, 1, T, T) block-diagonal causal in `dtype`
    (0 where attention is allowed, the dtype's minimum elsewhere); else the usual (B, T) padding mask,
    and the restarting position ids alone separate the examples (see train/attention.py)."""
    width = max(len(s.input_ids) for s in seqs)
    B = len(seqs)
    ids = torch.full((B, width), pad_id, dtype=torch.long)
    labels = torch.full((B, width), IGNORE, dtype=torch.long)
    pos = torch.zeros((B, width), dtype=torch.long)
    seg = torch.full((B, width), -1, dtype=torch.long)
    for b, s in enumerate(seqs):
        n = len(s.input_ids)
        ids[b, :n] = torch.tensor(s.input_ids)
        labels[b, :n] = torch.tensor(s.labels)
        pos[b, :n] = torch.tensor(s.position_ids)
        pos[b, n:] = torch.arange(width - n)  # padding is one more (ignored) segment, not one per token
        seg[b, :n] = torch.tensor(s.segments)
    batch = {"input_ids": ids, "labels": labels, "position_ids": pos}
    if four_d:
        causal = torch.tril(torch.ones(width, width, dtype=torch.bool))  # (T, T)
        same = seg[:, :, None] == seg[:, None, :]  # (B, T, T)
        allowed = same & causal & (seg[:, :, None] >= 0)
        allowed |= torch.eye(width, dtype=torch.bool)  # padding rows see themselves: no all-masked row, no NaN
        mask = torch.zeros((B, 1, width, width), dtype=dtype)
        batch["attention_mask"] = mask.masked_fill(~allowed[:, None], torch.finfo(dtype).min)
    else:
        batch["attention_mask"] = (seg >= 0).long()
    return batch
