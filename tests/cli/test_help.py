"""Every subcommand's --help ends with examples that are its own, and each is a command
`retrainlab` takes and a stage `dvc repro` knows."""

import re
import shlex
from pathlib import Path

import pytest
import yaml

from retrainlab import cli

from ..conftest import PROJECT

# The pipeline files an example's `dvc repro STAGE` runs in: this repository's, and the
# ones `retrainlab init` writes into a user's repository.
PIPELINES = (PROJECT, PROJECT / "src" / "retrainlab" / "project")
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def parser():
    """The parser `retrainlab` runs (cli.main's), --verbose included."""
    built = cli._parser()
    cli._add_verbose(built)
    return built


SUBCOMMANDS = list(parser()._subparsers._group_actions[0].choices)


def examples(name: str, capsys) -> list[list[str]]:
    """The examples `retrainlab NAME --help` ends with, each split as a shell splits it."""
    with pytest.raises(SystemExit) as done:
        parser().parse_args([name, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "\nexamples:\n" in text, name
    return [shlex.split(line) for line in text.rsplit("\nexamples:\n", 1)[1].splitlines() if line.strip()]


def dvc_stages(folder: Path) -> set[str]:
    """The stages `dvc repro STAGE` takes in folder's dvc.yaml: a `foreach` stage's as
    NAME@KEY, over the list or mapping it names (`${strategies}`: params.yaml's)."""
    pipeline = yaml.safe_load((folder / "dvc.yaml").read_text())
    params = yaml.safe_load((folder / "params.yaml").read_text())
    stages = set()
    for name, stage in pipeline["stages"].items():
        if "foreach" not in stage:
            stages.add(name)
            continue
        items = stage["foreach"]
        if isinstance(items, str):
            items = params
            for key in re.fullmatch(r"\$\{(.+)\}", stage["foreach"])[1].split("."):
                items = items[key]
        stages |= {f"{name}@{key}" for key in items}
    return stages


def test_the_stages_read_are_dvc_yamls():
    for folder in PIPELINES:
        stages = dvc_stages(folder)
        assert {"prepare", "baseline", "compare", "update@incremental"} <= stages, folder
        assert "update@check" not in stages


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_example_of_a_subcommands_help_is_a_command_it_takes(name, capsys):
    """Before: `retrainlab check --help` ended with a strategy's examples, `retrainlab check
    --seed 3` (check has no --seed) and `dvc repro update@check` (no such stage)."""
    stages = {folder: dvc_stages(folder) for folder in PIPELINES}
    found = examples(name, capsys)
    assert found, name
    for words in found:
        shown = shlex.join(words)
        while words and ASSIGNMENT.match(words[0]):  # an environment variable for the command
            words = words[1:]
        tool, *args = words
        if tool == "retrainlab":
            try:
                parsed = parser().parse_args(args)
            except SystemExit:
                pytest.fail(f"{name}'s example `{shown}`: {capsys.readouterr().err.strip()}")
            assert parsed.command == name, f"{name}'s example `{shown}` runs {parsed.command}"
        else:
            assert tool == "dvc" and args[:1] == ["repro"], f"{name}'s example `{shown}`: not retrainlab or dvc repro"
            for stage in (arg for arg in args[1:] if not arg.startswith("-")):
                for folder, known in stages.items():
                    pipeline = (folder / "dvc.yaml").relative_to(PROJECT)
                    assert stage in known, f"{name}'s example `{shown}`: no stage {stage} in {pipeline}"
