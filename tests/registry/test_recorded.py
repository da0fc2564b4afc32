"""What the comparison records on each version and what `retrainlab promote` says of it: the
report's figures, over every seed the report weighed, on a real MLflow registry (no model
files: versions are registered from a folder)."""

import pytest
from mlflow.tracking import MlflowClient

from retrainlab.config import CompareParams
from retrainlab.decision import comparison
from retrainlab.measure.record import Runs, StrategyRecord
from retrainlab.registry import promotion
from retrainlab.registry.events import PROMOTE, Event, Figures, Gate

POLICY = CompareParams(new_traffic_share=0.5, tolerance=0.01, max_forgetting=0.025)


def regressor(strategy, rmse_old, rmse_new, version):
    per_seed = {str(seed): {"rmse_old": o, "rmse_new": n, "rmse_all": (o + n) / 2, "mae_old": o * 0.8,
                            "mae_new": n * 0.8, "r2_all": 0.5, "forgetting": o - 2.0, "cpu_seconds": 1.0}
                for seed, (o, n) in enumerate(zip(rmse_old, rmse_new))}
    return StrategyRecord.of_seeds(strategy, 1, per_seed, {}, Runs("1", "r", "p", {}, "m", version, 0))


def test_promote_says_the_reports_means_over_every_seed_it_weighed_and_applies_its_ceiling(store, tmp_path):
    """The strategy step registered each version with its 3 seeds' means; the comparison then
    trained a fourth seed. The version's tags, promote's lines and the report's row say the
    same figures over the same 4 seeds, and the gate's ceiling is the report's."""
    records = {"baseline": regressor("baseline", [2.0, 2.1, 1.9], [6.0, 6.2, 5.8], 1),
               "full-retrain": regressor("full-retrain", [1.9, 1.95, 1.85], [3.0, 3.1, 2.9], 2)}
    client = MlflowClient()
    client.create_registered_model("m")
    for strategy, record in records.items():
        client.create_model_version("m", tmp_path.as_uri())
        # As the strategy step tags a version: its seeds' means, before the comparison's extra seed.
        for key, value in {"seed": "0", "rmse_old": "2", "rmse_new": "3", "mean_rmse_old": "2.1",
                           "mean_rmse_new": "3.1", "mean_over_seeds": "3"}.items():
            client.set_model_version_tag("m", record.version, key, value)
    records = {s: r.with_seed("3", r.per_seed["0"] | {"rmse_old": 2.3, "forgetting": 0.3}) for s, r in records.items()}
    verdict = comparison.recommend(records, POLICY)
    assert promotion.mark_challenger("m", records, verdict, "p") == "2"

    row = next(r for r in comparison.table(records, verdict) if r["strategy"] == "full-retrain")
    tags = client.get_model_version("m", "2").tags
    recorded = promotion.recorded_figures(tags, POLICY)
    assert recorded.seeds == str(row["seeds"]) == "4" and records["full-retrain"].seeds == [0, 1, 2, 3]
    assert recorded.means.target == pytest.approx(row["target"], abs=1e-5)
    assert recorded.means.old == pytest.approx(row["rmse_old"], abs=1e-5)
    assert float(tags[promotion.CEILING_TAG]) == verdict.ceiling

    event = Event(PROMOTE, "2026-12-07T00:00:00.000Z", "2", None, "all gates passed",
                  gates=(Gate("forgetting under the ceiling", True, "forgetting 0.0 against the ceiling 0.1"),),
                  measured=Figures(2.5, 1.95, 3.0, "rmse"), recorded=recorded)
    said = promotion.promotion_lines("m", event)
    assert said[0] == "m v2 is now 'champion'; previous champion: none"
    assert (f"  the report's mean over 4 seeds: target {row['target']:.4g}, rmse_old {row['rmse_old']:.4g}, "
            f"rmse_new {row['rmse_new']:.4g}") in said
    assert "  measured now on the test sets: target 2.5, rmse_old 1.95, rmse_new 3" in said
