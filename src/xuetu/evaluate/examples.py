"""Evaluation data: any file `xuetu data` reads (JSONL, JSON, CSV, Parquet; Alpaca, ShareGPT, messages or
question/answer rows), turned into examples of a question to ask and the reference answer to score against.

The last assistant turn of each conversation is the reference; everything before it is what the model sees.
Extra fields ride along: `keywords` (a list, or a string split on , ; ，；) feeds the keyword hit rate and
`label` marks a classification example. Plain-text records (`{"text": ...}` or .txt files) are for perplexity.

A tool-calling example (messages or ShareGPT with `tools`, as `xuetu data` reads them) has the tools offered
and, when its last assistant turn calls tools, the reference calls: the tool metrics score those.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from xuetu.errors import XuetuError


@dataclass
class Example:
    id: str
    """Stable within a file: the record's position, e.g. "12"."""
    messages: list[dict]
    """The conversation up to (not including) the answer; the last message is the user's question."""
    reference: str
    system: str | None = None
    keywords: list[str] = field(default_factory=list)
    label: str | None = None
    source: str = ""
    extra: dict = field(default_factory=dict)
    tools: list[dict] | None = None
    """The tools offered (OpenAI's shape), for tool-calling examples."""
    calls: list[dict] = field(default_factory=list)
    """The reference's tool calls, [{"name", "arguments"}]; empty when the reference answers in words."""

    @property
    def question(self) -> str:
        return self.messages[-1]["content"]

    def to_dict(self) -> dict:
        return {"id": self.id, "question": self.question, "reference": self.reference, "source": self.source,
                **({"keywords": self.keywords} if self.keywords else {}), **({"label": self.label} if self.label else {}),
                **({"calls": self.calls} if self.calls else {})}


def _keywords(value, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [k.strip() for k in re.split(r"[,;，；、]", value) if k.strip()]
    if isinstance(value, list) and all(isinstance(k, str) for k in value):
        return [k.strip() for k in value if k.strip()]
    raise XuetuError(f"{where}: keywords must be a list of strings or a comma-separated string, got {value!r}")


def file_digest(path: str | Path) -> str:
    """sha256 of a file, or of a folder's readable files (names and contents), for cache keys."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def load_examples(path: str | Path, limit: int | None = None) -> list[Example]:
    """Question/answer examples; records without an assistant answer to score are an error that names them."""
    from xuetu import data

    out, skipped_text = [], 0
    for i, record in enumerate(data.load(path)):
        where = record.meta.get("source", f"record {i + 1}")
        if record.is_text:
            skipped_text += 1
            continue
        msgs = record.messages
        if len(msgs) < 2 or msgs[-1]["role"] != "assistant" or msgs[-2]["role"] not in ("user", "tool"):
            raise XuetuError(f"{where}: an evaluation example needs a question and a reference answer",
                             'Give each line e.g. {"question": "…", "answer": "…"} (or messages ending with '
                             "the assistant's reference answer).")
        extra = dict(record.meta.get("extra") or {})
        label = extra.pop("label", None)
        calls = [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]}
                 for c in msgs[-1].get("tool_calls") or []]
        out.append(Example(id=str(i), messages=msgs[:-1], reference=msgs[-1]["content"], system=record.system,
                           keywords=_keywords(extra.pop("keywords", None), where),
                           label=None if label is None else str(label), source=where, extra=extra,
                           tools=record.tools, calls=calls))
        if limit and len(out) >= limit:
            break
    if not out:
        hint = ("It holds only plain text: use --metrics perplexity for that." if skipped_text
                else "Give it lines like {\"question\": \"…\", \"answer\": \"…\"}.")
        raise XuetuError(f"{path} holds no question/answer examples", hint)
    return out


def load_texts(path: str | Path, limit: int | None = None) -> list[str]:
    """Texts for perplexity: plain-text records as they are, conversations as their joined turns."""
    from xuetu import data

    texts = [r.text if r.is_text else "\n".join(m["content"] for m in r.messages) for r in data.load(path)]
    texts = [t for t in texts if t.strip()][: limit or None]
    if not texts:
        raise XuetuError(f"{path} holds no text to measure perplexity on")
    return texts
