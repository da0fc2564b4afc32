"""The typed, validated view of params.yaml: its sections (sections.py) and the converter
from YAML to them (convert.py). What assembles a whole params file, the options' sections
typed by the strategy catalogue, is retrainlab.pipeline.params: config imports no strategy.
"""

from retrainlab.config.convert import build, key_of, yaml_problem
from retrainlab.config.sections import (
    BUILTIN_SOURCES,
    MAX_BATCH,
    MAX_EPOCHS,
    MAX_SEED,
    MAX_SEEDS,
    MAX_SYNTHETIC_COLUMNS,
    MAX_SYNTHETIC_ROWS,
    MAX_UNITS,
    REGISTRY_URI,
    SCENARIOS,
    SOURCES,
    TRAIN,
    ArraysParams,
    BaselineParams,
    CompareParams,
    CostParams,
    DataParams,
    DistributeParams,
    EngineParams,
    FilesParams,
    ModelParams,
    Params,
    SyntheticParams,
    TrackingParams,
    applicable,
    as_flat_dict,
    names_model,
    require,
)

__all__ = [
    "BUILTIN_SOURCES", "MAX_BATCH", "MAX_EPOCHS", "MAX_SEED", "MAX_SEEDS", "MAX_SYNTHETIC_COLUMNS",
    "MAX_SYNTHETIC_ROWS", "MAX_UNITS", "REGISTRY_URI", "SCENARIOS", "SOURCES", "TRAIN", "ArraysParams",
    "BaselineParams", "CompareParams", "CostParams", "DataParams", "DistributeParams", "EngineParams", "FilesParams",
    "ModelParams", "Params", "SyntheticParams", "TrackingParams", "applicable", "as_flat_dict", "build",
    "key_of", "names_model", "require", "yaml_problem",
]
