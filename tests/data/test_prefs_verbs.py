"""Every `xuetu data` verb on preference data: clean, convert, stats, split, and the CSV and Parquet readers."""

import json

import pytest
from click.testing import CliRunner

import xuetu.data
from xuetu.cli import main
from xuetu.cli.data import OUTPUT_FORMATS
from xuetu.data import formats
from xuetu.data.clean import CleanArgs, clean
from xuetu.data.language import detect_language
from xuetu.data.split import split
from xuetu.errors import XuetuError
from xuetu.examples import example_path

LONG = ("I am preparing a talk for first-year students about how large language models are trained, from the data "
        "they read to the way they are tuned to follow instructions, and I want every step to be clear to people "
        "who have never written code. Please explain the following part of it simply: ")
SPAM = "ha " * 40


def write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def lines(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def pair(prompt, chosen, rejected, **extra):
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, **extra}


CHOSEN = "Tokens are the small pieces of text a model reads, such as a short word or a part of a longer one."
PAIRS = [
    pair(LONG + "what is a token?", CHOSEN, "No idea."),  # 1
    pair(LONG + "what is a token?", CHOSEN, "A token is a coin."),  # 2: shares prompt and chosen, kept
    pair(LONG + "what is a token?", "A piece of text.", "No idea."),  # 3: shares prompt and rejected, kept
    pair(LONG + "what is a token?", CHOSEN, "No idea."),  # 4: exact duplicate of 1
    pair(LONG + "what is a token?", CHOSEN.replace("short word", "short  word!"), "No idea."),  # 5: near dup of 1
    pair("Say something nice.", "You are doing great work!", SPAM),  # 6: a spammy rejected answer is kept
    pair("Say something nice.", SPAM, "You are doing great work!"),  # 7: a spammy chosen answer is not
    pair("Greet me.", "Ｈｅｌｌｏ!", "Hello!"),  # 8: the same answer once normalised
    pair("Greet me.", "Hello!", "Hello!"),  # 9: the same answer as read
    pair("Call me?", "I can't share phone numbers, sorry.", "Sure, mine is 13812345678, mail zhang@example.com"),  # 10
    {"prompt": "Say something nice.", "completion": SPAM, "label": False},  # 11: undesirable, spam is the point
    {"prompt": "Say something nice.", "completion": "You are doing great work!", "label": True},  # 12
    {"prompt": "Say something nice.", "completion": "What a lovely day to learn something new!", "label": True},  # 13
]


def test_clean_keeps_distinct_pairs_and_judges_the_chosen_answer(tmp_path):
    src = write(tmp_path / "in.jsonl", PAIRS)
    s = clean(src, tmp_path / "out.jsonl", CleanArgs(pii=True), progress=False)
    reasons = {r["source"]: r["reason"] for r in lines(tmp_path / "out.rejects.jsonl")}
    assert reasons == {"in.jsonl:4": "exact_duplicate", "in.jsonl:5": "near_duplicate", "in.jsonl:7": "repeated_chars",
                       "in.jsonl:8": "same_answers", "in.jsonl:9": "same_answers"}
    assert s.kept == 8 and s.input == len(PAIRS)
    kept = lines(tmp_path / "out.jsonl")
    assert [k.get("rejected", k.get("completion"))[:10] for k in kept[:3]] == ["No idea.", "A token is", "No idea."]
    assert kept[4]["rejected"] == "Sure, mine is [PHONE], mail [EMAIL]"  # PII masked in the rejected answer
    assert kept[5] == {"prompt": "Say something nice.", "completion": SPAM.strip(), "label": False}
    assert s.pii["phone"] == 1 and s.pii["email"] == 1


def test_language_filter_ignores_the_rejected_answer(tmp_path):
    src = example_path("ai_tutor") / "prefs.jsonl"
    s = clean(src, tmp_path / "zh.jsonl", CleanArgs(languages=["zh"]), progress=False)
    kept = lines(tmp_path / "zh.jsonl")
    assert s.kept == 5 and all(detect_language(k["chosen"], zh_or_en=True) == "zh" for k in kept)
    assert sum(detect_language(k["rejected"], zh_or_en=True) == "en" for k in kept) == 3  # English rejected, kept


