"""ORPO (Hong et al., 2024): supervised fine-tuning on the chosen answer plus an odds-ratio penalty, with no
reference model. loss = NLL(chosen) - beta * log sigmoid(log odds(chosen) - log odds(rejected)), where
odds(y) = p / (1 - p) on the mean per-token probability p; a reward is beta * mean log-prob."""

from __future__ import annotations

import torch

from xuetu.train.methods.preference import (ADAPTER, ALIGN, LR, PACKING, PROMPT_LEARNING, default_lr,  # noqa: F401
                                            logsigmoid_loss, pair_metrics)

REFERENCE = False
PAIRED = True
BETA = 0.1


def _log_odds(mean_logp: torch.Tensor) -> torch.Tensor:
    return mean_logp - torch.log1p(-torch.exp(mean_logp).clamp(max=1 - 1e-6))


def loss(policy, ref, desirable, a):
    pc, pr = policy.halves()
    ratio = logsigmoid_loss(_log_odds(pc.mean) - _log_odds(pr.mean))
    out = -pc.mean + a.beta * ratio
    return pair_metrics(a.beta * pc.mean, a.beta * pr.mean, out)
