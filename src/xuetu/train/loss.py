"""The training loss as a module, so distributed wrappers (DDP, FSDP) see an ordinary forward.

For decoder models it runs the backbone, keeps only the positions that carry a label, and projects
just those through the vocabulary: prompts and padding never become (tokens x vocabulary) logits.
Prompt-learning PEFT models go through their own forward, which adds the virtual tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xuetu.data.template import IGNORE

CHUNK = 2048  # label positions per projection: bounds the logits tensor to CHUNK x vocab


class CausalLMLoss(nn.Module):
    def __init__(self, model: nn.Module, efficient: bool = True):
        super().__init__()
        self.model = model
        self.efficient = efficient

    def _parts(self):
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return base.get_decoder(), base.get_output_embeddings()

    def forward(self, input_ids, labels, attention_mask, position_ids=None):
        if not self.efficient:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
            n = (labels[:, 1:] != IGNORE).sum()
            return out.loss * n, n
        decoder, head = self._parts()
        hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).last_hidden_state
        hidden, targets = hidden[:, :-1], labels[:, 1:]  # (B, T-1, H), (B, T-1): predict the next token
        keep = targets != IGNORE
        h, y = hidden[keep], targets[keep]  # (N, H), (N,)
        total = hidden.sum() * 0.0  # stays in the graph even for a batch with nothing to learn
        for i in range(0, h.shape[0], CHUNK):
            logits = head(h[i:i + CHUNK]).float()  # (n, vocab)
            total = total + F.cross_entropy(logits, y[i:i + CHUNK], reduction="sum")
        return total, keep.sum()
