"""Figures to files, and the self-contained HTML page that shows them.

The page has no script and loads nothing: each figure is an SVG inside an ``<img>`` data URI,
and a Content-Security-Policy meta tag allows exactly that (images from ``data:``, the one
inline stylesheet by its hash), so a stray external reference could not load even if one slipped
in. Output is byte-for-byte reproducible: no dates, fixed SVG ids, sorted inputs.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

from moqwk.reports.html.figures import STYLE, BuiltFigure

PNG_DPI = 200


@dataclass(frozen=True)
class Rendered:
    """A figure rendered to SVG and PNG, with its size in CSS pixels."""

    name: str
    title: str
    caption: str
    svg: bytes
    png: bytes
    width_px: int
    height_px: int


def render(built: BuiltFigure) -> Rendered:
    """SVG (glyphs as paths, ids salted by the figure's name) and a PNG at :data:`PNG_DPI`."""
    fig = built.figure
    rc: dict[str, Any] = {**STYLE, "svg.hashsalt": built.name}
    with matplotlib.rc_context(rc):  # type: ignore[arg-type]  # rcParams keys are Literals
        svg = io.BytesIO()
        fig.savefig(svg, format="svg", metadata={"Date": None})
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=PNG_DPI, metadata={"Software": None})
    w, h = fig.get_size_inches()
    return Rendered(built.name, built.title, built.caption, svg.getvalue(), png.getvalue(),
                    int(round(w * 96)), int(round(h * 96)))


CSS = """
body { margin: 0; background: #fafafa; color: #1a1a1a;
  font: 15px/1.5 "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 0 0 8px; }
p.meta { color: #555; margin: 0 0 16px; }
p.decision { margin: 0 0 12px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 12px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 2px solid #999; }
nav ol { margin: 4px 0 16px; padding-left: 22px; }
figure { margin: 28px 0 0; padding-top: 16px; border-top: 1px solid #e2e2e2; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { max-width: 900px; margin-top: 8px; color: #333; }
figcaption .files { color: #666; font-size: 13px; }
.notes { background: #fff8e1; border-left: 4px solid #f0c000; padding: 8px 14px; }
footer { margin-top: 36px; color: #666; font-size: 13px; }
code { font-size: 13px; }
""".strip()


def csp(style: str) -> str:
    """The page's policy: nothing may load except data: images and the inline stylesheet."""
    digest = base64.b64encode(hashlib.sha256(style.encode("utf-8")).digest()).decode("ascii")
    return ("default-src 'none'; img-src data:; style-src 'sha256-" + digest + "'; "
            "base-uri 'none'; form-action 'none'")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def page(*, title: str, subtitle: str, summary_rows: Sequence[Sequence[str]],
         summary_header: Sequence[str], figures: Sequence[Rendered], notes: Sequence[str],
         footer: Sequence[str], decision: Sequence[str] = (), figure_dir: str = "figures") -> str:
    """The whole HTML document (UTF-8 text)."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(csp(CSS))}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{_e(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{_e(subtitle)}</p>',
        *(f'<p class="decision">{_e(d)}</p>' for d in decision),
    ]
    if summary_rows:
        out.append("<table><thead><tr>"
                   + "".join(f"<th>{_e(h)}</th>" for h in summary_header)
                   + "</tr></thead><tbody>")
        for row in summary_rows:
            out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>")
        out.append("</tbody></table>")
    if notes:
        out.append('<div class="notes"><ul>'
                   + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul></div>")
    out.append("<nav><ol>" + "".join(f'<li><a href="#{_e(f.name)}">{_e(f.title)}</a></li>'
                                     for f in figures) + "</ol></nav>")
    for f in figures:
        uri = "data:image/svg+xml;base64," + base64.b64encode(f.svg).decode("ascii")
        out += [
            f'<figure id="{_e(f.name)}">',
            f"<h2>{_e(f.title)}</h2>",
            f'<img src="{uri}" width="{f.width_px}" height="{f.height_px}" '
            f'alt="{_e(f.title)}">',
            f"<figcaption>{_e(f.caption)} <span class=\"files\">Files: "
            f'<a href="{figure_dir}/{_e(f.name)}.svg">{_e(f.name)}.svg</a>, '
            f'<a href="{figure_dir}/{_e(f.name)}.png">{_e(f.name)}.png</a>.</span>'
            "</figcaption>",
            "</figure>",
        ]
    out.append("<footer>" + "".join(f"<p>{_e(line)}</p>" for line in footer) + "</footer>")
    out += ["</main>", "</body>", "</html>", ""]
    return "\n".join(out)
