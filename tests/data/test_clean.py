import json
from collections import Counter

import pytest

from xuetu.data.clean import CleanArgs, clean
from xuetu.data.pii import find_pii, luhn, mask_pii, valid_cn_id
from xuetu.errors import XuetuError

# An ID number with a valid GB 11643 check digit, and the same with a wrong one.
GOOD_ID, BAD_ID = "11010519491231002X", "110105194912310021"


def write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def lines(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


MESSY = [
    {"instruction": "什么是大模型？", "output": "大模型是参数很多、知识面很广的“聪明孩子”，能举一反三。"},
    {"instruction": "什么是大模型？", "output": "大模型是参数很多、知识面很广的“聪明孩子”，能举一反三。"},  # exact
    {"instruction": "什么是大模型?", "output": "大模型是参数很多、知识面很广的“聪明孩子”，能举一反三！"},  # near (zh)
    {"instruction": "What is LoRA in fine-tuning?", "output": "LoRA trains small low-rank matrices added to a frozen model."},
    {"instruction": "what is LoRA in fine-tuning?", "output": "LoRA trains small low-rank matrices added to a frozen model!"},
    {"instruction": "<p>ＨＴＭＬ &amp; 全角</p>", "output": "Ｆｕｌｌ width\u200b text\x07 here"},
    {"instruction": "spam", "output": "买买买买买买买买买买买买买买买买买买买买买买买买买买买买买买买买买买买买买买买买买买买"},
    {"instruction": "lines", "output": "same line\nsame line\nsame line\nsame line\nother"},
    {"instruction": "symbols", "output": "@@@@ #### $$$$ %%%% ^^^^ &&&& **** ~~~~"},
    {"instruction": "no answer", "output": ""},
    {"instruction": "", "output": "an answer to nothing"},
    '{"instruction": "broken json',
    {"unknown": "format"},
    {"instruction": "联系我", "output": f"电话 13812345678，邮箱 zhang.san@example.com，身份证 {GOOD_ID}，卡号 4539 1488 0343 6467，IP 192.168.1.20"},
]


def test_every_record_is_accounted_for(tmp_path):
    src = write(tmp_path / "messy.jsonl", MESSY)
    s = clean(src, tmp_path / "out.jsonl", CleanArgs(on_error="skip", pii=True), progress=False)
    kept, rejects = lines(tmp_path / "out.jsonl"), lines(tmp_path / "out.rejects.jsonl")
    assert s.input == len(MESSY) == len(kept) + len(rejects) == s.kept + s.rejected_total
    reasons = Counter(r["reason"] for r in rejects)
    assert reasons == Counter({"exact_duplicate": 1, "near_duplicate": 2, "repeated_chars": 1, "repeated_lines": 1,
                               "symbols": 1, "no_answer": 1, "no_question": 1, "malformed": 2})
    assert {r["source"] for r in rejects if r["reason"] == "malformed"} == {"messy.jsonl:12", "messy.jsonl:13"}
    assert next(r for r in rejects if r["reason"] == "exact_duplicate")["detail"] == "same as messy.jsonl:1"
    assert next(r for r in rejects if r["source"] == "messy.jsonl:12")["record"] == '{"instruction": "broken json'
    summary = json.loads((tmp_path / "out.summary.json").read_text())
    assert summary["kept"] == len(kept) and summary["rejected"] == dict(reasons)
    html = next(k for k in kept if "HTML" in k["instruction"])
    assert html == {"instruction": "HTML & 全角", "input": "", "output": "Full width text here"}
    pii = next(k for k in kept if k["instruction"] == "联系我")["output"]
    assert pii == "电话 [PHONE],邮箱 [EMAIL],身份证 [ID_CARD],卡号 [BANK_CARD],IP [IP]"  # NFKC made ， into ,
    assert s.pii == Counter({"phone": 1, "email": 1, "id_card": 1, "bank_card": 1, "ip": 1})


def test_on_error_fail_writes_nothing(tmp_path):
    src = write(tmp_path / "in.jsonl", MESSY)
    with pytest.raises(XuetuError, match=r"in.jsonl:12: invalid JSON") as e:
        clean(src, tmp_path / "out.jsonl", progress=False)
    assert "--on-error skip" in e.value.hint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]  # no partial outputs


