"""params.yaml read whole: its sections (retrainlab.config), and the options' sections typed
by the strategy catalogue. The one place that assembles a `Params`.

The file is read as YAML 1.2, as DVC reads it (ruamel.yaml's safe loader), so that both see
the same values: `1e-3` is a number and `yes` is text to each of them. Unknown keys, wrong
types and out-of-range values are refused with a one-line ConfigError naming the key.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML, YAMLError

from retrainlab.base.errors import ConfigError
from retrainlab.config import Params, build, yaml_problem
from retrainlab.strategies import BASELINE, CATALOGUE, UPDATES

# Sections that moved, and where to: an old params file gets told, not just refused.
MOVED = {"incremental": "strategies.incremental", "fine_tune": "strategies.fine-tune"}
# Keys renamed within their section: the old name is still read, with a one-line notice.
RENAMED = {("distribute", "strategy"): "mode"}  # "strategy" means an option for new data only

log = logging.getLogger(__name__)


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read, type-check and range-check a params file; raise ConfigError naming the key."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ConfigError(f"{path}: cannot read the params file ({reason})") from None
    return params_from_text(text, str(path))


def params_from_text(text: str, shown: str) -> Params:
    """`load_params` of a file's text, `shown` naming it in errors: `retrainlab init` checks
    the params it is about to write."""
    try:
        raw = YAML(typ="safe", pure=True).load(text) or {}
    except YAMLError as exc:
        raise ConfigError(f"{shown}: not valid YAML ({yaml_problem(exc)})") from None
    try:
        params = params_from_mapping(raw)
        params.check()
    except ConfigError as exc:
        raise ConfigError(f"{shown}: {exc}") from None
    return params


def params_from_mapping(raw: Any) -> Params:
    """A `Params` from params.yaml's top-level mapping; every option at its defaults where the
    file has no `strategies:`."""
    moved = [key for key in (raw if isinstance(raw, dict) else {}) if key in MOVED]
    if moved:
        raise ConfigError(
            f"parameter '{moved[0]}' has moved to '{MOVED[moved[0]]}' (under 'strategies:', which also "
            "chooses the options to run; see README.md)"
        )
    params = build(Params, _renamed(raw), special={"strategies": strategies_section})
    if isinstance(raw, dict) and "strategies" not in raw:
        params = dataclasses.replace(params, strategies={name: CATALOGUE[name].settings() for name in UPDATES})
    _check_forecast(params.compare.forecast)
    return params


def _check_forecast(names: list[str]) -> None:
    """compare.forecast names options, each once."""
    for i, name in enumerate(names):
        if name not in UPDATES:
            raise ConfigError(f"parameter 'compare.forecast' names {name!r}, which is no option (the options: "
                              f"{', '.join(UPDATES)}); list the options `retrainlab check` forecasts, or []")
        if name in names[:i]:
            raise ConfigError(f"parameter 'compare.forecast' names {name!r} twice; list each option once")


def _renamed(raw: Any) -> Any:
    """The mapping with each renamed key under its new name, and a notice for each."""
    for (section, old), new in RENAMED.items():
        part = raw.get(section) if isinstance(raw, dict) else None
        if not (isinstance(part, dict) and old in part):
            continue
        if new in part:
            raise ConfigError(f"parameter '{section}.{old}' is the old name of '{section}.{new}': keep only "
                              f"'{section}.{new}'")
        log.warning(f"params: '{section}.{old}' is now called '{section}.{new}'; read as {section}.{new}: "
                    f"{part[old]!r} (rename it in the params file)")
        raw = {**raw, section: {(new if key == old else key): value for key, value in part.items()}}
    return raw


def defaults() -> Params:
    """Every parameter at its default, every option chosen: what an empty params.yaml gives."""
    return params_from_mapping({})


def strategies_section(raw: Any) -> dict[str, Any]:
    """params.yaml's `strategies:` mapping, each option's settings typed by its declaration."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"parameter 'strategies' must be a mapping of option to settings (e.g. 'replay: {{}}' for the "
            f"defaults), got {raw!r}; the options: {', '.join(UPDATES)}"
        )
    chosen = {}
    for name, settings in raw.items():
        if name == BASELINE:
            raise ConfigError("parameter 'strategies.baseline': the baseline always runs; list only the options")
        if name not in UPDATES:
            raise ConfigError(f"unknown strategy 'strategies.{name}' (known: {', '.join(UPDATES)})")
        chosen[name] = build(CATALOGUE[name].settings, {} if settings is None else settings, f"strategies.{name}.")
    return chosen
