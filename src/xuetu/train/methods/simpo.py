"""SimPO (Meng et al., 2024): no reference model; the reward is the answer's mean log-probability per token
times beta, and the chosen answer must win by a margin gamma. loss = -log sigmoid(beta * (avg_c - avg_r) - gamma)."""

from __future__ import annotations

from xuetu.train.methods.preference import (ADAPTER, ALIGN, LR, PACKING, PROMPT_LEARNING, default_lr,  # noqa: F401
                                            logsigmoid_loss, pair_metrics)

REFERENCE = False
PAIRED = True
BETA = 2.0


def loss(policy, ref, desirable, a):
    pc, pr = policy.halves()
    chosen, rejected = a.beta * pc.mean, a.beta * pr.mean
    out = logsigmoid_loss(chosen - rejected - a.gamma)
    if a.sft_weight:
        out = out - a.sft_weight * pc.mean
    return pair_metrics(chosen, rejected, out)
