"""An optional classifier: any Hugging Face text-classification model, its labels mapped onto categories.

    classifier: {model: unitary/toxic-bert, threshold: 0.8, labels: {toxic: hate, threat: violence},
                 channels: [user, output]}

A store name (`xuetu pull`) or a local folder; loaded once, on first use. Labels not in `labels` are ignored.
"""

from __future__ import annotations

from xuetu.errors import XuetuError
from xuetu.safety.rules import Finding


class Classifier:
    def __init__(self, spec: dict):
        self.model = str(spec["model"])
        self.threshold = float(spec.get("threshold", 0.8))
        self.labels = {str(k).lower(): str(v) for k, v in (spec.get("labels") or {}).items()}
        self.channels = tuple(spec.get("channels") or ("user", "document", "output"))
        if not self.labels:
            raise XuetuError("the classifier needs labels: a mapping of its label names to guard categories",
                             "e.g. labels: {toxic: hate, INJECTION: injection}")
        self._pipe = None

    def _pipeline(self):
        if self._pipe is None:
            from pathlib import Path

            from transformers import pipeline

            source = self.model
            if not Path(source).exists():
                from xuetu import models

                ref = models.resolve(source)
                source = str(ref.hf_dir or ref.path)
            self._pipe = pipeline("text-classification", model=source, top_k=None, truncation=True)
        return self._pipe

    def find(self, text: str, channel: str) -> list[Finding]:
        if channel not in self.channels or not text.strip():
            return []
        scores = self._pipeline()(text[:4000])
        scores = scores[0] if scores and isinstance(scores[0], list) else scores
        out = []
        for s in scores:
            category = self.labels.get(str(s["label"]).lower())
            if category and s["score"] >= self.threshold:
                out.append(Finding(category, f"classifier.{s['label']}", f"{self.model} scored {s['label']} "
                                   f"{s['score']:.2f} (threshold {self.threshold})", "", channel, source="classifier"))
        return out
