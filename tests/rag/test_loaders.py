"""Loaders: every supported file type, built here in tmp_path, and every way a file is refused."""

import json

import pytest

from xuetu.rag.document import LoadError
from xuetu.rag.loaders import load, supported_suffixes


def make_pdf(path, pages, **encryption):
    from fpdf import FPDF

    pdf = FPDF()
    if encryption:
        pdf.set_encryption(**encryption)
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=12)  # no CJK font on CI machines: Chinese is tested in the other formats
        if text:
            pdf.multi_cell(0, 10, text)
    pdf.output(str(path))
    return path


def test_pdf_one_section_per_page(tmp_path):
    pages = ["Alpha page talks about tokenizers.", "Beta page covers embeddings.", "Gamma page is about retrieval."]
    sections = load(make_pdf(tmp_path / "guide.pdf", pages))
    assert [s.page for s in sections] == [1, 2, 3]
    assert [s.text.split()[0] for s in sections] == ["Alpha", "Beta", "Gamma"]
    assert "embeddings" in sections[1].text and sections[0].heading is None


def test_pdf_blank_page_keeps_the_other_page_numbers(tmp_path):
    sections = load(make_pdf(tmp_path / "gap.pdf", ["First.", "", "Third."]))
    assert [(s.page, s.text.strip()) for s in sections] == [(1, "First."), (3, "Third.")]


def test_pdf_with_only_an_owner_password_is_read(tmp_path):
    sections = load(make_pdf(tmp_path / "locked.pdf", ["Readable without a password."], owner_password="owner"))
    assert "Readable" in sections[0].text


def test_pdf_refusals(tmp_path):
    with pytest.raises(LoadError, match=r"encrypted PDF \(password protected\)"):
        load(make_pdf(tmp_path / "secret.pdf", ["Hidden."], owner_password="o", user_password="u"))
    whole = make_pdf(tmp_path / "whole.pdf", ["Some text here."]).read_bytes()
    (tmp_path / "broken.pdf").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(LoadError, match="corrupt PDF"):
        load(tmp_path / "broken.pdf")
    with pytest.raises(LoadError, match="scanned images"):
        load(make_pdf(tmp_path / "scan.pdf", [""]))


MARKDOWN = """Intro before any heading.

# Install

Use pip.

## On Linux ##

```bash
# this is a shell comment, not a heading
pip install xuetu
```

### Troubleshooting
Check PATH.

## On Windows
~~~
## still code
~~~

# 用法

中文说明。
"""


def test_markdown_heading_paths_ignore_code_fences(tmp_path):
    (tmp_path / "readme.md").write_text(MARKDOWN, encoding="utf-8")
    got = {s.heading: s.text for s in load(tmp_path / "readme.md")}
    assert list(got) == [None, "Install", "Install > On Linux", "Install > On Linux > Troubleshooting",
                         "Install > On Windows", "用法"]
    assert got[None] == "Intro before any heading."
    assert "# this is a shell comment, not a heading" in got["Install > On Linux"]
    assert "## still code" in got["Install > On Windows"]
    assert got["用法"] == "中文说明。"


def test_text_in_utf8_gb18030_and_utf16(tmp_path):
    text = "大模型（LLM）是参数很多的模型。It speaks English too.\n\n第二段。"
    (tmp_path / "u.txt").write_text(text, encoding="utf-8")
    (tmp_path / "g.txt").write_bytes(text.encode("gb18030"))
    (tmp_path / "bom.txt").write_bytes(text.encode("utf-8-sig"))
    (tmp_path / "w.txt").write_bytes(text.replace("\n", "\r\n").encode("utf-16"))  # Windows Notepad's "Unicode"
    for name in ("u.txt", "g.txt", "bom.txt", "w.txt"):
        sections = load(tmp_path / name)
        assert [s.text for s in sections] == [text], name


