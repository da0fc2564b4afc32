"""User text (labels, column names) made safe for the places it is shown.

A label or a column name is data, not markup: in a Markdown report or an MLflow description
it must show as written, not open a link, break a table or run a script, and in a CSV
output it must not become a spreadsheet formula when someone opens the file.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pandas as pd

# Characters Markdown gives a meaning to inline or in a table cell.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+!|~-])")
# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def markdown(value: Any) -> str:
    """`value` as literal text inside Markdown: one line, HTML escaped, Markdown punctuation escaped."""
    text = " ".join(str(value).split())
    return _MARKDOWN.sub(r"\\\1", html.escape(text, quote=False))


def csv_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would read as a formula, prefixed with ' so it is shown as text."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell and column name passed through `csv_cell`."""
    safe = frame.rename(columns=csv_cell)
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):  # text: object or pandas' str dtype
            safe[column] = safe[column].map(csv_cell)
    return safe
