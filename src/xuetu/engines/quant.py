"""Weight-only INT8 for the transformers engine, and the measured size of a model's weights.

INT8 here is weight-only and symmetric, one scale per output row:

    scale[o] = max_i |W[o, i]| / 127        q[o, i] = round(W[o, i] / scale[o])   (int8)
    y = (x @ q.T) * scale                   (q is cast to x's dtype inside the matmul)

Activations stay in floating point, so quality stays close to FP32 (PyTorch's deprecated
`quantize_dynamic` also rounds activations to int8 and loses far more: perplexity 2-3x worse on
SmolLM2). Every Linear and the input embedding are quantised; a tied lm_head keeps sharing the
embedding's int8 rows, since a per-row scale of the embedding is a per-output scale of the head.
torchao's Int8WeightOnlyConfig does the same arithmetic (cast, matmul, scale); these 40 lines
spare a dependency. Memory drops about 4x from FP32; on a CPU decoding gets slower, not faster,
because the cast costs more than the bytes it saves on a model this small.
"""

from __future__ import annotations

import torch
from torch import nn


def _int8_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 weight (rows, cols), fp scale (rows,)): symmetric, one scale per row."""
    w = weight.detach().float()
    scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale.to(weight.dtype)


class Int8Linear(nn.Module):
    def __init__(self, qweight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.in_features, self.out_features = qweight.shape[1], qweight.shape[0]
        self.register_buffer("qweight", qweight)  # (out, in) int8
        self.register_buffer("scale", scale)  # (out,)
        self.bias = None if bias is None else nn.Parameter(bias.detach(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.linear(x, self.qweight.to(x.dtype)) * self.scale.to(x.dtype)  # (..., out)
        return y if self.bias is None else y + self.bias


class Int8Embedding(nn.Module):
    def __init__(self, qweight: torch.Tensor, scale: torch.Tensor, padding_idx: int | None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = qweight.shape
        self.padding_idx = padding_idx
        self.register_buffer("qweight", qweight)  # (vocab, dim) int8
        self.register_buffer("scale", scale)  # (vocab,)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = nn.functional.embedding(ids, self.qweight)  # (..., dim) int8: only the rows asked for
        return rows.to(self.scale.dtype) * self.scale[ids].unsqueeze(-1)


def quantize_int8(model: nn.Module) -> nn.Module:
    """Replace, in place, the input embedding and every nn.Linear with its int8 form; returns the model."""
    embed = model.get_input_embeddings()
    head = model.get_output_embeddings()
    tied = isinstance(embed, nn.Embedding) and head is not None and head.weight is embed.weight
    shared = None
    if isinstance(embed, nn.Embedding):
        shared = _int8_rows(embed.weight)
        model.set_input_embeddings(Int8Embedding(*shared, embed.padding_idx))
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                q, scale = shared if tied and child is head else _int8_rows(child.weight)
                setattr(parent, name, Int8Linear(q, scale, child.bias))
    if tied:
        model.config.tie_word_embeddings = False  # nothing for transformers to re-tie: they share buffers now
    return model


def weight_bytes(model: nn.Module) -> int:
    """Measured bytes of the weights in memory: every parameter and buffer, each storage counted once."""
    seen: dict[int, int] = {}
    for t in list(model.parameters()) + list(model.buffers()):
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def linear_bytes(model: nn.Module) -> int:
    """Bytes of the Linear layers alone (weights, scales, biases), for comparing FP32 with INT8."""
    parts = [m for m in model.modules() if isinstance(m, nn.Linear | Int8Linear)]
    return weight_bytes(nn.ModuleList(parts))
