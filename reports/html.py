"""Report blocks as one self-contained HTML file: inline style, images embedded as data URIs,
no scripts, fonts or links to anything outside the file."""

from __future__ import annotations

import base64
from html import escape

from autotune.reports.document import Block, Bullets, Heading, Image, Table, Text, cell

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #4C72B0; padding-bottom: .2em; }
h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 13px; }
th, td { border: 1px solid #d0d0d0; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #f0f3f8; position: sticky; top: 0; }
td.text { text-align: left; white-space: normal; }
tr:nth-child(even) td { background: #fafafa; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
img { max-width: 100%; height: auto; display: block; margin: .6em 0 1.2em;
      border: 1px solid #eee; }
.scroll { overflow-x: auto; }
code { background: #f4f4f4; padding: 0 3px; }
"""


def to_html(blocks: list[Block], title: str) -> str:
    """The whole page."""
    body = "\n".join(_block(b) for b in blocks)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{escape(block.text)}</h{block.level}>"
    if isinstance(block, Text):
        return f"<p>{_inline(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Image):
        data = base64.b64encode(block.path.read_bytes()).decode("ascii")
        return f'<img alt="{escape(block.alt)}" src="data:image/png;base64,{data}">'
    raise TypeError(f"unknown block {block!r}")


def _inline(text: str) -> str:
    """Escaped text with Markdown's `code` and **bold** spans."""
    out, code, bold = [], False, False
    for i, part in enumerate(_split_marks(text)):
        if i % 2 == 0:
            out.append(escape(part))
        elif part == "`":
            out.append("</code>" if code else "<code>")
            code = not code
        elif part == "**":
            out.append("</b>" if bold else "<b>")
            bold = not bold
    return "".join(out) + ("</code>" if code else "") + ("</b>" if bold else "")


def _split_marks(text: str) -> list[str]:
    """Text and marks alternating: ['text', '`', 'code', '`', 'text']."""
    parts, current, i = [], "", 0
    while i < len(text):
        mark = "**" if text.startswith("**", i) else ("`" if text[i] == "`" else None)
        if mark:
            parts += [current, mark]
            current, i = "", i + len(mark)
        else:
            current += text[i]
            i += 1
    return [*parts, current]


def _table(block: Table) -> str:
    frame = block.frame
    if not len(frame):
        return "<p>(none)</p>"
    text_columns = {c for c in frame.columns if frame[c].map(lambda v: isinstance(v, str)).any()}
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for values in frame.itertuples(index=False):
        cells = [
            f'<td class="text">{escape(cell(v))}</td>'
            if c in text_columns
            else f"<td>{escape(cell(v))}</td>"
            for c, v in zip(frame.columns, values, strict=True)
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    caption = f"<caption>{escape(block.caption)}</caption>" if block.caption else ""
    return (
        f'<div class="scroll"><table>{caption}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
