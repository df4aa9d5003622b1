"""Streamed output through the guards, with a hold-back window: the last `hold_back` characters are kept
until more text arrives (or the answer ends), so a flagged span is checked whole before any of it is sent.

feed() returns what may be sent now; close() returns the rest. Once a block fires, nothing more is sent:
`blocked` is set and `verdict` says why (its text is the refusal note to end the stream with).
"""

from __future__ import annotations

from xuetu.safety import pii

CONTEXT = 48  # characters already sent that each check also sees, for matches that straddle a release
RELEASE = 48  # characters that pile up beyond the hold-back before the next check and release
FIRST_RELEASE = 8  # the same before the first release: the answer starts showing soon (time to first token)


class StreamGuard:
    def __init__(self, guard, key: str | None = None):
        self.guard, self.key = guard, key
        self.window = guard.policy.hold_back
        self.raw = ""
        self.pending = ""
        self.blocked = False
        self.verdict = None
        self.findings: list = []

    def _check_tail(self) -> bool:
        tail = self.raw[-(len(self.pending) + self.window + CONTEXT):]
        v = self.guard.check(tail, "output", self.key, direction="output", with_pii=False)  # masked on release
        if v.blocked:
            self.blocked, self.verdict = True, v
            self.findings += v.findings
            self.pending = ""
        return not self.blocked

    def _release(self, upto: int) -> str:
        """Send pending[:upto], personal data masked when the policy masks it (the tail check passed it). The
        personal data is found in all of pending, so a number is judged with what follows it, and a release
        never cuts through one: it waits for the rest."""
        if self.guard.policy.action("pii", self.key) != "mask":
            out, self.pending = self.pending[:upto], self.pending[upto:]
            return out
        found = pii.spans(self.pending)
        for start, end, _, _ in found:
            if start < upto < end:
                upto = start
        out, self.pending = self.pending[:upto], self.pending[upto:]
        found = [f for f in found if f[1] <= upto]
        self.findings += pii.find(out, "output", found)
        return pii.mask_spans(out, [(s, e, placeholder) for s, e, _, placeholder in found])

    def feed(self, delta: str) -> str:
        """Checks run when a window's worth has piled up beyond the hold-back, not on every token."""
        if self.blocked or not delta:
            return ""
        first = len(self.pending) == len(self.raw)  # nothing sent yet
        self.raw += delta
        self.pending += delta
        if len(self.pending) < self.window + (FIRST_RELEASE if first else RELEASE) or not self._check_tail():
            return ""
        return self._release(len(self.pending) - self.window)

    def close(self) -> str:
        if self.blocked or not self._check_tail():
            return ""
        return self._release(len(self.pending))
