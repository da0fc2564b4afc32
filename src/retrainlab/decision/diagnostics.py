"""What kind of new data is this? Its size, its new classes, and how far labels and inputs moved.

Pure functions of the initial and incremental frames:
- `label_shift`: total variation distance between the two label distributions (0 same, 1 disjoint),
  for a classifier's label;
- `target_shift`: for a regression label (a number), the two-sample KS statistic between the
  old and new labels, and their mean and standard deviation before and after; given the
  current model's predictions on the old and the new test rows, the KS of those predictions
  and of its errors between the two (`explained`), which tell moved inputs from a changed rule;
- `psi`: population stability index of one feature (quantile bins of the initial data for
  numbers, categories for text); above 0.25 is commonly read as a large shift;
- `ks`: Kolmogorov-Smirnov statistic of a numeric feature;
- `domain_auc`: how well a logistic regression tells old rows from new ones (0.5: it
  cannot, so the inputs did not move; 1.0: they are told apart perfectly); text columns
  enter it as token counts;
- `text_shift`: per text column, the new texts read with the old data's vocabulary (the
  one the project's model learns: its `model.text_tokens` most frequent tokens): the share
  of tokens and of texts it does not know, the overlap of the two vocabularies, the texts'
  lengths, and a domain classifier on token counts. A text column's PSI is its lengths'.
- `category_shift`: per categorical column, the new rows read against the old data's values:
  the share of new rows whose value the old data lacks, and how many values are new.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from retrainlab.base.tasks import CLASSIFICATION, REGRESSION
from retrainlab.config.sections import TEXT_TOKENS
from retrainlab.data import CATEGORICAL, NUMERIC, TEXT, Feature, plain
from retrainlab.data.text import lengths, mean_length, token_counts, tokens, vocabulary
from retrainlab.decision.diagnosis import CategoryShift, Diagnosis, ShiftedFeature, TargetShift, TextShift
from retrainlab.measure.evaluation import TEST_SETS

PSI_BINS = 10
PSI_FLOOR = 1e-4  # an empty bin would make the index infinite


def label_shift(old: pd.Series, new: pd.Series) -> float:
    p = old.value_counts(normalize=True)
    q = new.value_counts(normalize=True)
    labels = p.index.union(q.index)
    return float(0.5 * np.abs(p.reindex(labels, fill_value=0) - q.reindex(labels, fill_value=0)).sum())


def target_shift(old: pd.Series, new: pd.Series, predictions: pd.DataFrame | None = None) -> TargetShift:
    """How a regression label moved: KS between the old and new labels, and each one's mean
    and standard deviation (with one degree of freedom; 0 for a single row); with the
    current model's `predictions` (see `explained`), how they and its errors moved."""
    before, after = old.to_numpy(float), new.to_numpy(float)
    shift = TargetShift(ks=ks(old, new), mean_old=float(before.mean()), mean_new=float(after.mean()),
                        std_old=_std(before), std_new=_std(after))
    return shift if predictions is None else explained(shift, predictions)


def explained(shift: TargetShift, predictions: pd.DataFrame) -> TargetShift:
    """`shift` with the KS of the current model's predictions, and of its errors, between its
    old and its new test rows. `predictions` holds a row per test row: `test_set` ("old" or
    "new", as retrainlab.measure.evaluation.TEST_SETS names them), `actual` and `predicted`
    (what plots/baseline-predictions.csv keeps). Unchanged where either test set has no row."""
    old, new = (predictions[predictions["test_set"] == test_set] for test_set in TEST_SETS)
    if old.empty or new.empty:
        return shift
    return dataclasses.replace(shift, predicted_ks=ks(old["predicted"], new["predicted"]),
                               residual_ks=ks(old["actual"] - old["predicted"], new["actual"] - new["predicted"]))


def _std(values: np.ndarray) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


