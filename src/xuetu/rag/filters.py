"""What a retrieval filter means, written once for the vector stores and the BM25 index.

A filter is `{"source": [...], "tags": [...]}`. A chunk matches when its `source` metadata is one of
the sources AND it carries at least one of the tags. A missing, None or empty list puts no limit on
that field, so `{"tags": []}` matches everything, as an unset CLI flag would.

Metadata values must be flat (str/int/float/bool) because Chroma allows nothing else, so a chunk's
tags are stored as boolean keys: tag "draft" is `{"tag:draft": True}`. Qdrant's payload paths cannot
contain ":", so the Qdrant store also keeps them as a list (see stores/qdrant.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from xuetu.errors import XuetuError

TAG_PREFIX = "tag:"
KEYS = ("source", "tags")


def tag_key(tag: str) -> str:
    """The metadata key that marks a chunk as carrying `tag`."""
    return TAG_PREFIX + tag


def tags_of(metadata: dict) -> list[str]:
    """The tag names a chunk's metadata carries."""
    return [k[len(TAG_PREFIX):] for k, v in metadata.items() if k.startswith(TAG_PREFIX) and v is True]


@dataclass(frozen=True)
class Where:
    sources: tuple[str, ...] = ()
    """Allowed sources; empty means any."""
    tags: tuple[str, ...] = ()
    """At least one of these tags; empty means any."""

    def __bool__(self) -> bool:
        return bool(self.sources or self.tags)

    def matches(self, metadata: dict) -> bool:
        if self.sources and metadata.get("source") not in self.sources:
            return False
        return not self.tags or any(metadata.get(tag_key(t)) is True for t in self.tags)


def parse_where(where: dict | None) -> Where:
    """Check a filter dict and turn it into a Where; a malformed one is the user's error, said plainly."""
    if not where:
        return Where()
    if not isinstance(where, dict):
        raise XuetuError(f"a filter must be a dict like {{'source': [...], 'tags': [...]}}, got {where!r}")
    unknown = sorted(set(where) - set(KEYS))
    if unknown:
        raise XuetuError(f"unknown filter key(s): {', '.join(map(str, unknown))}", f"Filter by: {', '.join(KEYS)}.")
    return Where(sources=_strings(where, "source"), tags=_strings(where, "tags"))


def _strings(where: dict, key: str) -> tuple[str, ...]:
    value = where.get(key)
    if value is None:
        return ()
    if isinstance(value, str):  # one name instead of a list: the obvious meaning, not a list of letters
        value = [value]
    if not isinstance(value, (list, tuple, set)) or not all(isinstance(v, str) for v in value):
        raise XuetuError(f"filter {key!r} must be a list of strings, got {value!r}")
    return tuple(dict.fromkeys(value))  # de-duplicated, order kept
