"""Verification stops an export that would behave differently from its source."""

from __future__ import annotations

import pytest

from xuetu import models
from xuetu.errors import XuetuError
from xuetu.export import export


def test_a_planted_template_mismatch_fails_and_stores_nothing(tiny, monkeypatch):
    import gguf

    real = gguf.GGUFWriter.add_chat_template

    def planted(self, value):  # the export's template loses the newline after the role
        return real(self, value.replace("'\n'", "' '").replace("'\\n'", "' '"))

    monkeypatch.setattr(gguf.GGUFWriter, "add_chat_template", planted)
    with pytest.raises(XuetuError, match="not added to the store") as e:
        export("tiny", "gguf", quant="f16", progress=False)
    assert "--no-verify" in e.value.hint
    assert "FAIL chat template: 0/4 conversations byte-identical" in e.value.hint  # the error carries the checks
    assert "became" in e.value.hint  # the first difference is shown
    assert models.store.get("tiny:f16") is None
    # --no-verify keeps it, for someone who knows why
    assert export("tiny", "gguf", quant="f16", verify=False, progress=False).name == "tiny:f16"


def test_a_wrong_tokenizer_is_reported(tiny, monkeypatch):
    import gguf

    real = gguf.GGUFWriter.add_token_list

    def swapped(self, tokens):  # two common letters trade ids, as with a vocabulary from another model
        tokens = list(tokens)
        i, j = tokens.index("e"), tokens.index("t")
        tokens[i], tokens[j] = tokens[j], tokens[i]
        return real(self, tokens)

    monkeypatch.setattr(gguf.GGUFWriter, "add_token_list", swapped)
    with pytest.raises(XuetuError) as e:
        export("tiny", "gguf", progress=False)
    assert "FAIL tokenizer: token" in e.value.hint


def test_the_verification_is_recorded_in_the_manifest(tiny):
    result = export("tiny", "gguf", quant="q8_0", progress=False)
    ref = models.resolve(result.name)
    assert ref.manifest["verification"]["ok"] is True
    assert ref.manifest["source"] == {"type": "export", "id": "tiny:latest", "format": "gguf", "quant": "q8_0"}
    assert ref.manifest["verification"]["precision"] == "Q8_0"
