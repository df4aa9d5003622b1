"""The canonical record every reader produces and every writer consumes.

A record is either a conversation (`messages`, with an optional `system` prompt) or raw `text`
for pretraining. `meta` keeps where it came from and any fields the source had besides.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Record:
    messages: list[dict] = field(default_factory=list)
    """[{"role": "user" | "assistant" | "tool", "content": str}, ...] without the system prompt."""
    system: str | None = None
    text: str | None = None
    """Raw text, for pretraining records (then messages is empty)."""
    meta: dict = field(default_factory=dict)
    """source ("file:line"), format (the detected input format), and extra fields of the input."""

    @property
    def is_text(self) -> bool:
        return self.text is not None

    def contents(self) -> list[str]:
        """Every piece of text in the record, in order."""
        if self.is_text:
            return [self.text]
        return ([self.system] if self.system else []) + [m["content"] for m in self.messages]

    def joined(self) -> str:
        """All text, for hashing, language id and quality checks."""
        return "\n".join(self.contents())

    def map_text(self, fn) -> "Record":
        """A copy with fn applied to every text field."""
        return Record(messages=[{**m, "content": fn(m["content"])} for m in self.messages],
                      system=fn(self.system) if self.system else self.system,
                      text=fn(self.text) if self.text is not None else None, meta=self.meta)

    @property
    def turns(self) -> int:
        return sum(1 for m in self.messages if m["role"] == "assistant")
