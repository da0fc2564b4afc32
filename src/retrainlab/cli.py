"""The `retrainlab` command: one subcommand per pipeline step.

MLproject's entry points and DVC's stages call these subcommands, one per step and one per
strategy declared in `retrainlab.strategies`; `retrainlab run` launches the entry points
through MLflow's project runner. Heavy imports (TensorFlow, MLflow) happen inside the subcommand that needs
them, so `retrainlab --help` answers at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import textwrap
from pathlib import Path

from retrainlab import version
from retrainlab.base import console, escape, layout
from retrainlab.base.errors import RetrainlabError, Terminated, forget_stop, stop_asked
from retrainlab.config import MAX_SEED
from retrainlab.decision import map_grid
from retrainlab.pipeline.params import load_params
from retrainlab.strategies import BASELINE, CATALOGUE, describe
from retrainlab.tracking import server as team

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    # MLflow draws a progress bar for every download, a model's digest check included.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow logs a database error with its whole traceback before raising it; the error is
    # reported below in one line instead.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    parser = _parser()
    _add_verbose(parser)
    args = parser.parse_args(argv)
    # TensorFlow's and MLflow's chatter buries the progress lines: left out unless asked for.
    console.configure(args.verbose)

    def terminate(signum, frame):
        # Once: a stop that arrives while the first unwinds (Ctrl-C reaches a runner's step from
        # the terminal and again from the runner) must not cut short the closing of its runs.
        # The stop stays asked for: where a library swallowed this Terminated, the step raises
        # it again after the batch and before a run closes (errors.raise_if_stop_asked).
        if stop_asked(signum):
            raise Terminated(signum)

    # Ctrl-C is handled as SIGTERM is: the runs are closed as KILLED, without a traceback.
    forget_stop()  # a stop asked of an earlier command in this process (a test's) is not this one's
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, terminate)
    try:
        empty = _empty_option(parser, args)
        if empty is not None:
            raise RetrainlabError(f"{empty} is empty: give a value, or leave the option out for its default")
        status = args.handler(args)
    except RetrainlabError as exc:
        print(f"retrainlab: error: {escape.one_line(exc)}", file=sys.stderr)
        return 2
    except Terminated as stop:
        name = signal.Signals(stop.signum).name
        print(f"retrainlab: stopped by {name}; open runs were marked KILLED", file=sys.stderr)
        return 128 + stop.signum
    except Exception as exc:
        reason = _store_failure(exc)
        if reason is None:
            raise
        print(f"retrainlab: error: {escape.one_line(reason)}", file=sys.stderr)
        return 2
    return status or 0  # a subcommand that says its outcome in the exit status (check) returns it


def _store_failure(exc: Exception) -> str | None:
    """The tracking store's own failures (a database that cannot be written or reached) as one
    line naming the store; None for anything else, which is a bug and keeps its traceback."""
    text = str(exc)
    from_database = type(exc).__module__.startswith(("sqlalchemy", "sqlite3"))
    if not (from_database or (type(exc).__module__.startswith("mlflow") and "OperationalError" in text)):
        return None
    # start-up: only when this subcommand runs (retrainlab --help answers at once)
    from retrainlab.tracking.store import shown_tracking_uri

    # SQLAlchemy's text wraps the database's own line, "(sqlite3.OperationalError) why", in
    # lines of context and the SQL; MLflow quotes that text.
    lines = text.splitlines() or [type(exc).__name__]
    said = [line.split(") ", 1)[1] for line in lines if re.match(r"\([\w.]+Error\) ", line)]
    detail = said[0] if said else lines[0]
    return f"{shown_tracking_uri()}: the MLflow tracking store failed ({detail[:300]})"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="retrainlab",
        description="Measure whether to retrain, keep training, fine-tune or leave a model alone.",
    )
    parser.add_argument("--version", action="version", version=f"retrainlab {version()}")
    steps = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    prepare = steps.add_parser(layout.PREPARE, help="build the initial and incremental datasets")
    _add_params(prepare)
    prepare.set_defaults(handler=_prepare)

    for name, declared in CATALOGUE.items():
        strategy = steps.add_parser(name, help=declared.summary, description=f"{name}: {declared.summary}. "
                                    "Trains it once per seed, evaluates, logs and registers it.")
        _add_params(strategy)
        strategy.add_argument("--seed", default=ALL_SEEDS, metavar="SEED",
                              help=f"train this seed only (default: {ALL_SEEDS}, params.yaml's seeds)")
        strategy.set_defaults(handler=_strategy, strategy=name)

    compare = steps.add_parser(layout.COMPARE, help="compare the strategies, recommend one, mark it challenger")
    _add_params(compare)
    compare.set_defaults(handler=_compare)

    resolve_data = steps.add_parser(
        layout.RESOLVE_DATA, help="record what the data is made from for DVC: the data params and each input "
        "file's md5, whichever source params.yaml chooses",
    )
    _add_params(resolve_data)
    resolve_data.set_defaults(handler=_resolve_data)

    resolve = steps.add_parser(
        layout.RESOLVE, help="record where the baseline comes from (baseline.from) for DVC: a file's md5, "
        "or the registry version an alias points at now",
    )
    _add_params(resolve)
    resolve.set_defaults(handler=_resolve)

    next_round = steps.add_parser(
        "next-round", help="start the next round: this round's data becomes the old data, the champion the baseline",
        description="Round N's data (old and new) becomes round N+1's old data, the file given becomes the new "
        "data, and baseline.from points at the registry's champion; params.yaml is updated in place and the "
        "files go to data/raw/round-<N+1>/ (under DVC). Then: dvc repro.",
    )
    _add_params(next_round)
    next_round.add_argument("--incremental", required=True, metavar="PATH", help="the new data that arrived")
    next_round.set_defaults(handler=_next_round)

    promote = steps.add_parser(
        "promote", help="make the recommended version (or --version) the champion if the gates pass"
    )
    _add_params(promote)
    promote.add_argument(
        "--version",
        help="the registered version to promote (default: the one reports/comparison.json recommends, "
        "checked against the registry)",
    )
    promote.add_argument("--force", action="store_true", help="promote even if a gate fails (needs --reason)")
    promote.add_argument("--reason", help="why: recorded on the version")
    promote.set_defaults(handler=_promote)

    checker = steps.add_parser(
        "check", help="is it time? what each option would gain on the new data, before the comparison: no "
        "action, compare or urgent", description="Measure (with labels) or estimate (without) the current model on "
        "the new rows; with labels, train the options of compare.forecast once on part of them and forecast what "
        "each would gain; weigh that against params.yaml's compare section and the last comparison's cost, and say "
        "whether a comparison is worth running. Rows that trained the model are refused. Writes "
        "reports/check.{md,json} and an MLflow run. Exit status: 0 no action, 3 compare, 4 urgent, 5 too few "
        "labels to tell (2: an error).",
    )
    _add_params(checker)
    checker.add_argument("--data", metavar="PATH", help="the new rows, CSV, Parquet or .npz (default: the "
                         "incremental data params.yaml names; a built-in source's prepared incremental splits)")
    checker.add_argument("--model", metavar="URI", help="models:/NAME@ALIAS, models:/NAME/VERSION, a .keras file or a "
                         "pipeline's model folder (models/STRATEGY/seed-N) "
                         "(default: baseline.from where it names a model, else the registered model's champion)")
    checker.add_argument("--no-labels", action="store_true",
                         help="leave the labels out: no forecast; estimate the accuracy from the model's confidences")
    checker.add_argument("--width", type=float, default=0.05, metavar="SHARE",
                         help="the interval width the labels needed are counted for (default: 0.05)")
    checker.set_defaults(handler=_check)

    rollback = steps.add_parser("rollback", help="give the champion alias back to the previous champion")
    _add_params(rollback)
    rollback.add_argument("--reason", help="why: recorded on the versions")
    rollback.set_defaults(handler=_rollback)

    run = steps.add_parser(
        "run",
        help="run an MLproject entry point with MLflow's project runner, logging to this project's store",
    )
    run.add_argument("entry", choices=(layout.PREPARE, *CATALOGUE, layout.COMPARE))
    run.add_argument("-P", dest="entry_params", action="append", default=[], metavar="KEY=VALUE")
    _add_params(run)
    run.set_defaults(handler=_run)
    _add_server(steps)
    _add_map(steps)
    _add_own_repository(steps)
    _describe(steps)
    return parser


def _add_server(steps) -> None:
    server = steps.add_parser(
        "server", help="team mode: an MLflow tracking server on PostgreSQL that serves the artifacts",
        description="Run `mlflow server` on a PostgreSQL store with served artifacts. "
        "Further `mlflow server` options go after --.",
    )
    server.add_argument(
        "--backend-store-uri", default=os.environ.get("MLFLOW_BACKEND_STORE_URI"), metavar="URI",
        help="postgresql://USER:PASSWORD@HOST:PORT/DATABASE (default: $MLFLOW_BACKEND_STORE_URI; "
        f"neither: a throwaway PostgreSQL in {team.LOCAL_CLUSTER_DIR}/)",
    )
    server.add_argument(
        "--artifacts-destination", default=os.environ.get("MLFLOW_ARTIFACTS_DESTINATION"), metavar="URI",
        help=f"where the server stores artifacts (default: {team.ARTIFACTS_DIR}/ in the project)",
    )
    server.add_argument("--host", default=team.DEFAULT_HOST, help=f"address to bind (default: {team.DEFAULT_HOST})")
    server.add_argument("--port", type=int, default=team.DEFAULT_PORT, help=f"(default: {team.DEFAULT_PORT})")
    server.add_argument(
        "--allow-remote", action="store_true",
        help="allow a --host other than loopback: the server has no authentication of its own",
    )
    server.add_argument("mlflow_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    server.set_defaults(handler=_server)


def _add_map(steps) -> None:
    def shown(values) -> str:
        return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)

    sweep = steps.add_parser(
        "map", help="sweep sources, scenarios and sizes of new data; map which option wins, by how much, at what cost",
        description="For each cell of the grid (source x scenario x size of the new data relative to the old, "
        "shift strength for covariate_shift, and share of unseen items for new_categories) prepare the data, "
        "train the baseline and every option of params.yaml's strategies: once per seed, in this process and "
        "without MLflow, and recommend one as the compare step would. Writes map.csv, map.json and heatmaps to "
        "--out when every cell is done (docs/DECISION_MAP.md). Lists take values apart or joined by commas.",
    )
    _add_params(sweep)
    sweep.add_argument("--sources", nargs="*", metavar="SOURCE",
                       help=f"built-in sources (default: {shown(map_grid.DEFAULT_SOURCES)})")
    sweep.add_argument("--scenarios", nargs="*", metavar="SCENARIO",
                       help=f"scenarios (default: {shown(map_grid.DEFAULT_SCENARIOS)}; with --sources, every one "
                            "those sources have)")
    sweep.add_argument("--sizes", nargs="*", metavar="FRACTION",
                       help=f"data.incremental_fraction values, in (0, 10] (default: {shown(map_grid.DEFAULT_SIZES)})")
    sweep.add_argument("--strengths", nargs="*", metavar="STRENGTH",
                       help="data.shift_strength values for covariate_shift "
                            f"(default: {shown(map_grid.DEFAULT_STRENGTHS)})")
    sweep.add_argument("--unseen-shares", nargs="*", metavar="SHARE",
                       help="data.unseen_share values for the recommender's new_categories: the share of new rows "
                            f"whose item the old data never had, in (0, 1] (default: "
                            f"{shown(map_grid.DEFAULT_UNSEEN_SHARES)})")
    sweep.add_argument("--seeds", nargs="*", metavar="SEED",
                       help=f"training seeds of every cell (default: {shown(map_grid.DEFAULT_SEEDS)})")
    sweep.add_argument("--out", default=str(map_grid.DEFAULT_OUT),
                       help=f"output directory (default: {map_grid.DEFAULT_OUT})")
    sweep.set_defaults(handler=_map)


def _add_own_repository(steps) -> None:
    """init, status and ui: the pipeline in the user's own repository, and where it stands."""
    init = steps.add_parser(
        "init", help="set up the pipeline in your own git repository, on your CSV or Parquet files",
        description=f"Write {', '.join(layout.PROJECT_FILES)} (retrainlab's own, for your data) at the root of the git "
        "repository you are in, run dvc init if it has no .dvc/, and add the MLflow store, its artifacts and "
        f"{layout.WORK_DIR}/ to .gitignore, and set up `dvc plots show` to draw offline (as retrainlab "
        "offline-plots does). Paths are relative to where you run it, and must be in the "
        "repository. Everything is checked first: on any error nothing is written.",
    )
    init.add_argument("--initial", required=True, metavar="PATH", help="the data the model was trained on")
    init.add_argument("--incremental", required=True, metavar="PATH", help="the new data that arrived")
    init.add_argument("--label", required=True, metavar="COLUMN", help="the column to predict, in both files")
    init.add_argument("--model", metavar="PATH.keras",
                      help="your trained Keras 3 model, the baseline (default: one trained on --initial)")
    init.add_argument("--force", action="store_true", help=f"overwrite {', '.join(layout.PROJECT_FILES)}")
    init.set_defaults(handler=_init)

    status = steps.add_parser(
        "status", help="the last recommendation, and the registered model's aliases and versions",
        description=f"Show the recommendation of the last compare step ({layout.REPORT_JSON}) and the "
        "registered model's aliases (champion, challenger) and versions, from the project's MLflow store "
        "(mlflow.db at the project root, or MLFLOW_TRACKING_URI). Reads only; changes nothing.",
    )
    _add_params(status)
    status.set_defaults(handler=_status)

    ui = steps.add_parser(
        "ui", help="the MLflow UI on the project's store, on this machine only",
        description="Start the MLflow UI on the project's store (mlflow.db at the project root, or the "
        "database MLFLOW_TRACKING_URI names) on 127.0.0.1, and print the link to the experiment's runs. "
        "With MLFLOW_TRACKING_URI set to a tracking server, that server shows it: print the link only. "
        "Quiet while it serves: --verbose shows the web server's log too, a line per request.",
    )
    _add_params(ui)
    ui.add_argument("--port", default=str(team.DEFAULT_PORT), help=f"(default: {team.DEFAULT_PORT})")
    ui.add_argument("--print-url", action="store_true", help="print the link only; start nothing")
    ui.set_defaults(handler=_ui)

    offline = steps.add_parser(
        "offline-plots", help="make `dvc plots show` draw its plots without internet",
        description=f"Write {layout.PLOTS_PAGE}, the page `dvc plots show` fills, with vega, vega-lite and "
        "vega-embed inline (DVC's own page loads them from a CDN, so that offline its plots are blank), and "
        "point this clone's .dvc/config.local at it. Both stay on this machine, as git ignores them: init "
        "does this too, and a fresh clone runs it once.",
    )
    offline.set_defaults(handler=_offline_plots)


