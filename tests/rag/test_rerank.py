"""The cross-encoder reranker: no model is available offline, so only its failure is tested."""

from __future__ import annotations

import pytest

from xuetu.errors import XuetuError
from xuetu.rag.rerank import Reranker


@pytest.mark.parametrize("name", ["missing-folder", "no-such-org/no-such-reranker"])
def test_missing_model_is_a_clear_user_error(name, tmp_path):
    model = str(tmp_path / name) if name == "missing-folder" else name
    with pytest.raises(XuetuError) as e:
        Reranker(model)
    assert model in e.value.message and "cross-encoder" in e.value.hint
