"""Decode text files whatever their encoding: UTF-8 (with or without a BOM), UTF-16, or GBK/GB18030,
which many Chinese tools still write. Anything else is reported, never silently garbled."""

from __future__ import annotations

import codecs
import io
from pathlib import Path

from xuetu.errors import XuetuError

_BOMS = [(codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")]
SAMPLE = 1 << 20


def detect_encoding(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(SAMPLE)
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as e:
        if e.start >= len(head) - 4:  # a multi-byte character cut by the sample's end
            return "utf-8"
    try:
        head.decode("gb18030")  # a superset of GBK and GB2312
        from charset_normalizer import from_bytes

        best = from_bytes(head).best()
        if best is None or best.encoding.replace("_", "").lower() in ("gb18030", "gbk", "gb2312", "big5"):
            return "gb18030" if best is None or best.encoding != "big5" else "big5"
        return best.encoding
    except UnicodeDecodeError:
        pass
    raise XuetuError(f"{path}: cannot tell its text encoding (not UTF-8, UTF-16 or GBK)",
                     "Re-save it as UTF-8, e.g. `iconv -f YOUR_ENCODING -t UTF-8 in > out`.")


def open_text(path: Path) -> io.TextIOWrapper:
    """Open for reading as text in its detected encoding; newline='' keeps CSV quoting intact."""
    encoding = detect_encoding(path)
    return open(path, encoding=encoding, errors="strict", newline="")
