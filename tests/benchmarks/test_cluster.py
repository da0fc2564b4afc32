"""benchmarks/cluster.py's arithmetic: the projection counts each round of fits once and
the driver's overhead once per fit, and a difference in any figure but the costs is found.
(The measurement itself, `dvc repro -f` three ways, takes minutes: docs/BENCHMARKS.md; the
engine it measures is tested end to end in tests/e2e/test_ray.py.)"""

from __future__ import annotations


import pytest

from . import scripts


def load_cluster():
    return scripts.load("cluster", "cluster_benchmark")


def mode(name: str, nodes: int, fits_phase: float, fit_wall: float, fits: int = 6) -> dict:
    return {"mode": name, "nodes": nodes, "fits_phase_fits": fits, "fits_phase_seconds": fits_phase,
            "fits_phase_fit_wall_seconds": fit_wall * fits, "mean_fit_wall_seconds": fit_wall, "fixed_seconds": 10.0}


def test_the_projection_counts_rounds_of_fits_and_the_drivers_overhead_per_fit():
    cluster = load_cluster()
    # 6 fits of 2 s: on one node in 18 s (1 s a fit beyond training), on two in 10.5 s. So
    # 18 = 6 (2 + w) + 6 d and 10.5 = 3 (2 + w) + 6 d: w = 0.5 on the nodes, d = 0.5 the driver's.
    one, two = mode("ray1", 1, 18.0, 2.0), mode("ray2", 2, 10.5, 2.0)
    assert cluster.overheads(one) == pytest.approx((0.0, 1.0))  # one mode: all of it the driver's
    assert cluster.overheads(one, two) == pytest.approx((0.5, 0.5))
    rows = {row["nodes"]: row for row in cluster.projection(one, options=2, seeds=3, second=two)["rows"]}
    assert rows[1]["fits_phase_seconds"] == pytest.approx(6 * 2.5 + 6 * 0.5)
    assert rows[4]["fits_phase_seconds"] == pytest.approx(2 * 2.5 + 6 * 0.5)  # ceil(6/4) rounds
    assert rows[4]["baseline_phase_seconds"] == pytest.approx(1 * 2.5 + 3 * 0.5)
    assert rows[64]["whole_seconds"] == pytest.approx(10.0 + (2.5 + 1.5) + (2.5 + 3.0))
    wholes = [row["whole_seconds"] for row in rows.values()]
    assert wholes == sorted(wholes, reverse=True)


def test_figures_that_differ_are_named_and_costs_are_not_figures():
    cluster = load_cluster()
    one = {"replay": {"0": {"acc_old": 0.9, "acc_new": 0.8}}}
    assert cluster.differences(one, one) == []
    assert cluster.differences(one, {"replay": {"0": {"acc_old": 0.9, "acc_new": 0.7}}}) == ["replay 0 acc_new"]
    assert {"wall_seconds", "cpu_seconds", "peak_memory_mb"} <= cluster.COSTS
