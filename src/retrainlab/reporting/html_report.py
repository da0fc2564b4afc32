"""The report as one self-contained page, reports/comparison.html: the Markdown report rendered
(`escape.markdown_html`: user text shows as written, raw HTML is off) with its plots inline as
PNG data, so that the page needs nothing beside it. Logged with the other report files to the
pipeline's parent run, it is what MLflow's artifact view shows there: the decision, the options
side by side and the figures, on one page."""

from __future__ import annotations

import base64
from pathlib import Path

from retrainlab.base import escape, layout
from retrainlab.base.escape import Markdown
from retrainlab.base.files import write_text_atomically

PLOTS = tuple(p for p in layout.REPORT_FILES if p.suffix == ".png")
# The page loads nothing and runs nothing: its style and its images are in it.
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       margin: 16px 24px; max-width: 1400px; }
h1 { font-size: 22px; margin: 0 0 12px; }
h2 { font-size: 17px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: 8px 0 16px; display: block; overflow-x: auto; }
th, td { padding: 4px 10px; border: 1px solid #d0d7de; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
th, td:first-child { white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafbfc; }
img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
code { background: #f6f8fa; padding: 1px 4px; border-radius: 4px; }
"""
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<title>retrainlab: the comparison</title>
<style>{style}</style>
</head>
<body>
{body}</body>
</html>
"""


def write_html(root: Path, report: Markdown) -> None:
    """reports/comparison.html: `report` (the Markdown of reports/comparison.md) as a page, with
    the plots it shows read from reports/, which must be written already."""
    images = {path.name: _data_uri(root / path) for path in PLOTS if (root / path).is_file()}
    body = escape.markdown_html(report, images)
    write_text_atomically(root / layout.REPORT_HTML, PAGE.format(policy=POLICY, style=STYLE, body=body))


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
