"""`xuetu data split`: a deterministic train/val/test split in which near duplicates stay together,
so no question leaks from training into evaluation in slightly different words.

Preference records are grouped by their prompt alone: the pairs (and KTO examples) of one prompt land in one
split, so a prompt trained on with some answers is not evaluated with others. A record is written whole, as read."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from xuetu.data import formats, prefs
from xuetu.data.minhash import CJK_THRESHOLD, THRESHOLD, MinHasher, NearDupIndex, is_cjk_text
from xuetu.data.normalize import normalize
from xuetu.data.readers import read
from xuetu.data.writer import JsonlWriter
from xuetu.errors import XuetuError


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def split(inp: Path, out_dir: Path, val: float = 0.1, test: float = 0.1, seed: int = 42,
          threshold: float = THRESHOLD, cjk_threshold: float = CJK_THRESHOLD) -> dict[str, int]:
    if val < 0 or test < 0 or val + test >= 1:
        raise XuetuError("--val and --test must be >= 0 and leave something to train on")
    items = []
    for item in read(Path(inp)):
        if item.error:
            raise XuetuError(f"{item.source}: {item.error}", "Run `xuetu data clean --on-error skip` first.")
        try:
            record = formats.to_record(item.obj, {"source": item.source})
            items.append((item.obj, normalize(prefs.prompt_text(record) if record.is_preference else record.joined())))
        except formats.FormatError as e:
            raise XuetuError(f"{item.source}: {e}") from None
    if not items:
        raise XuetuError(f"{inp} holds no records")
    parent = list(range(len(items)))
    hasher, index = MinHasher(), NearDupIndex(threshold, cjk_threshold)
    exact: dict[bytes, int] = {}
    for i, (_, text) in enumerate(items):
        key = hashlib.blake2b(text.encode(), digest_size=8).digest()
        if key in exact:
            parent[_find(parent, i)] = _find(parent, exact[key])
            continue
        exact[key] = i
        sig, cjk = hasher.signature(text), is_cjk_text(text)
        for j in index.query_all(sig, cjk):
            parent[_find(parent, i)] = _find(parent, j)
        index.insert(i, sig, cjk)
    groups: dict[int, list[int]] = {}
    for i in range(len(items)):
        groups.setdefault(_find(parent, i), []).append(i)
    order = sorted(groups)  # by first member: independent of hash seeds
    random.Random(seed).shuffle(order)
    n = len(items)
    targets = {"test": round(n * test), "val": round(n * val)}
    assignment: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for root in order:
        members = groups[root]
        part = next((p for p in ("test", "val") if len(assignment[p]) < targets[p]), "train")
        assignment[part].extend(members)
    out_dir = Path(out_dir)
    for part, members in assignment.items():
        with JsonlWriter(out_dir / f"{part}.jsonl") as w:
            for i in sorted(members):
                w.write(items[i][0])
    return {part: len(members) for part, members in assignment.items()} | {"groups": len(groups)}
