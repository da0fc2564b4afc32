"""The mutation score per module, from what `mutmut run` left in mutants/ (see docs/TESTING.md).

    python scripts/mutation_score.py [--survivors]

A mutant counts as killed when a test failed on it, or when it ran past mutmut's time limit
(a mutant that makes the code loop forever is caught); "survived" means every test passed,
"no tests" that none of the selected tests runs its function. Modules none of whose mutants
were checked (a run given MODULES) are left out.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code  # mutmut's own reading of a mutant's exit code

DETECTED = ("killed", "timeout")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survivors", action="store_true", help="list the mutants not killed")
    parser.add_argument("--mutants", type=Path, default=Path("mutants"), help="mutmut's folder")
    args = parser.parse_args()
    metas = sorted((args.mutants / "src").rglob("*.py.meta"))
    if not metas:
        raise SystemExit(f"{args.mutants}: no mutmut results; run `make mutation` first")
    print("| module | killed | total | score | survived | no tests | not checked |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    left = []
    for meta in metas:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        counts = Counter(status_by_exit_code[code] for code in codes.values())
        if counts["not checked"] == len(codes):
            continue
        killed = sum(counts[name] for name in DETECTED)
        module = meta.relative_to(args.mutants / "src").with_suffix("").with_suffix("").as_posix()
        print(f"| {module.replace('/', '.')} | {killed} | {len(codes)} | {100 * killed / len(codes):.1f}% | "
              f"{counts['survived']} | {counts['no tests']} | {counts['not checked']} |")
        states = {name: status_by_exit_code[code] for name, code in codes.items()}
        left += [(name, state) for name, state in states.items() if state not in DETECTED]
    if args.survivors:
        print()
        for name, state in left:
            print(f"{state}: {name}")


if __name__ == "__main__":
    main()
