"""Screenshots of the MLflow UI for the README, taken in headless Chromium with Playwright.

    python scripts/screenshots.py [--tracking-uri URI] [--experiment NAME] [--registered-model NAME]
                                  [--out docs/images] [--port 0] [--chromium PATH]

It starts `mlflow ui` on 127.0.0.1 (a free port unless --port is given) on the tracking store,
waits for it, takes the shots and stops it. With an http(s):// tracking URI it uses that
server as it is and starts none. Only reads the store: the UI's own state (columns, expanded
runs, charts) is put in the browser's localStorage before each page loads.

Needs Playwright for Python (`pip install playwright`). It drives the Chromium given by
--chromium (or $CHROMIUM, or the first of chromium, chromium-browser, google-chrome on PATH),
so no browser download is needed; without one it falls back to Playwright's own browser.

The shots, into --out:
  runs-table.png    the experiment's runs table (the "machine learning" view, not the GenAI
                    overview MLflow 3 opens on), the newest pipeline run expanded to its
                    step runs, with the target, acc_old, acc_new, forgetting and verdict columns
  runs-ranked.png   the newest pipeline's strategy runs alone, sorted by target, best first
                    (MLflow nests child runs only when the table is sorted by start time)
  compare.png       the chart view: target, acc_old, acc_new and forgetting by strategy, and the
                    training curves
  parent-run.png    the pipeline run's page with its description (the decision)
  report.png        the pipeline run's artifacts on comparison/comparison.html: the report,
                    its tables and plots, as MLflow shows an HTML artifact (inline)
  model-version.png the registered version of the recommended strategy: description and tags
  versions.png      the registered model's page: its versions, their aliases and tags
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

SHOTS = ("runs-table", "runs-ranked", "compare", "parent-run", "report", "model-version", "versions")
ROLE_TAG = "retrainlab.role"
STRATEGY_TAG = "retrainlab.strategy"
VERDICT_TAG = "retrainlab.verdict"
RECOMMENDATION_TAG = "retrainlab.recommendation"
PARENT_TAG = "mlflow.parentRunId"
FIGURES = ("target", "acc_old", "acc_new", "forgetting")
REPORT_ARTIFACT = "comparison/comparison.html"  # the report as one page, logged by compare
CURVE_PREFIX = "curves/"  # the per-epoch curves (older stores: train_loss, train_accuracy)
# One color per strategy, the same in every shot (Tableau 10).
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac")
CARD_HEIGHT = 320  # two rows of charts fit in a 1000-pixel-high window


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sys.exit("screenshots: needs Playwright for Python: pip install playwright "
                 "(a system Chromium is used, no browser download is needed)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with ui_server(args) as base:
        api = Api(base)
        found = lookup(api, args)
        print(f"screenshots: {base} experiment {found['experiment_id']}, pipeline run "
              f"{found['pipeline']['info']['run_id']}, {len(found['strategies'])} strategy runs"
              + (f", model version {found['version']}" if found.get("version") else ""), flush=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(**launch_options(args))
            try:
                for name in args.shots:
                    path = out / f"{name}.png"
                    if SHOOTERS[name](browser, base, found, args, path) is not False:  # False: skipped, said why
                        print(f"screenshots: wrote {path}", flush=True)
            finally:
                browser.close()
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db",
                   help="the store to show ($MLFLOW_TRACKING_URI, else sqlite:///mlflow.db); "
                        "an http(s):// URI is a running server, used as it is")
    p.add_argument("--experiment", default="retrainlab-digits", help="the experiment's name")
    p.add_argument("--registered-model", default=None,
                   help="the registered model (default: the experiment's name)")
    p.add_argument("--out", default=os.path.join("docs", "images"), help="where the PNGs go")
    p.add_argument("--port", type=int, default=0, help="the UI's port on 127.0.0.1 (default: a free one)")
    p.add_argument("--chromium", default=None, help="the Chromium to drive ($CHROMIUM, else found on PATH)")
    p.add_argument("--width", type=int, default=1600)
    p.add_argument("--height", type=int, default=1000)
    p.add_argument("--scale", type=float, default=1.0, help="device scale factor (2 for sharper, larger PNGs)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the server and each page")
    p.add_argument("--shots", nargs="+", choices=SHOTS, default=list(SHOTS), metavar="SHOT",
                   help=f"which shots to take (default: all of {', '.join(SHOTS)})")
    args = p.parse_args(argv)
    args.registered_model = args.registered_model or args.experiment
    return args


# -- the server ------------------------------------------------------------------------------

class ui_server:
    """`mlflow ui` on 127.0.0.1 for the duration of a with block; its base URL is the value."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.proc: subprocess.Popen | None = None
        self.log = None

    def __enter__(self) -> str:
        uri = self.args.tracking_uri
        if uri.startswith(("http://", "https://")):
            return uri.rstrip("/")
        port = self.args.port or free_port()
        cmd = [*mlflow_command(), "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1"]
        self.log = tempfile.TemporaryFile()
        # No background job runner (nothing to run for a viewer) and no usage telemetry.
        env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_DISABLE_TELEMETRY="true",
                   DO_NOT_TRACK="true")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)  # its own process group, stopped whole
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + self.args.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._fail(f"mlflow ui exited with status {self.proc.returncode}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=5) as r:
                    if r.status == 200:
                        return base
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        self._fail(f"mlflow ui did not answer on {base} within {self.args.timeout:.0f} s")

    def _fail(self, message: str):
        tail = ""
        if self.log is not None:
            self.log.seek(0)
            tail = self.log.read().decode(errors="replace")[-3000:]
        self.__exit__(None, None, None)
        sys.exit(f"screenshots: {message}\n{tail}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None


def mlflow_command() -> list[str]:
    """This interpreter's MLflow when it has one, else the `mlflow` on PATH."""
    try:
        import importlib.util
        if importlib.util.find_spec("mlflow") is not None:
            return [sys.executable, "-m", "mlflow"]
    except (ImportError, ValueError):
        pass
    found = shutil.which("mlflow")
    if not found:
        sys.exit("screenshots: no MLflow here: run it with the project's environment (.venv/bin/python)")
    return [found]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- what to show ----------------------------------------------------------------------------

class Api:
    """The few REST calls needed, on the UI's own server."""

    def __init__(self, base: str):
        self.base = base

    def call(self, endpoint: str, body: dict | None = None, **query) -> dict:
        url = f"{self.base}/api/2.0/mlflow/{endpoint}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return {}
            raise SystemExit(f"screenshots: {url}: {e.code} {e.read()[:300]!r}")

    def runs(self, experiment_id: str, filter_string: str, order_by: list[str] | None = None,
             max_results: int = 200) -> list[dict]:
        body = {"experiment_ids": [experiment_id], "filter": filter_string, "max_results": max_results,
                "order_by": order_by or ["attributes.start_time DESC"]}
        return self.call("runs/search", body).get("runs", [])


def tags_of(entity: dict) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in entity.get("data", entity).get("tags", [])}


def metrics_of(run: dict) -> dict[str, float]:
    return {m["key"]: m["value"] for m in run.get("data", {}).get("metrics", [])}


def lookup(api: Api, args: argparse.Namespace) -> dict:
    """The experiment, its newest pipeline run, that run's strategy runs, the curves they have,
    and the registered version of the recommended strategy."""
    experiment = api.call("experiments/get-by-name", experiment_name=args.experiment).get("experiment")
    if not experiment:
        sys.exit(f"screenshots: no experiment named {args.experiment!r} in {args.tracking_uri}")
    eid = experiment["experiment_id"]
    pipelines = api.runs(eid, f"tags.`{ROLE_TAG}` = 'pipeline'", max_results=1)
    if not pipelines:
        sys.exit(f"screenshots: experiment {args.experiment!r} has no pipeline run ({ROLE_TAG} = pipeline)")
    pipeline = pipelines[0]
    pid = pipeline["info"]["run_id"]
    children = api.runs(eid, f"tags.`{PARENT_TAG}` = '{pid}'")
    strategies = sorted((r for r in children if tags_of(r).get(STRATEGY_TAG)),
                        key=lambda r: tags_of(r)[STRATEGY_TAG])
    found = {"experiment_id": eid, "pipeline": pipeline, "strategies": strategies,
             "curves": curve_keys(strategies)}
    found["version"] = recommended_version(api, args.registered_model, pipeline, strategies)
    return found


def curve_keys(runs: list[dict]) -> list[str]:
    """Up to two per-epoch curves the strategy runs have: the loss and the accuracy."""
    keys = sorted({k for r in runs for k in metrics_of(r)})
    curves = [k for k in keys if k.startswith(CURVE_PREFIX)] or [k for k in keys if k.startswith("train_")]
    pick = [k for k in curves if "loss" in k][:1] + [k for k in curves if "acc" in k][:1]
    return pick or curves[:2]


def recommended_version(api: Api, model: str, pipeline: dict, strategies: list[dict]) -> str | None:
    """The version registered from the recommended strategy's run, else the newest version."""
    found = api.call("model-versions/search", filter=f"name='{model}'", max_results=1000)
    versions = found.get("model_versions", [])
    if not versions:
        return None
    recommended = tags_of(pipeline).get(RECOMMENDATION_TAG)
    run_ids = {r["info"]["run_id"] for r in strategies if tags_of(r).get(STRATEGY_TAG) == recommended}
    mine = [v for v in versions if v.get("run_id") in run_ids]
    return max(mine or versions, key=lambda v: int(v["version"]))["version"]


# -- the browser -----------------------------------------------------------------------------

def launch_options(args: argparse.Namespace) -> dict:
    chromium = args.chromium or os.environ.get("CHROMIUM") or next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    options: dict = {"headless": True}
    if chromium:
        options["executable_path"] = chromium
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        options["args"] = ["--no-sandbox"]  # Chromium refuses to run as root with its sandbox
    return options


def page_with_state(browser, args: argparse.Namespace, storage: dict[str, object]):
    """A fresh page whose localStorage holds `storage` before any of the UI's code runs."""
    context = browser.new_context(viewport={"width": args.width, "height": args.height},
                                  device_scale_factor=args.scale, color_scheme="light", locale="en-US",
                                  timezone_id="UTC")
    items = {k: v if isinstance(v, str) else json.dumps(v) for k, v in storage.items()}
    context.add_init_script(
        "(() => { const items = %s; for (const [k, v] of Object.entries(items)) localStorage.setItem(k, v); })();"
        % json.dumps(items))
    context.set_default_timeout(args.timeout * 1000)
    return context.new_page()


def base_storage() -> dict[str, object]:
    """The classic ("machine learning") workflow, light theme, no assistant panel."""
    return {
        "mlflow.workflowType_v1": json.dumps("machine_learning"),  # a JSON value
        "mlflow.assistant.panelOpen_v1": False,
        "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": True,
        # No telemetry: its SharedWorker's script never counts as loaded, so the network never idles.
        "mlflow.settings.telemetry.enabled_v1": False,
        "_mlflow_dark_mode_toggle_enabled": False,
        "databricks-dark-mode-pref": "light",
    }


def experiment_storage(found: dict, ui_state: dict) -> dict[str, object]:
    """The runs page's persisted state for this experiment: MLflow merges it over its defaults."""
    eid = found["experiment_id"]
    colors = {r["info"]["run_id"]: PALETTE[i % len(PALETTE)] for i, r in enumerate(found["strategies"])}
    return base_storage() | {
        f'MLflowLocalStorage-1.1-ExperimentPage-["{eid}"]-ReactComponentState': ui_state,
        f"MLflowLocalStorage-1.1-ExperimentView-{eid}-expandRows": "false",
        "experimentRunColors": colors,
    }


def runs_url(base: str, eid: str, **facets: str) -> str:
    query = {"workflowType": "machine_learning", "searchFilter": "", "orderByKey": "attributes.start_time",
             "orderByAsc": "false", "startTime": "ALL", "lifecycleFilter": "Active"} | facets
    return f"{base}/#/experiments/{eid}/runs?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)


def column(kind: str, key: str) -> str:
    return f"{kind}.`{key}`"


TABLE_COLUMNS = [column("metrics", "target"), column("metrics", "acc_old"), column("metrics", "acc_new"),
                 column("metrics", "forgetting"), column("tags", VERDICT_TAG)]


def table_state(found: dict, **extra) -> dict:
    widths = {column("attributes", "Run Name"): 330, "runDateAndNestInfo": 140, "duration": 90,
              **{c: 120 for c in TABLE_COLUMNS}, column("tags", VERDICT_TAG): 190}
    return {
        "selectedColumns": TABLE_COLUMNS,
        "columnOrder": [column("attributes", "Run Name"), "runDateAndNestInfo", "duration", *TABLE_COLUMNS],
        "columnWidths": widths,
        "runsExpanded": {found["pipeline"]["info"]["run_id"]: True},
        "runsHiddenMode": "SHOW_ALL",
        "autoRefreshEnabled": False,
        **extra,
    }


def wait_for_table(page, found: dict, names: list[str]) -> None:
    page.wait_for_selector(".ag-row")
    for name in names:
        page.locator(".ag-row", has_text=name).first.wait_for()
    if any("target" in metrics_of(r) for r in found["strategies"]):
        page.locator(f'.ag-header-cell[col-id="{column("metrics", "target")}"]').wait_for()
    settle(page)


def settle(page, quiet_ms: int = 800) -> None:
    """Until the network has been quiet a moment (the UI polls nothing once auto-refresh is off),
    then a frame for the last render."""
    try:
        page.wait_for_load_state("networkidle", timeout=15000)
    except Exception:  # a slow poll is not worth failing a screenshot for
        pass
    page.wait_for_timeout(quiet_ms)


def run_name(run: dict) -> str:
    return run["info"].get("run_name") or tags_of(run).get("mlflow.runName", "")


def shoot_runs_table(browser, base: str, found: dict, args, path: Path) -> None:
    page = page_with_state(browser, args, experiment_storage(found, table_state(found)))
    page.goto(runs_url(base, found["experiment_id"]))
    wait_for_table(page, found, [run_name(found["pipeline"]), *map(run_name, found["strategies"][:1])])
    page.screenshot(path=str(path))
    page.context.close()


def shoot_runs_ranked(browser, base: str, found: dict, args, path: Path) -> None:
    pid = found["pipeline"]["info"]["run_id"]
    search = f"tags.`{PARENT_TAG}` = '{pid}' and tags.`{STRATEGY_TAG}` LIKE '%'"
    order = column("metrics", "target")
    state = table_state(found, searchFilter=search, orderByKey=order, orderByAsc=False)
    page = page_with_state(browser, args, experiment_storage(found, state))
    page.goto(runs_url(base, found["experiment_id"], searchFilter=search, orderByKey=order))
    wait_for_table(page, found, list(map(run_name, found["strategies"][:1])))
    page.screenshot(path=str(path))
    page.context.close()


def compare_state(found: dict) -> dict:
    section = "retrainlab-strategies"
    logged = {k for r in found["strategies"] for k in metrics_of(r)}
    count = max(10, len(found["strategies"]))
    charts = [{"uuid": f"retrainlab-bar-{key}", "type": "BAR", "runsCountToCompare": count,
               "metricSectionId": section, "deleted": False, "isGenerated": False,
               "displayName": key, "metricKey": key} for key in FIGURES if key in logged]
    charts += [{"uuid": f"retrainlab-line-{key}", "type": "LINE", "runsCountToCompare": count,
                "metricSectionId": section, "deleted": False, "isGenerated": False,
                "displayName": key, "metricKey": key, "selectedMetricKeys": [key], "lineSmoothness": 0,
                "xAxisScaleType": "linear", "scaleType": "linear", "range": {}, "xAxisKey": "step",
                "selectedXAxisMetricKey": "", "yAxisKey": "metric", "yAxisExpressions": [],
                "ignoreOutliers": False, "useGlobalXaxisKey": False, "useGlobalLineSmoothing": False}
               for key in found["curves"]]
    shown = {r["info"]["run_id"]: True for r in found["strategies"]}
    return table_state(found, compareRunCharts=charts, isAccordionReordered=True,
                       compareRunSections=[{"uuid": section, "name": "Strategies", "display": True,
                                            "isReordered": False, "deleted": False, "isGenerated": False,
                                            "columns": 3, "cardHeight": CARD_HEIGHT}],
                       runsHiddenMode="HIDE_ALL", runsVisibilityMap=shown)


def shoot_compare(browser, base: str, found: dict, args, path: Path) -> None:
    state = compare_state(found)
    page = page_with_state(browser, args, experiment_storage(found, state))
    page.goto(runs_url(base, found["experiment_id"], compareRunsMode="CHART"))
    page.wait_for_selector(".ag-row")
    # Each chart drawn (Plotly), the curves with their lines.
    count = len(state["compareRunCharts"])
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length >= {count}")
    if found["curves"]:
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .scatterlayer .trace').length "
                               f">= {len(found['curves'])}")
    settle(page, 1500)
    page.screenshot(path=str(path))
    page.context.close()


