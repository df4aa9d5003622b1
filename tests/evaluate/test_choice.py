"""Multiple-choice evaluation: the three CSV layouts and their errors, the prompts, the letter tokens, and
batched scoring that picks the same letter as one unpadded forward pass per question."""

from __future__ import annotations

import pytest

from xuetu.errors import XuetuError
from xuetu.evaluate import choice
from xuetu.evaluate.choice import Question


def write(path, text: str, bom: bool = False):
    path.write_text(("\ufeff" if bom else "") + text, encoding="utf-8")
    return path


# -- reading -------------------------------------------------------------------------------------
def test_the_shipped_samples_read_in_each_layout():
    mmlu = choice.read_csv(choice.SAMPLES / "mmlu")
    ceval = choice.read_csv(choice.SAMPLES / "ceval_sample.csv")
    cmmlu = choice.read_csv(choice.SAMPLES / "cmmlu_sample.csv")
    assert [len(mmlu), len(ceval), len(cmmlu)] == [10, 10, 10]
    assert mmlu[0] == Question("How many days are there in a week?", {"A": "5", "B": "6", "C": "7", "D": "8"}, "C",
                               "general knowledge", "general_knowledge_test.csv:1")
    assert mmlu[5].question == "Water freezes at what temperature, in degrees Celsius?"  # a quoted field
    assert ceval[0].choices == {"A": "五天", "B": "六天", "C": "七天", "D": "八天"} and ceval[0].answer == "C"
    assert ceval[0].source == "ceval_sample.csv:2" and cmmlu[9].source == "cmmlu_sample.csv:11"
    assert cmmlu[1].question == "熊猫主要吃什么？" and cmmlu[1].answer == "A"
    assert all(q.answer in q.choices for q in mmlu + ceval + cmmlu)


def test_layouts_with_bom_case_blank_lines_multiline_fields_and_more_options(tmp_path):
    mmlu = choice.read_csv(write(tmp_path / "high_school_physics_val.csv",
                                 'Q1?,a,b,c,d,e,E\n\n"Q2\nover two lines?",a,b,c,d,e,b\nQ3?,a,b,c,d,e,a\n', bom=True))
    assert [q.answer for q in mmlu] == ["E", "B", "A"] and list(mmlu[0].choices) == list("ABCDE")
    assert mmlu[1].question == "Q2\nover two lines?" and [q.source.split(":")[1] for q in mmlu] == ["1", "3", "5"]
    assert mmlu[0].subject == "high school physics"
    ceval = choice.read_csv(write(tmp_path / "c.csv", "ID,Question,A,B,Answer\n7,真还是假？,真,假,A\n", bom=True))
    assert ceval == [Question("真还是假？", {"A": "真", "B": "假"}, "A", "c", "c.csv:2")]
    cmmlu = choice.read_csv(write(tmp_path / "d.csv", ",question,a,b,c,d,e,f,answer\n0,Q?,1,2,3,4,5,6,F\n"))
    assert cmmlu[0].answer == "F" and cmmlu[0].choices["F"] == "6"


def test_a_folder_reads_every_csv_sorted(tmp_path):
    write(tmp_path / "b_test.csv", "Qb?,1,2,3,4,B\n")
    write(tmp_path / "a_test.csv", "Qa?,1,2,3,4,A\n")
    write(tmp_path / "notes.txt", "not a csv")
    assert [(q.subject, q.question) for q in choice.read_csv(tmp_path)] == [("a", "Qa?"), ("b", "Qb?")]


@pytest.mark.parametrize("name, text, words", [
    ("empty.csv", "\n\n", ["empty"]),
    ("short.csv", "Q1?,a,b,c,d,A\nQ2?,a,b,c,B\n", ["short.csv:2", "5 columns", "expected 6"]),
    ("long.csv", "id,question,A,B,C,D,answer\n1,Q?,a,b,c,d,A,extra\n", ["long.csv:2", "8 columns", "expected 7"]),
    ("answer.csv", "Q1?,a,b,c,d,A\nQ2?,a,b,c,d,E\n", ["answer.csv:2", "'E'", "A, B, C, D"]),
    ("blank.csv", ",Question,A,B,C,D,Answer\n0,Q?,a,b,c,d,\n", ["blank.csv:2", "''"]),
    ("header.csv", "q,opt1,opt2,opt3,opt4,ans\nQ?,a,b,c,d,A\n", ["header.csv:1", "unknown header", "id,question"]),
    ("ceval_test.csv", "id,question,A,B,C,D\n0,Q?,a,b,c,d\n", ["unknown header", "val files"]),
    ("one.csv", "Q?,a,A\n", ["one.csv:1", "3 columns"]),
])
def test_each_problem_names_its_line(tmp_path, name, text, words):
    with pytest.raises(XuetuError) as e:
        choice.read_csv(write(tmp_path / name, text))
    assert all(w in str(e.value) for w in words), str(e.value)


def test_a_missing_file_or_an_empty_folder(tmp_path):
    with pytest.raises(XuetuError, match="no such file"):
        choice.read_csv(tmp_path / "nope.csv")
    with pytest.raises(XuetuError, match="no .csv files"):
        choice.read_csv(tmp_path)
    assert "MMLU" in str(pytest.raises(XuetuError, choice.read_csv, write(tmp_path / "h.csv", "a,b\n")).value)


