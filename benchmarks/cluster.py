"""The demo comparison on the local engine and on a Ray cluster of one and of two nodes.

    .venv/bin/python benchmarks/cluster.py [--options NAME ...] [--seeds 0 1 2] [--epochs N]
        [--modes local ray1 ray2] [--no-system-metrics] [--project-seeds 6]
        [--out benchmarks/results/cluster.json]

One copy of the project in a temporary folder, the project's default params (the digits
demo, every option of `strategies:`) but for `seeds`, `compare.max_seeds` (the seeds' count:
no adaptive seeds, which the compare step would train locally whatever the engine) and
`engine`; one `mlflow server` on SQLite on 127.0.0.1 that every mode logs to. Each mode is
one `dvc repro -f` (the engine is no stage's parameter: -f makes DVC run every stage):
- local: `engine.kind: local`, the product's default; one fit at a time, on both cores;
- ray1: a Ray cluster of one node with 1 CPU, `engine.kind: ray`, `cpus_per_fit: 1`;
- ray2: two such nodes.
Each cluster is started before its mode and stopped after it (in `finally`, by process id:
tests/e2e/ray_cluster.py), everything bound to 127.0.0.1.

Per mode: the whole answer (the wall time of `dvc repro -f`); the fits phase, the duration of
the MLflow strategy runs that trained the options' fits (on Ray, the first option stage's run,
which trains every option's fits ahead; locally, every option stage's run, each training its
own); the baseline phase (its strategy run: it trains its own seeds); the number of fits; the
fits' mean wall and CPU seconds (records/*.json, per seed); the nodes that ran them (the seed
runs' `retrainlab.node` tag); and whether the recommendation (decision.json `verdict`) and
every per-seed figure but the costs (the fields of `retrainlab.training.cost.Cost`) are the
first mode's. Speed-ups: ray1 over ray2, for the whole answer and for each phase.

The projection, on paper, for N nodes each training one fit at a time, O options (those
measured) x S seeds (--project-seeds, 6), from the Ray modes measured:
    projected(N) = fixed + ceil(S/N)*(t+w) + S*d + ceil(O*S/N)*(t+w) + O*S*d
t the fits' mean training wall seconds; fixed the whole answer minus both phases (the stages
that do not train, and those that take fits trained ahead); w and d what a fit costs beyond
its training, w on its node (evaluation, logging, its model sent: in parallel across nodes)
and d the driver's (its result fetched and held: one fit after another). A mode's fits phase
is ceil(n/M)*(t+w) + n*d for its n fits on M nodes: ray1 and ray2 together give w and d
(`overheads`); one Ray mode alone counts it all as d. `--reproject REPORT` computes the
speed-ups and the projection again from a saved report, measuring nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # retrainlab.pipeline.cluster_fits loads TensorFlow
PROJECT = Path(__file__).resolve().parents[1]
# The Ray cluster and tracking server helpers of the tests (tests/e2e/ray_cluster.py).
sys.path[:0] = [str(PROJECT), str(PROJECT / "src")]

from mlflow.tracking import MlflowClient  # noqa: E402

from retrainlab.base import layout  # noqa: E402
from retrainlab.pipeline.cluster_fits import TAG_AHEAD  # noqa: E402
from retrainlab.strategies import BASELINE  # noqa: E402
from retrainlab.tracking import store  # noqa: E402
from retrainlab.training.cost import Cost  # noqa: E402
from tests.conftest import tool_env  # noqa: E402
from tests.e2e.ray_cluster import RayCluster, SqliteServer  # noqa: E402

MODES = {"local": 0, "ray1": 1, "ray2": 2}  # mode: Ray nodes (1 CPU each)
COSTS = {field.name for field in dataclasses.fields(Cost)}  # what differs between two runs of the same fit
PROJECTED_NODES = (1, 4, 16, 64)


def make_project(workdir: Path, options: list[str] | None, seeds: list[int], epochs: int | None,
                 system_metrics: bool = True) -> Path:
    """A git repository of the project's files (what git tracks or would track), without the
    outputs of an earlier run, the tests and the benchmarks; default params but these."""
    root = workdir / "project"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=PROJECT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if ((PROJECT / name).is_file() and not name.startswith(("tests/", "benchmarks/", "metrics/", "records/",
                                                                 "plots/"))
                and name not in ("dvc.lock", layout.DECISION.as_posix())):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT / name, root / name)
    params = yaml.safe_load((root / "params.yaml").read_text())
    if options:
        params["strategies"] = {name: params["strategies"][name] for name in options}
    params["seeds"] = list(seeds)
    params["compare"]["max_seeds"] = len(seeds)
    if epochs is not None:
        params["model"]["epochs"] = epochs
        for settings in params["strategies"].values():
            if "epochs" in settings:
                settings["epochs"] = epochs
    if not system_metrics:
        params["tracking"]["system_metrics"] = False
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", "-c", "user.name=bench", "-c", "user.email=bench@retrainlab.invalid", "commit", "-qm",
                     "project under benchmark"]):
        subprocess.run(command, cwd=root, check=True)
    return root


def set_engine(root: Path, **engine) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["engine"].update(engine)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def repro(root: Path, server: SqliteServer, log: Path) -> float:
    """`dvc repro -f` against the server: its wall seconds."""
    started = time.perf_counter()
    with open(log, "w") as out:
        done = subprocess.run(["dvc", "repro", "-f"], cwd=root, env=tool_env(MLFLOW_TRACKING_URI=server.url),
                              stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"dvc repro -f failed ({done.returncode}):\n{log.read_text()[-4000:]}")
    return seconds


def run_seconds(run) -> float:
    return (run.info.end_time - run.info.start_time) / 1000


def measure(root: Path, server: SqliteServer, mode: str, whole: float) -> dict:
    """One mode's figures, from the records, decision.json and the runs they name."""
    client = MlflowClient(server.url)
    params = yaml.safe_load((root / "params.yaml").read_text())
    names = [BASELINE, *params["strategies"]]
    records = {name: json.loads((root / layout.record_path(name)).read_text()) for name in names}
    step_runs = {name: client.get_run(record["mlflow"]["run_id"]) for name, record in records.items()}
    assert all(run.data.tags.get(store.TAG_ROLE) == "step" for run in step_runs.values())
    seed_runs = [client.get_run(run_id) for record in records.values()
                 for run_id in record["mlflow"]["seed_run_ids"].values()]
    # Which option stage trained each fit: the one named by its trained-ahead tag, else its own.
    trained_by = [run.data.tags.get(TAG_AHEAD) or run.data.tags[store.TAG_STRATEGY] for run in seed_runs]
    trainers = sorted({name for name in trained_by if name != BASELINE}, key=lambda n: step_runs[n].info.start_time)
    fits_phase = sum(run_seconds(step_runs[name]) for name in trainers)
    baseline_phase = run_seconds(step_runs[BASELINE])
    per_seed = [figures for record in records.values() for figures in record["per_seed"].values()]
    option_walls = [figures["wall_seconds"] for name in names[1:] for figures in records[name]["per_seed"].values()]
    nodes: dict[str, int] = {}
    for run in seed_runs:
        node = run.data.tags.get(store.TAG_NODE)
        if node:
            nodes[node] = nodes.get(node, 0) + 1
    return {
        "mode": mode, "nodes": MODES[mode], "whole_seconds": whole,
        "fits_phase_seconds": fits_phase, "fits_phase_stages": trainers, "fits_phase_fits": len(option_walls),
        "fits_phase_fit_wall_seconds": sum(option_walls),
        "baseline_phase_seconds": baseline_phase, "baseline_fits": len(records[BASELINE]["per_seed"]),
        "baseline_fit_wall_seconds": sum(f["wall_seconds"] for f in records[BASELINE]["per_seed"].values()),
        "fixed_seconds": whole - fits_phase - baseline_phase,
        "fits": len(per_seed),
        "mean_fit_wall_seconds": sum(f["wall_seconds"] for f in per_seed) / len(per_seed),
        "mean_fit_cpu_seconds": sum(f["cpu_seconds"] for f in per_seed) / len(per_seed),
        "nodes_seen": nodes,
        "verdict": json.loads((root / layout.DECISION).read_text())["verdict"],
        "figures": {name: {seed: {k: v for k, v in figures.items() if k not in COSTS}
                           for seed, figures in record["per_seed"].items()} for name, record in records.items()},
    }


