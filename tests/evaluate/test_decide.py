"""xuetu decide: prompt / RAG / LoRA / LoRA + RAG on held-out questions, end to end on the embedded model."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from xuetu.errors import XuetuError
from xuetu.evaluate.decide import ROWS, recommend, split

LOCAL = {k: v for k, v in ROWS.items() if not k.startswith("api")}


@pytest.mark.slow
def test_decide_end_to_end_on_the_embedded_model(smollm2_home, tmp_path):
    from xuetu.cli import main

    from helpers.fakeapi import FakeAPI
    from xuetu.models.remote import create_remote

    fake = FakeAPI().__enter__()
    create_remote("api:echo", url=fake.url, api_model="echo", price_in=1, price_out=4)
    args = ["decide", "--budget-minutes", "2", "--set", "max_steps=2", "--set", "min_steps=0", "--max-tokens", "12",
            "--test-fraction", "0.15", "--batch", "6", "-q", "--out", str(tmp_path / "d")]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    for label in LOCAL.values():
        assert label in out.output
    assert "(e) API model" not in out.output
    assert "Recommendation: (" in out.output
    result = json.loads((tmp_path / "d" / "report.json").read_text(encoding="utf-8"))
    assert set(result["rows"]) == set(LOCAL) and result["n"] == 6 and result["n_train"] == 34
    for key in LOCAL:
        row = result["rows"][key]["metrics"][result["primary"]]
        assert row["low"] <= row["value"] + 1e-9 <= row["high"] + 2e-9
        assert result["rows"][key]["latency"]["p50"] > 0
    assert result["lora"]["steps"] == 2 and result["lora"]["peak_rss_bytes"] > 100 * 2**20
    assert result["resources"]["lora"]["train_seconds"] > 0 and result["resources"]["prompt"]["train_seconds"] == 0
    assert result["recommendation"]["choice"] in ROWS
    # the base would run on llama.cpp by itself; next to its LoRA, every row runs on transformers
    assert {result["rows"][k]["engine"]["engine"] for k in LOCAL} == {"transformers"}
    md = (tmp_path / "d" / "report.md").read_text(encoding="utf-8")
    assert "## Decision" in md and "Recommendation:" in md
    # the RAG rows' prompts carried sources from the bundled documents; the others had none
    assert all(e["sources"]["rag"] and e["sources"]["lora+rag"] for e in result["examples"])
    assert all("prompt" not in e["sources"] for e in result["examples"])

    again = CliRunner().invoke(main, args[:-1] + [str(tmp_path / "d2")])
    assert again.exit_code == 0, again.output
    second = json.loads((tmp_path / "d2" / "report.json").read_text(encoding="utf-8"))
    assert second["lora"]["reused"] and second["kb_seconds"] == 0.0
    assert all(second["rows"][k]["cached"] for k in LOCAL)

    # with an API model: rows (e) and (f) beside the local ones, priced, the local rows reused
    with_api = CliRunner().invoke(main, args[:-1] + [str(tmp_path / "d3"), "--api", "api:echo"])
    fake.__exit__()
    assert with_api.exit_code == 0, with_api.output
    third = json.loads((tmp_path / "d3" / "report.json").read_text(encoding="utf-8"))
    assert list(third["rows"]) == list(ROWS) and third["api"] == "api:echo"
    assert {third["rows"][k]["engine"]["device"] for k in ("api", "api+rag")} == {"remote"}
    assert all(e["sources"]["api+rag"] and "api" not in e["sources"] for e in third["examples"])
    assert "(e) API model" in with_api.output and "at the provider" in with_api.output
    assert third["rows"]["api"]["cost"]["per_answer"] > 0 and "USD" in with_api.output
    assert len(fake.chat_requests()) == 2 * third["n"]


def test_split_is_seeded_and_disjoint(tmp_path):
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"question": f"q{i}", "answer": f"a{i}"}) + "\n" for i in range(20)))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    train, test, n_train, n_test = split(str(data), tmp_path / "a", 0.25, seed=1)
    assert (n_train, n_test) == (15, 5)
    q = lambda p: {json.loads(line)["messages"][0]["content"] for line in p.read_text().splitlines()}  # noqa: E731
    assert not q(train) & q(test) and len(q(train) | q(test)) == 20
    assert q(split(str(data), tmp_path / "b", 0.25, seed=1)[1]) == q(test)
    data.write_text(json.dumps({"question": "q", "answer": "a"}) + "\n")
    with pytest.raises(XuetuError, match="at least 4"):
        split(str(data), tmp_path / "a", 0.25, seed=1)


def _result(scores: dict[str, list[float]]) -> dict:
    n = len(next(iter(scores.values())))
    rows = {k: {"metrics": {"rougeL": {"value": sum(v) / n}}, "latency": {"p50": 1.0}} for k, v in scores.items()}
    return {"rows": rows, "n": n, "examples": [{"scores": {k: v[i] for k, v in scores.items()}} for i in range(n)]}


def test_recommendation_prefers_the_cheapest_setup_nobody_beats_significantly():
    flat = [0.2, 0.3, 0.25, 0.35] * 10
    clear_win = [x + 0.3 for x in flat]
    # RAG clearly best: RAG
    choice, why = recommend(_result({"prompt": flat, "rag": clear_win, "lora": flat, "lora+rag": flat}), "rougeL")
    assert choice == "rag" and "significantly worse" in " ".join(why)
    # LoRA + RAG a hair better than the prompt, within noise: the prompt (cheapest)
    noisy = [x + (0.05 if i % 2 else -0.045) for i, x in enumerate(flat)]
    choice, why = recommend(_result({"prompt": flat, "rag": flat, "lora": flat, "lora+rag": noisy}), "rougeL")
    assert choice == "prompt" and "not significantly worse" in " ".join(why)


def test_an_api_model_is_the_last_resort_on_a_tie_and_chosen_when_it_wins():
    flat = [0.2, 0.3, 0.25, 0.35] * 10
    clear_win = [x + 0.3 for x in flat]
    noisy = [x + (0.05 if i % 2 else -0.045) for i, x in enumerate(flat)]
    rows = {"prompt": flat, "rag": flat, "lora": flat, "lora+rag": flat}
    choice, why = recommend(_result({**rows, "api": noisy, "api+rag": flat}), "rougeL")
    assert choice == "prompt" and "(a) prompt is cheaper and not significantly worse" in " ".join(why)
    choice, _ = recommend(_result({**rows, "api": flat, "api+rag": clear_win}), "rougeL")
    assert choice == "api+rag"
