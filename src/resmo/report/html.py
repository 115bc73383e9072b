"""Self-contained HTML pages: text, tables and PNGs embedded as base64 data URIs.

A page needs no other file to display (it can be mailed or attached to an issue); the
PNGs it embeds are also written next to it for use in slides or docs.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from resmo.report.tables import Table

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; } img { max-width: 100%; border: 1px solid #eee; }
.note { color: #666; font-size: 0.88em; } code { background: #f6f6f6; padding: 0 0.2em; }
"""


@dataclass
class Section:
    heading: str
    text: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def image_tag(path: Path) -> str:
    """An ``<img>`` whose source is the PNG's bytes as a base64 data URI."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(Path(path).name)}" src="data:image/png;base64,{data}">'


def table_html(table: Table) -> str:
    if not table.rows:
        return '<p class="note">no results yet</p>'
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in table.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_page(title: str, sections: list[Section]) -> str:
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.heading)}</h2>")
        parts += [f"<p>{html.escape(line)}</p>" for line in section.text]
        parts += [table_html(table) for table in section.tables]
        parts += [f"<figure>{image_tag(path)}</figure>" for path in section.images]
        parts += [f'<p class="note">{html.escape(note)}</p>' for note in section.notes]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_page(path: Path, title: str, sections: list[Section]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_page(title, sections), encoding="utf-8")
    return path