def differences(one: dict, other: dict) -> list[str]:
    """The figures (not the costs) where two modes differ: 'option seed field'."""
    found = []
    for name, seeds in one.items():
        for seed, figures in seeds.items():
            theirs = other.get(name, {}).get(seed, {})
            found += [f"{name} {seed} {k}" for k in sorted(set(figures) | set(theirs)) if figures.get(k) != theirs.get(k)]
    return found


def overheads(one: dict, two: dict | None = None) -> tuple[float, float]:
    """A fit's time beyond its training, split: (w, spent on its node, in parallel with the
    other nodes'; d, the driver's, one fit after another). A mode's fits phase is
    ceil(n/M)*(t + w) + n*d for its n fits on M nodes, t their mean training wall seconds
    there: two modes of different M give both; one mode counts it all as the driver's (w = 0)."""
    def known(m: dict) -> tuple[int, float]:  # (rounds of fits, the phase less their training)
        n = m["fits_phase_fits"]
        rounds = math.ceil(n / (m["nodes"] or 1))
        return rounds, m["fits_phase_seconds"] - rounds * m["fits_phase_fit_wall_seconds"] / n

    (r1, b1), n = known(one), one["fits_phase_fits"]
    if two is None or known(two)[0] == r1:
        return 0.0, b1 / n
    r2, b2 = known(two)
    w = max(0.0, (b1 - b2) / (r1 - r2))
    return w, max(0.0, (b1 - r1 * w) / n)


