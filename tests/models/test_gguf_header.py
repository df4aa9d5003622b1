"""The GGUF header reader against gguf's own GGUFReader on the embedded SmolLM2, and against damaged files."""

from __future__ import annotations

import struct

import pytest

from xuetu.models.gguf_header import NotGGUF, read_header


@pytest.fixture(scope="module")
def smollm2_gguf(embedded_home):
    from helpers.env import home_env

    with home_env(embedded_home):
        from xuetu import models

        return models.resolve("smollm2:135m").gguf_file


def test_it_reads_what_gguf_reads(smollm2_gguf):
    from gguf import GGUFReader

    ours, theirs = read_header(smollm2_gguf), GGUFReader(str(smollm2_gguf))
    assert [(t.name, t.n_elements, t.type, len(t.shape)) for t in ours.tensors] == [
        (t.name, int(t.n_elements), int(t.tensor_type), len(t.shape)) for t in theirs.tensors]
    assert set(ours.fields) == {k for k in theirs.fields if not k.startswith("GGUF.")}
    for key, f in theirs.fields.items():
        if key.startswith("GGUF.") or not f.types:
            continue
        kind = f.types[0].name
        if kind == "STRING":
            assert ours.fields[key] == bytes(f.parts[f.data[0]]).decode("utf-8"), key
        elif kind == "ARRAY":
            assert ours.fields[key] == len(f.data), key  # an array is known by its length
        else:
            assert ours.fields[key] == pytest.approx(f.parts[f.data[0]].tolist()[0]), key
    assert ours.fields["general.architecture"] == "llama" and ours.fields["llama.context_length"] == 8192


def _gguf(fields: bytes = b"", n_fields: int = 0, n_tensors: int = 0, tail: bytes = b"") -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_fields) + fields + tail


def _string(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("<Q", len(raw)) + raw


def test_a_small_made_file_reads_back(tmp_path):
    fields = (_string("general.architecture") + struct.pack("<I", 8) + _string("qwen2")
              + _string("qwen2.context_length") + struct.pack("<II", 4, 4096)
              + _string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + _string("a") + _string("bc"))
    tensor = _string("w") + struct.pack("<I", 2) + struct.pack("<QQ", 3, 4) + struct.pack("<IQ", 2, 0)
    path = tmp_path / "m.gguf"
    path.write_bytes(_gguf(fields, 3, 1, tensor))
    h = read_header(path)
    assert h.fields == {"general.architecture": "qwen2", "qwen2.context_length": 4096, "tokenizer.ggml.tokens": 2}
    assert [(t.name, t.shape, t.n_elements, t.type) for t in h.tensors] == [("w", (3, 4), 12, 2)]


@pytest.mark.parametrize("content, words", [
    (b"PK\x03\x04" + b"\0" * 40, "not a GGUF file"),
    (b"GGUF", "too small"),
    (_gguf(_string("general.architecture"), 1), "cut short"),
    (_gguf(struct.pack("<Q", 10**9) + b"x" * 8, 1), "past the end"),
    (_gguf(n_fields=2**62), "damaged"),
    (_gguf(_string("k") + struct.pack("<I", 77), 1), "unknown value type 77"),
    (_gguf(tail=_string("w") + struct.pack("<I", 999), n_tensors=1), "999 dimensions"),
    (_gguf(_string("k") + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * 5000, 1), "nested more than 8 deep"),
])
def test_a_damaged_file_is_named_with_what_is_wrong(tmp_path, content, words):
    path = tmp_path / "broken.gguf"
    path.write_bytes(content)
    with pytest.raises(NotGGUF) as e:
        read_header(path)
    assert words in e.value.message and "xuetu rm" in str(e.value)
