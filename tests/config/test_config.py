import dataclasses
import logging

import pytest

from retrainlab.base.errors import ConfigError
from retrainlab.config import SCENARIOS, SOURCES, Params, applicable, as_flat_dict
from retrainlab.pipeline.params import defaults, load_params, params_from_text
from retrainlab.strategies import settings_of


def write(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_the_projects_params_file_loads_and_matches_the_defaults(project_params):
    assert project_params == defaults()


def test_a_misspelt_key_fails_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown parameter 'model.hiden_units'"):
        load_params(write(tmp_path, "model:\n  hiden_units: [4]\n"))


@pytest.mark.parametrize(
    "text, key",
    [
        ("model:\n  epochs: ten\n", "model.epochs"),
        ("model:\n  epochs: true\n", "model.epochs"),
        ("model:\n  hidden_units: 8\n", "model.hidden_units"),
        ("data:\n  source: kaggle\n", "data.source"),
        ("data:\n  test_fraction: 1.5\n", "data.test_fraction"),
        ("strategies:\n  fine-tune:\n    learning_rate: 0\n", "strategies.fine-tune.learning_rate"),
        ("strategies:\n  replay:\n    old_fraction: -1\n", "strategies.replay.old_fraction"),
        ("strategies:\n  replay:\n    old_rows: 2.5\n", "strategies.replay.old_rows"),
        ("strategies:\n  distill:\n    temperature: .nan\n", "strategies.distill.temperature"),
        ("strategies:\n  distill:\n    weight: 0\n", "strategies.distill.weight"),
        ("strategies:\n  shrink-perturb:\n    shrink: 2\n", "strategies.shrink-perturb.shrink"),
        ("strategies:\n  shrink-perturb:\n    noise: [0.1]\n", "strategies.shrink-perturb.noise"),
        ("cost:\n  gpu_hour_usd: -1\n", "cost.gpu_hour_usd"),
        ("seeds: [1, 1]\n", "seeds"),
        ("seeds_parallel: 0\n", "seeds_parallel"),
        ("seeds_parallel: 2.5\n", "seeds_parallel"),
        ("seeds_parallel: true\n", "seeds_parallel"),
        ("seeds_parallel: auto\n", "seeds_parallel"),
        ("seeds_parallel: .inf\n", "seeds_parallel"),
        ("compare:\n  new_traffic_share: 2\n", "compare.new_traffic_share"),
        ("compare:\n  max_seeds: 0\n", "compare.max_seeds"),
        ("compare:\n  budget_seconds: -1\n", "compare.budget_seconds"),
        ("data:\n  scenario: concept_drift\n  affected_classes: 1\n", "data.affected_classes"),
    ],
)
def test_wrong_types_and_ranges_fail_naming_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
        load_params(write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_partial_files_take_defaults_for_the_rest(tmp_path):
    params = load_params(write(tmp_path, "seeds: [7]\nmodel:\n  epochs: 2\n"))
    assert (params.seeds, params.model.epochs, params.model.batch_size) == ([7], 2, Params().model.batch_size)


def test_a_missing_file_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_params(tmp_path / "nope.yaml")


def test_flat_dict_names_every_leaf():
    flat = as_flat_dict(Params())
    assert flat["model.hidden_units"] == [64, 32]
    assert flat["data.synthetic.rows"] == 3000
    assert "seeds" in flat and "tracking.experiment" in flat


# Of the data section, what each source reads, and what the built-in sources read per scenario.
EVERY_SOURCE = {"data.source", "data.task", "data.test_fraction", "data.seed", "data.labels"}
BY_SOURCE = {
    "files": {"data.missing", "data.files.initial", "data.files.incremental", "data.files.label", "data.files.features",
              "data.files.text", "data.files.categorical"},
    "arrays": {"data.missing", "data.arrays.initial", "data.arrays.incremental"},
    "digits": {"data.scenario", "data.incremental_fraction"},
    "text": {"data.scenario", "data.incremental_fraction"},
    "synthetic": {"data.scenario", "data.incremental_fraction", "data.synthetic.rows", "data.synthetic.features",
                  "data.synthetic.classes"},
    "friedman": {"data.scenario", "data.incremental_fraction", "data.synthetic.rows", "data.synthetic.features"},
    "recommender": {"data.scenario", "data.incremental_fraction", "data.synthetic.rows"},
}
BY_SCENARIO = {
    "same_distribution": set(),
    "covariate_shift": {"data.shift_strength"},
    "concept_drift": {"data.affected_classes"},
    "new_classes": {"data.affected_classes"},
    "new_categories": {"data.unseen_share"},
}


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("source", SOURCES)
def test_only_the_data_params_the_source_and_scenario_read_apply(source, scenario):
    params = Params(data=dataclasses.replace(Params().data, source=source, scenario=scenario))
    flat = applicable(params)
    builtin = source in ("digits", "synthetic", "text", "friedman", "recommender")
    by_scenario = BY_SCENARIO[scenario]
    if source == "friedman":  # no classes: its concept drift turns a coefficient by shift_strength
        by_scenario = {"data.shift_strength"} if scenario in ("covariate_shift", "concept_drift") else set()
    if scenario == "new_categories" and source != "recommender":  # only the recommender's items can be new
        by_scenario = set()
    expected = EVERY_SOURCE | BY_SOURCE[source] | (by_scenario if builtin else set())
    assert {key for key in flat if key.startswith("data.")} == expected
    # Every other section is kept whole, values untouched.
    assert {k: v for k, v in flat.items() if not k.startswith("data.")} == {
        k: v for k, v in as_flat_dict(params).items() if not k.startswith("data.")
    }
    assert all(flat[key] == value for key, value in as_flat_dict(params).items() if key in flat)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("model:\n  learning_rate: 1e-2\n", 0.01),  # YAML 1.1 (PyYAML) reads this as the text '1e-2'
        ("model:\n  learning_rate: 5E-4\n", 0.0005),
    ],
)
def test_params_are_read_as_yaml_1_2_like_dvc_reads_them(tmp_path, text, expected):
    assert load_params(write(tmp_path, text)).model.learning_rate == expected


