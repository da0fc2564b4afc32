"""tf.distribute: the TF_CONFIG reading, the cost arithmetic, two real CPU workers on
loopback, and MirroredStrategy over two logical CPU devices."""

import json
import socket
import subprocess
import sys

import pytest
import yaml
from mlflow.tracking import MlflowClient

from retrainlab.base import layout
from retrainlab.base.errors import ConfigError
from retrainlab.pipeline.params import load_params
from retrainlab.training import distribute
from retrainlab.training.cost import Cost

from ..conftest import tool_env
from ..e2e.test_pipeline import make_project

# Two workers train the same global batches as one process, but dropout masks, float
# summation order and the dropped last partial batch differ: the accuracies agree to this.
ACCURACY_TOLERANCE = 0.05


def tf_config(workers: list[str], index: int, role: str = "worker") -> str:
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": role, "index": index}})


def test_tf_config_places_this_process_in_the_cluster():
    assert distribute.parse_tf_config({"TF_CONFIG": tf_config(["a:1", "b:2", "c:3"], 2)}) == distribute.Cluster(3, 2)
    with_chief = json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "worker", "index": 0}})
    assert distribute.parse_tf_config({"TF_CONFIG": with_chief}) == distribute.Cluster(2, 1)


@pytest.mark.parametrize(
    "value, message",
    [(None, "TF_CONFIG: not set"), ("{not json", "TF_CONFIG: not a cluster"),
     (tf_config(["a:1"], 3), "TF_CONFIG: not a cluster")],
)
def test_a_missing_or_wrong_tf_config_is_one_clear_error(value, message):
    env = {} if value is None else {"TF_CONFIG": value}
    with pytest.raises(ConfigError, match=message) as caught:
        distribute.parse_tf_config(env)
    assert "\n" not in str(caught.value)


def test_cluster_cost_sums_cpu_and_gpu_seconds_and_takes_the_slowest_wall_time():
    chief = Cost("gpu", 1, 10.0, 8.0, 10.0, 7.0, 900.0, 1000)
    workers = [
        {"wall_seconds": 10.0, "cpu_seconds": 8.0, "gpu_seconds": 10.0, "gpu_util_seconds": 7.0,
         "peak_memory_mb": 900.0, "gpus": 1},
        {"wall_seconds": 12.0, "cpu_seconds": 5.0, "gpu_seconds": 12.0, "gpu_util_seconds": 6.0,
         "peak_memory_mb": 1200.0, "gpus": 1},
    ]
    total = distribute.combine_costs(chief, workers, cpu_price=3.6, gpu_price=36.0)
    assert (total.wall_seconds, total.cpu_seconds, total.gpu_seconds) == (12.0, 13.0, 22.0)
    assert (total.gpu_util_seconds, total.gpus, total.peak_memory_mb, total.samples) == (13.0, 2, 1200.0, 1000)
    assert total.cost_usd == pytest.approx((13.0 * 3.6 + 22.0 * 36.0) / 3600)
    assert distribute.combine_costs(chief, workers[:1], None, None) is chief


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def retrainlab(root, *args, **env):
    return subprocess.Popen(["retrainlab", *args], cwd=root, env=tool_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finished(process, timeout=600) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-4000:]
    return output


@pytest.fixture(scope="module")
def trained_in_one_process(tmp_path_factory):
    """The digits project with full-retrain trained once the plain way: the reference."""
    root = make_project(tmp_path_factory.mktemp("distribute"), options=("full-retrain", "distill"))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["seeds"] = [0]
    # Every epoch: a cluster's workers do not stop early (they would have to agree on the loss of rows set aside).
    params["model"].update(dropout=0.0, epochs=6, patience=None)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    finished(retrainlab(root, "prepare"))
    finished(retrainlab(root, "baseline"))
    finished(retrainlab(root, "full-retrain"))
    single = json.loads((root / layout.record_path("full-retrain")).read_text())
    assert single["distribute"] == {"mode": "none", "workers": 1, "replicas": 1}
    finished(retrainlab(root, "distill"))
    single["distill"] = json.loads((root / layout.record_path("distill")).read_text())
    return root, params, single