# Each subcommand's --help ends with its own examples, each a command its parser takes
# (tests/cli/test_help.py parses them); a strategy's are _strategy_examples'.
EXAMPLES = {
    layout.PREPARE: "retrainlab prepare\nretrainlab prepare --params other-params.yaml",
    layout.COMPARE: "retrainlab compare",
    layout.RESOLVE_DATA: "retrainlab resolve-data",
    layout.RESOLVE: "retrainlab resolve-baseline",
    "next-round": "retrainlab next-round --incremental ~/downloads/march.csv\ndvc repro",
    "promote": "retrainlab promote\nretrainlab promote --version 7\n"
               "retrainlab promote --version 7 --force --reason 'old data is obsolete'",
    "rollback": "retrainlab rollback --reason 'complaints about the new model'",
    "check": "retrainlab check\nretrainlab check --data this-week.csv\n"
             "retrainlab check --data this-week.csv --no-labels\nretrainlab check --model models/baseline/seed-0",
    "run": "retrainlab run prepare\nretrainlab run fine-tune -P seed=1",
    "server": "retrainlab server\nretrainlab server --port 5001\n"
              "MLFLOW_BACKEND_STORE_URI=postgresql://mlflow:PASSWORD@db:5432/mlflow retrainlab server",
    "map": "retrainlab map --sources synthetic --scenarios covariate_shift --sizes 0.1 1 --seeds 0\n"
           "retrainlab map --out reports/map-digits --sources digits\n"
           "retrainlab map --sources recommender --scenarios new_categories --unseen-shares 0.1,0.9 --sizes 0.2",
    "init": "retrainlab init --initial data/old.csv --incremental data/new.csv --label churned\n"
            "retrainlab init --initial data/old.parquet --incremental data/new.parquet --label y "
            "--model models/current.keras\ndvc repro",
    "status": "retrainlab status",
    "ui": "retrainlab ui\nretrainlab ui --port 5001\nretrainlab ui --print-url\nretrainlab ui --verbose",
    "offline-plots": "retrainlab offline-plots",
}


