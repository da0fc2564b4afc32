"""User text in reports, descriptions, CSV outputs and the console shows as written and runs nothing.

Markdown is checked as a person sees it: rendered by a CommonMark renderer with raw HTML on
and GitHub's tables (markdown-it-py), as MLflow's UI and GitHub render it.
"""

import dataclasses
import html
import re

import pandas as pd
import pytest
from markdown_it import MarkdownIt

from retrainlab.base import escape
from retrainlab.base.escape import Markdown, md
from retrainlab.config import CompareParams
from retrainlab.decision import comparison
from retrainlab.decision.diagnosis import Diagnosis, ShiftedFeature

from ..decision.test_comparison import record

# Labels, column names and category values a careless or hostile user could bring.
HOSTILE = (
    "</script><script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "![x](http://evil.invalid/x.png)",
    "x2|pipe **bold** _it_ ~~gone~~ `code`",
    "# heading",
    "- a list item",
    "1. numbered",
    "&lt;already escaped&gt; &amp;",
    "two\nlines\r\tand tabs",
    "\\ backslash \\",
    "=HYPERLINK(\"http://evil.invalid\")",
)
RENDER = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
# What a value must never become once rendered: markup of any kind.
MARKUP = re.compile(r"<(?!/?(p|table|thead|tbody|tr|th|td)>)[a-z/!]", re.IGNORECASE)


def shown_text(rendered: str) -> str:
    """The text a reader sees in rendered HTML (tags of the expected layout removed)."""
    return html.unescape(re.sub(r"</?(p|table|thead|tbody|tr|th|td)>", "", rendered)).strip()


@pytest.mark.parametrize("value", HOSTILE)
def test_a_value_renders_as_its_text_and_nothing_else(value):
    rendered = RENDER.render(escape.markdown(value))
    assert not MARKUP.search(rendered), rendered
    assert shown_text(rendered) == " ".join(value.split())


@pytest.mark.parametrize("value", HOSTILE)
def test_a_value_in_a_table_cell_keeps_the_table_and_its_text(value):
    table = escape.lines([md("| a | b |"), md("|---|---|"), md("| {} | {:.2f} |", value, 0.5)])
    rendered = RENDER.render(table)
    assert not MARKUP.search(rendered), rendered
    cells = re.findall(r"<td>(.*?)</td>", rendered)
    assert [html.unescape(c) for c in cells] == [" ".join(value.split()), "0.50"]


def test_md_escapes_every_value_but_markdown_and_numbers():
    assert md("**{}**: {:.3f} {} {}", "<b>", 0.5, Markdown("*ok*"), True) == "**&lt;b&gt;**: 0.500 *ok* True"
    assert isinstance(md("{}", "x"), Markdown)
    # Text added or joined to Markdown is escaped; Markdown stays as it is.
    joined = md(", ").join(["*a*", md("*b*")]) + "|c" + md(" d")
    assert joined == "\\*a\\*, *b*\\|c d" and isinstance(joined, Markdown)
    assert "<x>" + md("*y*") == "&lt;x&gt;*y*" and isinstance("<x>" + md("y"), Markdown)
    assert escape.lines(["*a*", md("*b*")]) == "\\*a\\*\n*b*"


def test_the_writers_take_markdown_only():
    assert escape.require_markdown(md("{}", "x")) == "x"
    with pytest.raises(TypeError, match="expected Markdown"):
        escape.require_markdown("raw <script>")


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised():
    assert [escape.csv_cell(v) for v in ("=HYPERLINK(\"x\")", "+1", "-cmd", "@SUM(A1)", "\tx", "plain", -1.5)] == [
        "'=HYPERLINK(\"x\")", "'+1", "'-cmd", "'@SUM(A1)", "'\tx", "plain", -1.5,
    ]
    frame = escape.csv_frame(pd.DataFrame({"=col": ["=1+1", "ok"], "n": [-1, 2]}))
    assert list(frame.columns) == ["'=col", "n"]
    assert frame["'=col"].tolist() == ["'=1+1", "ok"] and frame["n"].tolist() == [-1, 2]


def test_csv_cells_cannot_end_the_script_block_dvc_embeds_them_in():
    """`dvc plots show` puts the plot files' values, as JSON, inside <script>: a value with
    </script> would end it. < and > are written as the angle quotation marks that look like them."""
    assert escape.csv_cell("</script><script>alert(1)</script>") == "‹/script›‹script›alert(1)‹/script›"
    assert escape.csv_cell("a & <=50K <!--") == "a & ‹=50K ‹!--"
    assert escape.csv_frame(pd.DataFrame({"<b>": ["<i>"]})).to_dict("list") == {"‹b›": ["‹i›"]}


def test_console_text_is_one_printable_line():
    assert escape.one_line("plain text: 'ok'") == "plain text: 'ok'"
    assert escape.one_line("two\nlines\x1b[2J\x07") == "two\\nlines\\x1b[2J\\x07"


def test_the_report_shows_hostile_labels_and_column_names_as_text():
    records = {"baseline": record([0.9] * 3, [0.5] * 3), "full-retrain": record([0.9] * 3, [0.9] * 3, cpu=50)}
    for name, r in records.items():
        records[name] = dataclasses.replace(r, means={k: v for k, v in r.means.items() if k != "gpu_seconds"})
    policy = CompareParams()
    verdict = comparison.recommend(records, policy)
    diagnostics = Diagnosis(
        rows_old=100, rows_new=30, size_ratio=0.3, new_classes=list(HOSTILE), vanished_classes=[],
        label_shift_tv=0.2, psi_max=0.5, psi_mean=0.2, domain_auc=0.6,
        top_shifted_features=tuple(ShiftedFeature(name, "numeric", 0.5, 0.3) for name in HOSTILE),
    )
    recall = {"new": pd.DataFrame({label: [0.5] for label in HOSTILE}, index=["baseline"])}
    changes = [md("**new classes**: {}", ", ".join(HOSTILE))]
    text = comparison.markdown(comparison.table(records, verdict), verdict, diagnostics, policy, changes=changes,
                               recall=recall)
    ours = r'<img src="(diagnostics|accuracy_vs_cost|learning_curves|confusion|predicted_vs_true|residuals)\.png" alt="[\w -]+" />'
    rendered = re.sub(ours, "", RENDER.render(text))
    assert not re.search(r"<(script|img|a |del|code>code|em>it|strong>bold)", rendered), rendered
    assert rendered.count("<h1>") == 1 and "<h1>heading" not in rendered
    feature_rows = re.findall(r"<tr>\s*<td>(.*?)</td>", rendered, re.S)
    assert {html.unescape(cell) for cell in feature_rows} >= {" ".join(v.split()) for v in HOSTILE}


def test_the_html_report_shows_hostile_labels_as_text_and_no_image_but_its_plots():
    """reports/comparison.html is the Markdown report rendered with raw HTML off: a label
    shows as written, and an image shows only where the writer supplies its source."""
    records = {"baseline": record([0.9] * 3, [0.5] * 3), "full-retrain": record([0.9] * 3, [0.9] * 3, cpu=50)}
    verdict = comparison.recommend(records, CompareParams())
    diagnostics = Diagnosis(
        rows_old=100, rows_new=30, size_ratio=0.3, new_classes=list(HOSTILE), vanished_classes=[],
        label_shift_tv=0.2, psi_max=0.5, psi_mean=0.2, domain_auc=0.6,
        top_shifted_features=tuple(ShiftedFeature(name, "numeric", 0.5, 0.3) for name in HOSTILE),
    )
    text = comparison.markdown(comparison.table(records, verdict), verdict, diagnostics, CompareParams(),
                               changes=[md("**new classes**: {}", ", ".join(HOSTILE))])
    plot = "data:image/png;base64,iVBORw0KGgo="
    page = escape.markdown_html(text, {"diagnostics.png": plot})
    assert page.count(f'<img src="{plot}" alt="what changed" />') == 1
    assert "<p>accuracy against cost</p>" in page  # an image without a source: its alternative text
    assert not re.search(r"<(script|img src=\"[^d]|a |del|code>code|em>it|strong>bold)", page), page
    assert page.count("<h1>") == 1 and "<h1>heading" not in page
    feature_rows = re.findall(r"<tr>\s*<td>(.*?)</td>", page, re.S)
    assert {html.unescape(cell) for cell in feature_rows} >= {" ".join(v.split()) for v in HOSTILE}
    with pytest.raises(TypeError, match="expected Markdown"):
        escape.markdown_html("<b>raw</b>", {})
