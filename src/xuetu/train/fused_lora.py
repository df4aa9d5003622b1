"""A leaner LoRA forward for training: W x + s * B (A x) as one matrix multiply-add into W x.

PEFT computes `result + lora_B(lora_A(x)) * scaling`: two more passes over every adapted layer's
output (a multiply, then an add, and a new tensor each time), in the forward and again in the
backward. `addmm_` adds s * (A x) B^T into the base output in place, inside the BLAS call; with
LoRA on every linear layer that is 420 fewer full-size elementwise passes per step for SmolLM2.

Only plain LoRA (one active adapter, no DoRA or other variant, no bias on B, not merged) takes
this path; anything else goes through PEFT's own forward. `fused_lora(model)` switches it on for
the length of a training run.
"""

from __future__ import annotations

import types
from contextlib import contextmanager

import torch


def _forward(self, x, *args, **kwargs):
    names = self.active_adapters
    if args or kwargs or self.disable_adapters or self.merged or len(names) != 1:
        return type(self).forward(self, x, *args, **kwargs)
    name = names[0]
    if name not in self.lora_A or name in self.lora_variant:
        return type(self).forward(self, x, *args, **kwargs)
    lora_a, lora_b = self.lora_A[name], self.lora_B[name]
    if lora_b.bias is not None or x.dtype != lora_a.weight.dtype or torch.is_autocast_enabled(x.device.type):
        return type(self).forward(self, x, *args, **kwargs)
    result = self.base_layer(x)  # (..., out); its backward needs x and W, not this output, so it may be added to
    a = lora_a(self.lora_dropout[name](x))  # (..., r)
    out = result.view(-1, result.shape[-1])
    return out.addmm_(a.reshape(-1, a.shape[-1]), lora_b.weight.t(), alpha=self.scaling[name]).view(result.shape)


@contextmanager
def fused_lora(model):
    """Use the fused forward on the model's PEFT LoRA linear layers; PEFT's own comes back afterwards."""
    try:
        from peft.tuners.lora.layer import Linear
    except ImportError:  # no PEFT: nothing to fuse
        yield 0
        return
    patched = [m for m in model.modules() if type(m) is Linear]
    for m in patched:
        m.forward = types.MethodType(_forward, m)
    try:
        yield len(patched)
    finally:
        for m in patched:
            m.__dict__.pop("forward", None)