# -- prompts and letters -------------------------------------------------------------------------
def test_prompts_in_english_and_chinese():
    en = Question("What is 2 + 3?", {"A": "5", "B": "6"}, "A", "arithmetic")
    assert choice.prompt(en) == ("The following is a multiple choice question about arithmetic.\n\n"
                                 "What is 2 + 3?\nA. 5\nB. 6\nAnswer:")
    zh = Question("TCP/IP 协议中 IP 地址有多少位？", {"A": "32", "B": "64"}, "A", "计算机网络")
    assert choice.prompt(zh) == ("以下是关于计算机网络的单项选择题，请直接给出正确答案的选项。\n\n"
                                 "TCP/IP 协议中 IP 地址有多少位？\nA. 32\nB. 64\n答案：")
    zh.subject = "computer network"  # real C-Eval file names are English: no mixed-language clause
    assert choice.prompt(zh).startswith("以下是单项选择题，请直接给出正确答案的选项。\n\n")
    assert not choice.is_chinese(Question("What does 学徒 mean?", {"A": "apprentice", "B": "teacher"}, "A"))


def test_letter_tokens_follow_the_tokenizer(smollm2):
    from helpers.tiny import build_tokenizer
    from xuetu import engines

    tok = engines.load("smollm2:135m", engine="transformers").tokenizer
    assert choice.letter_ids(tok, False)["A"] == tok.convert_tokens_to_ids("ĠA")  # " A" is one token
    assert choice.letter_ids(tok, True)["A"] == tok.convert_tokens_to_ids("A")
    tiny = build_tokenizer()  # has no " A" token: the bare letter follows "Answer:"
    assert choice.letter_ids(tiny, False)["B"] == tiny.convert_tokens_to_ids("B")


# -- scoring -------------------------------------------------------------------------------------
def reference(model, tokenizer, questions):
    """One unpadded forward pass per question; the letter ids read straight off the tokenizer."""
    import torch

    out = []
    with torch.inference_mode():
        for q in questions:
            space = "" if choice.is_chinese(q) else " "
            ids = {k: tokenizer.encode(space + k, add_special_tokens=False) for k in q.choices}
            if any(len(v) != 1 for v in ids.values()):
                ids = {k: tokenizer.encode(k, add_special_tokens=False) for k in q.choices}
            logits = model(**tokenizer(choice.prompt(q), return_tensors="pt"), logits_to_keep=1).logits[0, -1]
            out.append(max(q.choices, key=lambda k: logits[ids[k][0]].item()))
    return out


def test_batched_scoring_matches_one_pass_per_question_on_the_embedded_model(smollm2):
    from xuetu import engines

    eng = engines.load("smollm2:135m", engine="transformers")
    sets = {name: choice.read_csv(choice.SAMPLES / name) for name in ("mmlu", "ceval_sample.csv", "cmmlu_sample.csv")}
    extra = [Question("Is fire hot?", {"A": "No", "B": "Yes"}, "B", "yes or no"),
             Question("Pick the last letter of the alphabet.", dict(zip("ABCDEF", "QRSTUZ")), "F", "letters")]
    everything = [q for qs in sets.values() for q in qs] + extra
    result = choice.score(eng.model, eng.tokenizer, everything, batch_size=3, progress=False)
    assert result.predictions == reference(eng.model, eng.tokenizer, everything)
    assert len(set(result.predictions)) > 1, result.predictions  # the comparison means something
    assert result.n == len(everything) == len(result.correct) == sum(s["n"] for s in result.per_subject.values())
    assert result.accuracy == pytest.approx(sum(result.correct) / result.n)
    assert set(result.per_subject) == {"general knowledge", "ceval sample", "cmmlu sample", "yes or no", "letters"}
    for name, qs in sets.items():  # each sample file is one subject: its accuracy, for the record
        s = result.per_subject[qs[0].subject]
        assert s["n"] == 10 and 0.0 <= s["accuracy"] <= 1.0
        assert s["accuracy"] == pytest.approx(sum(c for q, c in zip(everything, result.correct) if q in qs) / 10)
        print(f"\n{name}: accuracy {s['accuracy']:.2f} of {s['n']}")


def test_a_lora_adapter_scores_and_full_logits_agree(tiny_dir, tmp_path, monkeypatch):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from helpers.tiny import build_lora

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, build_lora(tiny_dir, tmp_path / "lora")).eval()
    qs = [Question("Q" + "?" * i, dict(zip("ABCD", ["x", "y" * i, "z", "w"])), "A", None) for i in range(1, 8)]
    qs.append(Question("大模型是什么？", {"A": "孩子", "B": "学徒"}, "B", None))
    kept = choice.score(model, tok, qs, batch_size=3, progress=False)
    assert kept.predictions == reference(model, tok, qs) and set(kept.per_subject) == {None}
    monkeypatch.setattr(choice, "_keeps_logits", lambda m: False)  # the path for models without logits_to_keep
    assert choice.score(model, tok, qs, batch_size=3, progress=False).predictions == kept.predictions
    with pytest.raises(XuetuError, match="prompt is .* tokens"):
        choice.score(model, tok, [Question("long " * 200, {"A": "a", "B": "b"}, "A", None, "x.csv:3")], progress=False)
    with pytest.raises(XuetuError, match="no questions"):
        choice.score(model, tok, [], progress=False)
