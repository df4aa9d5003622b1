"""Model names in Ollama's `[namespace/]model:tag` convention, validated so they cannot escape the store."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from xuetu.errors import InvalidName

# One path segment: starts with a letter or digit, then letters, digits, '.', '_' or '-'.
_SEGMENT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")
DEFAULT_TAG = "latest"


@dataclass(frozen=True)
class ModelName:
    model: str
    tag: str = DEFAULT_TAG
    namespace: str | None = None

    def __str__(self) -> str:
        prefix = f"{self.namespace}/" if self.namespace else ""
        return f"{prefix}{self.model}:{self.tag}"

    @property
    def parts(self) -> tuple[str, ...]:
        """Path segments below models/ in the store."""
        return tuple(p for p in (self.namespace, self.model, self.tag) if p)


def _check_segment(seg: str, raw: str, what: str) -> str:
    if ".." in seg or not _SEGMENT.match(seg):
        raise InvalidName(
            f"invalid model name {raw!r}: the {what} {seg!r} may only use letters, digits, '.', '_' and '-'"
            " (no '..', no leading dot or dash)",
            "Use names like 'smollm2:135m' or 'myteam/assistant:v1'.",
        )
    return seg


def parse_name(raw: str) -> ModelName:
    """Parse and validate a store name; names are case-insensitive and stored lowercase."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidName("the model name is empty", "Use names like 'smollm2:135m'.")
    name = raw.strip().lower()
    if name.startswith(("/", "~", "\\")) or "\\" in name or "\x00" in name or re.match(r"^[a-z]:[\\/]", name):
        raise InvalidName(f"invalid model name {raw!r}: absolute paths are not model names",
                          "To add a local folder or .gguf file, use `xuetu create NAME --from PATH`.")
    base, _, tag = name.partition(":")
    if ":" in tag:
        raise InvalidName(f"invalid model name {raw!r}: more than one ':'", "Use name:tag, e.g. 'smollm2:135m'.")
    segments = base.split("/")
    if len(segments) > 2:
        raise InvalidName(f"invalid model name {raw!r}: at most one '/' (namespace/model:tag)")
    namespace = _check_segment(segments[0], raw, "namespace") if len(segments) == 2 else None
    model = _check_segment(segments[-1], raw, "model")
    tag = _check_segment(tag or DEFAULT_TAG, raw, "tag")
    return ModelName(model=model, tag=tag, namespace=namespace)


def closest(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """The names a user most likely meant, for 'did you mean' hints."""
    name = name.lower()
    found = difflib.get_close_matches(name, candidates, n=n, cutoff=0.5)
    if not found:
        stem = name.split(":")[0]
        found = [c for c in candidates if c.split(":")[0] == stem][:n]
    return found
