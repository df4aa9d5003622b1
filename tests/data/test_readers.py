import json

import pytest

from xuetu.data import load
from xuetu.data.readers import read
from xuetu.errors import XuetuError

ROWS = [{"question": "什么是大模型？", "answer": "参数很多的模型。"}, {"question": "What is a token?", "answer": "A piece of text."}]


def test_every_reader(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS) + "\n\n", encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps({"data": ROWS}, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "c.csv").write_text("question,answer\n什么是大模型？,参数很多的模型。\n\"What is a token?\",\"A piece of text.\"\n",
                                    encoding="utf-8")
    (tmp_path / "d.tsv").write_text("question\tanswer\nq\ta\n", encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "e.parquet")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "one.md").write_text("# 标题\n\n正文", encoding="utf-8")
    (tmp_path / "notes" / "two.txt").write_text("plain text", encoding="utf-8")
    by_file = {}
    for r in load(tmp_path):
        by_file.setdefault(r.meta["source"].split(":")[0].split("/")[-1], []).append(r)
    assert [r.messages[0]["content"] for r in by_file["a.jsonl"]] == ["什么是大模型？", "What is a token?"]
    assert len(by_file["b.json"]) == 2 and len(by_file["c.csv"]) == 2 and len(by_file["e.parquet"]) == 2
    assert by_file["d.tsv"][0].messages[1]["content"] == "a"
    assert by_file["one.md"][0].text == "# 标题\n\n正文" and by_file["two.txt"][0].is_text
    assert [i.source for i in read(tmp_path / "a.jsonl")] == ["a.jsonl:1", "a.jsonl:2"]
    assert [i.source for i in read(tmp_path / "c.csv")] == ["c.csv:2", "c.csv:3"]


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8-sig", "utf-16"])
def test_encodings(tmp_path, encoding):
    p = tmp_path / "x.jsonl"
    p.write_bytes("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS).encode(encoding))
    assert [r.messages[0]["content"] for r in load(p)] == ["什么是大模型？", "What is a token?"]


def test_undecodable_is_reported(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_bytes(b'{"text": "\xff\xfe\xfa\x80\x81"}\n' * 3 + bytes(range(128, 256)))
    with pytest.raises(XuetuError, match="encoding"):
        list(load(p))


def test_malformed_lines_name_file_and_line(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"text": "ok"}\n{"text": broken\n{"text": "ok"}\n', encoding="utf-8")
    with pytest.raises(XuetuError, match=r"x.jsonl:2: invalid JSON"):
        list(load(p))
    assert len(list(load(p, on_error="skip"))) == 2
    items = list(read(p))
    assert items[1].error and items[1].raw == '{"text": broken'


def test_unknown_inputs(tmp_path):
    (tmp_path / "x.docx").write_text("x")
    with pytest.raises(XuetuError, match="unknown file type"):
        list(read(tmp_path / "x.docx"))
    with pytest.raises(XuetuError, match="does not exist"):
        list(read(tmp_path / "missing.jsonl"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(XuetuError, match="no files"):
        list(read(tmp_path / "empty"))
    (tmp_path / "bad.json").write_text("[1, 2,", encoding="utf-8")
    with pytest.raises(XuetuError, match="invalid JSON"):
        list(read(tmp_path / "bad.json"))
