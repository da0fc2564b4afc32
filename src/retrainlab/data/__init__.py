"""The `prepare` step: build the initial and incremental datasets and their test splits.

Pure functions make the pool, the scenario and the splits; `prepare` is the one place that
reads the user's files and writes the Parquet outputs DVC versions. The modules, each
importing only those before it:

- `schema`: the feature schema and the label rules; `tidy` gives two frames one schema.
- `scenarios`: how a labelled pool becomes initial and incremental data.
- `sources`: where rows come from: digits, synthetic rows, CSV/Parquet tables, .npz arrays.
- `splitting`: the test splits, their tally for the summary, and the split files' writer.
- `inputs`: what the data is made from (the data params, each input file's md5), which the
  resolve-data stage writes for DVC and the summary states.
- `summary`: summary.json as a typed record, its one reader and writer.
- `prepared`: `prepare` itself, and `load_prepared` for the steps after it.

Every name the rest of retrainlab and its tests use is importable from here.
No module here imports TensorFlow: `retrainlab prepare` runs without it.
"""

from retrainlab.base.labels import grown_labels
from retrainlab.data.prepared import Prepared, load_prepared, prepare
from retrainlab.data.scenarios import apply_scenario, rotate_labels, shift_digits, split_pool
from retrainlab.data.schema import (
    CATEGORICAL,
    FLOAT32_MAX,
    NUMERIC,
    TEXT,
    Dataset,
    Feature,
    check_class_counts,
    encode_labels,
    plain,
    tidy,
)
from retrainlab.data.schema import _one_label_type as _one_label_type  # for tests of the label rule
from retrainlab.data.sources import (
    ARRAY_LABEL,
    CHUNK_ROWS,
    DELIMITERS,
    SEGMENTS,
    SNIFFED_LINES,
    SyntheticTeacher,
    array_columns,
    arrays_dataset,
    builtin_parts,
    digits_pool,
    files_dataset,
    read_arrays,
    read_table,
    synthetic_pool,
    synthetic_rows,
)
from retrainlab.data.splitting import ROW_GROUP_ROWS, SplitWriter, Tally, make_splits, split_part, stratified_split
from retrainlab.data.summary import PreparedSummary, read_summary

__all__ = [
    "PreparedSummary",
    "read_summary",
    "ARRAY_LABEL",
    "CATEGORICAL",
    "CHUNK_ROWS",
    "DELIMITERS",
    "FLOAT32_MAX",
    "NUMERIC",
    "ROW_GROUP_ROWS",
    "SEGMENTS",
    "SNIFFED_LINES",
    "TEXT",
    "Dataset",
    "Feature",
    "Prepared",
    "SplitWriter",
    "SyntheticTeacher",
    "Tally",
    "apply_scenario",
    "array_columns",
    "arrays_dataset",
    "builtin_parts",
    "check_class_counts",
    "digits_pool",
    "encode_labels",
    "files_dataset",
    "grown_labels",
    "load_prepared",
    "make_splits",
    "plain",
    "prepare",
    "read_arrays",
    "read_table",
    "rotate_labels",
    "shift_digits",
    "split_pool",
    "split_part",
    "stratified_split",
    "synthetic_pool",
    "synthetic_rows",
    "tidy",
]
