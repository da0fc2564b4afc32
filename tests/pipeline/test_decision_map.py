"""`retrainlab map`: a tiny sweep through the real CLI, and its flags refused before anything runs."""

import json

import pandas as pd
import pytest

from retrainlab import cli
from retrainlab.config import Params
from retrainlab.decision import map_grid
from retrainlab.pipeline import decision_map
from retrainlab.reporting import map_files

OPTIONS = ("full-retrain", "incremental", "fine-tune")
# The project's params shrunk as tests/conftest.py's `tiny` shrinks them, as a params file.
TINY = """\
data:
  synthetic:
    rows: 400
model:
  hidden_units: [16, 8]
  epochs: 4
  learning_rate: 0.01
strategies:
  full-retrain: {}
  incremental: {epochs: 2, learning_rate: 0.01}
  fine-tune: {epochs: 2, learning_rate: 0.01}
"""


@pytest.fixture
def tiny_params_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(TINY)
    return path


def test_a_tiny_map_has_a_row_per_cell_gains_against_keeping_the_model_and_its_heatmaps(
    tmp_path, tiny_params_file, capsys
):
    out = tmp_path / "map"
    argv = ["map", "--params", str(tiny_params_file), "--sources", "synthetic", "--scenarios",
            "covariate_shift,new_classes", "--sizes", "0.5", "--strengths", "2", "--seeds", "0", "--out", str(out)]
    assert cli.main(argv) == 0
    progress = capsys.readouterr().err
    assert "map [1/2] synthetic / covariate_shift strength 2 / size 0.5: " in progress
    assert "map [2/2] synthetic / new_classes / size 0.5: " in progress and "left)" in progress

    table = pd.read_csv(out / map_grid.CSV_NAME)
    assert list(zip(table["source"], table["scenario"], table["size"])) == [
        ("synthetic", "covariate_shift", 0.5), ("synthetic", "new_classes", 0.5)
    ]
    assert table["strength"].iloc[0] == 2.0 and pd.isna(table["strength"].iloc[1])  # only the shift reads it
    assert table["affected_classes"].iloc[1] == 2  # 4 synthetic classes: the old data keeps two
    assert set(table["recommended"]) <= {"baseline", *OPTIONS}
    assert table["skipped"].isna().all()
    for option in OPTIONS:
        gain = table[f"{option}_target"] - table["baseline_target"]
        assert table[f"{option}_gain"].tolist() == pytest.approx(gain.tolist())
        assert (table[f"{option}_cpu_seconds"] > 0).all()
        per_second = table[f"{option}_gain"] / table[f"{option}_cpu_seconds"]
        assert table[f"{option}_gain_per_cpu_second"].tolist() == pytest.approx(per_second.tolist())
    assert list(table.columns) == map_files.columns(OPTIONS)

    summary = json.loads((out / map_grid.JSON_NAME).read_text())
    assert summary["options"] == list(OPTIONS) and len(summary["cells"]) == 2
    cell = summary["cells"][0]
    assert cell["recommended"] == table["recommended"].iloc[0]
    assert cell["detail"]["strategies"][cell["recommended"]]["status"] == "recommended"
    for name in (map_grid.PNG_RECOMMENDED, map_grid.PNG_GAIN, map_grid.PNG_GAIN_PER_COST):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert sorted(p.name for p in out.iterdir()) == sorted(map_grid.OUTPUTS)  # no temporary file left


