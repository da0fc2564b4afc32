"""What DVC's own tables show of the decision, through the real DVC: `dvc metrics show` gains
the decision as one row in the strategies' columns (its option where theirs say their
verdict), and README's `dvc exp show` line gives each experiment's recommendation and
target in 120 columns, a classifier's accuracy and a regressor's RMSE each in a column
named for it."""

import json
import shlex
import subprocess
from pathlib import Path

import yaml

from retrainlab.base import layout
from retrainlab.config import CompareParams
from retrainlab.decision import comparison
from retrainlab.measure.record import Runs, StrategyRecord
from retrainlab.reporting import report

from ..conftest import PROJECT, tool_env

POLICY = CompareParams(new_traffic_share=0.5, tolerance=0.01, max_forgetting=0.025)
WIDTH = 120
# The demo's options, their longest names included.
OPTIONS = ("full-retrain", "incremental", "fine-tune", "replay", "distill", "shrink-perturb")


def classifier(best: str) -> dict[str, StrategyRecord]:
    """The baseline and every option, `best` the most accurate on the new data."""
    def record(name, acc_new):
        per_seed = {str(seed): {"acc_old": 0.95 - seed / 100, "acc_new": acc_new + seed / 100, "acc_all": 0.8,
                                "f1_all": 0.8, "forgetting": 0.0, "cpu_seconds": 2.0 + len(name) / 10, "gpu_seconds": 0.0}
                    for seed in range(3)}
        return StrategyRecord.of_seeds(name, 1, per_seed, {}, Runs("1", "r", "p", {}, "m", 1, 0))
    return {"baseline": record("baseline", 0.40),
            **{name: record(name, 0.90 if name == best else 0.70) for name in OPTIONS}}


def regressor(best: str) -> dict[str, StrategyRecord]:
    def record(name, rmse_new):
        per_seed = {str(seed): {"rmse_old": 2.0 + seed / 10, "rmse_new": rmse_new + seed / 10, "rmse_all": 3.0,
                                "mae_old": 1.6, "mae_new": 0.8 * rmse_new, "r2_all": 0.6, "forgetting": 0.0,
                                "cpu_seconds": 2.0 + len(name) / 10, "gpu_seconds": 0.0} for seed in range(3)}
        return StrategyRecord.of_seeds(name, 1, per_seed, {}, Runs("1", "r", "p", {}, "m", 1, 0))
    return {"baseline": record("baseline", 6.0),
            **{name: record(name, 2.5 if name == best else 4.5) for name in OPTIONS}}


def compared(root: Path, records: dict[str, StrategyRecord]) -> comparison.Verdict:
    """What the compare step leaves for DVC: metrics/ and decision.json."""
    verdict = comparison.recommend(records, POLICY)
    report.write_metrics(root, comparison.metric_rows(records, verdict), verdict)
    return verdict


def run(root: Path, *command: str) -> str:
    env = tool_env(COLUMNS=str(WIDTH))
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
    return done.stdout


def repository(root: Path) -> Path:
    """A DVC repository whose metrics are the compare stage's, as the project's dvc.yaml declares them."""
    root.mkdir()
    compare = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"][layout.COMPARE]
    (root / "dvc.yaml").write_text(yaml.safe_dump({"metrics": [next(iter(m)) for m in compare["metrics"]]}))
    run(root, "git", "init", "-q")
    run(root, "dvc", "init", "-q")
    return root


def commit(root: Path) -> None:
    run(root, "git", "add", "-A")
    run(root, "git", "-c", "user.name=retrainlab tests", "-c", "user.email=tests@retrainlab.invalid",
        "commit", "-qm", "a comparison")


def readme_exp_show() -> list[str]:
    """README's `dvc exp show` line, as a user copies it."""
    lines = [line.split("  #")[0] for line in (PROJECT / "README.md").read_text().splitlines()
             if line.startswith("dvc exp show")]
    assert len(lines) == 1, lines
    return shlex.split(lines[0])


def test_dvc_metrics_show_lists_the_decision_as_a_row_in_the_strategies_columns(tmp_path):
    root = repository(tmp_path / "project")
    verdict = compared(root, classifier(best="replay"))
    assert verdict.recommended == "replay"
    lines = run(root, "dvc", "metrics", "show").splitlines()
    assert max(map(len, lines)) <= WIDTH
    assert lines[0].split() == ["Path", "acc_new", "acc_old", "acc_target", "cpu_seconds", "forgetting", "seeds",
                                "verdict"]
    decision = next(line.split() for line in lines if line.startswith(layout.DECISION.as_posix()))
    replay = json.loads((root / layout.metrics_path("replay")).read_text())
    assert decision == [layout.DECISION.as_posix(), "-", "-", str(replay["acc_target"]), "-", "-", "-", "replay"]


def test_readmes_exp_show_gives_each_experiments_recommendation_and_target_in_120_columns(tmp_path):
    """Before: the README's line listed a `target` column per strategy, accuracy and RMSE
    in the same columns, 392 columns wide; `dvc exp show` at 160 was all '…'."""
    root = repository(tmp_path / "project")

    def decided(records) -> list[str]:
        """The decision's cells, as README's line shows them: option, accuracy, RMSE."""
        compared(root, records)
        decision = json.loads((root / layout.DECISION).read_text())
        return [decision["verdict"], str(decision.get("acc_target", "-")), str(decision.get("rmse_target", "-"))]

    committed = decided(classifier(best="replay"))
    commit(root)
    saved = []
    for records in (regressor(best="full-retrain"), classifier(best="distill")):
        saved.append(decided(records))
        run(root, "dvc", "exp", "save")
    lines = run(root, *readme_exp_show(), "--no-pager").splitlines()
    assert max(map(len, lines)) <= WIDTH and "…" not in "".join(lines), "\n".join(lines)
    assert lines[1].split() == ["Experiment", "decision.json:verdict", "decision.json:acc_target",
                                "decision.json:rmse_target"]
    rows = [line.split()[-3:] for line in lines[3:-1]]
    # the workspace (as the last experiment left it), the commit, then its experiments (saved
    # within a second: in either order)
    assert rows[:2] == [saved[-1], committed] and sorted(rows[2:]) == sorted(saved)
    assert [row[0] for row in [committed, *saved]] == ["replay", "full-retrain", "distill"]