def test_html_drops_scripts_and_nav_and_keeps_heading_paths(tmp_path):
    html = """<html><head><title>T</title><style>p {color: red}</style></head><body>
    <nav><a href="/">Home</a> <a href="/docs">Docs</a></nav>
    <p>Lead <b>paragraph</b> text.</p>
    <h1>Guide</h1><p>General notes.</p><script>var secret = 1;</script>
    <h2>Setup</h2><ul><li>First step</li><li>Second step</li></ul>
    <table><tr><th>Name</th><th>Size</th></tr><tr><td>tiny</td><td>135M</td></tr></table>
    <pre>line one
    line two</pre>
    <h2>配置</h2><div>中文
    内容</div></body></html>"""
    (tmp_path / "page.html").write_text(html, encoding="utf-8")
    got = {s.heading: s.text for s in load(tmp_path / "page.html")}
    assert list(got) == [None, "Guide", "Guide > Setup", "Guide > 配置"]
    assert got[None] == "Lead paragraph text."
    assert got["Guide"] == "General notes."
    assert got["Guide > Setup"].split("\n\n")[:4] == ["First step", "Second step", "Name | Size", "tiny | 135M"]
    assert "line one\n    line two" in got["Guide > Setup"]
    assert got["Guide > 配置"] == "中文内容"
    whole = " ".join(got.values())
    assert "secret" not in whole and "Home" not in whole and "color" not in whole


def test_docx_headings_and_tables(tmp_path):
    import docx

    document = docx.Document()
    document.add_paragraph("Preface text.")
    document.add_heading("Chapter 1", level=1)
    document.add_paragraph("Chapter body.")
    document.add_heading("第一节", level=2)
    document.add_paragraph("中文段落。")
    table = document.add_table(rows=2, cols=2)
    for r, row in enumerate([["Model", "Params"], ["SmolLM2", "135M"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_heading("Chapter 2", level=1)
    document.add_paragraph("Second body.")
    document.save(tmp_path / "report.docx")
    got = {s.heading: s.text for s in load(tmp_path / "report.docx")}
    assert got == {None: "Preface text.", "Chapter 1": "Chapter body.",
                   "Chapter 1 > 第一节": "中文段落。\n\nModel | Params\n\nSmolLM2 | 135M",
                   "Chapter 2": "Second body."}


def test_csv_tsv_rows(tmp_path):
    (tmp_path / "faq.csv").write_text("question,answer\n什么是大模型？,参数很多的模型。\nbad,row,extra\n"
                                      "\"What is a token?\",\"A piece, of text.\"\n", encoding="utf-8")
    sections = load(tmp_path / "faq.csv")
    assert [(s.meta, s.text) for s in sections] == [
        ({"row": 1}, "question: 什么是大模型？\nanswer: 参数很多的模型。"),
        ({"row": 3}, "question: What is a token?\nanswer: A piece, of text.")]
    (tmp_path / "t.tsv").write_text("k\tv\na\tb\n", encoding="utf-8")
    assert load(tmp_path / "t.tsv")[0].text == "k: a\nv: b"
    (tmp_path / "broken.csv").write_text("a,b\n1,2,3\n4\n", encoding="utf-8")
    with pytest.raises(LoadError, match="no readable rows"):
        load(tmp_path / "broken.csv")


def test_jsonl_records(tmp_path):
    lines = [json.dumps({"text": "正文在这里。", "id": 1}, ensure_ascii=False), "{not json",
             json.dumps({"title": "T", "tags": ["a", "b"]}), "", json.dumps({"content": "Body."})]
    (tmp_path / "kb.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert [(s.meta["row"], s.text) for s in load(tmp_path / "kb.jsonl")] == [
        (1, "正文在这里。"), (3, 'title: T\ntags: ["a", "b"]'), (5, "Body.")]
    (tmp_path / "bad.jsonl").write_text("{oops\n[1,\n", encoding="utf-8")
    with pytest.raises(LoadError, match="no valid JSON lines"):
        load(tmp_path / "bad.jsonl")


@pytest.mark.parametrize("name, content, reason", [
    ("empty.txt", b"", "empty file"),
    ("blank.md", b"  \n\n\t \n", "empty file"),
    ("blank.csv", b"a,b\n", "empty file"),
    ("image.txt", bytes(range(256)) * 4, "binary"),
    ("noise.md", b"\x81\xff\xfe\x80" * 50, "binary"),
    ("data.csv", b"a,b\n\x00\x01\x02,\x03\n", "binary"),
    ("slides.pptx", b"whatever", "unsupported file type .pptx; supported: .csv, .docx"),
    ("README", b"text", r"unsupported file type \(no suffix\)"),
    ("fake.docx", b"not a zip at all", "not a valid DOCX file"),
])
def test_refusals(tmp_path, name, content, reason):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(LoadError, match=reason):
        load(tmp_path / name)


def test_supported_suffixes():
    assert {".pdf", ".md", ".txt", ".html", ".docx", ".csv", ".tsv", ".jsonl"} <= set(supported_suffixes())
    assert supported_suffixes() == sorted(supported_suffixes())