def psi(old: pd.Series, new: pd.Series, numeric: bool) -> float:
    if numeric:
        edges = np.unique(np.quantile(old.to_numpy(float), np.linspace(0, 1, PSI_BINS + 1)))
        edges[0], edges[-1] = -np.inf, np.inf
        p = np.histogram(old, edges)[0] / len(old)
        q = np.histogram(new, edges)[0] / len(new)
    else:
        categories = pd.Index(old.unique()).union(pd.Index(new.unique()))
        p = old.value_counts(normalize=True).reindex(categories, fill_value=0).to_numpy()
        q = new.value_counts(normalize=True).reindex(categories, fill_value=0).to_numpy()
    p, q = np.maximum(p, PSI_FLOOR), np.maximum(q, PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def ks(old: pd.Series, new: pd.Series) -> float:
    return float(stats.ks_2samp(old.to_numpy(float), new.to_numpy(float)).statistic)


def domain_auc(old: pd.DataFrame, new: pd.DataFrame, features: Sequence[Feature], seed: int = 0) -> float:
    """Cross-validated ROC AUC of a classifier telling new rows from old ones."""
    numeric = [f.name for f in features if f.kind == NUMERIC]
    categorical = [f.name for f in features if f.kind == CATEGORICAL]
    text = [f.name for f in features if f.kind == TEXT]
    x = pd.concat([old, new], ignore_index=True)
    y = np.r_[np.zeros(len(old)), np.ones(len(new))]
    folds = min(5, len(old), len(new))
    if folds < 2:
        return float("nan")
    encode = ColumnTransformer(
        [("num", StandardScaler(), numeric), ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
         *[(f"text{i}", _token_counter(), column) for i, column in enumerate(text)]]
    )
    model = make_pipeline(encode, LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(model, x, y, cv=cv, scoring="roc_auc").mean())


def _token_counter() -> CountVectorizer:
    # The tokens of retrainlab.data.text, as the project's text model reads them.
    return CountVectorizer(tokenizer=tokens, lowercase=False, token_pattern=None)


def text_shift(old: pd.Series, new: pd.Series, name: str, max_tokens: int = TEXT_TOKENS, seed: int = 0) -> TextShift:
    """The new texts read with the vocabulary of the old ones (their `max_tokens` most frequent tokens)."""
    known = set(vocabulary(token_counts(old.astype(str)), max_tokens))
    new_tokens = [tokens(text) for text in new.astype(str)]
    unknown = [sum(token not in known for token in words) for words in new_tokens]
    total = sum(len(words) for words in new_tokens)
    worded = [(u, len(words)) for u, words in zip(unknown, new_tokens) if words]
    seen = {token for words in new_tokens for token in words}  # the new texts, tokenized once
    frames = pd.DataFrame({name: old.astype(str)}), pd.DataFrame({name: new.astype(str)})
    return TextShift(
        feature=name,
        oov_tokens=sum(unknown) / total if total else 0.0,
        oov_rows=float(np.mean([u > n / 2 for u, n in worded])) if worded else 0.0,
        overlap=len(known & seen) / len(known | seen) if known | seen else 1.0,
        length_old=mean_length(old),
        length_new=mean_length(new),
        domain_auc=domain_auc(*frames, [Feature(name, TEXT)], seed),
    )


def category_shift(old: pd.Series, new: pd.Series, name: str) -> CategoryShift:
    """The new rows' values against the old data's, compared as the model reads them (as text;
    a missing value left out): the share of new rows whose value the old data lacks, the
    distinct values only the new data has, and the old data's distinct values. Every value is
    numbered once (one hash table over both columns) and the sets are marks over those
    numbers: a column may hold a million distinct values, and pandas' `isin` on its text
    columns takes seconds where this takes a fraction of one."""
    before, after = old.dropna().astype(str), new.dropna().astype(str)
    codes, values = pd.factorize(pd.concat([before, after], ignore_index=True))
    old_codes, new_codes = codes[:len(before)], codes[len(before):]
    known = np.zeros(len(values), dtype=bool)
    known[old_codes] = True
    unseen = ~known[new_codes]
    only_new = np.zeros(len(values), dtype=bool)
    only_new[new_codes[unseen]] = True
    return CategoryShift(feature=name, unseen_rows=float(unseen.mean()) if len(after) else 0.0,
                         new_values=int(only_new.sum()), old_values=int(known.sum()))


def category_shifts(old: pd.DataFrame, new: pd.DataFrame, features: Sequence[Feature]) -> tuple[CategoryShift, ...]:
    """`category_shift` of each categorical column of `features`."""
    return tuple(category_shift(old[f.name], new[f.name], f.name) for f in features if f.kind == CATEGORICAL)


def diagnose(old: pd.DataFrame, new: pd.DataFrame, label: str, features: Sequence[Feature], top: int = 5,
             max_tokens: int = TEXT_TOKENS, task: str | None = CLASSIFICATION,
             predictions: pd.DataFrame | None = None,
             categories: tuple[CategoryShift, ...] | None = None) -> Diagnosis:
    """Every diagnostic of the new data against the old, for the report and the parent run.
    `task` is the prepared data's (summary.json's `task`; None: a classifier's): a regression
    label is read as a distribution (`target_shift`, with the current model's `predictions`
    on the old and the new test rows where they are given), a classifier's as classes. New rows
    without the label column (`retrainlab check` without labels) get the inputs' diagnostics
    only: no new or vanished classes, no label or target shift. `categories`: the categorical
    columns' shifts read by the caller on every row (a sample would count a value it left out
    of the old rows as new); None: read on these rows."""
    regression = task == REGRESSION
    labelled = label in new.columns
    old_labels, new_labels = (set(), set()) if regression or not labelled else (
        set(map(plain, old[label].unique())), set(map(plain, new[label].unique())))
    per_feature = []
    for f in features:
        numeric = f.kind == NUMERIC
        if f.kind == TEXT:  # a text's PSI: of its length in tokens
            per_feature.append(ShiftedFeature(f.name, f.kind, psi(lengths(old[f.name]), lengths(new[f.name]), True)))
            continue
        per_feature.append(ShiftedFeature(f.name, f.kind, psi(old[f.name], new[f.name], numeric),
                                          ks(old[f.name], new[f.name]) if numeric else None))
    per_feature.sort(key=lambda row: row.psi, reverse=True)
    names = [f.name for f in features]
    return Diagnosis(
        rows_old=len(old),
        rows_new=len(new),
        size_ratio=len(new) / len(old),
        new_classes=sorted(new_labels - old_labels),
        vanished_classes=sorted(old_labels - new_labels),
        label_shift_tv=None if regression or not labelled else label_shift(old[label], new[label]),
        psi_max=per_feature[0].psi,
        psi_mean=float(np.mean([row.psi for row in per_feature])),
        domain_auc=domain_auc(old[names], new[names], features),
        top_shifted_features=tuple(per_feature[:top]),
        text=tuple(text_shift(old[f.name], new[f.name], f.name, max_tokens) for f in features if f.kind == TEXT),
        target=target_shift(old[label], new[label], predictions) if regression and labelled else None,
        categories=category_shifts(old, new, features) if categories is None else categories,
    )
