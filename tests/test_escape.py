"""User text in reports and CSV outputs shows as written and runs nothing."""

import dataclasses

import pandas as pd

from retrainlab import comparison, escape
from retrainlab.config import CompareParams

from .test_comparison import record


def test_markdown_escapes_html_and_markup_and_keeps_one_line():
    assert escape.markdown("<script>alert(1)</script>") == "&lt;script&gt;alert\\(1\\)&lt;/script&gt;"
    assert escape.markdown("x2|pipe **bold**") == "x2\\|pipe \\*\\*bold\\*\\*"
    assert escape.markdown("[a](javascript:x)") == "\\[a\\]\\(javascript:x\\)"
    assert escape.markdown("two\nlines") == "two lines"
    assert escape.markdown(3) == "3"


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised():
    assert [escape.csv_cell(v) for v in ("=HYPERLINK(\"x\")", "+1", "-cmd", "@SUM(A1)", "\tx", "plain", -1.5)] == [
        "'=HYPERLINK(\"x\")", "'+1", "'-cmd", "'@SUM(A1)", "'\tx", "plain", -1.5,
    ]
    frame = escape.csv_frame(pd.DataFrame({"=col": ["=1+1", "ok"], "n": [-1, 2]}))
    assert list(frame.columns) == ["'=col", "n"]
    assert frame["'=col"].tolist() == ["'=1+1", "ok"] and frame["n"].tolist() == [-1, 2]


def test_the_report_shows_hostile_labels_and_column_names_as_text():
    records = {"baseline": record([0.9] * 3, [0.5] * 3), "full-retrain": record([0.9] * 3, [0.9] * 3, cpu=50)}
    for name, r in records.items():
        records[name] = dataclasses.replace(r, means={k: v for k, v in r.means.items() if k != "gpu_seconds"})
    policy = CompareParams()
    verdict = comparison.recommend(records, policy)
    diagnostics = {
        "rows_old": 100, "rows_new": 30, "size_ratio": 0.3, "new_classes": ["<script>alert(1)</script>"],
        "label_shift_tv": 0.2, "psi_max": 0.5, "psi_mean": 0.2, "domain_auc": 0.6,
        "top_shifted_features": [
            {"feature": "x2|pipe **bold**", "kind": "numeric", "psi": 0.5, "ks": 0.3},
            {"feature": "=HYPERLINK(\"http://evil\")", "kind": "categorical", "psi": 0.1},
        ],
    }
    text = comparison.markdown(comparison.table(records, verdict), verdict, diagnostics, policy)
    assert "<script>" not in text and "&lt;script&gt;" in text
    feature_rows = [line for line in text.splitlines() if "pipe" in line or "HYPERLINK" in line]
    for row in feature_rows:  # a table row keeps its four cells: the name's | is escaped
        assert row.replace("\\|", "").count("|") == 5, row
