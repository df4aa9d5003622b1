"""Turning a growing token stream into clean text deltas, shared by every engine.

Two things make this fiddly: a Chinese character can span several tokens (so a delta may
not end in half a character), and stop strings must be cut out even when they arrive split
across tokens (so text that could be the start of a stop string is held back).
"""

from __future__ import annotations


class StopStringStream:
    """Feed the full decoded text so far; get back the part that is safe to show."""

    def __init__(self, stops: list[str]):
        self.stops = [s for s in stops if s]
        self.emitted = 0
        self.stopped = False

    def push(self, text: str) -> str:
        if text.endswith("\ufffd"):  # an incomplete UTF-8 character: wait for its next token
            return ""
        cut = min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            return self._emit(text, cut)
        hold = 0
        for s in self.stops:
            for k in range(min(len(s) - 1, len(text)), 0, -1):
                if text.endswith(s[:k]):
                    hold = max(hold, k)
                    break
        return self._emit(text, len(text) - hold)

    def flush(self, text: str) -> str:
        """At the end of generation: whatever is left (minus a trailing partial character)."""
        if self.stopped:
            return ""
        text = text.rstrip("\ufffd")
        cut = min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=-1)
        self.stopped = cut >= 0
        return self._emit(text, cut if cut >= 0 else len(text))

    def _emit(self, text: str, end: int) -> str:
        if end <= self.emitted:
            return ""
        delta = text[self.emitted:end]
        self.emitted = end
        return delta
