"""The records handed between stages: each reads back what it writes, keeps the JSON shape
users' scripts and `dvc metrics` read, and a file that cannot be read is one line naming it."""

import json

import pytest

from retrainlab.base import layout
from retrainlab.base.errors import PipelineError
from retrainlab.data import Feature, PreparedSummary, read_summary
from retrainlab.data.summary import write_summary
from retrainlab.decision.recommendation import Recommendation, RecommendationError, read_recommendation
from retrainlab.registry.events import PROMOTE, ROLLBACK, Event, Figures, Gate, Recorded

from .conftest import PROJECT


def test_the_demos_comparison_json_reads_back_in_the_shape_it_was_written():
    raw = json.loads((PROJECT / layout.REPORT_JSON).read_text())
    recommendation = read_recommendation(PROJECT)
    written = json.loads(json.dumps(recommendation.to_json(), default=str))
    assert list(written) == list(raw)
    for key in raw:
        if key != "changes":
            assert written[key] == raw[key], key
    # What a kind of change calls for names the options that suit it now (their declarations).
    assert [{k: c[k] for k in ("kind", "evidence")} for c in written["changes"]] == [
        {k: c[k] for k in ("kind", "evidence")} for c in raw["changes"]]
    assert Recommendation.from_json(written) == recommendation


@pytest.mark.parametrize("text, said", [
    ("{", "JSONDecodeError: Expecting property name enclosed in double quotes"),
    ("[]", "TypeError: list indices must be integers or slices, not str"),
    ('{"headline": "h"}', "KeyError: 'forgetting_ceiling'"),
])
def test_a_comparison_json_that_cannot_be_read_is_one_line_naming_it(tmp_path, text, said):
    assert read_recommendation(tmp_path) is None
    (tmp_path / layout.REPORT_JSON).parent.mkdir(parents=True)
    (tmp_path / layout.REPORT_JSON).write_text(text)
    with pytest.raises(RecommendationError) as refused:
        read_recommendation(tmp_path)
    assert str(refused.value).startswith(f"{layout.REPORT_JSON}: cannot be read ({said}")
    assert "\n" not in str(refused.value)


SUMMARY = PreparedSummary(
    source="arrays", scenario=None, label="y", features=(Feature("p0", "numeric"), Feature("p1", "numeric")),
    rows={"initial_train": 6, "initial_test": 2, "incremental_train": 3, "incremental_test": 1},
    classes={"initial_train": [0, 1], "initial_test": [0, 1], "incremental_train": [1, 2],
             "incremental_test": [2]},
    new_classes=[2], cleaning={"initial": {"rows_read": 8}, "incremental": {"rows_read": 4}},
    label_type="number", input_shape=(2,), inputs={"source": "arrays", "files": {}},
)


def test_the_prepared_summary_reads_back_what_it_wrote_and_notes_only_what_a_source_noted(tmp_path):
    write_summary(tmp_path, SUMMARY)
    assert read_summary(tmp_path) == SUMMARY
    raw = json.loads((tmp_path / layout.SUMMARY).read_text())
    assert list(raw) == ["source", "scenario", "label", "features", "rows", "classes", "new_classes", "cleaning",
                         "label_type", "input_shape", "inputs"]
    assert raw["features"][0] == {"name": "p0", "kind": "numeric"} and raw["input_shape"] == [2]


def test_a_summary_json_that_cannot_be_read_is_one_line_naming_it(tmp_path):
    with pytest.raises(PipelineError, match=r"^data/prepared/summary\.json: not found; run the prepare step"):
        read_summary(tmp_path)
    write_summary(tmp_path, SUMMARY)
    raw = json.loads((tmp_path / layout.SUMMARY).read_text())
    del raw["rows"]
    (tmp_path / layout.SUMMARY).write_text(json.dumps(raw))
    with pytest.raises(PipelineError) as refused:
        read_summary(tmp_path)
    assert str(refused.value) == ("data/prepared/summary.json: cannot be read (KeyError: 'rows'); run the prepare "
                                  "step (dvc repro prepare)")


def test_a_registry_event_keeps_the_shape_of_the_history_tags():
    promoted = Event(PROMOTE, "2026-12-02T10:00:00.000Z", "3", None, "all gates passed", forced=False,
                     gates=(Gate("finite loss", True, "recorded"),), measured=Figures(0.9, 0.95, 0.85),
                     recorded=Recorded("0", "3", Figures(0.9, 0.95, 0.85), Figures(None, None, None)))
    raw = promoted.to_json()
    assert list(raw) == ["action", "at", "version", "from_version", "forced", "reason", "gates", "target",
                         "acc_old", "acc_new", "recorded"]
    assert raw["recorded"] == {"seed": "0", "seeds": "3", "own": {"acc_old": 0.95, "acc_new": 0.85, "target": 0.9},
                               "means": {"acc_old": None, "acc_new": None}}
    assert Event.from_json(json.loads(json.dumps(raw))) == promoted
    rolled = Event(ROLLBACK, "2026-12-02T10:00:01.000Z", "2", "3", "complaints")
    assert rolled.to_json() == {"action": "rollback", "at": "2026-12-02T10:00:01.000Z", "version": "2",
                                "from_version": "3", "reason": "complaints"}
    assert Event.from_json(rolled.to_json()) == rolled
    assert rolled.tag == ("history.20261202T100001.000Z.rollback", json.dumps(rolled.to_json()))
    assert rolled.summary_tags()["last_rollback.from_version"] == "3"


def test_a_record_counts_the_seeds_its_figures_are_over_the_comparisons_extra_seeds_included(tmp_path):
    """The comparison adds seeds to a record (`with_seed`): the seeds it is over are those of
    its figures, one fact, so every place that counts them says what the report says."""
    from retrainlab.measure.record import StrategyRecord
    from retrainlab.measure.record import load as load_record

    figures = {"acc_old": 0.9, "acc_new": 0.8, "forgetting": 0.0, "cpu_seconds": 1.0}
    record = StrategyRecord.of_seeds("replay", 1, {str(s): figures for s in (0, 1, 2)}, {})
    grown = record.with_seed("3", figures | {"acc_old": 0.5})
    assert grown.seeds == [0, 1, 2, 3] and record.seeds == [0, 1, 2]
    assert grown.means["acc_old"] == 0.8
    grown.write(tmp_path)
    assert json.loads((tmp_path / layout.record_path("replay")).read_text())["seeds"] == [0, 1, 2, 3]
    assert load_record(tmp_path, "replay") == grown
