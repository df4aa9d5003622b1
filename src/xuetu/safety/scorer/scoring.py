"""Scoring: the Scorer a guard holds, which rates how likely a text is an attack, and of which kind, and
turns a rating over the threshold into a finding."""

from __future__ import annotations

import numpy as np

from xuetu.errors import XuetuError
from xuetu.safety.rules import Finding, Lexicons
from xuetu.safety.scorer.explain import evidence
from xuetu.safety.scorer.features import prepare, windows
from xuetu.safety.scorer.model import ON_DOCUMENTS, ON_USER, Model
from xuetu.safety.scorer.storage import model

THRESHOLD = 0.40
STRONG = 0.5
MIN_CHARS = 6  # shorter texts ("hi", "继续", "ok thx") give n-grams too little to go on: the rules alone judge them


class Scorer:
    def __init__(self, spec: dict | None = None, lexicons: dict[str, tuple[str, ...]] | None = None,
                 trained: Model | None = None):
        spec = spec or {}
        self.threshold = float(spec.get("threshold", THRESHOLD))
        if not 0 < self.threshold < 1:
            raise XuetuError(f"the scorer threshold must be between 0 and 1, got {self.threshold}")
        self.channels = tuple(spec.get("channels") or ("user", "document"))
        self.strong = float(spec.get("strong", STRONG))
        if self.strong < 0:
            raise XuetuError(f"the scorer's strong must be 0 or more (above 1: never without a lexicon word), "
                             f"got {self.strong}")
        self.model = trained or model()
        if lexicons is None:
            from xuetu.safety.rules import load_rules

            lexicons = {}
            for r in load_rules():  # harmful-content categories only: an injection needs no topic words
                if r.lexicon and r.kind == "moderation":
                    lexicons[r.category] = tuple(sorted(set(lexicons.get(r.category, ())) | set(r.lexicon)))
        self.lexicons = lexicons
        self._index = Lexicons(tuple(lexicons.values()))

    def score(self, text: str, channel: str) -> tuple[str, float]:
        """(the likeliest attack category, the probability that the text is an attack), for its worst window.

        A harmful-content category (violence, sexual, hate, self_harm, illegal: the ones whose rules carry a
        lexicon) counts only when one of its words is in the text: n-grams alone would read "describe" as
        sexual, since the examples' sexual requests say it and benign ones rarely do. Its probability then
        goes to "not an attack", unless the scorer gives that category alone at least `strong`."""
        prepared = [prepare(w, channel) for w in windows(text)]
        probs = self.model.probabilities(prepared)
        classes = self.model.classes
        hits = self._index.hits(" ".join(prepared).lower())
        live = np.array([c != "benign" and (c not in self.lexicons or self.lexicons[c] in hits) for c in classes])
        gated = np.array([c in self.lexicons for c in classes])
        live = live[None, :] | (gated[None, :] & (probs >= self.strong))  # strong evidence needs no word
        attack = (probs * live).sum(axis=1)
        worst = int(attack.argmax())
        row = np.where(live[worst], probs[worst], -1.0)
        category = classes[int(row.argmax())] if live[worst].any() else "benign"
        return (ON_DOCUMENTS if channel == "document" else ON_USER).get(category, category), float(attack[worst])

    def find(self, text: str, channel: str) -> list[Finding]:
        if channel not in self.channels or len("".join(text.split())) < MIN_CHARS:
            return []
        category, p = self.score(text, channel)
        if p < self.threshold:
            return []
        return [Finding(category, f"scorer.{category}", f"the n-gram scorer rates this {p:.2f} likely an attack, "
                        f"most like {category} (threshold {self.threshold}); words that weighed most: "
                        f"{', '.join(self.evidence(text, channel, category))}", "", channel, source="scorer")]

    def evidence(self, text: str, channel: str, category: str, n: int = 5) -> list[str]:
        """The words that pushed hardest from benign towards `category` (see explain.evidence)."""
        return evidence(self.model, text, channel, category, n)
