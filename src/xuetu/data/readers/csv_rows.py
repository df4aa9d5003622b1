"""CSV or TSV with a header row; each row becomes an object keyed by the header."""

from __future__ import annotations

import csv
from pathlib import Path

from xuetu.data.encoding import open_text
from xuetu.data.readers import Item

csv.field_size_limit(1 << 27)


def read(path: Path):
    with open_text(path) as f:
        reader = csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        if not reader.fieldnames:
            return
        for row in reader:
            where = f"{path.name}:{reader.line_num}"
            if None in row or any(v is None for v in row.values()):
                yield Item(where, error=f"expected {len(reader.fieldnames)} columns")
                continue
            yield Item(where, dict(row))