def projection(basis: dict, options: int, seeds: int, second: dict | None = None) -> dict:
    """projected(N) = fixed + ceil(S/N)*(t+w) + S*d + ceil(O*S/N)*(t+w) + O*S*d, from one Ray
    mode's figures (and a second's, to split the overhead: `overheads`)."""
    t = basis["mean_fit_wall_seconds"]
    w, d = overheads(basis, second)
    fixed = basis["fixed_seconds"]
    option_fits = options * seeds

    def projected(nodes: int) -> dict:
        base = math.ceil(seeds / nodes) * (t + w) + seeds * d
        fits = math.ceil(option_fits / nodes) * (t + w) + option_fits * d
        return {"nodes": nodes, "baseline_phase_seconds": base, "fits_phase_seconds": fits,
                "whole_seconds": fixed + base + fits}

    return {"basis": basis["mode"] + (f" and {second['mode']}" if second else ""),
            "formula": "fixed + ceil(S/N)*(t+w) + S*d + ceil(O*S/N)*(t+w) + O*S*d",
            "options": options, "seeds": seeds, "baseline_fits": seeds, "option_fits": option_fits,
            "t_seconds": t, "w_seconds": w, "d_seconds": d, "fixed_seconds": fixed,
            "rows": [projected(n) for n in PROJECTED_NODES]}


def summary(results: dict, options: int, seeds: int) -> dict:
    """The speed-up of two nodes over one, and the projection from them."""
    speedups = {}
    if "ray1" in results and "ray2" in results:
        one, two = results["ray1"], results["ray2"]
        speedups = {key: one[f"{key}_seconds"] / two[f"{key}_seconds"] for key in ("whole", "fits_phase", "baseline_phase")}
        speedups["goal"] = 0.8 * 2
    basis = next((results[m] for m in ("ray1", "ray2", "local") if m in results))
    second = results.get("ray2") if basis["mode"] == "ray1" else None
    return {"speedups": speedups, "projection": projection(basis, options, seeds, second)}


