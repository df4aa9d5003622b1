import json
import random
from collections import Counter
from pathlib import Path

import pytest

import xuetu
from xuetu.data.clean import CleanArgs, clean
from xuetu.data.normalize import normalize
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


# -- near duplicates (issue 21): short Chinese records with one character edited -------------------------------------

OLD_NEAR = CleanArgs(cjk_ngram=5, cjk_threshold=0.8)  # the setting before issue 21: 5-grams everywhere, 0.8


def benign_examples(lang: str, low: int, high: int, count: int) -> list[str]:
    """Hand-written questions from the safety scorer's examples, `low` to `high` characters long."""
    path = Path(xuetu.__file__).parent / "safety" / "examples" / "benign.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    texts = sorted({r["text"] for r in rows
                    if r["lang"] == lang and low <= len(r["text"]) <= high and "\n" not in r["text"]})
    assert len(texts) >= count
    return texts[:count]


def edited(texts: list[str], kind: str, letters: str, seed: int = 0) -> list[str]:
    """Each text with one character inserted before, or substituted for, one of its letters (a Chinese
    character in Chinese), away from the ends."""
    rng = random.Random(seed)
    out = []
    for t in texts:
        i = rng.choice([i for i in range(3, len(t) - 3) if t[i] in letters or "\u4e00" <= t[i] <= "\u9fff"])
        out.append(t[:i] + rng.choice(letters.replace(t[i], "")) + t[i + (kind == "substitute"):])
    return out


def dedup(tmp_path, texts: list[str], args: CleanArgs | None = None, name: str = "out"):
    """clean() over {"text": ...} records: (kept texts as given, {line number: reject reason})."""
    src = write(tmp_path / f"{name}.in.jsonl", [{"text": t} for t in texts])
    clean(src, tmp_path / f"{name}.jsonl", args, progress=False)
    given = {normalize(t): t for t in texts}  # clean writes the NFKC form
    kept = [given[r["text"]] for r in lines(tmp_path / f"{name}.jsonl")]
    rejected = {int(r["source"].rsplit(":", 1)[1]): r["reason"] for r in lines(tmp_path / f"{name}.rejects.jsonl")}
    return kept, rejected


def test_one_inserted_character_in_a_short_chinese_record(tmp_path):
    a = "周末想带孩子去杭州西湖边走走，顺便吃顿地道的杭帮菜，请问有没有适合一家三口的路线和餐馆推荐？"
    kept, rejected = dedup(tmp_path, [a, a[:20] + "的" + a[20:]])
    assert kept == [a] and rejected == {2: "near_duplicate"}


def test_twenty_planted_chinese_edits_are_all_removed(tmp_path):
    originals = benign_examples("zh", 40, 50, 20)
    planted = edited(originals, "insert", "的了是在我有和不")
    kept, rejected = dedup(tmp_path, originals + planted)
    assert kept == originals
    assert rejected == {i: "near_duplicate" for i in range(21, 41)}
    # the old setting kept most of them (the issue saw 16 of 20), so this test tells the two apart
    _, old = dedup(tmp_path, originals + planted, OLD_NEAR, name="old")
    assert len(old) < 15


NAMES = "张伟 王芳 李娜 刘洋 陈静 杨磊 赵敏 黄强 周杰 吴婷 徐明 孙丽 马超 朱琳 胡斌 郭燕 何平 高飞 林峰 罗兰".split()
CITIES = "北京 上海 广州 深圳 杭州 成都 武汉 南京 西安 重庆 苏州 天津 长沙 青岛 厦门 昆明 大连 沈阳 济南 合肥".split()
EN_NAMES = "James Mary Robert Linda Michael Sarah David Emma Daniel Olivia Thomas Sophie Kevin Laura Brian Nina " \
           "Oscar Paula Quinn Rosa".split()
EN_CITIES = "Boston Denver Seattle Austin Chicago Portland Atlanta Dallas Phoenix Miami Toronto Dublin Leeds Oxford " \
            "Bristol Leipzig Lyon Turin Porto Krakow".split()


def test_records_from_one_template_are_kept(tmp_path):
    """Distinct records made from one template (every one has its own name, city and count) are not merged."""
    zh = [f"{n}在{c}下单了{i + 2}件保温杯，请问什么时候能发货？" for i, (n, c) in enumerate(zip(NAMES, CITIES))]
    en = [f"{n} ordered {i + 2} mugs from our {c} store. When will they ship?" for i, (n, c) in
          enumerate(zip(EN_NAMES, EN_CITIES))]
    kept, rejected = dedup(tmp_path, zh + en)
    assert kept == zh + en and rejected == {}


def test_english_near_duplicates_are_found_as_before(tmp_path):
    """The Chinese shingles and threshold leave English records alone: the same decisions as before."""
    originals = benign_examples("en", 40, 60, 20)
    planted = edited(originals, "substitute", "abcdefghijklmnopqrstuvwxyz")
    kept, rejected = dedup(tmp_path, originals + planted)
    _, old = dedup(tmp_path, originals + planted, OLD_NEAR, name="old")
    assert kept[:20] == originals  # no distinct original merged into another
    assert set(rejected.values()) == {"near_duplicate"} and set(rejected) <= set(range(21, 41))
    assert rejected == old and rejected


def test_threshold_is_validated_with_a_hint():
    with pytest.raises(XuetuError, match="threshold 0 is not in") as e:
        CleanArgs(threshold=0)
    assert "--no-near-dedup" in e.value.hint
    with pytest.raises(XuetuError, match="cjk_threshold 1.5 is not in") as e:
        CleanArgs(cjk_threshold=1.5)
    assert "0.75" in e.value.hint
    with pytest.raises(XuetuError, match="cjk_ngram"):
        CleanArgs(cjk_ngram=0)


def test_cli_threshold_default_is_the_library_default():
    from click.testing import CliRunner

    from xuetu.cli.data import clean as clean_command
    from xuetu.data.minhash import THRESHOLD

    assert f"[default: {THRESHOLD}]" in CliRunner().invoke(clean_command, ["--help"]).output
