"""PDF (pypdf): one Section per page that has text, `page` numbered from 1.

A PDF encrypted with an empty user password (only its permissions are locked) is read; one that
needs a password, a damaged one, or one whose pages are only images (a scan; no OCR here) is refused.
"""

from __future__ import annotations

from pathlib import Path

from xuetu.rag.document import LoadError, Section


def load(path: Path) -> list[Section]:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            try:
                unlocked = reader.decrypt("")
            except DependencyError as e:  # AES needs the optional `cryptography` package
                raise LoadError(f"encrypted PDF that needs the 'cryptography' package to open: {e}") from e
            if not unlocked:
                raise LoadError("encrypted PDF (password protected)")
        sections = []
        for number, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            if text.strip():
                sections.append(Section(text, page=number))
    except LoadError:
        raise
    except Exception as e:  # pypdf raises many types on damaged files (PdfReadError, KeyError, ValueError...)
        raise LoadError(f"corrupt PDF: {type(e).__name__}: {e}") from e
    if not sections:
        raise LoadError("PDF has no extractable text; it may be scanned images (OCR is not supported)")
    return sections
