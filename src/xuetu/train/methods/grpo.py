"""GRPO (Shao et al., 2024, DeepSeekMath): no pairs, no reward model. For each prompt the model samples a group
of answers; rule rewards (or a Python function) score them; each answer's advantage is its reward against
its group's mean, in the group's standard deviations; the policy gradient raises the log-probability of the
answers that beat their group, with a per-token KL penalty (beta) against the reference. Run by train/grpo.py
on a prompt file with `align.rewards`."""

from __future__ import annotations

from xuetu.train.methods.preference import ADAPTER, ALIGN, LR, PACKING, PROMPT_LEARNING, default_lr  # noqa: F401

REWARDED = True
REFERENCE = True
PAIRED = False
BETA = 0.04
