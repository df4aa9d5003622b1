"""Word documents (python-docx): paragraphs and tables in document order, one Section per heading
block. Paragraphs styled "Heading 1".."Heading 6" build the heading path; a table row becomes one
paragraph of its cells joined by " | "."""

from __future__ import annotations

import re
from pathlib import Path
from zipfile import BadZipFile

from xuetu.rag.document import LoadError, Section
from xuetu.rag.loaders.outline import Outline

_HEADING_STYLE = re.compile(r"^heading ([1-6])$", re.IGNORECASE)


def load(path: Path) -> list[Section]:
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, BadZipFile, KeyError, ValueError) as e:
        raise LoadError(f"not a valid DOCX file: {e}") from e
    outline = Outline()
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in _table_rows(block):
                outline.add(row)
            continue
        text = block.text.strip()
        style = block.style.name if block.style is not None else ""
        if level := _HEADING_STYLE.match(style or ""):
            outline.heading(int(level.group(1)), text)
        elif text:
            outline.add(text)
    return outline.sections()


def _table_rows(table) -> list[str]:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = " ".join(cell.text.split())
            # python-docx repeats a merged cell once per grid column it spans; keep it once.
            if text and (not cells or cells[-1] != text):
                cells.append(text)
        if cells:
            rows.append(" | ".join(cells))
    return rows
