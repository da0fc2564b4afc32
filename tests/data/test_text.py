"""Text columns: the detection rule, the declared list, missing texts, and tokens that are
TextVectorization's own, character for character."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from retrainlab.base.errors import DataError
from retrainlab.data import CATEGORICAL, NUMERIC, TEXT, Feature, tidy
from retrainlab.data.stream import FeatureStats
from retrainlab.data.summary import PreparedSummary
from retrainlab.data.text import DETECTION_RULE, looks_like_text, token_counts, tokens, vocabulary

HOSTILE = ["Hello, World!  It's GREAT", "ÉCOLE Straße İstanbul", "a\u00a0b\u3000c\td\ne",
           "<script>alert('x')</script> =SUM(A1)", "", "   ", "naïve café", "emoji 😀 ok", "x-y.z/w", "**bold** | pipe"]


def frames(n=12):
    messages = ["good day to you", "bad luck today", "so so day", "love it a lot", "what a day", "not a day"]
    base = pd.DataFrame({"msg": [messages[i % 6] + f" {i}" for i in range(n)], "city": ["oslo", "lima"] * (n // 2),
                         "x": np.arange(n, dtype=float), "y": [0, 1] * (n // 2)})
    return base, base.copy()


def test_tokens_are_those_textvectorization_makes_by_default():
    import keras
    import tensorflow as tf

    layer = keras.layers.TextVectorization(output_mode="int")
    layer.adapt(HOSTILE)
    vocabulary = layer.get_vocabulary()
    for text in HOSTILE:
        made = [str(vocabulary[i]) for i in layer(tf.constant([text])).numpy()[0] if i]
        assert made == tokens(text), text


def test_a_column_of_sentences_is_text_and_one_of_codes_is_categorical():
    old, new = frames()
    dataset = tidy(old, new, "y", None, ("old.csv", "new.csv"))
    assert dataset.features == (Feature("msg", TEXT), Feature("city", CATEGORICAL), Feature("x", NUMERIC))
    assert dataset.notes["feature_kinds"] == {
        "rule": DETECTION_RULE,
        "columns": {"msg": "text: 100% of values contain a space and a letter, 100% are distinct",
                    "city": "categorical: 0% of values contain a space and a letter, 17% are distinct"}}
    # Half distinct but few spaces, or spaced but repeated: categorical.
    assert looks_like_text(pd.Series(["a b", "c", "d", "e"]))[0] is False
    assert looks_like_text(pd.Series(["new york"] * 4 + ["san jose"]))[0] is False
    assert looks_like_text(pd.Series([None, None]))[0] is False


def test_the_declared_list_decides_and_an_empty_one_turns_detection_off():
    old, new = frames()
    declared = tidy(old, new, "y", None, ("old.csv", "new.csv"), text=["city"])
    assert [f.kind for f in declared.features] == [CATEGORICAL, TEXT, NUMERIC]
    assert declared.notes["feature_kinds"]["columns"]["msg"] == "categorical: not listed in data.files.text"
    off = tidy(old, new, "y", None, ("old.csv", "new.csv"), text=[])
    assert TEXT not in [f.kind for f in off.features]


@pytest.mark.parametrize("text, message", [
    (["x"], "old.csv: column 'x' is listed in data.files.text but holds numbers; take it out of data.files.text"),
    (["nope"], "parameter 'data.files.text' lists 'nope', which is not a feature column; list text columns "
               "among the features"),
])
def test_a_declared_text_column_that_is_numbers_or_absent_is_one_line(text, message):
    old, new = frames()
    with pytest.raises(DataError) as caught:
        tidy(old, new, "y", None, ("old.csv", "new.csv"), text=text)
    assert str(caught.value) == message


def test_an_empty_or_blank_text_is_a_missing_value():
    old, new = frames()
    old.loc[[0, 1], "msg"] = ["", "   "]
    old.loc[2, "msg"] = None
    dropped = tidy(old, new, "y", None, ("old.csv", "new.csv"), text=["msg"])
    assert dropped.cleaning["old.csv"]["dropped_incomplete"] == 3 and len(dropped.initial) == 9
    imputed = tidy(old, new, "y", None, ("old.csv", "new.csv"), "impute", text=["msg"])
    assert imputed.cleaning["old.csv"]["imputed_values"] == 3
    assert imputed.initial["msg"].tolist()[:3] == ["", "", ""]


def test_the_vocabulary_is_the_most_frequent_tokens_first_and_the_stats_hold_it():
    counts = token_counts(["b a a", "c b a"])
    assert vocabulary(counts, 2) == ["a", "b"] and vocabulary(counts, 10) == ["a", "b", "c"]
    frame = pd.DataFrame({"msg": ["b a a", "c b a"], "x": [1.0, 2.0]})
    features = (Feature("msg", TEXT), Feature("x", NUMERIC))
    stats = FeatureStats.of_pieces([frame.iloc[:1], frame.iloc[1:]], features, max_tokens=2)
    assert stats.tokens == {"msg": ["a", "b"]} and stats.vocabularies == {}


def test_the_summary_states_the_rule_and_each_column_kind():
    old, new = frames()
    notes = tidy(old, new, "y", None, ("old.csv", "new.csv")).notes
    summary = PreparedSummary("files", None, "y", (Feature("msg", TEXT),), {"initial_train": 1}, {}, [], {},
                              feature_kinds=notes["feature_kinds"])
    raw = json.loads(json.dumps(summary.to_json()))
    assert raw["feature_kinds"]["rule"] == DETECTION_RULE and raw["features"] == [{"name": "msg", "kind": "text"}]
    assert PreparedSummary.from_json(raw) == summary


def test_a_csv_that_is_not_utf8_is_one_line_naming_the_line(tmp_path):
    from retrainlab.data import read_table

    path = tmp_path / "reviews.csv"
    path.write_bytes(b'text,label\n"good day to you",a\n"caf\xe9 was awful",b\n')
    with pytest.raises(DataError) as caught:
        read_table(path, "data/raw/reviews.csv", "data.files.initial")
    assert str(caught.value) == ("data/raw/reviews.csv: line 3 is not UTF-8 (byte 5 of the line is 0xe9); save the "
                                 "file as UTF-8")


def test_a_column_of_numbers_is_not_read_as_sentences(tmp_path):
    from retrainlab.data import read_table

    spaced = pd.Series([f"{i} {i + 1}" for i in range(20)])  # spaced and distinct, but not a word in it
    assert looks_like_text(spaced) == (False, "0% of values contain a space and a letter, 100% are distinct")
    old, new = frames()
    old["msg"], new["msg"] = range(12), range(12)
    for name, frame in (("old", old), ("new", new)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    old, new = (read_table(tmp_path / f"{name}.csv", name, "data.files.initial")[0] for name in ("old", "new"))
    kinds = {f.name: f.kind for f in tidy(old, new, "y", None, ("old.csv", "new.csv")).features}
    assert kinds["msg"] == NUMERIC  # read as numbers: numeric, before the rule is asked


def prepared_saying(tmp_path, monkeypatch, tiny_params, caplog, old, new) -> list[str]:
    """`old` and `new` as a project's files, prepared by the prepare step: what it logged of the text column 'msg'."""
    import dataclasses
    import logging

    from retrainlab.config import FilesParams
    from retrainlab.pipeline.prepare import prepare_step

    old.to_csv(tmp_path / "old.csv", index=False)
    new.to_csv(tmp_path / "new.csv", index=False)
    (tmp_path / ".dvc").mkdir()
    monkeypatch.chdir(tmp_path)
    params = dataclasses.replace(tiny_params, data=dataclasses.replace(
        tiny_params.data, source="files", files=FilesParams("old.csv", "new.csv", "y")))
    with caplog.at_level(logging.INFO, logger="retrainlab"):
        prepare_step(params, tmp_path)
    return [r.getMessage() for r in caplog.records if "text column 'msg'" in r.getMessage()]


