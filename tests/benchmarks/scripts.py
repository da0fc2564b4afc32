"""The benchmark scripts as modules: benchmarks/ is scripts, not a package."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from ..conftest import PROJECT


def load(name: str, module: str | None = None) -> ModuleType:
    """benchmarks/NAME.py, imported once, as `module` (default: NAME)."""
    module = module or name
    if module not in sys.modules:
        spec = importlib.util.spec_from_file_location(module, PROJECT / "benchmarks" / f"{name}.py")
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[module] = loaded  # dataclasses look their module up while the class is made
        spec.loader.exec_module(loaded)
    return sys.modules[module]
