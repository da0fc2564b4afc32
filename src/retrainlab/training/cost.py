"""What a training phase cost: wall and CPU seconds, GPU-seconds, GPU utilisation, memory.

`CostMeter` is a context manager around the phase. A background thread samples the
process's resident memory and, through NVML, the utilisation of the GPUs in use; the
integration of those samples is a pure function. Without a GPU the GPU figures are 0 and
the device is "cpu".
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Sequence

import psutil

SAMPLE_INTERVAL_S = 0.2


@dataclasses.dataclass(frozen=True)
class Cost:
    device: str
    gpus: int
    wall_seconds: float
    cpu_seconds: float
    gpu_seconds: float
    gpu_util_seconds: float
    peak_memory_mb: float
    samples: int
    cost_usd: float | None = None

    def metrics(self) -> dict[str, float]:
        """The numeric figures, as logged to MLflow and DVC."""
        figures = dataclasses.asdict(self)
        figures.pop("device")
        if figures["cost_usd"] is None:
            figures.pop("cost_usd")
        return {k: float(v) for k, v in figures.items()}


def integrate(samples: Sequence[tuple[float, float]]) -> float:
    """Trapezoidal integral of (time in s, value) samples: utilisation % -> %-seconds."""
    total = 0.0
    for (t0, v0), (t1, v1) in zip(samples, samples[1:]):
        total += (t1 - t0) * (v0 + v1) / 2
    return total


def price(cpu_seconds: float, gpu_seconds: float, cpu_core_hour_usd: float | None, gpu_hour_usd: float | None) -> float | None:
    """What the phase cost in dollars, or None when no price is set."""
    if cpu_core_hour_usd is None and gpu_hour_usd is None:
        return None
    return (cpu_seconds * (cpu_core_hour_usd or 0.0) + gpu_seconds * (gpu_hour_usd or 0.0)) / 3600


class Nvml:
    """The GPUs this process may use, read through NVML (nvidia-ml-py); empty without a driver."""

    def __init__(self) -> None:
        self.handles: list = []
        try:
            # start-up: NVIDIA's library only where a GPU is asked about
            import pynvml

            pynvml.nvmlInit()
        except Exception:  # no driver or no library: a CPU machine
            return
        self._pynvml = pynvml
        count = pynvml.nvmlDeviceGetCount()
        self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in visible_indices(count)]

    def utilisation(self) -> list[float]:
        """Per-GPU utilisation in percent, as NVML reports it now."""
        return [float(self._pynvml.nvmlDeviceGetUtilizationRates(h).gpu) for h in self.handles]


def visible_indices(count: int, env: dict | None = None) -> list[int]:
    """NVML indices of the GPUs CUDA_VISIBLE_DEVICES leaves visible (all when unset)."""
    value = (env if env is not None else os.environ).get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return list(range(count))
    indices = []
    for item in value.split(","):
        item = item.strip()
        if not item.isdigit():
            break  # CUDA stops at the first entry it cannot parse (UUIDs are not mapped here)
        if int(item) < count:
            indices.append(int(item))
    return indices


class CostMeter:
    """Measure the phase inside `with CostMeter(...) as meter:`; read `meter.cost` after.

    `gpus_in_use` is how many of the visible GPUs the phase trains on (the framework knows);
    GPU-seconds bill wall time for each of them, as a cloud does.
    """

    def __init__(
        self,
        gpus_in_use: int | None = None,
        cpu_core_hour_usd: float | None = None,
        gpu_hour_usd: float | None = None,
        nvml_factory: Callable[[], Nvml] = Nvml,
        interval_s: float = SAMPLE_INTERVAL_S,
    ) -> None:
        self._nvml = nvml_factory()
        available = len(self._nvml.handles)
        self.gpus = available if gpus_in_use is None else min(gpus_in_use, available)
        self._prices = (cpu_core_hour_usd, gpu_hour_usd)
        self._interval = interval_s
        self._process = psutil.Process()
        self._util: list[tuple[float, float]] = []
        self._peak_rss = 0
        self._stop = threading.Event()
        self.samples = 0
        self.cost: Cost | None = None

    def __enter__(self) -> CostMeter:
        self._cpu0 = self._cpu_seconds()
        self._t0 = time.perf_counter()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="cost-meter", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        wall = time.perf_counter() - self._t0
        cpu = self._cpu_seconds() - self._cpu0
        gpu_seconds = wall * self.gpus
        self.cost = Cost(
            device="gpu" if self.gpus else "cpu",
            gpus=self.gpus,
            wall_seconds=wall,
            cpu_seconds=cpu,
            gpu_seconds=gpu_seconds,
            gpu_util_seconds=integrate(self._util) / 100 if self.gpus else 0.0,
            peak_memory_mb=self._peak_rss / 2**20,
            samples=self.samples,
            cost_usd=price(cpu, gpu_seconds, *self._prices),
        )

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        self._peak_rss = max(self._peak_rss, self._process.memory_info().rss)
        if self.gpus:
            in_use = self._nvml.utilisation()[: self.gpus]
            self._util.append((time.perf_counter(), sum(in_use)))

    def _cpu_seconds(self) -> float:
        times = self._process.cpu_times()
        return times.user + times.system + times.children_user + times.children_system
