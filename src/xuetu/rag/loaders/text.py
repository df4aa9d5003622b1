"""Plain text (.txt): the whole file is one Section. Also home of `read_text`, which every text-based
loader uses to decode UTF-8, UTF-16 or GB18030 and to refuse binary files that wear a text suffix."""

from __future__ import annotations

from pathlib import Path

from xuetu.data.encoding import detect_encoding
from xuetu.errors import XuetuError
from xuetu.rag.document import LoadError, Section

_SAMPLE = 8192
_MAX_CONTROL_SHARE = 0.05  # text has almost no C0 control characters; decoded binary is full of them


def read_text(path: Path) -> str:
    """The file decoded in its detected encoding, newlines normalised to '\\n'."""
    data = Path(path).read_bytes()
    is_utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
    if not is_utf16 and b"\x00" in data:
        raise LoadError("binary file, not text (it contains NUL bytes)")
    try:
        text = data.decode(detect_encoding(path))
    except (XuetuError, UnicodeDecodeError, LookupError) as e:
        raise LoadError("binary or undecodable file: not UTF-8, UTF-16 or GB18030 text") from e
    sample = text[:_SAMPLE]
    controls = sum(1 for c in sample if c < " " and c not in "\t\n\r\f\v")
    if controls > len(sample) * _MAX_CONTROL_SHARE:
        raise LoadError("binary file, not text (too many control characters)")
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def load(path: Path) -> list[Section]:
    # Paragraph splitting is the chunker's job; a Section is a place in the document, and a .txt has one.
    return [Section(read_text(path))]