def test_clean_to_kto_writes_two_examples_per_pair(tmp_path):
    src = write(tmp_path / "in.jsonl", [pair("Q one?", "Good one.", "Bad one."), pair("Q two?", "Good two.", "Bad two.")])
    s = clean(src, tmp_path / "out.jsonl", CleanArgs(to="kto"), progress=False)
    assert s.kept == 2 and [(k["prompt"], k["completion"], k["label"]) for k in lines(tmp_path / "out.jsonl")] == [
        ("Q one?", "Good one.", True), ("Q one?", "Bad one.", False),
        ("Q two?", "Good two.", True), ("Q two?", "Bad two.", False)]
    with pytest.raises(XuetuError, match="no record survived"):
        clean(src, tmp_path / "sft.jsonl", CleanArgs(to="messages"), progress=False)
    assert {r["reason"] for r in lines(tmp_path / "sft.rejects.jsonl")} == {"unconvertible"}


def test_convert_pairs_to_kto_and_not_back(tmp_path):
    src = write(tmp_path / "in.jsonl", [pair("Q one?", "Good.", "Bad."), pair("Q two?", "Fine.", "Rude.")])
    runner = CliRunner()
    result = runner.invoke(main, ["data", "convert", str(src), str(tmp_path / "kto.jsonl"), "--to", "kto"])
    assert result.exit_code == 0, result.output
    assert "wrote 4 records from 2 records" in result.output
    assert [k["label"] for k in lines(tmp_path / "kto.jsonl")] == [True, False, True, False]
    result = runner.invoke(main, ["data", "convert", str(tmp_path / "kto.jsonl"), str(tmp_path / "back.jsonl"),
                                  "--to", "pairs"])
    assert result.exit_code != 0 and "kto.jsonl:1: a KTO example" in result.output
    assert "cannot become a pair" in result.output and not (tmp_path / "back.jsonl").exists()
    assert "Preference data converts to pairs or kto" in result.output
    result = runner.invoke(main, ["data", "convert", str(src), str(tmp_path / "m.jsonl"), "--to", "messages"])
    assert result.exit_code != 0 and "preference data (a chosen/rejected pair)" in result.output
    bad = write(tmp_path / "bad.jsonl", [pair("Q?", "same", "same")])
    result = runner.invoke(main, ["data", "convert", str(bad), str(tmp_path / "x.jsonl"), "--to", "pairs"])
    assert result.exit_code != 0 and "bad.jsonl:1: chosen and rejected are the same answer" in result.output


def test_cli_offers_every_format():
    assert sorted(OUTPUT_FORMATS) == sorted(formats.FORMATS)