def shoot_parent_run(browser, base: str, found: dict, args, path: Path) -> None:
    pid = found["pipeline"]["info"]["run_id"]
    page = page_with_state(browser, args, base_storage())
    page.goto(f"{base}/#/experiments/{found['experiment_id']}/runs/{pid}?workflowType=machine_learning")
    page.get_by_text(run_name(found["pipeline"]), exact=True).first.wait_for()
    page.get_by_text("Description", exact=True).first.wait_for()
    settle(page)
    more = page.get_by_text("Show more", exact=True)
    if more.count():  # a long description is folded
        more.first.click()
        page.wait_for_timeout(500)
    page.screenshot(path=str(path))
    page.context.close()


def shoot_model_version(browser, base: str, found: dict, args, path: Path) -> bool | None:
    return _shoot_registry(browser, base, found, args, path, one_version=True)


def shoot_report(browser, base: str, found: dict, args, path: Path) -> bool | None:
    pid = found["pipeline"]["info"]["run_id"]
    listed = Api(base).call("artifacts/list", run_id=pid, path=REPORT_ARTIFACT.rpartition("/")[0])
    if REPORT_ARTIFACT not in {f["path"] for f in listed.get("files", [])}:
        print(f"screenshots: the pipeline run has no {REPORT_ARTIFACT}: {path.name} skipped")
        return False
    page = page_with_state(browser, args, base_storage())
    page.goto(f"{base}/#/experiments/{found['experiment_id']}/runs/{pid}/artifacts/{REPORT_ARTIFACT}")
    report = page.frame_locator("iframe.mlflow-html-iframe")
    report.locator("h1").wait_for()
    report.locator("img").first.wait_for()
    settle(page)
    page.screenshot(path=str(path))
    page.context.close()


def shoot_versions(browser, base: str, found: dict, args, path: Path) -> bool | None:
    return _shoot_registry(browser, base, found, args, path, one_version=False)


def _shoot_registry(browser, base: str, found: dict, args, path: Path, one_version: bool) -> bool | None:
    """The registered model's page of versions, or (`one_version`) the page of the version found."""
    if not found.get("version"):
        print(f"screenshots: no registered version of {args.registered_model!r}: {path.name} skipped")
        return False
    name = urllib.parse.quote(args.registered_model, safe="")
    page = page_with_state(browser, args, base_storage())
    page.goto(f"{base}/#/models/{name}" + (f"/versions/{found['version']}" if one_version else ""))
    page.get_by_text(f"Version {found['version']}", exact=True).first.wait_for()
    if one_version:
        page.get_by_text("Tags", exact=True).first.wait_for()
    settle(page)
    page.screenshot(path=str(path))
    page.context.close()


SHOOTERS = {"runs-table": shoot_runs_table, "runs-ranked": shoot_runs_ranked, "compare": shoot_compare,
            "parent-run": shoot_parent_run, "report": shoot_report, "model-version": shoot_model_version,
            "versions": shoot_versions}


if __name__ == "__main__":
    sys.exit(main())
