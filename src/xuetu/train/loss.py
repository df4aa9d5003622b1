"""The training loss as a module, so distributed wrappers (DDP, FSDP) see an ordinary forward.

For decoder models it runs the backbone, keeps only the positions that carry a label, and projects
just those through the vocabulary: prompts and padding never become (tokens x vocabulary) logits.
Prompt-learning PEFT models go through their own forward, which adds the virtual tokens.

The projection and the cross-entropy are one step (LinearCrossEntropy, as Liger-Kernel's fused linear
cross-entropy does on GPUs): the gradient with respect to the hidden states is computed while each chunk's
logits exist, so no log-softmax, no one-hot gradient and no logits are kept for the backward pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xuetu.data.template import IGNORE

CHUNK = 2048  # label positions per projection: bounds the logits tensor to CHUNK x vocab


class LinearCrossEntropy(torch.autograd.Function):
    """sum_i cross_entropy(h_i W^T, y_i) for h (N, H), W (V, H), y (N,); gradients for h and W (where they
    require them) are made in the forward, CHUNK rows at a time, and only scaled in the backward."""

    @staticmethod
    def forward(ctx, h, weight, y):
        want_h, want_w = h.requires_grad, weight.requires_grad
        grad_h = torch.empty_like(h) if want_h else None
        grad_w = torch.zeros_like(weight) if want_w else None
        total = torch.zeros((), dtype=torch.float32, device=h.device)
        for i in range(0, h.shape[0], CHUNK):
            hc, yc = h[i:i + CHUNK], y[i:i + CHUNK]
            logits = (hc @ weight.t()).float()  # (n, vocab)
            lse = torch.logsumexp(logits, dim=1)
            total += (lse - logits.gather(1, yc[:, None]).squeeze(1)).sum()
            if want_h or want_w:
                grad = logits.sub_(lse[:, None]).exp_()  # softmax, in place of the logits
                grad[torch.arange(len(yc), device=grad.device), yc] -= 1.0  # minus the one-hot target
                grad = grad.to(h.dtype)
                if want_h:
                    grad_h[i:i + CHUNK] = grad @ weight
                if want_w:
                    grad_w.addmm_(grad.t(), hc)
        ctx.grads = (grad_h, grad_w)
        return total

    @staticmethod
    def backward(ctx, grad_out):
        grad_h, grad_w = ctx.grads
        ctx.grads = None
        return (None if grad_h is None else grad_h * grad_out.to(grad_h.dtype),
                None if grad_w is None else grad_w * grad_out.to(grad_w.dtype), None)


class CausalLMLoss(nn.Module):
    def __init__(self, model: nn.Module, efficient: bool = True, fused: bool = True):
        super().__init__()
        self.model = model
        self.efficient = efficient
        self.fused = fused
        """LinearCrossEntropy where it applies (a plain bias-free head, no autocast); off for sharded
        engines (FSDP, DeepSpeed), whose weights are only whole inside their own forward"""

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
        if self.fused and type(head) is nn.Linear and head.bias is None and head.weight.dim() == 2 and \
                head.weight.shape[1] == h.shape[-1] and not torch.is_autocast_enabled(h.device.type):
            return total + LinearCrossEntropy.apply(h, head.weight, y), keep.sum()
        for i in range(0, h.shape[0], CHUNK):
            logits = head(h[i:i + CHUNK]).float()  # (n, vocab)
            total = total + F.cross_entropy(logits, y[i:i + CHUNK], reduction="sum")
        return total, keep.sum()
