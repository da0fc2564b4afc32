"""A strategy is one declaration: the files that name every strategy are generated from the
catalogue (retrainlab.pipeline.derived, `make derived`), and agree with it."""

import re
import shutil
import subprocess
import sys

import pytest

from retrainlab.base import kinds
from retrainlab.decision import change
from retrainlab.pipeline import derived
from retrainlab.strategies import CATALOGUE, UPDATES

from ..conftest import PROJECT, tool_env


@pytest.mark.parametrize("name", derived.FILES)
def test_every_derived_file_agrees_with_the_strategy_declarations(name):
    text = (PROJECT / name).read_text(encoding="utf-8")
    assert derived.derive(name, text) == text, f"{name} drifted from the strategies' declarations: run `make derived`"


def test_the_generated_parts_name_every_strategy_in_the_catalogues_order():
    mlproject = derived.mlproject()
    at = [mlproject.index(f"\n  {name}:\n") for name in CATALOGUE]
    assert at == sorted(at)
    readme = (PROJECT / derived.README).read_text()
    for name, strategy in CATALOGUE.items():
        assert f"| `{name}` | {strategy.card.starts} | {strategy.card.trains_on} |" in readme
    for name in UPDATES:
        assert f"`strategies.{name}" in derived.settings()


def test_the_change_check_favours_what_the_declarations_say_they_suit():
    for kind in kinds.DECLARED:
        favoured = change.favours(kind)
        assert favoured == [n for n, s in CATALOGUE.items() if kind in s.suits]
        assert all(name in change.Change(kind, "").calls_for for name in favoured)
    assert change.favours(kinds.NOTHING) == ["baseline"] and change.favours(kinds.CONCEPT_DRIFT) == []
    assert "replay" in change.favours(kinds.NEW_CLASSES) and "fine-tune" not in change.favours(kinds.NEW_CLASSES)


def test_a_file_that_lost_its_marks_is_refused_in_one_line():
    with pytest.raises(derived.DerivedFileError, match=r"dvc\.yaml: the line .* is missing"):
        derived.dvc_yaml("stages: {}\nartifacts: {}\n")
    with pytest.raises(derived.DerivedFileError, match=r"README\.md: no generated table is called 'nope'"):
        derived.markdown("README.md", "<!-- derived: nope x -->\n| a |\n<!-- derived end -->\n")
    with pytest.raises(derived.DerivedFileError, match=r"README\.md: a `<!-- derived: NAME -->` line has no"):
        derived.markdown("README.md", "<!-- derived: settings x -->\n| a |\n")


def test_a_cell_keeps_its_markdown_and_cannot_split_a_column():
    assert derived._cell("`w` | *x*\n  y") == "`w` \\| *x* y"


TRIVIAL = '''"""A trivial option for the test: the baseline, trained on the new rows as `model` says."""

from retrainlab.base.kinds import MORE_OF_THE_SAME
from retrainlab.strategies.declaration import NEW, Card, Context, Plan, Rows, Strategy


def warm_copy(ctx: Context) -> Plan:
    return ctx.plan(ctx.grown(), (Rows(NEW),))


STRATEGY = Strategy(
    name="warm-copy", rank=70, plan=warm_copy, summary="the baseline, one more pass on the new rows",
    action="Give it one more pass on the new data", suits=frozenset({MORE_OF_THE_SAME}),
    card=Card(starts="the baseline", trains_on="new rows", needs_old="no", extra_cost="none",
              on_your_model="as `incremental`"),
)
'''


@pytest.fixture
def with_trivial_strategy(tmp_path):
    """A copy of the package with one more strategy module, and of the project's files with
    its params.yaml section: what a person writes by hand to add an option."""
    package = tmp_path / "package" / "retrainlab"
    shutil.copytree(PROJECT / "src" / "retrainlab", package, ignore=shutil.ignore_patterns("__pycache__", "project"))
    last = max(strategy.rank for strategy in CATALOGUE.values())
    (package / "strategies" / "warm_copy.py").write_text(TRIVIAL.replace("rank=70", f"rank={last + 10}"))
    project = tmp_path / "project"
    for name in (*derived.FILES, "params.yaml"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT / name, project / name)
    params, count = re.subn(r"^(strategies:.*)$", r"\1\n  warm-copy: {}", (project / "params.yaml").read_text(),
                            flags=re.M)
    assert count == 1
    (project / "params.yaml").write_text(params)
    env = tool_env() | {"PYTHONPATH": str(tmp_path / "package")}

    def run(*args):
        return subprocess.run([sys.executable, *args], cwd=project, env=env, capture_output=True, text=True,
                              timeout=300)

    return project, run


def test_a_new_strategy_is_its_module_and_its_params_section_and_the_rest_is_generated(with_trivial_strategy):
    project, run = with_trivial_strategy
    checked = run(str(PROJECT / "scripts" / "derive.py"), "--check")
    assert checked.returncode == 1, checked.stderr
    assert sorted(line.split(":")[0] for line in checked.stdout.splitlines()) == sorted(derived.FILES)
    written = run(str(PROJECT / "scripts" / "derive.py"))
    assert written.returncode == 0, written.stderr
    assert run(str(PROJECT / "scripts" / "derive.py"), "--check").returncode == 0
    assert '\n  warm-copy:\n' in (project / "MLproject").read_text()
    assert "retrainlab warm-copy --params {params} --seed {seed}" in (project / "MLproject").read_text()
    assert "path: models/warm-copy" in (project / "dvc.yaml").read_text()
    assert "| `warm-copy` | the baseline | new rows |" in (project / "README.md").read_text()
    assert "| `warm-copy` | the baseline | new rows | no | none |" in (project / "docs/STRATEGIES.md").read_text()
    # The catalogue, the params' schema, the CLI and the change check take it up as they are.
    script = (
        "import retrainlab, contextlib, io\n"
        "from retrainlab.strategies import CATALOGUE, UPDATES\n"
        "from retrainlab.pipeline.params import load_params\n"
        "from retrainlab.decision import change\n"
        "from retrainlab.base import kinds\n"
        "from retrainlab import cli\n"
        "print(retrainlab.__file__)\n"
        "print(list(CATALOGUE)[-1], list(load_params('params.yaml').strategies)[0], UPDATES[-1])\n"
        "print(change.favours(kinds.MORE_OF_THE_SAME)[-1])\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "    cli.main(['warm-copy', '--help'])\n"
        "print(out.getvalue().split(chr(10))[0])\n"
    )
    result = run("-c", script)
    assert result.returncode == 0, result.stderr[-2000:]
    where, names, favoured, usage = result.stdout.splitlines()[:4]
    assert where.startswith(str(project.parent / "package"))
    assert names == "warm-copy warm-copy warm-copy" and favoured == "warm-copy"
    assert usage.startswith("usage: retrainlab warm-copy")


@pytest.mark.parametrize("module, message", [
    ("note.py", "retrainlab.strategies.note declares no STRATEGY"),
    ("again.py", "two strategies share a rank"),
])
def test_a_strategy_module_without_a_declaration_or_with_a_taken_rank_is_refused_on_import(
        with_trivial_strategy, module, message):
    project, run = with_trivial_strategy
    package = project.parent / "package" / "retrainlab" / "strategies"
    taken = (package / "warm_copy.py").read_text()
    (package / module).write_text('"""Notes."""\n' if module == "note.py" else taken.replace('"warm-copy"', '"again"'))
    result = run("-c", "import retrainlab.strategies")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"TypeError: {message}")
