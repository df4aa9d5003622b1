"""DPO (Rafailov et al., 2023): raise the chosen answer's log-probability relative to the reference model more
than the rejected one's. loss = -log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r))), on summed log-probs;
a reward is beta * (pi - ref)."""

from __future__ import annotations

from xuetu.train.methods.preference import (ADAPTER, ALIGN, LR, PACKING, PROMPT_LEARNING, default_lr,  # noqa: F401
                                            logsigmoid_loss, pair_metrics)

REFERENCE = True
PAIRED = True
BETA = 0.1


def loss(policy, ref, desirable, a):
    (pc, pr), (rc, rr) = policy.halves(), ref.halves()
    chosen, rejected = a.beta * (pc.sum - rc.sum), a.beta * (pr.sum - rr.sum)
    out = logsigmoid_loss(chosen - rejected)
    if a.sft_weight:
        out = out - a.sft_weight * pc.mean
    return pair_metrics(chosen, rejected, out)
