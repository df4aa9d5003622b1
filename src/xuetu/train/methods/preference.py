"""What the preference objectives (dpo, orpo, simpo, kto) share: they train LoRA (or QLoRA) adapters or all
the weights, as `align.weights` says, and are run by the alignment recipe (train/align.py).

Each objective module adds:
- `loss(policy, ref, desirable, a) -> (loss, metrics)`: policy and ref are Logps over the batch's 2B rows
  (train/prefs.py); ref is None for objectives without a reference; desirable is KTO's labels (else None);
  `a` is the AlignArgs; metrics are floats (rewards, margin, accuracy) for the curves;
- `REFERENCE`: whether it needs the reference model's log-probabilities;
- `PAIRED`: whether it trains on chosen/rejected pairs (else on labelled examples, KTO);
- `BETA`: its default beta.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xuetu.train import methods

ADAPTER = None  # decided by align.weights: see weights_method
PACKING = False
PROMPT_LEARNING = False
ALIGN = True
LR = None  # see default_lr
WEIGHTS = ("lora", "qlora", "full")


def weights_method(args):
    """The method module that loads and prepares the trained weights (lora, qlora or full)."""
    return methods.get(args.align.weights)


def default_lr(args) -> float:
    """Preference training moves the model less than SFT: a tenth of the SFT rate for adapters, 5e-7 for all
    weights (the figures LLaMA-Factory's and TRL's DPO examples use)."""
    return 5e-7 if args.align.weights == "full" else weights_method(args).LR / 10


def pair_metrics(chosen: torch.Tensor, rejected: torch.Tensor, loss: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """The mean loss, and the rewards the curves show: chosen, rejected, their margin, and how often the
    chosen answer's reward is the higher one (preference accuracy)."""
    chosen, rejected = chosen.detach().float(), rejected.detach().float()
    return loss.mean(), {"reward_chosen": float(chosen.mean()), "reward_rejected": float(rejected.mean()),
                         "margin": float((chosen - rejected).mean()),
                         "accuracy": float((chosen > rejected).float().mean())}


def logsigmoid_loss(logits: torch.Tensor) -> torch.Tensor:
    return -F.logsigmoid(logits)
