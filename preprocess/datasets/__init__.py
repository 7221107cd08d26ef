"""Registry of dataset modules. Each module defines ``SPEC`` (or ``SPECS``), a DatasetSpec.

Adding a dataset = writing one small module in this folder; it is discovered automatically
(modules whose name starts with ``_`` are helpers, not datasets).
"""

from __future__ import annotations

import importlib
import pkgutil

from preprocess.core.dataset import DatasetSpec

MODULES = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))

_REGISTRY: dict[str, DatasetSpec] | None = None


def registry() -> dict[str, DatasetSpec]:
    """Name → DatasetSpec for every dataset module (imported once)."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = {}
        for module_name in MODULES:
            module = importlib.import_module(f"{__name__}.{module_name}")
            specs = getattr(module, "SPECS", None) or [module.SPEC]
            for spec in specs:
                _REGISTRY[spec.name] = spec
    return _REGISTRY


def get_dataset(name: str) -> DatasetSpec:
    specs = registry()
    key = name.lower()
    if key not in specs:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(specs))}")
    return specs[key]
