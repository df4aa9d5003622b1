"""Streamed output through the guards, with a hold-back window: the last `hold_back` characters are kept
until more text arrives (or the answer ends), so a flagged span is checked whole before any of it is sent.

feed() returns what may be sent now; close() returns the rest. Once a block fires, nothing more is sent:
`blocked` is set and `verdict` says why (its text is the refusal note to end the stream with).
"""

from __future__ import annotations

from xuetu.safety import pii

CONTEXT = 200  # characters already sent that each check also sees, for matches that straddle a chunk


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
        v = self.guard.check(tail, "output", self.key, direction="output")
        if v.blocked:
            self.blocked, self.verdict = True, v
            self.findings += v.findings
            self.pending = ""
        return not self.blocked

    def _release(self, upto: int) -> str:
        out, self.pending = self.pending[:upto], self.pending[upto:]
        if not out:
            return ""
        v = self.guard.check(out, "output", self.key, direction="output")
        self.findings += [f for f in v.findings if f not in self.findings]
        return v.text if v.action == "mask" else out

    def feed(self, delta: str) -> str:
        if self.blocked or not delta:
            return ""
        self.raw += delta
        self.pending += delta
        if not self._check_tail():
            return ""
        upto = len(self.pending) - self.window
        if upto <= 0:
            return ""
        for start, end, _, _ in pii.spans(self.pending):
            if start < upto < end:  # never cut through personal data: hold it back whole
                upto = start
        return self._release(upto)

    def close(self) -> str:
        if self.blocked or not self._check_tail():
            return ""
        return self._release(len(self.pending))