def test_empty_output_is_an_error(tmp_path):
    src = write(tmp_path / "in.jsonl", [{"instruction": "q", "output": ""}] * 3)
    with pytest.raises(XuetuError, match="no record survived"):
        clean(src, tmp_path / "out.jsonl", progress=False)
    assert not (tmp_path / "out.jsonl").exists() and len(lines(tmp_path / "out.rejects.jsonl")) == 3
    with pytest.raises(XuetuError, match="overwrite the input"):
        clean(src, src, progress=False)


def test_token_bounds_and_language(tmp_path, smollm2):
    rows = [{"question": "Hi", "answer": "Yo"}, {"question": "什么是大模型？请详细说明。", "answer": "大模型是参数很多、用海量文本训练出来的模型，能理解和生成语言。"},
            {"question": "Was ist ein Sprachmodell?", "answer": "Ein Modell, das Sprache vorhersagt und erzeugt."},
            {"question": "What is a language model?", "answer": "A model that predicts and generates text."}]
    src = write(tmp_path / "in.jsonl", rows)
    s = clean(src, tmp_path / "out.jsonl", CleanArgs(min_tokens=5, max_tokens=200, languages=["zh", "en"]), progress=False)
    reasons = {r["source"]: r["reason"] for r in lines(tmp_path / "out.rejects.jsonl")}
    assert reasons == {"in.jsonl:1": "too_short", "in.jsonl:3": "language"}
    assert s.kept == 2
    s = clean(src, tmp_path / "out2.jsonl", CleanArgs(max_tokens=20), progress=False)
    assert s.rejected["too_long"] >= 1 and "in.jsonl:2" in (tmp_path / "out2.rejects.jsonl").read_text()


def test_convert_on_the_way(tmp_path):
    src = write(tmp_path / "in.jsonl", [{"instruction": "q", "output": "a"}])
    clean(src, tmp_path / "out.jsonl", CleanArgs(to="sharegpt"), progress=False)
    assert lines(tmp_path / "out.jsonl") == [{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}]


def test_worker_processes_give_the_same_result(tmp_path):
    rows = []
    for i in range(3000):
        rows.append({"instruction": f"问题 {i % 700} 关于模型", "output": f"答案 {i % 700}：" + "训练数据很重要。" * (1 + i % 3)})
    src = write(tmp_path / "in.jsonl", rows)
    one = clean(src, tmp_path / "a.jsonl", CleanArgs(workers=1), progress=False)
    two = clean(src, tmp_path / "b.jsonl", CleanArgs(workers=2), progress=False)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.rejects.jsonl").read_bytes() == (tmp_path / "b.rejects.jsonl").read_bytes()
    assert one.rejected == two.rejected and one.kept == two.kept < 3000


@pytest.mark.parametrize("text, kinds", [
    ("mail me: li.si+ai@mail.example.cn", {"email"}),
    ("手机 13912345678 或 +86 139-1234-5678", {"phone"}),
    ("landline 010-62751234", {"phone"}),
    (f"身份证号{GOOD_ID}。", {"id_card"}),
    (f"not an id {BAD_ID}", set()),
    ("card 4539148803436467", {"bank_card"}),
    ("card 4539148803436468", set()),  # fails Luhn
    ("server 10.0.0.255 and 999.1.1.1", {"ip"}),
    ("plain text with 2024 and 3.14", set()),
])
def test_pii(text, kinds):
    assert set(find_pii(text)) == kinds
    if kinds:
        assert any(f"[{k.upper()}]" in mask_pii(text) for k in kinds)


def test_checksums():
    assert valid_cn_id(GOOD_ID) and not valid_cn_id(BAD_ID)
    assert luhn("4539148803436467") and not luhn("4539148803436468")
