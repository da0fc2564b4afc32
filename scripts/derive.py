"""Write the files derived from the strategy declarations (MLproject, dvc.yaml's artifacts,
README.md's and docs/STRATEGIES.md's strategy tables), or, with --check, say which differ.

    python scripts/derive.py [--check]

Run from the project root after adding or changing a strategy (`make derived`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from retrainlab.base.files import write_text_atomically
from retrainlab.pipeline import derived


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file differs")
    parser.add_argument("--root", type=Path, default=Path("."), help="the project root")
    args = parser.parse_args()
    try:
        texts = {name: (args.root / name).read_text(encoding="utf-8") for name in derived.FILES}
        wanted = {name: derived.derive(name, text) for name, text in texts.items()}
    except (OSError, derived.DerivedFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    stale = [name for name in derived.FILES if wanted[name] != texts[name]]
    if args.check:
        for name in stale:
            print(f"{name}: differs from the strategies' declarations; run `make derived`")
        return 1 if stale else 0
    for name in stale:
        write_text_atomically(args.root / name, wanted[name])
        print(f"{name}: written")
    if not stale:
        print("every derived file agrees with the strategies' declarations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
