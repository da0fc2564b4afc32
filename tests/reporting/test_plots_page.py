"""`dvc plots show` draws without internet: the page retrainlab gives DVC carries vega,
vega-lite and vega-embed inline, where DVC's own page loads them from a CDN and, offline,
draws none of its plots. The real DVC fills the page, on the project's own dvc.yaml and plot
templates; headless Chromium draws it."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from retrainlab import cli
from retrainlab.base import layout
from retrainlab.strategies import BASELINE

from ..conftest import PROJECT, tool_env

SCRIPT = re.compile(r"<script\b[^>]*>", re.I)
FETCHED = re.compile(r"""\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


def run(root: Path, *command: str) -> str:
    done = subprocess.run(command, cwd=root, env=tool_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
    return done.stdout


def project(root: Path) -> Path:
    """A DVC repository with the project's files (dvc.yaml, its plot templates, .gitignore), and
    the tables its interactive plots read: the curves, accuracy against cost, and each strategy's
    predictions (the PNGs are left out: DVC shows them as images, no script needed)."""
    root.mkdir()
    run(root, "git", "init", "-q")
    run(root, "dvc", "init", "-q")
    for name in (".gitignore", *layout.PROJECT_FILES):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT / name, root / name)
    (root / "reports").mkdir()
    strategies = [BASELINE, *yaml.safe_load((root / "params.yaml").read_text())["strategies"]]
    (root / layout.REPORT_CURVES).write_text("strategy,epoch,loss,training,held_out_old,held_out_new\n" + "".join(
        f"{s},{epoch},{1 / epoch},{0.5 + epoch / 10},{0.6 + i / 50},{0.4 + epoch / 10}\n"
        for i, s in enumerate(strategies) for epoch in (1, 2, 3)))
    (root / layout.REPORT_SCATTER).write_text("strategy,cost,target,pareto\n" + "".join(
        f"{s},{i * 1.5},{0.6 + i / 40},{i == 1}\n" for i, s in enumerate(strategies)))
    (root / "plots").mkdir()
    for s in strategies:
        (root / layout.predictions_path(s)).write_text("test_set,actual,predicted\nold,0,0\nold,1,1\nnew,1,0\n")
    return root


def plots_page(root: Path) -> str:
    """The page `dvc plots show` writes."""
    run(root, "dvc", "plots", "show", "-o", "dvc_plots")
    return (root / "dvc_plots" / "index.html").read_text()


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """The project after `retrainlab offline-plots`, with DVC's page before it."""
    root = project(tmp_path / "project")
    before = plots_page(root)
    monkeypatch.chdir(root)
    assert cli.main(["offline-plots"]) == 0
    return root, before


def test_after_offline_plots_dvcs_page_fetches_no_script(offline):
    """Before: DVC's page took vega, vega-lite and vega-embed from a CDN, and drew nothing offline."""
    root, before = offline
    assert [tag for tag in SCRIPT.findall(before) if FETCHED.search(tag)]  # DVC's own page: three CDN scripts
    page = plots_page(root)
    assert SCRIPT.findall(page) and not FETCHED.search(page), FETCHED.findall(page)
    assert not [tag for tag in SCRIPT.findall(page) if "src" in tag.lower()]  # every script is in the page
    assert "window.vegaEmbed=" in page.replace(" ", "")
    # This clone's own setting, which git ignores, as it does the page.
    config = (root / ".dvc" / "config.local").read_text()
    assert "html_template = ../.retrainlab/plots-page.html" in config
    ignored = run(root, "git", "status", "--porcelain", "--ignored", ".dvc/config.local", str(layout.PLOTS_PAGE))
    assert ignored.count("!! ") == 2, ignored


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here to draw the page")
def test_every_interactive_plot_of_the_page_is_drawn_offline(offline):
    """Headless Chromium, on this machine without internet, draws each of the 12 plots DVC's
    page holds (5 figures, and a confusion matrix for the baseline and each of 6 options)."""
    root, _ = offline
    page = plots_page(root)
    plots = page.count("vegaEmbed('#")
    assert plots == 12
    drawn = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--dump-dom",
                            "--virtual-time-budget=15000", (root / "dvc_plots" / "index.html").as_uri()],
                           capture_output=True, text=True, timeout=300).stdout
    assert drawn.count('class="marks"') == plots  # vega-embed's drawing, one per plot