@pytest.mark.parametrize(
    "flags, flag",
    [
        (["--scenarios", "drift"], "--scenarios"),
        (["--sources", "files"], "--sources"),
        (["--sizes", "0"], "--sizes"),
        (["--sizes", "10.5"], "--sizes"),
        (["--sizes", "-0.1"], "--sizes"),
        (["--sizes"], "--sizes"),
        (["--sizes", ","], "--sizes"),
        (["--sizes", "nan"], "--sizes"),
        (["--sizes", "inf"], "--sizes"),
        (["--sizes", "a lot"], "--sizes"),
        (["--sizes", "0.1", "0.1"], "--sizes"),
        (["--strengths", "0"], "--strengths"),
        (["--strengths=-inf"], "--strengths"),
        (["--seeds"], "--seeds"),
        (["--seeds", "1.5"], "--seeds"),
        (["--seeds", "-1"], "--seeds"),
        (["--seeds", "3,3"], "--seeds"),
        (["--sources"], "--sources"),
        (["--unseen-shares", "-0.1"], "--unseen-shares"),
        (["--unseen-shares", "1.5"], "--unseen-shares"),
        (["--unseen-shares", "0"], "--unseen-shares"),
        (["--unseen-shares", "nan"], "--unseen-shares"),
        (["--unseen-shares", "x"], "--unseen-shares"),
        (["--unseen-shares", "0.5,0.5"], "--unseen-shares"),
        (["--unseen-shares"], "--unseen-shares"),
    ],
)
def test_a_bad_flag_is_a_one_line_error_naming_it_before_anything_runs(tmp_path, capsys, monkeypatch, flags, flag):
    def never(*args, **kwargs):
        raise AssertionError("the sweep started")

    monkeypatch.setattr(decision_map, "run_map", never)
    out = tmp_path / "map"
    assert cli.main(["map", *flags, "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"retrainlab: error: {flag}: ") and error.count("\n") == 1, error
    assert not out.exists()


def test_an_out_that_is_a_file_is_refused(tmp_path, capsys, tiny_params_file):
    (tmp_path / "taken").write_text("")
    assert cli.main(["map", "--params", str(tiny_params_file), "--out", str(tmp_path / "taken")]) == 2
    assert capsys.readouterr().err.startswith("retrainlab: error: --out: ")


def test_a_failed_sweep_leaves_the_previous_map_as_it_was(tmp_path, tiny_params_file, capsys):
    """A learning rate that makes training diverge: the worker's error, naming the cell, ends
    the sweep, and nothing of the previous map is touched."""
    diverging = tmp_path / "diverging.yaml"
    diverging.write_text(TINY.replace("  learning_rate: 0.01\n", "  learning_rate: 1.0e+30\n", 1))
    out = tmp_path / "map"
    out.mkdir()
    (out / map_grid.CSV_NAME).write_text("the previous map\n")
    argv = ["map", "--params", str(diverging), "--sources", "synthetic", "--scenarios", "same_distribution",
            "--sizes", "0.5", "--seeds", "0", "--out", str(out)]
    assert cli.main(argv) == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("retrainlab: error: synthetic / same_distribution / size 0.5: training diverged"), error
    assert (out / map_grid.CSV_NAME).read_text() == "the previous map\n"
    assert [p.name for p in out.iterdir()] == [map_grid.CSV_NAME]


def test_cells_whose_data_cannot_be_built_are_skipped_and_shown_as_such(tmp_path, tiny_params_file, capsys):
    """400 synthetic rows leave the new data at 5% too few rows of some class: the cell is
    found before anything trains; when no cell is left, that is the error."""
    argv = ["map", "--params", str(tiny_params_file), "--sources", "synthetic", "--scenarios", "new_classes",
            "--sizes", "0.05", "--out", str(tmp_path / "map")]
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert "no cell of the grid can be prepared; synthetic / new_classes / size 0.05: " in error


def test_the_default_grid_and_its_cells():
    grid = map_grid.grid_from_flags()
    cells = grid.cells()
    per_source = len(grid.scenarios) - 1 + len(grid.strengths)
    assert len(cells) == len(grid.sources) * per_source * len(grid.sizes)
    assert {c.strength for c in cells if c.scenario != "covariate_shift"} == {None}
    assert map_grid.grid_from_flags(sizes=["0.1, 0.2", "1"]).sizes == (0.1, 0.2, 1.0)


def test_the_text_source_is_swept_on_asking_and_keeps_two_sentiments_for_new_classes():
    from retrainlab.data.messages import SENTIMENTS

    assert map_grid.TEXT_CLASSES == len(SENTIMENTS)
    assert "text" not in map_grid.grid_from_flags().sources
    grid = map_grid.grid_from_flags(sources=["text"], scenarios=["new_classes", "covariate_shift"], strengths=["0.5"])
    cells = grid.cells()
    new = cells[0].data_params(Params().data)
    assert (new.source, new.scenario, new.affected_classes) == ("text", "new_classes", 1)
    shifted = next(c for c in cells if c.scenario == "covariate_shift").data_params(Params().data)
    assert shifted.shift_strength == 0.5


def test_the_friedman_source_is_mapped_on_its_own_over_the_scenarios_a_number_has():
    grid = map_grid.grid_from_flags(sources=["friedman"], strengths=["1"])
    assert grid.task == "regression" and grid.scenarios == ("same_distribution", "covariate_shift", "concept_drift")
    cells = grid.cells()
    # friedman's concept drift reads data.shift_strength (how far x3's effect turns): swept as the shift's is.
    assert {(c.scenario, c.strength) for c in cells} == {
        ("same_distribution", None), ("covariate_shift", 1.0), ("concept_drift", 1.0)}
    drift = next(c for c in cells if c.scenario == "concept_drift")
    assert drift.data_params(Params().data).shift_strength == 1.0 and drift.task == "regression"
    assert map_grid.grid_from_flags(sources=["friedman"], scenarios=["concept_drift"]).scenarios == ("concept_drift",)
    assert map_grid.grid_from_flags().task == "classification"


@pytest.mark.parametrize(
    "flags, said",
    [
        (["--sources", "synthetic,friedman"], "--sources: friedman predicts a number and synthetic a class: their "
                                              "gains share no scale (RMSE against accuracy); map them apart"),
        (["--sources", "friedman", "--scenarios", "new_classes"], "--scenarios: new_classes: friedman predicts a "
                                                                  "number and has no classes (choose from "
                                                                  "same_distribution, covariate_shift, concept_drift)"),
    ],
)
def test_a_regression_map_refuses_classes_and_classifiers_in_one_line(tmp_path, capsys, flags, said):
    assert cli.main(["map", *flags, "--out", str(tmp_path / "map")]) == 2
    assert capsys.readouterr().err == f"retrainlab: error: {said}\n"


def test_a_tiny_regression_map_measures_gains_as_error_removed(tmp_path, tiny_params_file, capsys):
    out = tmp_path / "map"
    argv = ["map", "--params", str(tiny_params_file), "--sources", "friedman", "--scenarios", "concept_drift",
            "--sizes", "0.5", "--strengths", "1", "--seeds", "0", "--out", str(out)]
    assert cli.main(argv) == 0
    assert "map [1/1] friedman / concept_drift strength 1 / size 0.5: " in capsys.readouterr().err
    table = pd.read_csv(out / map_grid.CSV_NAME)
    assert (table["source"].tolist(), table["strength"].tolist()) == (["friedman"], [1.0])
    assert table["affected_classes"].isna().all()  # a regressor's drift turns a coefficient, not classes
    for option in OPTIONS:  # a target is an RMSE: the gain is the error an option removes
        removed = table["baseline_target"] - table[f"{option}_target"]
        assert table[f"{option}_gain"].tolist() == pytest.approx(removed.tolist())
    summary = json.loads((out / map_grid.JSON_NAME).read_text())
    assert summary["task"] == "regression"
    assert summary["figures"]["target"].startswith("(1 - new_traffic_share) * rmse_old + new_traffic_share * rmse_new")
    detail = summary["cells"][0]["detail"]["strategies"]["baseline"]
    assert {"rmse_old", "rmse_new"} <= set(detail) and "acc_old" not in detail
    assert (out / map_grid.PNG_GAIN).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_map_weighs_the_chosen_measure_in_every_cell(tmp_path, capsys):
    """compare.metric reaches the map: each cell's data is scored as prepare resolves it (two
    synthetic classes: F1 of the rarer one), its targets are F1, and map.json says so."""
    path = tmp_path / "params.yaml"
    path.write_text(TINY.replace("    rows: 400", "    rows: 400\n    classes: 2") + "compare:\n  metric: f1\n")
    out = tmp_path / "map"
    argv = ["map", "--params", str(path), "--sources", "synthetic", "--scenarios", "covariate_shift", "--sizes",
            "0.5", "--strengths", "2", "--seeds", "0", "--out", str(out)]
    assert cli.main(argv) == 0
    summary = json.loads((out / map_grid.JSON_NAME).read_text())
    assert summary["measure"] == "f1" and "f1_old" in summary["figures"]["target"]
    detail = summary["cells"][0]["detail"]["strategies"]
    table = pd.read_csv(out / map_grid.CSV_NAME)
    assert 0 <= table["baseline_target"].iloc[0] <= 1
    assert set(detail) == {"baseline", *OPTIONS}


def test_the_recommender_is_swept_on_asking_over_its_scenarios_and_new_categories_per_unseen_share():
    assert "recommender" not in map_grid.grid_from_flags().sources
    assert "new_categories" not in map_grid.grid_from_flags().scenarios  # the default grid is as it was
    grid = map_grid.grid_from_flags(sources=["recommender"], sizes=["0.2"])
    assert grid.task == "classification" and grid.scenarios == ("same_distribution", "new_categories")
    assert [(c.scenario, c.strength, c.unseen_share) for c in grid.cells()] == [
        ("same_distribution", None, None), *(("new_categories", None, share) for share in (0.1, 0.5, 0.9))]
    cell = map_grid.grid_from_flags(sources=["recommender"], scenarios=["new_categories"], sizes=["0.2"],
                                    unseen_shares=["0.25, 1"]).cells()[0]
    assert (cell.unseen_share, cell.label, cell.scenario_label) == (
        0.25, "recommender / new_categories unseen 0.25 / size 0.2", "new categories 25% unseen")
    data = cell.data_params(Params().data)
    assert (data.source, data.scenario, data.unseen_share, data.incremental_fraction) == (
        "recommender", "new_categories", 0.25, 0.2)
    data.check()
    # With a classifier's source beside it, each is swept over the scenarios it has.
    mixed = map_grid.grid_from_flags(sources=["synthetic", "recommender"], scenarios=["new_classes", "new_categories"],
                                     sizes=["1"], unseen_shares=["0.5"])
    assert [(c.source, c.scenario) for c in mixed.cells()] == [("synthetic", "new_classes"),
                                                               ("recommender", "new_categories")]


@pytest.mark.parametrize(
    "flags, said",
    [
        (["--scenarios", "new_categories"], "--scenarios: new_categories: not a scenario of synthetic or digits "
                                            "(only of recommender)"),
        (["--sources", "recommender", "--scenarios", "covariate_shift"],
         "--scenarios: covariate_shift: not a scenario of recommender (only of synthetic, digits, text, friedman)"),
    ],
)
def test_a_scenario_no_source_has_is_refused_in_one_line(tmp_path, capsys, flags, said):
    assert cli.main(["map", *flags, "--out", str(tmp_path / "map")]) == 2
    assert capsys.readouterr().err == f"retrainlab: error: {said}\n"


def test_a_tiny_recommender_map_names_its_unseen_share(tmp_path, capsys):
    path = tmp_path / "params.yaml"  # two options: the one that reads the new ids, and one that cannot
    path.write_text(TINY.replace("  fine-tune: {epochs: 2, learning_rate: 0.01}\n", ""))
    out = tmp_path / "map"
    argv = ["map", "--params", str(path), "--sources", "recommender", "--scenarios", "new_categories",
            "--sizes", "0.5", "--unseen-shares", "0.9", "--seeds", "0", "--out", str(out)]
    assert cli.main(argv) == 0
    assert "map [1/1] recommender / new_categories unseen 0.9 / size 0.5: " in capsys.readouterr().err
    table = pd.read_csv(out / map_grid.CSV_NAME)
    assert (table["source"].tolist(), table["unseen_share"].tolist()) == (["recommender"], [0.9])
    assert table["strength"].isna().all() and table["affected_classes"].isna().all()
    assert table["skipped"].isna().all() and set(table["recommended"]) <= {"baseline", "full-retrain", "incremental"}
    summary = json.loads((out / map_grid.JSON_NAME).read_text())
    assert summary["grid"]["unseen_shares"] == [0.9] and summary["cells"][0]["unseen_share"] == 0.9
    assert (out / map_grid.PNG_RECOMMENDED).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
