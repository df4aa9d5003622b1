"""Example data that ships inside the package, written for xuetu: `ai_tutor` is the quickstart's
"AI learning assistant" (bilingual questions and answers about LLM concepts, and documents on them)."""

from __future__ import annotations

from pathlib import Path

from xuetu.errors import XuetuError


def example_path(name: str) -> Path:
    folder = Path(__file__).parent / name
    if not folder.is_dir() or name.startswith(("_", ".")):
        known = sorted(p.name for p in Path(__file__).parent.iterdir() if p.is_dir() and not p.name.startswith("_"))
        raise XuetuError(f"no example named {name!r}", f"Examples: {', '.join(known)}.")
    return folder
