import time

import pytest

from retrainlab import cost


class FakeNvml:
    """Two visible GPUs reporting fixed utilisation: NVML needs a GPU this machine lacks."""

    handles = ["gpu0", "gpu1"]

    def utilisation(self):
        return [50.0, 100.0]


class NoGpu:
    handles: list = []


def busy(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_integrate_is_the_trapezoid_rule():
    assert cost.integrate([(0, 0), (1, 100), (3, 100)]) == pytest.approx(250)
    assert cost.integrate([(0, 40)]) == 0


def test_price_needs_a_price():
    assert cost.price(3600, 7200, None, None) is None
    assert cost.price(3600, 7200, 0.05, 2.0) == pytest.approx(0.05 + 4.0)


def test_visible_indices_follow_cuda_visible_devices():
    assert cost.visible_indices(4, {}) == [0, 1, 2, 3]
    assert cost.visible_indices(4, {"CUDA_VISIBLE_DEVICES": "2,0"}) == [2, 0]
    assert cost.visible_indices(4, {"CUDA_VISIBLE_DEVICES": ""}) == []
    assert cost.visible_indices(4, {"CUDA_VISIBLE_DEVICES": "1,GPU-abc,3"}) == [1]


def test_cpu_phase_measures_wall_cpu_and_memory():
    with cost.CostMeter(nvml_factory=NoGpu, cpu_core_hour_usd=3.6) as meter:
        busy(0.3)
        meter.samples = 123
    c = meter.cost
    assert c.device == "cpu" and c.gpus == 0
    assert 0.3 <= c.wall_seconds < 1.0
    assert 0.2 <= c.cpu_seconds <= c.wall_seconds + 0.1
    assert c.gpu_seconds == c.gpu_util_seconds == 0
    assert c.peak_memory_mb > 10 and c.samples == 123
    assert c.cost_usd == pytest.approx(c.cpu_seconds * 3.6 / 3600)
    assert "cost_usd" in c.metrics() and "device" not in c.metrics()


def test_gpu_phase_bills_wall_time_per_gpu_and_integrates_utilisation():
    with cost.CostMeter(gpus_in_use=1, nvml_factory=FakeNvml, interval_s=0.05) as meter:
        time.sleep(0.5)
    c = meter.cost
    assert c.device == "gpu" and c.gpus == 1
    assert c.gpu_seconds == pytest.approx(c.wall_seconds)
    # Only the first GPU is in use, at 50%: half its wall time.
    assert c.gpu_util_seconds == pytest.approx(0.5 * c.wall_seconds, rel=0.15)
    assert "cost_usd" not in c.metrics()


def test_gpus_in_use_defaults_to_every_visible_gpu():
    with cost.CostMeter(nvml_factory=FakeNvml, interval_s=0.05) as meter:
        time.sleep(0.2)
    assert meter.cost.gpus == 2
    assert meter.cost.gpu_seconds == pytest.approx(2 * meter.cost.wall_seconds)
