"""The report as one page, reports/comparison.html, as MLflow shows it on the pipeline's parent
run: the Markdown report's text and tables, with its plots inline, and nothing loaded from
elsewhere. Real files written by `write_report`."""

import base64
import re

from retrainlab.base import layout
from retrainlab.decision import comparison
from retrainlab.reporting import report

from .test_report import DIAGNOSIS, POLICY, curves, text_case


def test_the_page_holds_the_report_and_its_plots_inline_and_loads_nothing(tmp_path):
    records = text_case(tmp_path)
    verdict = comparison.recommend(records, POLICY)
    report.write_report(tmp_path, records, verdict, DIAGNOSIS, POLICY, curves(records))
    text = (tmp_path / layout.REPORT_MD).read_text()
    page = (tmp_path / layout.REPORT_HTML).read_text()

    assert page.startswith("<!DOCTYPE html>") and f"<strong>Recommendation: {verdict.recommended}.</strong>" in page
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings and re.findall(r"<h2>(.+?)</h2>", page) == headings
    rules = re.findall(r"^\|(?: ?-{3,} ?\|)+$", text, re.M)  # a Markdown table's header rule, one per table
    assert page.count("<table>") == len(rules) >= 2
    # Each plot the report shows is in the page, byte for byte, and nothing else is fetched.
    shown = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert len(sources) == len(shown) >= 3
    for name, source in zip(shown, sources):
        kind, data = source.split(",", 1)
        assert kind == "data:image/png;base64"
        assert base64.b64decode(data) == (tmp_path / layout.REPORTS_DIR / name).read_bytes()
    assert not re.search(r"<(script|link|iframe|object)|href=|url\(|https?:", page)