def _strategy_examples(name: str) -> str:
    """A strategy's step by hand, for one seed, and as DVC runs it (its stage)."""
    stage = name if name == BASELINE else f"{layout.UPDATE_STAGE}@{name}"
    return f"retrainlab {name}\nretrainlab {name} --seed 1\ndvc repro {stage}"


def _describe(steps) -> None:
    """Every subcommand's --help: a description (the one-line help where it has none of its
    own), wrapped here, then its examples as written."""
    helps = {action.dest: action.help for action in steps._choices_actions}
    for name, sub in steps.choices.items():
        description = sub.description or f"{helps[name][0].upper()}{helps[name][1:]}."
        sub.description = textwrap.fill(description, width=88)
        # A subcommand without examples of its own is a KeyError here, never another's examples.
        examples = _strategy_examples(name) if name in CATALOGUE else EXAMPLES[name]
        sub.epilog = "examples:\n" + textwrap.indent(examples, "  ")
        sub.formatter_class = argparse.RawDescriptionHelpFormatter


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    """--verbose before or after the subcommand: TensorFlow's and MLflow's own output too."""
    text = f"show TensorFlow's and MLflow's own messages too (or set {console.VERBOSE}=1)"
    parser.add_argument("--verbose", action="store_true", help=text)
    for sub in parser._subparsers._group_actions[0].choices.values():
        sub.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=text)


