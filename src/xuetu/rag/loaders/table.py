"""Tables: CSV/TSV rows and JSON Lines records, each one Section with meta {"row": n}.

A CSV row reads as "column: value" lines (n counts data rows from 1, after the header); a JSONL
record as its "text" or "content" field when it has one, else as "key: value" lines (n is its line
number). Malformed rows are skipped; a file where none parse is refused.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from xuetu.rag.document import LoadError, Section
from xuetu.rag.loaders.text import read_text

csv.field_size_limit(1 << 27)


def load(path: Path) -> list[Section]:
    text = read_text(path)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return _jsonl_sections(text)
    return _csv_sections(text, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")


def _csv_sections(text: str, delimiter: str) -> list[Section]:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    if not reader.fieldnames:
        raise LoadError("empty table (no header row)")
    sections, rows = [], 0
    for rows, row in enumerate(reader, start=1):
        if None in row or any(v is None for v in row.values()):
            continue  # too many or too few cells: the columns cannot be trusted
        lines = [f"{k}: {v.strip()}" for k, v in row.items() if k and v and v.strip()]
        if lines:
            sections.append(Section("\n".join(lines), meta={"row": rows}))
    if rows and not sections:
        raise LoadError(f"no readable rows: none of {rows} matches the {len(reader.fieldnames)}-column header")
    return sections


def _jsonl_sections(text: str) -> list[Section]:
    sections, bad = [], 0
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        sections.append(Section(_record_text(record), meta={"row": number}))
    if bad and not sections:
        raise LoadError(f"no valid JSON lines (all {bad} are malformed)")
    return sections


def _record_text(record) -> str:
    if isinstance(record, str):
        return record
    if not isinstance(record, dict):
        return json.dumps(record, ensure_ascii=False)
    for key in ("text", "content"):
        if isinstance(record.get(key), str) and record[key].strip():
            return record[key]
    return "\n".join(f"{k}: {v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}"
                     for k, v in record.items() if v not in (None, ""))