def test_yaml_1_1_booleans_are_text_as_dvc_reads_them(tmp_path):
    with pytest.raises(ConfigError, match=r"parameter 'tracking.system_metrics' must be of type bool, got 'yes'"):
        load_params(write(tmp_path, "tracking:\n  system_metrics: yes\n"))


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1e400"])
def test_non_finite_numbers_are_refused(tmp_path, value):
    with pytest.raises(ConfigError, match=r"parameter 'model.learning_rate' must be a finite number"):
        load_params(write(tmp_path, f"model:\n  learning_rate: {value}\n"))


@pytest.mark.parametrize(
    "text, message",
    [
        ("colour: blue\n", r"unknown parameter 'colour' \(known here: .*seeds"),
        ("- seeds\n", r"section '\(top level\)' must be a mapping"),
        ("model:\n  epochs: 2\nmodel:\n  epochs: 3\n", r"not valid YAML \(found duplicate key \"model\".* at line 3\)"),
        ("model: [\n", r"not valid YAML \(.* at line 2\)"),
    ],
)
def test_the_top_level_and_the_syntax_fail_like_any_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_params(write(tmp_path, text))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text, key",
    [
        ("model:\n  epochs: 100000000\n", "model.epochs"),
        ("model:\n  hidden_units: [100000000]\n", "model.hidden_units"),
        ("model:\n  batch_size: 100000000000\n", "model.batch_size"),
        ("seeds: [" + ", ".join(map(str, range(101))) + "]\n", "seeds"),
        ("seeds_parallel: 100000\n", "seeds_parallel"),
        # Past what their consumer takes: NumPy's seeding stops at 2**32 - 1 (before: the step
        # failed with a traceback after loading the data), a synthetic chunk must fit memory.
        ("seeds: [4294967296]\n", "seeds"),
        ("seeds: [2147483648]\n", "seeds"),
        ("data:\n  synthetic:\n    features: 1000000000\n", "data.synthetic.features"),
        ("data:\n  synthetic:\n    classes: 100000\n", "data.synthetic.classes"),
        ("data:\n  synthetic:\n    rows: 1000000000000\n", "data.synthetic.rows"),
    ],
)
def test_huge_values_are_refused_before_they_exhaust_the_machine(tmp_path, text, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_params(write(tmp_path, text))


@pytest.mark.parametrize(
    "text, message",
    [
        ("strategies: [replay, distill]\n", "'strategies' must be a mapping of option to settings"),
        ("strategies: {}\n", "'strategies' needs at least one option"),
        ("strategies:\n  replay_x: {}\n", "unknown strategy 'strategies.replay_x' (known: full-retrain, incremental"),
        ("strategies:\n  baseline: {}\n", "the baseline always runs"),
        ("strategies:\n  replay:\n    old_fractoin: 1\n", "unknown parameter 'strategies.replay.old_fractoin'"),
        ("strategies:\n  full-retrain:\n    epochs: 3\n", "unknown parameter 'strategies.full-retrain.epochs'"),
        ("incremental:\n  epochs: 3\n", "'incremental' has moved to 'strategies.incremental'"),
        ("fine_tune:\n  epochs: 3\n", "'fine_tune' has moved to 'strategies.fine-tune'"),
    ],
)
def test_the_strategies_section_names_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_strategies_chooses_the_options_and_fills_in_their_defaults(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("strategies:\n  replay:\n    old_rows: 50\n  distill:\n  full-retrain: {}\n")
    params = load_params(path)
    assert list(params.strategies) == ["replay", "distill", "full-retrain"]
    assert params.strategies["replay"].old_rows == 50 and params.strategies["replay"].epochs == 15
    assert params.strategies["distill"].temperature == 2.0
    assert settings_of(params, "fine-tune").new_layers == 1  # not chosen: its defaults, for messages
    flat = as_flat_dict(params)
    assert flat["strategies.replay.old_rows"] == 50 and "strategies.fine-tune.epochs" not in flat


def test_distribute_strategy_is_read_as_distribute_mode_with_a_one_line_notice(caplog):
    """`distribute.strategy` was renamed `distribute.mode` ("strategy" names an option for new
    data only): an old params file still runs, and is told to rename it."""
    with caplog.at_level(logging.WARNING):
        params = params_from_text("distribute:\n  strategy: mirrored\n", "old.yaml")
    assert params.distribute.mode == "mirrored"
    assert caplog.messages == ["params: 'distribute.strategy' is now called 'distribute.mode'; read as "
                               "distribute.mode: 'mirrored' (rename it in the params file)"]
    with pytest.raises(ConfigError, match=r"^both\.yaml: parameter 'distribute\.strategy' is the old name of "
                                          r"'distribute\.mode': keep only 'distribute\.mode'$"):
        params_from_text("distribute:\n  strategy: none\n  mode: none\n", "both.yaml")


@pytest.mark.parametrize("listed, message", [
    ("store", r"parameter 'data\.files\.categorical' must be a list, got 'store'"),
    ("[101, zip]", r"parameter 'data\.files\.categorical\[0\]' must be of type str, got 101"),
    ("[store, zip, store]", r"parameter 'data\.files\.categorical' lists 'store' twice; name each column once"),
    ("[zip]\n    text: [note, zip]", r"parameter 'data\.files\.categorical' lists 'zip', which data\.files\.text lists "
                                   r"too: a column is text \(sentences\) or categorical \(codes, ids\), not both"),
])
def test_a_bad_list_of_categorical_columns_is_one_line_naming_it(tmp_path, listed, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_params(write(tmp_path, f"data:\n  files:\n    categorical: {listed}\n"))
    assert "\n" not in str(info.value)


def test_categorical_columns_are_none_unless_listed(tmp_path):
    assert Params().data.files.categorical is None
    params = load_params(write(tmp_path, "data:\n  files:\n    categorical: [zip, store]\n"))
    assert params.data.files.categorical == ["zip", "store"]