@pytest.mark.integration
def test_two_cpu_workers_train_like_one_and_add_up_their_costs(trained_in_one_process):
    root, params, single = trained_in_one_process
    params = params | {"distribute": {"mode": "multi_worker"}}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    addresses = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    # The same command on every worker; TF_CONFIG says which one each is. Worker 0 is the chief.
    chief = retrainlab(root, "full-retrain", TF_CONFIG=tf_config(addresses, 0))
    other = retrainlab(root, "full-retrain", TF_CONFIG=tf_config(addresses, 1))
    worker_output, chief_output = finished(other), finished(chief)
    assert "worker 2 of 2" in worker_output and "Epoch 6/6" in worker_output
    assert "full-retrain: acc_old=" in chief_output

    multi = json.loads((root / layout.record_path("full-retrain")).read_text())
    assert multi["distribute"] == {"mode": "multi_worker", "workers": 2, "replicas": 2}
    for name in ("acc_old", "acc_new", "acc_all"):
        assert abs(multi[name] - single[name]) <= ACCURACY_TOLERANCE, (name, multi[name], single[name])
    assert multi["acc_all"] > 0.8

    seed_run = MlflowClient(f"sqlite:///{root / 'mlflow.db'}").get_run(multi["mlflow"]["seed_run_ids"]["0"])
    figures = seed_run.data.metrics
    per_worker = [{k.split(".", 1)[1]: v for k, v in figures.items() if k.startswith(f"worker{i}.")} for i in (0, 1)]
    assert all(w["cpu_seconds"] > 0 and w["wall_seconds"] > 0 for w in per_worker)
    assert figures["cpu_seconds"] == pytest.approx(per_worker[0]["cpu_seconds"] + per_worker[1]["cpu_seconds"])
    assert figures["gpu_seconds"] == pytest.approx(per_worker[0]["gpu_seconds"] + per_worker[1]["gpu_seconds"])
    assert figures["wall_seconds"] == pytest.approx(max(w["wall_seconds"] for w in per_worker))
    # The other worker wrote nothing: one registered version per step, outputs from the chief.
    assert load_params(root / "params.yaml").distribute.mode == "multi_worker"

    # An option with a loss term trains on the cluster through the same path: distillation's
    # targets come from a copy of the teacher in each worker's input pipeline.
    addresses = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    chief = retrainlab(root, "distill", TF_CONFIG=tf_config(addresses, 0))
    other = retrainlab(root, "distill", TF_CONFIG=tf_config(addresses, 1))
    finished(other), finished(chief)
    multi = json.loads((root / layout.record_path("distill")).read_text())
    assert multi["distribute"]["workers"] == 2
    for name in ("acc_old", "acc_new", "acc_all"):
        assert abs(multi[name] - single["distill"][name]) <= ACCURACY_TOLERANCE, name


# MirroredStrategy over two logical CPU devices: TensorFlow must be told before it starts,
# so the step runs in a Python that splits the CPU first, then calls the CLI.
MIRRORED_ON_TWO_CPUS = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from retrainlab.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.integration
def test_mirrored_over_two_devices_trains_like_one(trained_in_one_process):
    root, params, single = trained_in_one_process
    params = params | {"distribute": {"mode": "mirrored"}}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    process = subprocess.Popen([sys.executable, "-c", MIRRORED_ON_TWO_CPUS, "full-retrain"], cwd=root, env=tool_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert "full-retrain: acc_old=" in finished(process)

    mirrored = json.loads((root / layout.record_path("full-retrain")).read_text())
    assert mirrored["distribute"] == {"mode": "mirrored", "workers": 1, "replicas": 2}
    for name in ("acc_old", "acc_new", "acc_all"):
        assert abs(mirrored[name] - single[name]) <= ACCURACY_TOLERANCE, (name, mirrored[name], single[name])


@pytest.mark.integration
def test_a_regressor_trains_on_two_workers_and_mirrored_like_one(tmp_path):
    """The regression loss, its RMSE and distillation toward the baseline's values go through
    the multi-worker step and the mirrored strategy as a classifier's do."""
    root = make_project(tmp_path, options=("distill",), source="friedman", scenario="covariate_shift",
                        synthetic={"rows": 800, "features": 5, "classes": 2})
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["seeds"] = [0]
    params["model"].update(dropout=0.0, epochs=4, patience=None)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for step in ("prepare", "baseline", "distill"):
        finished(retrainlab(root, step))
    single = json.loads((root / layout.record_path("distill")).read_text())
    (root / "params.yaml").write_text(yaml.safe_dump(params | {"distribute": {"mode": "multi_worker"}}))
    addresses = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    chief = retrainlab(root, "distill", TF_CONFIG=tf_config(addresses, 0))
    other = retrainlab(root, "distill", TF_CONFIG=tf_config(addresses, 1))
    assert "rmse: " in finished(other) and "distill: rmse_old=" in finished(chief)
    multi = json.loads((root / layout.record_path("distill")).read_text())
    assert multi["distribute"]["workers"] == 2
    for name in ("rmse_old", "rmse_new"):  # in the label's units: within 10% of one process's
        assert abs(multi[name] - single[name]) <= 0.1 * single[name], (name, multi[name], single[name])

    (root / "params.yaml").write_text(yaml.safe_dump(params | {"distribute": {"mode": "mirrored"}}))
    process = subprocess.Popen([sys.executable, "-c", MIRRORED_ON_TWO_CPUS, "distill"], cwd=root, env=tool_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert "distill: rmse_old=" in finished(process)
    mirrored = json.loads((root / layout.record_path("distill")).read_text())
    assert mirrored["distribute"] == {"mode": "mirrored", "workers": 1, "replicas": 2}
    for name in ("rmse_old", "rmse_new"):
        assert abs(mirrored[name] - single[name]) <= 0.1 * single[name], (name, mirrored[name], single[name])