def test_prepare_says_how_many_texts_are_longer_than_the_model_reads(tmp_path, monkeypatch, tiny_params, store, caplog):
    old, new = frames(40)
    new["msg"] = [" ".join(["word"] * (70 if i % 4 == 0 else 5)) + f" {i}" for i in range(40)]
    said = prepared_saying(tmp_path, monkeypatch, tiny_params, caplog, old, new)
    assert len(said) == 1 and re.search(r"0\.0% of old and [0-9.]+% of new texts are longer than model.text_length "
                                        r"\(64 tokens\): the model reads their first 64 tokens", said[0]), said


def test_prepare_says_tokens_a_text_as_the_report_does(tmp_path, monkeypatch, tiny_params, store, caplog):
    """Prepare's "tokens a text" is the report's figure: the same rows (the old data's training
    and test rows, the new data's), the same mean; not one of them over the training rows only."""
    from retrainlab.data import load_prepared
    from retrainlab.decision.diagnostics import text_shift

    old, new = frames(60)
    old["msg"] = [" ".join(["old"] * (i % 7)) + f" text {i}" for i in range(60)]
    new["msg"] = [" ".join(["new"] * ((i * 5) % 11)) + f" text {i}" for i in range(60)]
    said = prepared_saying(tmp_path, monkeypatch, tiny_params, caplog, old, new)[0]
    data = load_prepared(tmp_path)
    old_rows, new_rows = (pd.concat([data.frame(f"{part}_{use}") for use in ("train", "test")])["msg"]
                          for part in ("initial", "incremental"))
    reported = text_shift(old_rows, new_rows, "msg")  # what the report's "tokens a text" line prints
    assert f"{reported.length_old:.1f} tokens a text in the old data, {reported.length_new:.1f} in the new" in said
