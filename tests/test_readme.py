"""README's shell blocks run as written: read top to bottom in one shell, after `make setup`
and the one `source .venv/bin/activate` that Quick start states, every command is found.
Nothing is run: each command's executable is looked up."""

import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import NamedTuple

from .conftest import PROJECT

SHELLS = ("bash", "sh", "console")
ACTIVATE = ["source", ".venv/bin/activate"]
SETUP = ("setup", "repro", "test")  # the make targets that create .venv
# The environment `make setup` builds: the one running these tests (.ci/run's `make test`).
VENV_BIN = Path(sys.prefix) / "bin"
BUILTINS = {"cd", "export", "source", ".", "echo", "set", "unset", "test", "[", "true", "false", "exit"}
# A fresh machine's own tools: Quick start asks for Python 3.11, make and git; curl asks the
# served model for a prediction.
SYSTEM_TOOLS = ("python3", "make", "git", "curl")
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
SEPARATOR = re.compile(r"[;&|()]+")
REDIRECT = re.compile(r"[<>]+&?")


class Block(NamedTuple):
    section: str
    kind: str
    lines: list[str]


def blocks(text: str) -> list[Block]:
    """The fenced blocks, in order, with the `## ` section each is in and its kind."""
    found, section, opened = [], "", None
    for line in text.splitlines():
        if opened is None and line.startswith("## "):
            section = line[3:]
        elif line.startswith("```"):
            if opened is None:
                opened = Block(section, line[3:].strip(), [])
            else:
                found.append(opened)
                opened = None
        elif opened is not None:
            opened.lines.append(line)
    assert opened is None, f"README.md: a block in {section!r} is never closed"
    return found


def commands(block: Block) -> list[list[str]]:
    """Each simple command of a shell block as its words: through `\\` continuations, `;`,
    `&&`, `||` and pipes, comments left out; in a console block, the `$ ` lines only."""
    lines = [line[2:] for line in block.lines if line.startswith("$ ")] if block.kind == "console" else block.lines
    found = []
    for line in "\n".join(lines).replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True  # words split at blanks and operators only, as a shell splits them
        words, redirected = [], False
        for token in [*lexer, ";"]:
            if SEPARATOR.fullmatch(token):
                if words:
                    found.append(words)
                words = []
            elif REDIRECT.fullmatch(token):
                redirected = True
            elif redirected:  # the file a redirection reads or writes
                redirected = False
            else:
                words.append(token)
    return found


def executable(words: list[str]) -> str | None:
    """The program a command runs, past its environment assignments and `time`; None for
    assignments alone."""
    while words and (ASSIGNMENT.match(words[0]) or words[0] == "time"):
        words = words[1:]
    return words[0] if words else None


def unresolved(program: str, activated: bool) -> str | None:
    """Why `program` would be `command not found` at that point of the README; None if found."""
    if program.startswith(".venv/"):
        return "write it bare: Quick start activates .venv once for the whole README"
    if "/" in program:
        return None if (PROJECT / program).is_file() else "no such file in the project"
    if program in BUILTINS or program in SYSTEM_TOOLS:
        return None
    if (VENV_BIN / program).is_file():
        return None if activated else "in .venv/bin, but .venv is not activated yet (Quick start)"
    return "neither a shell builtin, a fresh machine's tool nor one of .venv/bin"


def readme_blocks() -> list[Block]:
    return blocks((PROJECT / "README.md").read_text())


def test_every_block_says_its_kind():
    """A block of output is `text`, never a bare fence a reader (or this test) takes for commands."""
    assert [(b.section, b.lines[:1]) for b in readme_blocks() if not b.kind] == []


def test_the_machine_has_the_tools_readme_takes_for_granted():
    assert [tool for tool in SYSTEM_TOOLS if shutil.which(tool) is None] == []


def test_every_command_of_the_readmes_shell_blocks_is_found_after_make_setup():
    """Before: the text and regression sections said `dvc exp run ...` to a shell where only
    `make setup` had run (`dvc: command not found`), .venv being activated only in "Running
    entry points by hand", and "Round after round" wrote `.venv/bin/retrainlab`."""
    set_up, activations, missing = False, [], []
    shell_blocks = [block for block in readme_blocks() if block.kind in SHELLS]
    for block in shell_blocks:
        for words in commands(block):
            program = executable(words)
            if words == ACTIVATE:
                activations.append((block.section, set_up))
                continue
            why = program and unresolved(program, activated=bool(activations))
            if why:
                missing.append((block.section, shlex.join(words)[:80], why))
            set_up |= program == "make" and any(target in words for target in SETUP)
    assert missing == []
    # Stated once, in Quick start, after the make target that creates .venv.
    assert activations == [("Quick start", True)]
    assert sum(len(commands(block)) for block in shell_blocks) > 50  # every block was read
