"""Split a streamed answer into text the client may see now and the tool calls it makes.

Text that could be the start of a call is held back until it is known not to be one, so a half-written
call never reaches the client as content; the calls are read once the answer ends.
"""

from __future__ import annotations

import uuid

from xuetu.tools.calls import Parsed, loads_calls
from xuetu.tools.dialects import Dialect


def new_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


class CallSplitter:
    def __init__(self, dialect: Dialect, known: set[str], forced: bool = False):
        self.dialect, self.known, self.forced = dialect, known, forced
        self.text = ""
        self.shown = 0
        self.holding = forced  # a forced call is bare JSON from its first character

    def push(self, delta: str) -> str:
        """The part of the answer so far that is content for certain and not yet handed out."""
        self.text += delta
        if self.holding:
            return ""
        start = self._call_start()
        if start is not None:
            self.holding = True
            text = self._show(start)
            return text if text.strip() else ""  # only whitespace before the call: not worth a delta
        return self._show(len(self.text) - self._partial_marker())

    def finish(self) -> tuple[str, Parsed]:
        """(content not yet handed out, the whole answer parsed), once the answer has ended."""
        parsed = self._parse()
        if parsed.calls:
            for call in parsed.calls:
                call.id = call.id or new_id()
            shown = self.text[:self.shown].strip()
            rest = parsed.content[len(shown):] if parsed.content.startswith(shown) else ""
            self.shown = len(self.text)
            return rest.strip() if shown == "" else rest, parsed
        return self._show(len(self.text)), parsed

    def _parse(self) -> Parsed:
        if self.forced:
            calls = loads_calls(self.text.strip())
            if calls is None:
                return Parsed(self.text, malformed="the forced tool call did not finish (raise max_tokens)")
            parsed = Parsed("", calls)
        else:
            parsed = self.dialect.parse(self.text)
        unknown = [c.name for c in parsed.calls if c.name not in self.known]
        if unknown:
            return Parsed(self.text, malformed=f"the model called {unknown[0]!r}, which is not in tools")
        return parsed

    def _show(self, end: int) -> str:
        out = self.text[self.shown:end] if end > self.shown else ""
        self.shown = max(self.shown, end)
        return out

    def _call_start(self) -> int | None:
        found = [i for i in (self.text.find(m, max(self.shown - len(m), 0)) for m in self.dialect.markers) if i >= 0]
        head = self.text.lstrip()
        if self.shown == 0 and head and any(head.startswith(m) or m.startswith(head) for m in self.dialect.leading):
            found.append(len(self.text) - len(head))
        return min(found) if found else None

    def _partial_marker(self) -> int:
        """How many characters at the end could begin a marker (held back until the next delta)."""
        if self.shown == 0 and not self.text.strip() and self.dialect.leading:
            return len(self.text)  # only whitespace yet: the answer may still open with a call
        best = 0
        for m in self.dialect.markers:
            for n in range(min(len(m) - 1, len(self.text)), 0, -1):
                if self.text.endswith(m[:n]):
                    best = max(best, n)
                    break
        return best
