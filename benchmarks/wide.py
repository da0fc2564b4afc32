"""prepare on wide arrays (images): time per value, against a plain reference in the same run.

    .venv/bin/python benchmarks/wide.py [--rows 1000] [--widths 64 512 3072 20000] [--repeats 3]

For each width (values per row), two .npz files of `rows` and `rows / 2` rows are prepared
by retrainlab's `prepare` (read, check, clean, split, write Parquet and the summary), and by
a plain reference doing the least the same outputs need: load both arrays, put them in
DataFrames, split each 75/25 and write the four Parquet files. Median of the repeats; the
ratio of the two, and each one's time per million values, show whether prepare stays linear
in the values (it was quadratic: columns were inserted one at a time). Warnings are counted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

PROJECT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 512, 3072, 20000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(PROJECT / "benchmarks" / "results" / "wide.json"))
    args = parser.parse_args()
    results = []
    for width in args.widths:
        with tempfile.TemporaryDirectory() as scratch:
            root = Path(scratch)
            write_arrays(root, args.rows, width)
            ours, plain, caught = [], [], 0
            for _ in range(args.repeats):
                seconds, warned = timed_prepare(root)
                ours.append(seconds)
                caught += warned
                plain.append(timed_reference(root))
        values = int(1.5 * args.rows) * width
        row = {"width": width, "values": values, "prepare_s": statistics.median(ours),
               "reference_s": statistics.median(plain), "warnings": caught}
        row["ratio"] = row["prepare_s"] / row["reference_s"]
        row["prepare_s_per_million_values"] = row["prepare_s"] / values * 1e6
        row["reference_s_per_million_values"] = row["reference_s"] / values * 1e6
        results.append(row)
        print(f"width {width:>6}: prepare {row['prepare_s']:.2f} s, reference {row['reference_s']:.2f} s, "
              f"ratio {row['ratio']:.2f}, {row['prepare_s_per_million_values']:.3f} s per million values, "
              f"{caught} warnings", flush=True)
    Path(args.out).write_text(json.dumps({"rows": args.rows, "repeats": args.repeats, "results": results},
                                         indent=2) + "\n")


def write_arrays(root: Path, rows: int, width: int) -> None:
    rng = np.random.default_rng(0)
    for name, n in (("initial", rows), ("incremental", rows // 2)):
        x = rng.random((n, width)).astype(np.float32)
        np.savez(root / f"{name}.npz", x=x, y=(x[:, 0] > 0.5).astype(int))


def timed_prepare(root: Path) -> tuple[float, int]:
    from retrainlab.config import ArraysParams, DataParams
    from retrainlab.data import prepare

    params = DataParams(source="arrays", arrays=ArraysParams("initial.npz", "incremental.npz"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        prepare(params, root)
        seconds = time.perf_counter() - start
    return seconds, len(caught)


def timed_reference(root: Path) -> float:
    start = time.perf_counter()
    out = root / "reference"
    out.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for name in ("initial", "incremental"):
        with np.load(root / f"{name}.npz") as archive:
            x, y = archive["x"], archive["y"]
        frame = pd.DataFrame(x.astype(np.float64), columns=[f"x_{i}" for i in range(x.shape[1])])
        frame["label"] = y
        order = rng.permutation(len(frame))
        cut = len(frame) // 4
        frame.iloc[order[cut:]].to_parquet(out / f"{name}_train.parquet", index=False)
        frame.iloc[order[:cut]].to_parquet(out / f"{name}_test.parquet", index=False)
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())
