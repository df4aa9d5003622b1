"""The logit-level distillation loss, a drop-in for CausalLMLoss (same inputs, returns (summed loss, count)).

On every answer (label) position, with teacher distribution p and student q, both softened by temperature τ:

    loss = α · CE(student, data token) + (1 − α) · τ² · KL(p_τ ‖ q_τ)

The teacher is frozen (eval, no_grad). Either it runs on each batch (full-vocabulary KL), or, with top_k,
its K most likely tokens per answer position are computed once before training (TopKCache) and the
teacher is freed: p is then the softmax of those K logits alone (renormalised over the K), q the
student's full softmax read at those K tokens, KL = Σ_K p (log p − log q). As with CausalLMLoss, only
labelled positions are projected through the vocabulary, CHUNK rows at a time.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xuetu.data.template import IGNORE
from xuetu.errors import XuetuError
from xuetu.train import attention
from xuetu.train.loss import CHUNK


def check_same_vocab(teacher_tok, student_tok, teacher: str, student: str) -> None:
    """Logits can only be compared token for token when both models share one vocabulary."""
    tv, sv = teacher_tok.get_vocab(), student_tok.get_vocab()
    if tv != sv:
        differ = next((t for t in sorted(tv) if sv.get(t) != tv[t]), None) or next(t for t in sv if t not in tv)
        raise XuetuError(f"{teacher} and {student} have different tokenizers ({len(tv)} vs {len(sv)} tokens; "
                         f"e.g. {differ!r} differs), so their logits cannot be compared",
                         "Use --mode sequence (the student learns the teacher's answers as text), or a student "
                         "with the teacher's tokenizer.")


def split_heads(model: nn.Module):
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder(), base.get_output_embeddings()


def freeze_teacher(teacher: nn.Module) -> nn.Module:
    """Eval mode, no gradients, and packed attention: on packed rows the teacher must keep the examples
    apart exactly as the student does (see train/attention.py); on unpacked rows it is plain causal attention."""
    teacher.eval().requires_grad_(False)
    if attention.supports(teacher):
        attention.register()
        for m in teacher.modules():
            if hasattr(getattr(m, "config", None), "_attn_implementation"):
                m.config._attn_implementation = attention.NAME
    return teacher


def example_key(input_ids) -> str:
    return hashlib.sha1(np.asarray(input_ids, dtype=np.int64).tobytes()).hexdigest()


def kl_full(student_logits, teacher_logits, tau: float):
    """Σ over positions of KL(softmax(t/τ) ‖ softmax(s/τ)); both (n, V)."""
    log_q = F.log_softmax(student_logits / tau, dim=-1)
    log_p = F.log_softmax(teacher_logits / tau, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum()


def kl_top_k(student_logits, top_values, top_indices, tau: float):
    """The same, with the teacher known only on its top K tokens (n, K), renormalised over them."""
    log_q = F.log_softmax(student_logits / tau, dim=-1).gather(-1, top_indices)  # (n, K)
    log_p = F.log_softmax(top_values / tau, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum()


class DistillLoss(nn.Module):
    def __init__(self, model: nn.Module, alpha: float, temperature: float, teacher: nn.Module | None = None,
                 top_k: dict | None = None):
        super().__init__()
        if (teacher is None) == (top_k is None):
            raise ValueError("DistillLoss needs either a teacher or its cached top-k")
        self.model, self.alpha, self.tau = model, alpha, temperature
        self.teacher = freeze_teacher(teacher) if teacher is not None else None
        self.top_k = top_k

    def train(self, mode: bool = True):
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()  # never dropout in the teacher
        return self

    def _teacher_hidden(self, input_ids, attention_mask, position_ids, keep):
        decoder, _ = split_heads(self.teacher)
        with torch.no_grad():
            hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
            return hidden.last_hidden_state[:, :-1][keep]  # (N, H_teacher)

    def _cached(self, input_ids, labels, position_ids):
        """The cached (values, indices) of every labelled position, in the order of hidden[keep]."""
        values, indices = [], []
        for b, pieces in enumerate(attention.segments(position_ids)):
            for s, e in pieces:
                if not (labels[b, s:e] != IGNORE).any():
                    continue  # padding, or an example with nothing to learn
                hit = self.top_k.get(example_key(input_ids[b, s:e].tolist()))
                if hit is None:
                    raise RuntimeError("an example has no cached teacher top-k (the data changed since it was made)")
                values.append(hit[0])
                indices.append(hit[1])
        return torch.cat(values).to(input_ids.device), torch.cat(indices).to(input_ids.device).long()

    def forward(self, input_ids, labels, attention_mask, position_ids=None):
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        decoder, head = split_heads(self.model)
        hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).last_hidden_state
        hidden, targets = hidden[:, :-1], labels[:, 1:]  # (B, T-1, H), (B, T-1): predict the next token
        keep = targets != IGNORE
        h, y = hidden[keep], targets[keep]  # (N, H), (N,)
        total = hidden.sum() * 0.0  # stays in the graph even for a batch with nothing to learn
        distill = self.alpha < 1 and h.shape[0] > 0
        if distill and self.teacher is not None:
            th, t_head = self._teacher_hidden(input_ids, attention_mask, position_ids, keep), split_heads(self.teacher)[1]
        elif distill:
            top_values, top_indices = self._cached(input_ids, labels, position_ids)  # (N, K) each
            if top_values.shape[0] != h.shape[0]:
                raise RuntimeError("cached teacher top-k does not line up with the batch's answer positions")
        for i in range(0, h.shape[0], CHUNK):
            logits = head(h[i:i + CHUNK]).float()  # (n, vocab)
            part = F.cross_entropy(logits, y[i:i + CHUNK], reduction="sum")
            if distill:
                if self.teacher is not None:
                    with torch.no_grad():
                        t_logits = t_head(th[i:i + CHUNK]).float()  # (n, vocab_teacher)
                    V = min(logits.shape[-1], t_logits.shape[-1])  # a head padded past the shared vocabulary
                    kl = kl_full(logits[:, :V], t_logits[:, :V], self.tau)
                else:
                    kl = kl_top_k(logits, top_values[i:i + CHUNK].float(), top_indices[i:i + CHUNK], self.tau)
                part = self.alpha * part + (1 - self.alpha) * self.tau ** 2 * kl
            total = total + part
        return total, keep.sum()


@torch.no_grad()
def teacher_top_k(teacher: nn.Module, examples, k: int, pad_id: int, batch_size: int = 8, progress: bool = True) -> dict:
    """{example key: (values (n, k) float32, indices (n, k) int32)} for every labelled position of each example."""
    from xuetu.train.packing import collate, one_per_sequence

    decoder, head = split_heads(freeze_teacher(teacher))
    device = next(teacher.parameters()).device
    unique = list({example_key(e.input_ids): e for e in examples}.items())
    out: dict = {}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(unique), desc=f"teacher top-{k}", unit="example", dynamic_ncols=True)
    for i in range(0, len(unique), batch_size):
        part = unique[i:i + batch_size]
        batch = {n: t.to(device) for n, t in collate(one_per_sequence([e for _, e in part]), pad_id, torch.float32,
                                                      four_d=False).items()}
        hidden = decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         position_ids=batch["position_ids"]).last_hidden_state[:, :-1]  # (B, T-1, H)
        keep = batch["labels"][:, 1:] != IGNORE
        for b, (key, _) in enumerate(part):
            logits = head(hidden[b][keep[b]]).float()  # (n, vocab)
            values, indices = logits.topk(min(k, logits.shape[-1]), dim=-1)
            out[key] = (values.cpu(), indices.to(torch.int32).cpu())
        if bar is not None:
            bar.update(len(part))
    if bar is not None:
        bar.close()
    return out