def markdown(report: dict) -> str:
    lines = ["| mode | Ray nodes | whole answer s | fits phase s | baseline phase s | fixed s | fits | "
             "mean fit wall s | mean fit CPU s | fits per node seen | verdict | same as " + report["reference"] + " |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for m in report["modes"].values():
        seen = ", ".join(f"{node[:8]}: {count}" for node, count in m["nodes_seen"].items()) or "–"
        same = "yes" if m["same_verdict"] and not m["differences"] else f"no ({len(m['differences'])} figures)"
        lines.append(f"| {m['mode']} | {m['nodes'] or '–'} | {m['whole_seconds']:.1f} | {m['fits_phase_seconds']:.1f} | "
                     f"{m['baseline_phase_seconds']:.1f} | {m['fixed_seconds']:.1f} | {m['fits']} | "
                     f"{m['mean_fit_wall_seconds']:.2f} | {m['mean_fit_cpu_seconds']:.2f} | {seen} | {m['verdict']} | "
                     f"{same} |")
    if report["speedups"]:
        s = report["speedups"]
        lines += ["", f"ray1 / ray2: whole answer {s['whole']:.2f}x, fits phase {s['fits_phase']:.2f}x "
                      f"(goal >= {s['goal']:.1f}x: {'met' if s['fits_phase'] >= s['goal'] else 'not met'}), "
                      f"baseline phase {s['baseline_phase']:.2f}x"]
    p = report["projection"]
    lines += ["", f"Projection from {p['basis']} ({p['options']} options x {p['seeds']} seeds: {p['option_fits']} option "
                  f"fits + {p['baseline_fits']} baseline fits; t = {p['t_seconds']:.2f} s, w = {p['w_seconds']:.2f} s, "
                  f"d = {p['d_seconds']:.2f} s, "
                  f"fixed = {p['fixed_seconds']:.1f} s): {p['formula']}", "",
              "| nodes | baseline phase s | fits phase s | whole answer s |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['nodes']} | {r['baseline_phase_seconds']:.1f} | {r['fits_phase_seconds']:.1f} | "
              f"{r['whole_seconds']:.1f} |" for r in p["rows"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--options", nargs="+", help="these options of params.yaml's strategies (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="model.epochs and each option's epochs (default: params.yaml's)")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    # MLflow's system metrics add seconds to every step's run: a tiny run (the test) leaves them out.
    parser.add_argument("--no-system-metrics", action="store_true", help="tracking.system_metrics: false")
    parser.add_argument("--project-seeds", type=int, default=6, help="the seeds of the projection")
    parser.add_argument("--out", type=Path, default=PROJECT / "benchmarks" / "results" / "cluster.json")
    parser.add_argument("--reproject", type=Path, metavar="REPORT",
                        help="measure nothing: the speed-ups and projection again from a report this script wrote")
    args = parser.parse_args(argv)
    if args.reproject:
        report = json.loads(args.reproject.read_text())
        report |= summary(report["modes"], report["options"], args.project_seeds)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(markdown(report))
        return report
    modes = [m for m in MODES if m in args.modes]
    started = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory(prefix="retrainlab-cluster-") as scratch:
        workdir = Path(scratch)
        server = SqliteServer(workdir / "server")  # comes up while the project is copied
        try:
            root = make_project(workdir, args.options, args.seeds, args.epochs, not args.no_system_metrics)
            server.wait_until_up()
            for mode in modes:
                print(f"{mode} ...", file=sys.stderr, flush=True)
                cluster = RayCluster(workdir / f"cluster-{mode}", nodes=MODES[mode]) if MODES[mode] else None
                try:
                    if cluster:
                        set_engine(root, kind="ray", address=cluster.address, cpus_per_fit=1)
                    else:
                        set_engine(root, kind="local")
                    whole = repro(root, server, workdir / f"repro-{mode}.log")
                    print(f"{mode}: dvc repro -f in {whole:.1f} s ({time.perf_counter() - started:.0f} s so far)",
                          file=sys.stderr, flush=True)
                    results[mode] = measure(root, server, mode, whole)
                finally:
                    if cluster:
                        cluster.stop()
        finally:
            server.stop()
        options = len(yaml.safe_load((root / "params.yaml").read_text())["strategies"])

    reference = results[modes[0]]
    for m in results.values():
        m["same_verdict"] = m["verdict"] == reference["verdict"]
        m["differences"] = differences(reference["figures"], m["figures"])
    report = {
        "command": " ".join(["benchmarks/cluster.py", *(sys.argv[1:] if argv is None else argv)]),
        "cpus": os.cpu_count(), "seeds": args.seeds, "options": options, "epochs": args.epochs,
        "system_metrics": not args.no_system_metrics, "reference": modes[0], "modes": results,
        **summary(results, options, args.project_seeds), "seconds": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    print(f"{report['seconds']:.0f} s in all; figures in {args.out}")
    return report


if __name__ == "__main__":
    main()
