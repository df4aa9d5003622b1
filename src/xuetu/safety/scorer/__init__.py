"""The scorer: a linear model over character and word n-grams that rates how likely a text is an attack,
and of which kind. Rules catch what they were written for; the scorer catches attacks worded otherwise.

- Learnt from the examples that ship in safety/examples/*.jsonl (6,123 texts written for xuetu in Chinese
  and English, more than half of them benign and most of those hard negatives) and the user's own
  XUETU_HOME/safety/examples/*.jsonl: one line each, {"text": ..., "label": ..., "channel": "user"|"document"}.
- Features: character 1-3-grams and word 1-2-grams of the de-obfuscated text (normalize.py), hashed, tf-idf
  weighted; a retrieved document carries a marker, so the same words can mean different things there.
- Model: multinomial logistic regression (benign + 10 categories). A text is flagged when its probability
  of being an attack reaches the threshold (0.40 by default, chosen on the dev half of benchmarks/safety.py).
  The harmful-content categories (violence, sexual, hate, self_harm, illegal) count only when a word of
  their rules' lexicon is in the text, or when the scorer gives the category alone at least `strong` (0.5:
  more than even odds), so a common word that happens to lean one way ("describe") is not enough on its own.
  `strong` was chosen by cross-validation on the examples (benchmarks/safety_cv.py).
- Long texts are scored in overlapping 400-character windows; the most suspicious one counts. Texts under 6
  characters ("hi", "继续") are left to the rules: their n-grams say too little.
- Ships trained (safety/scorer.npz, learnt from the shipped examples and stamped with their
  fingerprint), so no request and no first run pays for training. Only a user's own examples make it
  learn again (a few seconds, at `xuetu guard add` or when a guard is built); that model is cached by
  the examples' content in ~/.cache/xuetu/safety (XDG_CACHE_HOME is honoured). After editing the
  shipped examples, `python -m xuetu.safety.scorer` writes scorer.npz anew (a test holds the two
  together). About a tenth of a millisecond a text.

The parts: features.py (what the scorer sees of a text), model.py (the fitted model and its probabilities),
learn.py (the examples and the fit), storage.py (the shipped model, the cache of users' models),
scoring.py (the Scorer a guard holds) and explain.py (the words that weighed most).

It runs on user messages and retrieved documents, not on model output (it learnt requests, not answers).

    scorer: {threshold: 0.40, strong: 0.5}   # in the policy; `scorer: off` turns it off
"""

from __future__ import annotations

from xuetu.safety.scorer.explain import evidence
from xuetu.safety.scorer.features import DOC_MARK, N_CHAR, N_WORD, STRIDE, WINDOW, counts, prepare, windows
from xuetu.safety.scorer.learn import C, EXAMPLES, VERSION, load_examples, train
from xuetu.safety.scorer.model import LABELS, Model
from xuetu.safety.scorer.scoring import MIN_CHARS, STRONG, THRESHOLD, Scorer
from xuetu.safety.scorer.storage import (KEEP, SHIPPED, build_shipped, cache_dir, fingerprint, folders, model,
                                         shipped_model, user_dir)

__all__ = ["C", "DOC_MARK", "EXAMPLES", "KEEP", "LABELS", "MIN_CHARS", "Model", "N_CHAR", "N_WORD", "SHIPPED",
           "STRIDE", "STRONG", "Scorer", "THRESHOLD", "VERSION", "WINDOW", "build_shipped", "cache_dir", "counts",
           "evidence", "fingerprint", "folders", "load_examples", "model", "prepare", "shipped_model", "train",
           "user_dir", "windows"]
