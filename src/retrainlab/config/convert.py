"""YAML to the sections' dataclasses: every key known, every value of its declared type.

A generic converter over dataclass type hints (int, float, bool, str, Literal, lists,
mappings with text keys, unions, nested dataclasses): an unknown key or a wrong type is a one-line ConfigError
naming the key and what is allowed. It keeps YAML 1.2's values as DVC reads them, refuses
a bool where a number is meant (`epochs: yes`) and a non-finite number anywhere.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal

from retrainlab.base.errors import ConfigError


def yaml_problem(exc: Exception) -> str:
    """The parser's complaint and its line, without the multi-line excerpt of the file."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    # ruamel shows a duplicate key's values as it holds them mid-parse ("{}", "[]"): misleading.
    problem = re.sub(r' with value ".*" \(original value: ".*"\)$', "", problem)
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}" if mark is not None else problem


def build(cls: type, raw: Any, prefix: str = "", special: Mapping[str, Callable[[Any], Any]] | None = None) -> Any:
    """`cls` from a YAML mapping; `special` converts the keys it names itself (the options'
    sections, which the strategy catalogue types)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"section '{prefix.rstrip('.') or '(top level)'}' must be a mapping")
    hints = typing.get_type_hints(cls)
    fields = {key_of(f): f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields), key=str)
    if unknown:
        raise ConfigError(
            f"unknown parameter '{prefix}{unknown[0]}' (known here: {', '.join(sorted(fields))})"
        )
    special = special or {}
    values = {
        fields[key]: special[key](raw[key]) if key in special
        else _convert(hints[fields[key]], raw[key], f"{prefix}{key}")
        for key in raw
    }
    return cls(**values)


def key_of(field: dataclasses.Field) -> str:
    """A field's key in params.yaml: its name, less the _ that makes a keyword (`from`) a name."""
    return field.name.rstrip("_")


def _convert(hint: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return build(hint, value, f"{key}.")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"parameter '{key}' is {value!r}; choose one of: {', '.join(args)}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        choices = [a for a in args if a is not type(None)]
        shaped = [a for a in choices if typing.get_origin(a) is dict]
        if isinstance(value, dict) and shaped:  # a mapping's own error, not the last choice's
            return _convert(shaped[0], value, key)
        for inner in choices[:-1]:
            try:
                return _convert(inner, value, key)
            except ConfigError:
                continue
        return _convert(choices[-1], value, key)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"parameter '{key}' must be a mapping, got {value!r}")
        # Keys as text: YAML reads a label 0 as a number, the data's labels are compared as text.
        return {str(k): _convert(args[1], v, f"{key}.{k}") for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"parameter '{key}' must be a list, got {value!r}")
        return [_convert(args[0], item, f"{key}[{i}]") for i, item in enumerate(value)]
    return _scalar(hint, value, key)


def _scalar(hint: type, value: Any, key: str) -> Any:
    # bool is a subclass of int: refuse it where a number is meant, so `epochs: yes` fails.
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
        if ok and not math.isfinite(value):
            raise ConfigError(f"parameter '{key}' must be a finite number, got {value!r}")
    else:
        ok = isinstance(value, hint)
    if not ok:
        raise ConfigError(f"parameter '{key}' must be of type {hint.__name__}, got {value!r}")
    return value