def test_stats_counts_pairs_kto_and_answer_lengths(tmp_path, smollm2):
    rows = [pair(LONG + "what is a token?", CHOSEN, "No idea."), pair(LONG + "what is a token?", CHOSEN, "A coin."),
            pair("什么是量化？", "量化是用更少的比特存储模型权重，模型变小、推理更快。", "不知道。"),
            {"prompt": "Say hi", "completion": "Hi there!", "label": True},
            {"prompt": "Say hi", "completion": "Go away.", "label": "false"}]
    src = write(tmp_path / "p.jsonl", rows)
    out = tmp_path / "stats"
    result = CliRunner().invoke(main, ["data", "stats", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "preference pairs: 3  (chosen answer longer than the rejected in 100%)" in result.output
    assert "KTO examples: desirable 1, undesirable 1" in result.output
    data = json.loads((out / "stats.json").read_text())
    p = data["preferences"]
    assert p["pairs"] == 3 and p["kto"] == {"desirable": 1, "undesirable": 1} and p["chosen_longer"] == 1.0
    assert p["answer_tokens"]["chosen"]["mean"] > p["answer_tokens"]["rejected"]["mean"] > 0
    assert set(p["answer_tokens"]) == {"chosen", "rejected", "desirable", "undesirable"}
    assert data["duplicates"]["exact"] == 0 and data["duplicates"]["near"] == 0  # a shared prompt is no duplicate
    assert data["formats"] == {"pairs": 3, "kto": 2} and data["records"] == 5
    # a pair's length is its longer side: the long rejected answer below makes the record longer
    short = tmp_path / "short.jsonl"
    write(short, [pair("Q?", "A.", "B " * 50)])
    result = CliRunner().invoke(main, ["data", "stats", str(short), "--out", str(out), "--json"])
    assert json.loads(result.output)["tokens"]["max"] > 50


def test_split_keeps_a_prompt_in_one_part(tmp_path):
    topics = ("tokens embeddings attention quantization distillation LoRA RAG temperature perplexity "
              "dropout overfitting pretraining").split()
    rows = []
    for t in topics:
        question = f"Explain {t} to a beginner."
        rows += [pair(question, f"A clear account of {t}.", f"{t}? Never heard of it."),
                 pair(question, f"A clear account of {t}.", "Ask someone else."),
                 {"prompt": question, "completion": f"Here is how {t} works.", "label": True}]
    src = write(tmp_path / "p.jsonl", rows)
    counts = split(src, tmp_path / "out", val=0.2, test=0.2, seed=1)
    assert counts["groups"] == len(topics) and counts["train"] + counts["val"] + counts["test"] == len(rows)
    where = {}
    for part in ("train", "val", "test"):
        for r in lines(tmp_path / "out" / f"{part}.jsonl"):
            where.setdefault(r["prompt"], set()).add(part)
            assert r in rows  # written whole, as read
    assert all(len(parts) == 1 for parts in where.values()) and counts["test"] > 0


def test_csv_and_parquet_preference_data(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "pairs.csv").write_text(
        "system,instruction,input,chosen,rejected\n,翻译成英文,你好,Hello,Goodbye\n"
        "Be kind.,\"Say hi, please\",,Hi!,\"No, thanks.\"\n", encoding="utf-8")
    (tmp_path / "kto.csv").write_text("prompt,completion,label\nSay hi,Hi!,true\nSay hi,Go away.,False\n",
                                      encoding="utf-8")
    (tmp_path / "bad.csv").write_text("prompt,completion,kto_tag\nSay hi,Hi!,yes\n", encoding="utf-8")
    implicit = [{"chosen": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
                 "rejected": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "5"}]}]
    pq.write_table(pa.Table.from_pylist(implicit), tmp_path / "implicit.parquet")
    pq.write_table(pa.Table.from_pylist([{"prompt": "Say hi", "completion": "Hi!", "label": False}]),
                   tmp_path / "kto.parquet")
    a, b = xuetu.data.load(tmp_path / "pairs.csv")
    assert a.messages[0]["content"] == "翻译成英文\n你好" and a.system is None and a.rejected["content"] == "Goodbye"
    assert b.system == "Be kind." and b.messages[-1]["content"] == "Hi!" and b.rejected["content"] == "No, thanks."
    assert [r.label for r in xuetu.data.load(tmp_path / "kto.csv")] == [True, False]
    r, = xuetu.data.load(tmp_path / "implicit.parquet")
    assert r.messages[-1]["content"] == "4" and r.rejected["content"] == "5"
    assert [r.label for r in xuetu.data.load(tmp_path / "kto.parquet")] == [False]
    with pytest.raises(XuetuError, match="bad.csv:2: kto_tag must be true .* got 'yes'"):
        list(xuetu.data.load(tmp_path / "bad.csv"))


def test_the_sample_pairs():
    records = list(xuetu.data.load(example_path("ai_tutor") / "prefs.jsonl"))
    assert len(records) == 8 and all(r.is_pair for r in records)
    prompts = [r.messages[-2]["content"] for r in records]
    assert sum(detect_language(p, zh_or_en=True) == "zh" for p in prompts) == 5
    for r in records:  # the chosen answer speaks the asker's language
        lang = detect_language(r.messages[-2]["content"], zh_or_en=True)
        assert detect_language(r.messages[-1]["content"], zh_or_en=True) == lang
