"""A GGUF file's header: its metadata and its tensors' names, shapes and types, read without the arrays.

gguf's `GGUFReader` builds a numpy view for every element of every field; for a 49,152-token vocabulary that is
7 to 13 seconds on a laptop core, paid on the first /api/tags and on every model load. What xuetu needs from the
header (architecture, context length, file type, whether a chat template is there, parameter count, tensor types)
is read here in one pass that steps over arrays, in milliseconds. The format: github.com/ggml-org/ggml, docs/gguf.md.
"""

from __future__ import annotations

import math
import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

from xuetu.errors import XuetuError

MAGIC = b"GGUF"
STRING, ARRAY = 8, 9
SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
MAX_DIMS = 8
MAX_NESTING = 8  # arrays of arrays: a damaged or hostile file could nest them until the stack runs out


class NotGGUF(XuetuError):
    """The file is not a GGUF file, or its header is cut short or inconsistent."""

    def __init__(self, message: str):
        super().__init__(message, "Download or export the model again; `xuetu rm` removes a broken one.")


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    type: int  # a ggml type number (gguf.GGMLQuantizationType)

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)


@dataclass
class Header:
    version: int
    fields: dict[str, object] = field(default_factory=dict)  # scalars and strings; an array as its length
    tensors: list[Tensor] = field(default_factory=list)


class _Cursor:
    def __init__(self, buf, endian: str):
        self.buf, self.at, self.endian = buf, 0, endian

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.at + size > len(self.buf):
            raise NotGGUF("the header ends early: the file is cut short")
        value = struct.unpack_from(self.endian + fmt, self.buf, self.at)
        self.at += size
        return value[0] if len(value) == 1 else value

    def string(self, decode: bool = True):
        n = self.take("Q")
        if self.at + n > len(self.buf):
            raise NotGGUF("a string runs past the end of the file")
        raw = self.buf[self.at:self.at + n] if decode else None
        self.at += n
        return bytes(raw).decode("utf-8", errors="replace") if decode else None

    def value(self, kind: int):
        if kind == STRING:
            return self.string()
        if kind == ARRAY:
            inner, count = self.take("I"), self.take("Q")
            self.skip_array(inner, count)
            return count
        if kind not in SCALARS:
            raise NotGGUF(f"unknown value type {kind} in the header")
        return self.take(SCALARS[kind])

    def skip_array(self, kind: int, count: int, depth: int = 0) -> None:
        if depth > MAX_NESTING:
            raise NotGGUF(f"arrays nested more than {MAX_NESTING} deep: the header is damaged")
        if kind in SCALARS:
            self.at += struct.calcsize(SCALARS[kind]) * count
        elif kind == STRING:  # a vocabulary: 50,000 to 150,000 strings, stepped over in one tight loop
            length, at, end = struct.Struct(self.endian + "Q").unpack_from, self.at, len(self.buf)
            for _ in range(count):
                if at + 8 > end:
                    raise NotGGUF("an array runs past the end of the file")
                at += 8 + length(self.buf, at)[0]
            self.at = at
        elif kind == ARRAY:
            for _ in range(count):
                self.skip_array(self.take("I"), self.take("Q"), depth + 1)
        else:
            raise NotGGUF(f"unknown array type {kind} in the header")
        if self.at > len(self.buf):
            raise NotGGUF("an array runs past the end of the file")


def read_header(path: Path | str) -> Header:
    """The metadata and tensor list of the GGUF file at `path`; NotGGUF when it is not one."""
    with open(path, "rb") as f:
        if Path(path).stat().st_size < 24:
            raise NotGGUF(f"{Path(path).name} is too small to be a GGUF file")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _parse(buf, Path(path).name)


def _parse(buf, name: str) -> Header:
    if bytes(buf[:4]) != MAGIC:
        raise NotGGUF(f"{name} is not a GGUF file (it does not start with 'GGUF')")
    endian = "<" if struct.unpack_from("<I", buf, 4)[0] < 65536 else ">"  # big-endian files exist, rarely
    cur = _Cursor(buf, endian)
    cur.at = 4
    header = Header(version=cur.take("I"))
    n_tensors, n_fields = cur.take("Q"), cur.take("Q")
    if n_tensors > len(buf) or n_fields > len(buf):
        raise NotGGUF(f"{name}'s header claims {n_tensors} tensors and {n_fields} fields: it is damaged")
    for _ in range(n_fields):
        key = cur.string()
        header.fields[key] = cur.value(cur.take("I"))
    for _ in range(n_tensors):
        tname = cur.string()
        dims = cur.take("I")
        if dims > MAX_DIMS:
            raise NotGGUF(f"tensor {tname!r} claims {dims} dimensions: the header is damaged")
        shape = tuple(cur.take("Q") for _ in range(dims))
        header.tensors.append(Tensor(tname, shape, cur.take("I")))
        cur.take("Q")  # its offset in the data section
    return header
