"""User text (labels, column names, category values, file names) made safe where a person reads it.

A label or a column name is data, not markup. Each kind of output escapes it in its writer,
by construction, so that a new section cannot forget to:
- Markdown (the report, MLflow's run and version descriptions): `Markdown` is markup this
  project wrote; `md(template, *values)` formats values into a template, escaping every
  value that is not `Markdown` itself, and the writers take nothing but `Markdown`
  (`require_markdown`), so text that went around `md` fails the tests instead of reaching
  the UI. A value shows as written, on one line: it opens no link, breaks no table and
  runs no script.
- HTML (the report as a page, `markdown_html`): that Markdown rendered with raw HTML off,
  so user text reaches the page only through `md`, and anything in the text that looks
  like a tag shows as written. An image shows only the source its writer supplies (the
  report's plots, inlined); any other becomes its alternative text.
- CSV (`csv_frame`): a cell that a spreadsheet would run as a formula is prefixed with ',
  and `<` and `>` become the angle quotation marks ‹ and ›: `dvc plots show` embeds the plot
  files in a `<script>` block of its HTML, where `</script>` (or `<!--`) would end it. They
  look alike and are in every common font (the full-width forms are not).
- the console (`one_line`): one printable line, so an error stays one line and a label
  cannot move the terminal's cursor.
"""

from __future__ import annotations

import html
import numbers
import re
import string
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# Inline Markdown (CommonMark, and GitHub's tables and strikethrough): what could start
# emphasis or code, end a table cell, or close a link or image's text ("](", "][");
# an underscore inside a word (acc_new) starts nothing. HTML's <, > and & go as entities.
_INLINE = re.compile(r"([\\`*~|]|\](?=[(\[])|(?<![^\W_])_|_(?![^\W_]))")
# What starts a block where it starts a line: a heading ("# x"), a list item ("- x", "+ x",
# "1. x", "1) x"), a rule or setext underline ("---", "==="), a link reference definition
# ("[x]: url"). Its first mark is escaped; "-0.5" or "0.05" start nothing and stay as they are.
_LINE_START = re.compile(r"^(?:([#]{1,6}|[-+=])(?=\s|$)|([-+=])(?=\2)|(\[)(?=[^\]]*\]:)|(\d{1,9})([.)])(?=\s|$))")
# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_MARKUP_LOOKALIKES = str.maketrans({"<": "\u2039", ">": "\u203a"})


class Markdown(str):
    """Markdown this project wrote. Build it with `md`; `Markdown(text)` says that `text` is
    markup already, which is only true of literals in this package's code and of text made
    of numbers. Joining or adding text to it escapes that text."""

    def __add__(self, other: Any) -> Markdown:
        return Markdown(str.__add__(self, _escaped(other)))

    def __radd__(self, other: Any) -> Markdown:
        return Markdown(_escaped(other) + str(self))

    def __mul__(self, times: int) -> Markdown:
        return Markdown(str.__mul__(self, times))

    def join(self, parts: Iterable[Any]) -> Markdown:
        return Markdown(str.join(self, (_escaped(part) for part in parts)))


def _escaped(value: Any) -> str:
    return value if isinstance(value, Markdown) else markdown(value)


def markdown(value: Any) -> str:
    """`value` as literal text inside Markdown: one line, HTML escaped, Markdown punctuation escaped."""
    text = html.escape(" ".join(str(value).split()), quote=False)
    return _LINE_START.sub(_escape_line_start, _INLINE.sub(r"\\\1", text))


def _escape_line_start(found: re.Match) -> str:
    sign, repeated, bracket, digits, mark = found.groups()
    if digits:
        return f"{digits}\\{mark}"
    return "\\" + (sign or repeated or bracket)


class _Escaping(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        shown = format(value, format_spec)
        if isinstance(value, Markdown) or (isinstance(value, numbers.Number) and not isinstance(value, bool)):
            return shown
        return markdown(shown)


_ESCAPING = _Escaping()


def md(template: str, *values: Any, **named: Any) -> Markdown:
    """`template.format(...)` with every value escaped that is not Markdown (numbers are
    formatted as the template says: they hold no markup)."""
    return Markdown(_ESCAPING.vformat(template, values, named))


def lines(parts: Iterable[Any]) -> Markdown:
    """Lines joined into one text, each escaped unless it is Markdown already."""
    return Markdown("\n").join(parts)


def require_markdown(text: Any) -> str:
    """What a Markdown writer accepts: `Markdown` only (a TypeError is a bug in this package)."""
    if not isinstance(text, Markdown):
        raise TypeError(f"expected Markdown built with escape.md, got {type(text).__name__}: {str(text)[:80]!r}")
    return str(text)


def markdown_html(text: Markdown, images: Mapping[str, str]) -> str:
    """`text` as an HTML fragment, as CommonMark with GitHub's tables renders it, raw HTML
    off; an image's source replaced by `images[source]` (a data: URI), and an image named
    in no `images` shown as its alternative text."""
    # start-up: the renderer serves the compare step's HTML report alone
    from markdown_it import MarkdownIt

    renderer = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    tokens = renderer.parse(require_markdown(text))
    for image in (c for token in tokens for c in token.children or () if c.type == "image"):
        if image.attrGet("src") in images:
            image.attrSet("src", images[image.attrGet("src")])
        else:
            alternative = renderer.renderer.renderInlineAsText(image.children or [], renderer.options, {})
            image.type, image.content, image.children = "text", alternative, None
    return renderer.renderer.render(tokens, renderer.options, {})


def csv_cell(value: Any) -> Any:
    """A text cell that cannot run as a spreadsheet formula or end a script block."""
    if not isinstance(value, str):
        return value
    value = value.translate(_MARKUP_LOOKALIKES)
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell and column name passed through `csv_cell`."""
    safe = frame.rename(columns=csv_cell)
    for column in safe.columns:
        if safe[column].dtype.kind not in "biufcmM":  # text: object or pandas' str dtype
            safe[column] = safe[column].map(csv_cell)
    return safe


def one_line(text: Any) -> str:
    """Text for the console: line breaks and other characters that are not printable (a
    terminal's escape sequences) shown as Python writes them in a string, e.g. \\n, \\x1b."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
