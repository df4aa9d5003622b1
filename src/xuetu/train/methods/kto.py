"""KTO (Ethayarajh et al., 2024): unpaired answers labelled desirable or undesirable. A reward is
r = pi - ref (summed log-probs); z, the batch's estimate of KL(policy || reference), comes from each prompt
scored with another example's answer (clamped at 0, no gradient). Desirable answers are pushed up by
1 - sigmoid(beta * (r - z)), undesirable ones down by 1 - sigmoid(beta * (z - r)). Pairs are split into one
example of each kind (train/prefs.py)."""

from __future__ import annotations

import torch

from xuetu.train.methods.preference import ADAPTER, ALIGN, LR, PACKING, PROMPT_LEARNING, default_lr  # noqa: F401

REFERENCE = True
PAIRED = False
BETA = 0.1


def loss(policy, ref, desirable, a):
    (own, partner), (ref_own, ref_partner) = policy.halves(), ref.halves()
    reward = own.sum - ref_own.sum
    z = (partner.sum - ref_partner.sum).detach().mean().clamp(min=0)
    good = desirable.to(reward.device)
    per = torch.where(good, a.desirable_weight * (1 - torch.sigmoid(a.beta * (reward - z))),
                      a.undesirable_weight * (1 - torch.sigmoid(a.beta * (z - reward))))
    r = a.beta * reward.detach().float()
    # A batch may hold answers of one kind only: a metric it cannot measure is left out, not NaN.
    metrics = {"kl": float(z), "accuracy": float(((r > 0) == good).float().mean())}
    if good.any():
        metrics["reward_chosen"] = float(r[good].mean())
    if (~good).any():
        metrics["reward_rejected"] = float(r[~good].mean())
    if good.any() and (~good).any():
        metrics["margin"] = metrics["reward_chosen"] - metrics["reward_rejected"]
    return per.mean(), metrics
