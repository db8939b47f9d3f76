"""A self-contained HTML report: sections of text, tables and images (paths relative to the report)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from ..io.files import atomic_write_text

CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.9em;margin:.8em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}figure{display:inline-block;margin:.4em;vertical-align:top}
figcaption{font-size:.8em;color:#555;max-width:420px}img{image-rendering:pixelated;max-width:100%}
.ok{color:#080}.bad{color:#b00}code{background:#f5f5f5;padding:0 .2em}
"""


def fmt(v) -> str:
    if isinstance(v, bool):
        return '<span class="ok">yes</span>' if v else '<span class="bad">no</span>'
    if isinstance(v, float):
        return f"{v:.3f}"
    if v is None:
        return "–"
    return html.escape(str(v))


@dataclass
class Report:
    title: str
    parts: list[str] = field(default_factory=list)
    css: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)

    def raw(self, html_text: str, css: str | None = None, js: str | None = None) -> "Report":
        """Raw HTML (e.g. a viewer), with the CSS and script it needs (each added once, inlined)."""
        self.parts.append(html_text)
        if css and css not in self.css:
            self.css.append(css)
        if js and js not in self.scripts:
            self.scripts.append(js)
        return self

    def link(self, href: str, text: str) -> "Report":
        self.parts.append(f'<p><a href="{html.escape(href)}">{html.escape(text)}</a></p>')
        return self

    def section(self, title: str, text: str = "") -> "Report":
        self.parts.append(f"<h2>{html.escape(title)}</h2>")
        if text:
            self.parts.append(f"<p>{html.escape(text)}</p>")
        return self

    def text(self, text: str) -> "Report":
        self.parts.append(f"<p>{html.escape(text)}</p>")
        return self

    def code(self, text: str) -> "Report":
        self.parts.append(f"<pre><code>{html.escape(text)}</code></pre>")
        return self

    def table(self, rows: list[dict], columns: list[str] | None = None) -> "Report":
        if not rows:
            return self
        columns = columns or list(rows[0])
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{fmt(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
        self.parts.append(f"<table><tr>{head}</tr>{body}</table>")
        return self

    def image(self, src: str, caption: str = "", width: int | None = None) -> "Report":
        w = f' width="{width}"' if width else ""
        self.parts.append(f'<figure><img src="{html.escape(src)}"{w}><figcaption>{html.escape(caption)}'
                          f"</figcaption></figure>")
        return self

    def write(self, path: Path) -> Path:
        css = CSS + "".join(self.css)
        js = "".join(f"<script>{j}</script>" for j in self.scripts)
        doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
               f"<style>{css}</style></head><body><h1>{html.escape(self.title)}</h1>{''.join(self.parts)}"
               f"{js}</body></html>")
        atomic_write_text(Path(path), doc)
        return Path(path)
