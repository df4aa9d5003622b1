"""Turning a growing token stream into clean text deltas, shared by every engine.

Two things make this fiddly: a Chinese character can span several tokens (so a delta may
not end in half a character), and stop strings must be cut out even when they arrive split
across tokens (so text that could be the start of a stop string is held back).
"""

from __future__ import annotations


class _Matcher:
    """Knuth-Morris-Pratt over one stop string: `q` is how much of it the text seen so far ends with."""

    __slots__ = ("s", "fail", "q")

    def __init__(self, s: str):
        fail, k = [0] * len(s), 0
        for i in range(1, len(s)):
            while k and s[i] != s[k]:
                k = fail[k - 1]
            if s[i] == s[k]:
                k += 1
            fail[i] = k
        self.s, self.fail, self.q = s, fail, 0

    def step(self, c: str) -> bool:
        """Advance by one character; True when the whole stop string has just been seen."""
        s, q = self.s, self.q
        while q and s[q] != c:
            q = self.fail[q - 1]
        if s[q] == c:
            q += 1
        if q == len(s):
            self.q = self.fail[q - 1]
            return True
        self.q = q
        return False


class StopStringStream:
    """Feed the full decoded text so far; get back the part that is safe to show.

    Each character is looked at once per stop string (Knuth-Morris-Pratt), so the cost of a stream is linear
    in its text: a client's stop strings cannot make every token slower than the one before.
    """

    def __init__(self, stops: list[str]):
        self.stops = [s for s in stops if s]
        self._matchers = [_Matcher(s) for s in self.stops]
        self._chars = frozenset("".join(self.stops))
        self._partial = False  # some stop string is part-way matched
        self._longest = max((len(s) for s in self.stops), default=0)
        self._seen = 0
        self.emitted = 0
        self.stopped = False

    def _scan(self, text: str) -> int:
        """Where the earliest stop string in the new text starts, or -1. Characters already scanned are not
        scanned again; a decoder that rewrote earlier text (it got shorter) starts the scan over."""
        if len(text) < self._seen:
            self._matchers = [_Matcher(s) for s in self.stops]
            self._seen = 0
        cut, end = -1, len(text)
        i = self._seen
        while i < end:
            c = text[i]
            if c not in self._chars:  # in no stop string: every partial match breaks here
                if self._partial:
                    for m in self._matchers:
                        m.q = 0
                    self._partial = False
                i += 1
                continue
            self._partial = True
            for m in self._matchers:
                if m.step(c):
                    start = i - len(m.s) + 1
                    if cut < 0 or start < cut:
                        cut = start
                        # a stop that starts earlier still must end within the longest stop's reach
                        end = min(end, start + self._longest - 1)
            i += 1
        self._seen = i
        return cut

    def push(self, text: str) -> str:
        if text.endswith("\ufffd"):  # an incomplete UTF-8 character: wait for its next token
            return ""
        if self.stopped:
            return ""
        cut = self._scan(text) if self.stops else -1
        if cut >= 0:
            self.stopped = True
            return self._emit(text, cut)
        hold = max((m.q for m in self._matchers), default=0)
        return self._emit(text, len(text) - hold)

    def flush(self, text: str) -> str:
        """At the end of generation: whatever is left (minus a trailing partial character)."""
        if self.stopped:
            return ""
        text = text.rstrip("\ufffd")
        cut = self._scan(text) if self.stops else -1
        self.stopped = cut >= 0
        return self._emit(text, cut if cut >= 0 else len(text))

    def _emit(self, text: str, end: int) -> str:
        if end <= self.emitted:
            return ""
        delta = text[self.emitted:end]
        self.emitted = end
        return delta
