"""The optional classifier: any Hugging Face text-classification model, its labels mapped onto categories."""

from __future__ import annotations

import pytest

from xuetu.errors import XuetuError
from xuetu.safety import Guard
from xuetu.safety.policy import from_dict


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory, tiny_dir):
    """A tiny random sequence classifier whose bias makes it say INJECTION for everything."""
    import torch
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertForSequenceClassification

    out = tmp_path_factory.mktemp("clf") / "clf"
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    cfg = DistilBertConfig(vocab_size=len(tok), dim=32, hidden_dim=64, n_layers=1, n_heads=2, num_labels=2,
                           pad_token_id=tok.pad_token_id or 0, id2label={0: "SAFE", 1: "INJECTION"},
                           label2id={"SAFE": 0, "INJECTION": 1})
    model = DistilBertForSequenceClassification(cfg)
    with torch.no_grad():  # whatever the text, INJECTION with p = sigmoid(6) = 0.9975
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([-3.0, 3.0]))
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_a_configured_classifier_adds_its_findings(classifier_dir):
    g = Guard(from_dict({"classifier": {"model": str(classifier_dir), "threshold": 0.9,
                                        "labels": {"INJECTION": "injection"}}}))
    v = g.check("a perfectly ordinary sentence the rules let through")
    assert v.blocked and v.categories == ["injection"]
    assert v.findings[0].source == "classifier" and "INJECTION" in v.findings[0].rule
    strict = Guard(from_dict({"classifier": {"model": str(classifier_dir), "threshold": 0.999,
                                             "labels": {"INJECTION": "injection"}}}))
    assert strict.check("a perfectly ordinary sentence").action == "pass"  # below its threshold


def test_a_classifier_needs_labels():
    with pytest.raises(XuetuError, match="needs labels"):
        Guard(from_dict({"classifier": {"model": "whatever"}}))
