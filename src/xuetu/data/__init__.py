"""Data preparation: read, clean, deduplicate, format and inspect training data.

    for record in xuetu.data.load("train.jsonl"): ...
    example = tokenize_for_training(tokenizer, record)   # input_ids + labels (loss on answers only)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from xuetu.data.clean import CleanArgs, Summary, clean
from xuetu.data.formats import FORMATS, FormatError, detect, from_record, to_record
from xuetu.data.record import Record
from xuetu.data.template import IGNORE, TrainingExample, tokenize_for_training
from xuetu.errors import XuetuError

__all__ = ["load", "Record", "clean", "CleanArgs", "Summary", "tokenize_for_training", "TrainingExample", "IGNORE",
           "FORMATS", "detect", "to_record", "from_record", "FormatError"]


def load(path: str | Path, on_error: str = "fail") -> Iterator[Record]:
    """Canonical records from a file or folder; a malformed record raises (or is skipped with on_error="skip")."""
    from xuetu.data.readers import read

    for item in read(Path(path)):
        try:
            if item.error:
                raise FormatError(item.error)
            yield to_record(item.obj, {"source": item.source})
        except FormatError as e:
            if on_error == "fail":
                raise XuetuError(f"{item.source}: {e}") from None
