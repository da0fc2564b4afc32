import os
import resource
import subprocess
import sys
import threading
import time

import psutil
import pytest

from retrainlab.training import cost

# How far psutil's CPU times may lag a precise count: user and system time each come in
# clock ticks (10 ms), and each of two readings may be short by one.
TICKS = 4 / os.sysconf("SC_CLK_TCK")


class FakeNvml:
    """Two visible GPUs reporting fixed utilisation: NVML needs a GPU this machine lacks.
    `calls` holds when each reading was taken."""

    handles = ["gpu0", "gpu1"]

    def __init__(self):
        self.calls = []

    def utilisation(self):
        self.calls.append(time.perf_counter())
        return [50.0, 100.0]


class NoGpu:
    handles: list = []


# Spins until this thread has run for SECONDS of CPU time, the first half in user code, the
# second mostly in the kernel (reading /dev/zero). The phases measured below are sized in CPU
# time, a count the machine's load cannot shrink, where a busy-wait for that much wall time
# may get a fraction of it on a loaded machine (it got a third of 0.3 s once, and failed).
BURN = """
import time
start, buffer = time.thread_time(), bytearray(1 << 21)
while time.thread_time() < start + SECONDS / 2:
    sum(range(1000))
with open("/dev/zero", "rb", buffering=0) as zero:
    while time.thread_time() < start + SECONDS:
        zero.readinto(buffer)
"""


def burn(seconds):
    exec(BURN.replace("SECONDS", repr(seconds)), {})


def test_integrate_is_the_trapezoid_rule():
    assert cost.integrate([(0, 0), (1, 100), (3, 100)]) == pytest.approx(250)
    assert cost.integrate([(0, 40)]) == 0


def test_price_needs_a_price():
    assert cost.price(3600, 7200, None, None) is None
    assert cost.price(3600, 7200, 0.05, 2.0) == pytest.approx(0.05 + 4.0)
    assert cost.price(3600, 7200, 0.05, None) == pytest.approx(0.05)
    assert cost.price(3600, 7200, None, 2.0) == pytest.approx(4.0)


def test_visible_indices_follow_cuda_visible_devices():
    assert cost.visible_indices(4, {}) == [0, 1, 2, 3]
    assert cost.visible_indices(4, {"CUDA_VISIBLE_DEVICES": "2,0"}) == [2, 0]
    assert cost.visible_indices(4, {"CUDA_VISIBLE_DEVICES": ""}) == []
    assert cost.visible_indices(4, {"CUDA_VISIBLE_DEVICES": "1,GPU-abc,3"}) == [1]
    assert cost.visible_indices(4, {"CUDA_VISIBLE_DEVICES": " 3, 4,1"}) == [3, 1]  # there is no GPU 4


