"""The project's model trained on a GPU with Keras' JAX backend, under the cost meter.

    KERAS_BACKEND=jax python benchmarks/gpu.py [--rows 200000] [--features 32] [--epochs 5]
        [--batch-size 1024] [--repeats 3] [--out gpu.json]

The same training runs twice, each in a child process of this script: once on JAX's
default device (the GPU where there is one) and once with JAX_PLATFORMS=cpu, as the plain
reference measured in the same run. Each child builds the project's own model
(`retrainlab.models.build_model`: normalisation inside, hidden layers, output) on numeric
synthetic rows (`retrainlab.data.synthetic_pool`, without its one categorical column,
since string inputs need TensorFlow), compiles it with `retrainlab.models.compile_model`
and trains it with the arguments of the project's training loop (`strategies.fit`:
shuffled, the bundle's inputs and encoded targets) inside `retrainlab.training.cost.CostMeter`,
told how many GPUs Keras sees, as the pipeline's steps do. NVML is sampled for real where
there is a driver.

Per repeat: a fresh model's first fit (JIT compilation included, as every pipeline run
pays it) and a second fit of the same model (compiled already). Medians over the repeats;
samples per second count rows x epochs over the fit's wall time.

TensorFlow is not needed: the GPU figures come from a machine without it. Where it is
installed, Keras' data adapters may import it; the JSON records whether they did.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--hidden-units", default="64,32", help="comma-separated widths (the project's default)")
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--learning-rate", type=float, default=0.001)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-cpu", action="store_true", help="no CPU reference")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--role", choices=("default", "cpu"), help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.role:
        figures = child(args)
        args.child_out.write_text(json.dumps(figures, indent=2) + "\n")
        return

    result = {
        "config": {k: v for k, v in vars(args).items() if k not in ("out", "role", "child_out", "skip_cpu")},
        "host": {"python": platform.python_version(), "machine": platform.machine(), "cpu_count": os.cpu_count()},
        "nvidia_smi": nvidia_smi(),
    }
    result["default"] = spawn(args, "default")
    if not args.skip_cpu:
        result["cpu"] = spawn(args, "cpu")
        d, c = result["default"], result["cpu"]
        result["ratios"] = {
            f"{phase}_samples_per_second_default_over_cpu": d[phase]["samples_per_second"] / c[phase]["samples_per_second"]
            for phase in ("cold", "warm")
        } | {
            f"{phase}_wall_cpu_over_default": c[phase]["wall_seconds"] / d[phase]["wall_seconds"]
            for phase in ("cold", "warm")
        }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


def spawn(args: argparse.Namespace, role: str) -> dict:
    """Run this script as a child in `role`, with its own JAX platform, and read its figures."""
    env = dict(os.environ, KERAS_BACKEND="jax")
    if role == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
    with tempfile.TemporaryDirectory(prefix="retrainlab-gpu-bench-") as tmp:
        out = Path(tmp) / "figures.json"
        argv = [sys.executable, __file__, "--role", role, "--child-out", str(out)]
        for name in ("rows", "features", "classes", "epochs", "batch_size", "hidden_units", "dropout",
                     "learning_rate", "repeats", "seed"):
            argv += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
        print(f"--- {role} run: {' '.join(argv[2:])}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        done = subprocess.run(argv, env=env)
        if done.returncode:
            raise SystemExit(f"the {role} run failed with exit status {done.returncode}")
        figures = json.loads(out.read_text())
    figures["process_wall_seconds"] = time.perf_counter() - start
    return figures


def child(args: argparse.Namespace) -> dict:
    import jax
    import keras
    import numpy as np

    from retrainlab.data import NUMERIC, Feature, synthetic_pool
    from retrainlab.data.stream import FeatureStats
    from retrainlab.models.build import build_model
    from retrainlab.models.bundle import ModelBundle
    from retrainlab.models.outputs import compile_model
    from retrainlab.training.cost import CostMeter, Nvml

    assert keras.backend.backend() == "jax", keras.backend.backend()
    start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    frame, labels, _ = synthetic_pool(args.rows, args.features, args.classes, rng)
    x = frame.drop(columns="segment")  # a string input needs TensorFlow; numeric columns only
    features = tuple(Feature(f"x{i}", NUMERIC) for i in range(args.features))
    classes = sorted(int(v) for v in np.unique(labels))
    data_seconds = time.perf_counter() - start
    hidden = [int(u) for u in args.hidden_units.split(",") if u]
    gpus = gpus_in_use()

    fitted_on = FeatureStats.of_frame(x, features)

    def fresh(seed: int) -> ModelBundle:
        keras.utils.set_random_seed(seed)  # strategies.seed_everything, less its TensorFlow branch
        model = build_model(features, fitted_on, len(classes), hidden, args.dropout, seed)
        compile_model(model, args.learning_rate)
        return ModelBundle(model, features, classes, "label")

    def metered(bundle: ModelBundle) -> dict:
        with CostMeter(gpus) as meter:
            # as strategies.fit: the bundle's inputs and targets, shuffled; verbose=2 prints each epoch
            inputs, targets = bundle.inputs(x), bundle.encode(labels)
            if bundle.binary:
                targets = targets.astype("float32")
            history = bundle.model.fit(inputs, targets, epochs=args.epochs, batch_size=args.batch_size,
                                       shuffle=True, verbose=2)
            meter.samples = args.rows * args.epochs
        figures = meter.cost.metrics() | {"device": meter.cost.device}
        figures["samples_per_second"] = figures["samples"] / figures["wall_seconds"]
        figures["mean_gpu_utilisation_percent"] = (
            100 * figures["gpu_util_seconds"] / figures["gpu_seconds"] if figures["gpu_seconds"] else 0.0
        )
        figures["final_accuracy"] = float(history.history["accuracy"][-1])
        return figures

    runs = []
    for repeat in range(args.repeats):
        bundle = fresh(args.seed + repeat)
        cold = metered(bundle)  # a fresh model: tracing and XLA compilation inside the fit
        warm = metered(bundle)  # the same model again: its train step is compiled already
        runs.append({"cold": cold, "warm": warm})
        print(f"{jax.default_backend()} repeat {repeat}: cold {cold['wall_seconds']:.2f} s, "
              f"warm {warm['wall_seconds']:.2f} s", file=sys.stderr, flush=True)

    nvml = Nvml()
    return {
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "jax_device_kind": jax.devices()[0].device_kind,
        "jax_version": jax.__version__,
        "keras_version": keras.__version__,
        "keras_gpus_seen": gpus,
        "nvml_gpus_visible": len(nvml.handles),
        "model_parameters": int(bundle.model.count_params()),
        "data_seconds": data_seconds,
        "tensorflow_imported": "tensorflow" in sys.modules,
        "cold": median_run([r["cold"] for r in runs]),
        "warm": median_run([r["warm"] for r in runs]),
        "runs": runs,
    }


def gpus_in_use() -> int:
    """How many GPUs Keras trains on: the pipeline's own rule (retrainlab.training.loop.gpus_in_use),
    repeated here to keep this script's imports to the model code it measures."""
    import keras

    try:
        return len(keras.distribution.list_devices("gpu"))
    except Exception:  # the backend has no GPU support built in, or no GPU
        return 0


def median_run(runs: list[dict]) -> dict:
    """The run of median wall time (its own figures, so they stay consistent with each other)."""
    ordered = sorted(runs, key=lambda r: r["wall_seconds"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["wall_seconds_all"] = [r["wall_seconds"] for r in runs]
    chosen["wall_seconds_median"] = statistics.median(chosen["wall_seconds_all"])
    return chosen


def nvidia_smi() -> str | None:
    query = "name,driver_version,memory.total,clocks.max.sm,power.limit"
    try:
        done = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


if __name__ == "__main__":
    main()
