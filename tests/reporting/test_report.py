"""The report a person reads, reports/comparison.md: a main table of the decision's figures
that fits a page, the cost of each option in words, and what the options did to a text
model's vocabulary. Real files written by `write_report`, no mocks."""

import dataclasses

import pandas as pd
import pytest

from retrainlab.base import layout
from retrainlab.config import CompareParams
from retrainlab.decision import comparison
from retrainlab.decision.diagnosis import Diagnosis, ShiftedFeature
from retrainlab.measure.record import Runs, StrategyRecord, load
from retrainlab.reporting import report

POLICY = CompareParams(new_traffic_share=0.5, tolerance=0.01, max_forgetting=0.025)
DIAGNOSIS = Diagnosis(rows_old=300, rows_new=100, size_ratio=1 / 3, new_classes=[], vanished_classes=[],
                      label_shift_tv=0.0, psi_max=0.4, psi_mean=0.1, domain_auc=0.7,
                      top_shifted_features=(ShiftedFeature("x0", "numeric", 0.4, 0.3),))
GROWN = ("words: 74 new tokens appended (147 in all)",)


def record(strategy, acc_old, acc_new, cpu, version):
    per_seed = {str(i): {"acc_old": o, "acc_new": n, "acc_all": (o + n) / 2, "f1_all": 0.5, "forgetting": 0.0,
                         "cpu_seconds": cpu, "gpu_seconds": 0.0} for i, (o, n) in enumerate(zip(acc_old, acc_new))}
    return StrategyRecord.of_seeds(strategy, 1, per_seed, {}, Runs("1", "r", "p", {}, "m", version, 0))


def options():
    return {"baseline": record("baseline", [0.90, 0.91], [0.50, 0.52], 3.0, 1),
            "full-retrain": record("full-retrain", [0.90, 0.91], [0.85, 0.86], 8.0, 2),
            "incremental": record("incremental", [0.88, 0.89], [0.84, 0.85], 4.0, 3),
            "replay": record("replay", [0.89, 0.90], [0.84, 0.85], 5.0, 4)}


def text_case(root):
    """A text model's options, two of which grew its vocabulary, written to records/ and read
    back as the compare step reads them."""
    for name, r in options().items():
        dataclasses.replace(r, notes=GROWN if name in ("incremental", "replay") else ()).write(root)
    return {name: load(root, name) for name in options()}


def curves(records) -> dict[str, pd.DataFrame]:
    return {name: pd.DataFrame({"epoch": [1, 2], "loss": [1.0, 0.5], "accuracy": [0.6, 0.8]}) for name in records}


def tables(text: str) -> list[list[str]]:
    """Each Markdown table of the report, as its lines."""
    found, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            found, current = [*found, current], []
    return found


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().removeprefix("|").removesuffix("|").split(" | ")]


def test_the_main_table_fits_a_page_and_the_rest_is_in_a_second_table_and_the_csv(tmp_path):
    records = options()
    verdict = comparison.recommend(records, POLICY)
    report.write_report(tmp_path, records, verdict, DIAGNOSIS, POLICY, curves(records))
    text = (tmp_path / layout.REPORT_MD).read_text()
    side_by_side = text.split("## The strategies side by side")[1].split("\n## ")[0]
    main, more = tables(side_by_side)
    assert cells(main[0]) == ["strategy", "verdict", "target", "vs best", "acc_old", "acc_new", "forgetting",
                              "cost to adopt"]
    assert cells(more[0]) == ["strategy", "f1_all", "precision_all", "recall_all", "CPU s", "GPU s", "seeds",
                              "model version"]
    for table in (main, more):
        assert len(table) == 2 + len(records)  # the header, its rule and a row per option
        assert {len(cells(line)) for line in table} == {len(cells(table[0]))} and len(cells(table[0])) <= 8
    assert "`comparison.csv` has every figure" in side_by_side
    csv = pd.read_csv(tmp_path / layout.REPORT_CSV)
    assert {"f1_all", "cpu_seconds", "gpu_seconds", "seeds", "model_version", "gain_points"} <= set(csv.columns)


def test_the_cost_to_adopt_says_what_it_buys_in_words():
    records = {"baseline": record("baseline", [0.90, 0.91], [0.50, 0.52], 3.0, 1),
               "incremental": record("incremental", [0.90, 0.91], [0.85, 0.86], 4.0, 2),
               "distill": record("distill", [0.60, 0.61], [0.50, 0.52], 2.5, 3)}
    verdict = comparison.recommend(records, POLICY)
    rows = {row["strategy"]: row for row in comparison.table(records, verdict)}
    text = comparison.markdown(list(rows.values()), verdict, DIAGNOSIS, POLICY)
    # (0.855 + 0.905) / 2 - (0.51 + 0.905) / 2: +17.25 points of target, for 4 CPU-seconds
    assert rows["incremental"]["gain_points"] == pytest.approx(17.25)
    said = {cells(line)[0]: cells(line)[-1] for line in tables(text)[0][2:]}
    assert said == {"baseline": "nothing: the model in use",
                    "incremental": "+17.2 points of target for 4 CPU-seconds: 0.23 CPU-seconds a point",
                    "distill": "-15.0 points of target for 2.5 CPU-seconds"}


def test_the_report_says_how_the_options_grew_a_text_models_vocabulary(tmp_path):
    records = text_case(tmp_path)
    assert records["incremental"].notes == GROWN and records["baseline"].notes == ()
    verdict = comparison.recommend(records, POLICY)
    report.write_report(tmp_path, records, verdict, DIAGNOSIS, POLICY, curves(records))
    lines = (tmp_path / layout.REPORT_MD).read_text().splitlines()
    assert ("- **vocabulary**: the options that start from the model add the new rows' tokens to its vocabulary, "
            "and their values to its lookups (model.grow_vocabulary): words: 74 new tokens appended (147 in all), in "
            "incremental, replay.") in lines
    # No text, or no vocabulary grown: nothing said.
    plain = {name: record(name, [0.9, 0.9], [0.5 + i / 10] * 2, 1.0 + i, i + 1)
             for i, name in enumerate(("baseline", "full-retrain"))}
    report.write_report(tmp_path, plain, comparison.recommend(plain, POLICY), DIAGNOSIS, POLICY, curves(plain))
    assert "vocabulary" not in (tmp_path / layout.REPORT_MD).read_text()


def test_a_model_that_never_predicts_the_positive_class_is_said_in_words():
    shy = StrategyRecord.of_seeds("fine-tune", 1, {"0": {"acc_old": 0.9, "acc_new": 0.9, "forgetting": 0.0}},
                                  {"mode": "none"}, confusion={"old": [["no", "no", 90], ["yes", "no", 10]],
                                                               "new": [["no", "no", 80], ["yes", "yes", 20]]})
    said = report.never_predicted({"fine-tune": shy}, "yes")
    assert said == ["fine-tune's registered model predicts no row of 'yes' on the old test set: its precision there "
                    "is undefined (counted as 0), and it catches none of them"]
    assert report.never_predicted({"fine-tune": shy}, None) == []