def test_visible_indices_read_the_environment_by_default(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert cost.visible_indices(2) == [1]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert cost.visible_indices(2) == [0, 1]


def test_cpu_phase_measures_wall_cpu_and_memory():
    def process_and_children():  # what the meter counts: a child reaped meanwhile adds its time
        times = os.times()
        return times.user + times.system + times.children_user + times.children_system

    wall, cpu = time.perf_counter(), process_and_children()
    with cost.CostMeter(nvml_factory=NoGpu, cpu_core_hour_usd=3.6) as meter:
        burn(0.3)
        meter.samples = 123
    wall, cpu = time.perf_counter() - wall, process_and_children() - cpu
    c = meter.cost
    assert c.device == "cpu" and c.gpus == 0
    # Bounded by counters, not by the clock: at least the CPU time this thread spent (user and
    # system alike), which took at least as much wall time; no more than the whole process and
    # the children it reaped meanwhile used (a test before this one in the worker may leave one).
    assert 0.3 <= c.wall_seconds <= wall
    assert 0.3 - TICKS <= c.cpu_seconds <= cpu + TICKS
    assert c.gpu_seconds == c.gpu_util_seconds == 0
    assert c.samples == 123
    assert c.cost_usd == pytest.approx(c.cpu_seconds * 3.6 / 3600)
    assert "cost_usd" in c.metrics() and "device" not in c.metrics()


def test_the_meter_samples_in_a_background_thread_and_reports_the_peak_memory():
    resident = psutil.Process().memory_info().rss / 2**20
    with cost.CostMeter(nvml_factory=NoGpu, interval_s=0.01) as meter:
        assert meter.cost is None  # until the phase ends
        sampler = [t for t in threading.enumerate() if t.name == "cost-meter"]
        assert len(sampler) == 1 and sampler[0].daemon
    assert not sampler[0].is_alive()
    c = meter.cost
    assert c.samples == 0  # what the phase trained on, when it says
    # In MB: about the resident memory this process had, and about its high-water mark as the
    # kernel keeps it (in kB; it lags psutil's count a little, as the two are read differently).
    high_water = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert 0.9 * resident <= c.peak_memory_mb <= 1.1 * high_water


def test_cpu_seconds_include_the_child_processes():
    """Work a phase hands to other processes (a tool, a data loader) is billed to it too."""
    before = os.times()
    with cost.CostMeter(nvml_factory=NoGpu) as meter:
        subprocess.run([sys.executable, "-c", BURN.replace("SECONDS", "0.2")], check=True)
    after = os.times()
    children = after.children_user - before.children_user + after.children_system - before.children_system
    assert children >= 0.2 - TICKS  # the child's time, as the kernel counted it once it ended
    assert meter.cost.cpu_seconds >= children - TICKS


def utilisation_bounds(nvml, percent, end):
    """What integrating a constant `percent` must give, from when the readings were taken: the
    samples span at least the first background reading (the first sample is taken before the
    background thread starts) to the last reading, and at most the first reading to `end`."""
    return percent / 100 * (nvml.calls[-1] - nvml.calls[1]), percent / 100 * (end - nvml.calls[0])


def test_gpu_phase_bills_wall_time_per_gpu_and_integrates_utilisation():
    nvml = FakeNvml()
    with cost.CostMeter(gpus_in_use=1, nvml_factory=lambda: nvml, interval_s=0.001) as meter:
        time.sleep(0.5)
    end = time.perf_counter()
    c = meter.cost
    assert c.device == "gpu" and c.gpus == 1
    assert c.gpu_seconds == c.wall_seconds
    # Only the first GPU is in use, at 50%: half its wall time. Sampled every millisecond, the
    # bounds are a few milliseconds apart (wider if the machine delays the sampling thread).
    low, high = utilisation_bounds(nvml, 50, end)
    assert len(nvml.calls) >= 3 and low <= c.gpu_util_seconds <= min(high, 0.5 * c.wall_seconds)
    assert "cost_usd" not in c.metrics()


def test_gpus_in_use_defaults_to_every_visible_gpu_and_their_utilisation_adds_up():
    nvml = FakeNvml()
    with cost.CostMeter(nvml_factory=lambda: nvml, interval_s=0.05, gpu_hour_usd=3.6) as meter:
        time.sleep(0.2)
    end = time.perf_counter()
    c = meter.cost
    assert c.gpus == 2
    assert c.gpu_seconds == 2 * c.wall_seconds
    # 50% and 100%: one and a half GPUs' worth of work, not their mean.
    low, high = utilisation_bounds(nvml, 150, end)
    assert len(nvml.calls) >= 3 and low <= c.gpu_util_seconds <= high
    assert c.cost_usd == pytest.approx(c.gpu_seconds * 3.6 / 3600)


def test_gpus_in_use_is_at_most_the_visible_ones():
    assert cost.CostMeter(gpus_in_use=5, nvml_factory=FakeNvml).gpus == 2
    assert cost.CostMeter(gpus_in_use=1, nvml_factory=FakeNvml).gpus == 1
    assert cost.CostMeter(gpus_in_use=3, nvml_factory=NoGpu).gpus == 0
