"""The time-to-answer benchmark's reference trains the same models as the pipeline.

benchmarks/bare_keras.py is what the pipeline's speed is measured against; a ratio means
something only if both train and score the same models. On a small case with a categorical
column and classes only the new data has (so the output grows), the real `dvc repro` and the
bare script, same seeds, reach the same accuracies within the seeds' noise.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from ..conftest import PROJECT
from ..e2e.test_pipeline import make_project, run

pytestmark = pytest.mark.integration
OPTIONS = ("full-retrain", "incremental", "fine-tune")
SEEDS = [0, 1, 2]


def test_the_bare_keras_reference_scores_what_the_pipeline_scores(tmp_path):
    root = make_project(tmp_path, OPTIONS, source="synthetic", scenario="new_classes", affected_classes=1,
                        synthetic={"rows": 2400, "features": 6, "classes": 4})
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["seeds"] = SEEDS
    params["compare"]["max_seeds"] = len(SEEDS)
    params["model"].update(epochs=8, learning_rate=0.003, patience=None)  # the reference trains every epoch on every row
    for settings in params["strategies"].values():
        if "epochs" in settings:  # full-retrain trains as the model section says
            settings.update(epochs=6, learning_rate=0.003)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(root, "dvc", "repro")
    settings = {key: params[key] for key in ("seeds", "model", "strategies")}
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    bare = json.loads(subprocess.run(
        [sys.executable, str(PROJECT / "benchmarks" / "bare_keras.py"), str(root / "data/prepared"),
         str(tmp_path / "settings.json")], capture_output=True, text=True, check=True).stdout.splitlines()[-1])

    for name in ("baseline", *OPTIONS):
        per_seed = json.loads((root / "records" / f"{name}.json").read_text())["per_seed"]
        for test in ("old", "new"):
            pipeline = np.mean([per_seed[str(s)][f"acc_{test}"] for s in SEEDS])
            reference = np.mean([bare["scores"][f"{name}/{s}"][test] for s in SEEDS])
            assert abs(pipeline - reference) < 0.06, f"{name} acc_{test}: pipeline {pipeline:.3f}, bare {reference:.3f}"