def _add_params(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")


ALL_SEEDS = "all"  # --seed's default, and MLproject's: every seed params.yaml lists


def _seed(text: str) -> int | None:
    """--seed: `all` (None: params.yaml's seeds), or one seed in the range seeds take."""
    if text == ALL_SEEDS:
        return None
    if not re.fullmatch(r"\d+", text.strip()) or int(text) > MAX_SEED:
        raise RetrainlabError(f"--seed {text}: give {ALL_SEEDS} or a whole number from 0 to {MAX_SEED}")
    return int(text)


def _empty_option(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    """The first option given an empty value. Empty is a slip (an unset shell variable, a
    script's missing argument), never "not given": taken as not given, `promote --version ""`
    would promote the recommended version, and `init --model ""` would ignore the model."""
    command = parser._subparsers._group_actions[0].choices[args.command]
    for action in command._actions:
        value = getattr(args, action.dest, None)
        if any(isinstance(v, str) and not v.strip() for v in (value if isinstance(value, list) else [value])):
            return max(action.option_strings, key=len, default=action.metavar or action.dest)
    return None


def _prepare(args: argparse.Namespace) -> None:
    # start-up: only when this subcommand runs (retrainlab --help answers at once)
    from retrainlab.pipeline.prepare import prepare_step

    prepare_step(load_params(args.params))


def _strategy(args: argparse.Namespace) -> None:
    params = load_params(args.params).with_seed(_seed(args.seed))  # a bad param fails before TensorFlow loads
    log.info(f"== {describe(args.strategy, params)} ==")
    console.load_tensorflow()
    # start-up: only when this subcommand runs (retrainlab --help answers at once)
    from retrainlab.pipeline.strategy_step import WorkerNote, run_strategy

    record = run_strategy(args.strategy, params)
    if isinstance(record, WorkerNote):  # a multi-worker cluster's other worker
        log.info(f"{args.strategy}: worker {record.worker} done; the chief logged the run")
        return
    m, seeds = record.means, len(record.seeds)
    measure = record.measure
    f = measure.spec
    log.info(
        f"{args.strategy}: {measure.old}={m[measure.old]:{f}} {measure.new}={m[measure.new]:{f}} "
        f"forgetting={m['forgetting']:+{f}} cpu={m['cpu_seconds']:.1f}s wall={m['wall_seconds']:.1f}s "
        f"({f'mean of {seeds} seeds' if seeds > 1 else '1 seed'}) model version {record.version}"
    )


def _compare(args: argparse.Namespace) -> None:
    # start-up: only when this subcommand runs (retrainlab --help answers at once)
    from retrainlab.pipeline.compare import compare_step
    compare_step(load_params(args.params))


def _resolve_data(args: argparse.Namespace) -> None:
    # start-up: only when this subcommand runs (retrainlab --help answers at once)
    from retrainlab.data import inputs
    found = inputs.write(load_params(args.params).data, Path("."))
    files = ", ".join(f"{f['path']} md5 {f['md5']}" for f in found["files"].values())
    log.info(f"{layout.RESOLVE_DATA}: {files or 'source ' + found['source'] + ', made from the params'}")


def _resolve(args: argparse.Namespace) -> None:
    # start-up: only when this subcommand runs (retrainlab --help answers at once)
    from retrainlab.pipeline.origin import resolve, write_origin
    origin = resolve(load_params(args.params), Path("."))
    write_origin(origin, Path("."))
    found = {"train": "trained here", "file": f"file md5 {origin.md5}", "registry": f"version {origin.version}"}
    log.info(f"{layout.RESOLVE}: {origin.spec} = {found[origin.kind]}")


def _next_round(args: argparse.Namespace) -> None:
    # start-up: only when this subcommand runs (retrainlab --help answers at once)
    from retrainlab.pipeline.rounds import next_round

    done = next_round(Path(args.params), Path(args.incremental))
    known = done["rows_known"]
    print(
        f"round {done['round']}: old data {done['initial']} ({done['rows_old']} rows: the last round's old and new), "
        f"new data {done['incremental']} ({done['rows_new']} rows"
        + (f"; {known} of {args.incremental}'s rows are in the old data already: left out, so that no new test row "
           "is a training row" if known else "")
        + f"), baseline {done['baseline']}; {args.params} updated"
        + ("; the files are under DVC" if done["dvc"] else "")
    )
    print("next: dvc repro, then git add -A && git commit to keep the round")


def _promote(args: argparse.Namespace) -> None:
    # start-up: only when this subcommand runs (retrainlab --help answers at once)
    from retrainlab.registry import promotion
    from retrainlab.tracking import store

    params = load_params(args.params)
    store.check_store_kept(store.project_root())  # before configure, which would make an empty one
    console.load_tensorflow()  # loading a version to measure it imports TensorFlow: without its notices
    store.configure(params.tracking.experiment)
    event = promotion.promote(params, args.version, args.force, args.reason)
    for line in promotion.promotion_lines(params.tracking.registered_model, event):
        print(line)


def _check(args: argparse.Namespace) -> int:
    # start-up: only when this subcommand runs (retrainlab --help answers at once)
    from retrainlab.pipeline.check import run_check

    params = load_params(args.params)
    result = run_check(params, Path("."), args.data, args.model, not args.no_labels, args.width)
    new, old = result["new"], result["old_test"]
    figure = result["figure"]
    data = result["data"]
    print(f"check: {result['verdict']} (exit status {result['exit_status']}), {result['seconds']:.1f} s")
    if data["trained_rows"]:
        print(f"  {data['trained_rows']} rows trained the model: left out")
    if data["held_out_rows"]:
        print(f"  {data['held_out_rows']} of the {data['rows']} rows are the model's own held-out test rows, not new")
    for found in result["forecast"]["options"]:
        gain = found["gain"]
        print(f"  forecast: {found['option']} {gain['value']:+.4g} of target ({gain['low']:+.4g} to "
              f"{gain['high']:+.4g}), {found['cost']['cpu_seconds']:.3g} CPU-s to find")
    print(f"  {figure} on the old test set {old['value']:.4g} ({old['low']:.4g} to {old['high']:.4g})"
          + (f"; on the new rows, {new['how']}, {new['value']:.4g} ({new['low']:.4g} to {new['high']:.4g})"
             if "value" in new else f"; on the new rows: {new['how']}"))
    for reason in result["reasons"]:
        print(f"  - {escape.one_line(reason)}")
    print(f"  labelled new rows needed for a {result['labels_needed']['width']:g}-wide interval: "
          f"{result['labels_needed']['rows']:,}; report: reports/check.md")
    return result["exit_status"]


def _rollback(args: argparse.Namespace) -> None:
    # start-up: only when this subcommand runs (retrainlab --help answers at once)
    from retrainlab.registry import promotion
    from retrainlab.tracking import store

    params = load_params(args.params)
    store.check_store_kept(store.project_root())  # before configure, which would make an empty one
    store.configure(params.tracking.experiment)
    event = promotion.rollback(params, args.reason)
    print(
        f"{params.tracking.registered_model} v{event.version} is '{promotion.CHAMPION}' again; "
        f"v{event.from_version} is now '{promotion.PREVIOUS}'"
    )


def _map(args: argparse.Namespace) -> None:
    # start-up: only when this subcommand runs (retrainlab --help answers at once)
    from retrainlab.pipeline import decision_map
    # Bad flags, a bad params file or an unwritable --out fail before anything trains.
    grid = map_grid.grid_from_flags(args.sources, args.scenarios, args.sizes, args.strengths, args.seeds,
                                    args.unseen_shares)
    params = load_params(args.params)
    out = Path(args.out)
    rows = decision_map.run_map(params, grid, out)
    counts = {}
    for row in rows:
        if row["recommended"] is not None:
            counts[row["recommended"]] = counts.get(row["recommended"], 0) + 1
    tally = ", ".join(f"{name} {n}" for name, n in sorted(counts.items(), key=lambda item: -item[1]))
    skipped = sum(row["recommended"] is None for row in rows)
    print(f"map: {len(rows) - skipped} cells measured ({tally})" + (f", {skipped} skipped" if skipped else "")
          + f"; written to {out}/ ({', '.join(map_grid.OUTPUTS)})")


def _run(args: argparse.Namespace) -> None:
    # start-up: only when this subcommand runs (retrainlab --help answers at once)
    from retrainlab.tracking.store import launch

    pairs = {item: item.partition("=") for item in args.entry_params}
    bad = [item for item, (key, sep, value) in pairs.items() if not (sep and key.strip() and value.strip())]
    if bad:
        raise RetrainlabError(f"-P {bad[0]}: give entry parameters as KEY=VALUE, with a value")
    launch(args.entry, {key: value for key, _, value in pairs.values()}, load_params(args.params))


def _init(args: argparse.Namespace) -> None:
    # start-up: only when this subcommand runs (retrainlab --help answers at once)
    from retrainlab.pipeline.repository import init

    done = init(Path.cwd(), args.initial, args.incremental, args.label, args.model, args.force)
    setup = done["setup"]
    print(f"init: wrote {', '.join(done['written'])} in {done['root']}"
          + ("; ran dvc init" if done["dvc_init"] else "")
          + "".join(f"; {len(lines)} line{'s' * (len(lines) > 1)} added to {name}"
                    for name, lines in done["ignored"].items() if lines)
          + f"; wrote {done['plots_page']}, so that dvc plots show draws offline")
    print(f"  data: {setup.initial} (old), {setup.incremental} (new), label {setup.label!r}; "
          f"baseline: {setup.baseline}; MLflow experiment and model: {setup.name}")
    print("next: dvc repro, then retrainlab status and retrainlab ui; git add the files to keep them")


def _status(args: argparse.Namespace) -> None:
    # start-up: only when this subcommand runs (retrainlab --help answers at once)
    from retrainlab.pipeline import status
    for line in status.lines(load_params(args.params)):
        print(line)


def _ui(args: argparse.Namespace) -> None:
    # start-up: only when this subcommand runs (retrainlab --help answers at once)
    from retrainlab.tracking import store

    team.ui(load_params(args.params).tracking.experiment, args.port, args.print_url, store.project_root())


def _offline_plots(args: argparse.Namespace) -> None:
    # start-up: only when this subcommand runs (retrainlab --help answers at once)
    from retrainlab.reporting import plots_page
    from retrainlab.tracking import store

    path = plots_page.install(store.workspace_root())
    print(f"offline-plots: wrote {path}, with vega, vega-lite and vega-embed inline; dvc plots show fills it "
          "(.dvc/config.local: plots.html_template), and its plots draw without internet")


def _server(args: argparse.Namespace) -> None:
    # start-up: only when this subcommand runs (retrainlab --help answers at once)
    from retrainlab.tracking import store

    extra = args.mlflow_args[1:] if args.mlflow_args[:1] == ["--"] else args.mlflow_args
    team.serve(args.backend_store_uri, args.artifacts_destination, args.host, args.port, extra,
                 store.project_root(), args.allow_remote)


if __name__ == "__main__":
    sys.exit(main())
