"""A report as a list of blocks (headings, text, tables, figures), written out as Markdown and as one
self-contained HTML page (figures inlined), so the two never disagree."""

from __future__ import annotations

import base64
import html
from pathlib import Path

CSS = """body{font:15px/1.5 system-ui,"PingFang SC","Noto Sans CJK SC","WenQuanYi Zen Hei",sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#1d1d1f}table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border:1px solid #d0d0d6;padding:4px 8px;vertical-align:top;text-align:left}th{background:#f3f3f7}
td.num{text-align:right;font-variant-numeric:tabular-nums}img{max-width:min(100%,760px);border:1px solid #eee}
.note{background:#f6f8fa;border-left:4px solid #4a7;padding:.6em 1em}code{background:#f3f3f7;padding:0 3px}"""


class Doc:
    def __init__(self, title: str):
        self.title = title
        self.blocks: list[tuple] = []

    def h(self, text: str, level: int = 2) -> "Doc":
        self.blocks.append(("h", level, text))
        return self

    def p(self, text: str, note: bool = False) -> "Doc":
        self.blocks.append(("p", text, note))
        return self

    def table(self, headers: list[str], rows: list[list], numeric: set[int] | None = None) -> "Doc":
        self.blocks.append(("table", headers, rows, numeric or set()))
        return self

    def figure(self, path: Path, caption: str) -> "Doc":
        self.blocks.append(("figure", Path(path), caption))
        return self

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            if b[0] == "h":
                out += ["#" * b[1] + " " + b[2], ""]
            elif b[0] == "p":
                out += [("> " if b[2] else "") + b[1], ""]
            elif b[0] == "table":
                _, headers, rows, numeric = b
                cell = lambda v: str(v).replace("|", "\\|").replace("\n", " ")  # noqa: E731
                out.append("| " + " | ".join(cell(h) for h in headers) + " |")
                out.append("|" + "|".join("---:" if i in numeric else "---" for i in range(len(headers))) + "|")
                out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
                out.append("")
            else:
                out += [f"![{b[2]}]({b[1].name})", ""]
        return "\n".join(out)

    def html(self) -> str:
        esc = html.escape
        out = ["<!doctype html><html><head><meta charset='utf-8'>", f"<title>{esc(self.title)}</title>",
               f"<style>{CSS}</style></head><body>", f"<h1>{esc(self.title)}</h1>"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1] + 0}>{esc(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p class='note'>{esc(b[1])}</p>" if b[2] else f"<p>{esc(b[1])}</p>")
            elif b[0] == "table":
                _, headers, rows, numeric = b
                out.append("<table><tr>" + "".join(f"<th>{esc(str(h))}</th>" for h in headers) + "</tr>")
                for row in rows:
                    out.append("<tr>" + "".join(f"<td{' class=num' if i in numeric else ''}>{esc(str(v))}</td>"
                                                for i, v in enumerate(row)) + "</tr>")
                out.append("</table>")
            elif b[1].is_file():
                data = base64.b64encode(b[1].read_bytes()).decode()
                out.append(f"<figure><img alt='{esc(b[2])}' src='data:image/png;base64,{data}'>"
                           f"<figcaption>{esc(b[2])}</figcaption></figure>")
        out.append("</body></html>")
        return "\n".join(out)
