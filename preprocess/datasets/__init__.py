"""Registry of dataset modules. Each module defines ``SPEC`` (or ``SPECS``), a DatasetSpec.

Adding a dataset = writing one small module in this folder; it is discovered automatically
(modules whose name starts with ``_`` are helpers, not datasets).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping

from preprocess.core.channels import build_alias_table
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


_ALIAS_TABLE: dict | None = None


def layouts() -> dict[str, DatasetSpec]:
    """Datasets with a channel map of their own (``generic`` uses the shared table), by name."""
    return {name: spec for name, spec in sorted(registry().items()) if spec.channel_map is not AUTO_MAP}


def alias_table() -> dict:
    """The shared alias table for automatic montage detection, built once from every dataset's map.

    :func:`preprocess.core.channels.build_alias_table` over the dataset specs sorted by name:
    nothing is registered as a side effect of importing a module.
    """
    global _ALIAS_TABLE
    if _ALIAS_TABLE is None:
        _ALIAS_TABLE = build_alias_table(spec.channel_map for spec in layouts().values())
    return _ALIAS_TABLE


class _AutoMap(Mapping):
    """The shared alias table as a mapping that is built on first use.

    The ``generic`` dataset module needs the table as its channel map, but the table is built
    from the other modules' specs; building it lazily keeps the data flowing one way (specs →
    table) without an import cycle.
    """

    def __getitem__(self, key):
        return alias_table()[key]

    def __iter__(self):
        return iter(alias_table())

    def __len__(self) -> int:
        return len(alias_table())


AUTO_MAP = _AutoMap()
"""Channel map of the ``generic`` dataset: the shared alias table."""


def get_dataset(name: str) -> DatasetSpec:
    specs = registry()
    key = name.lower()
    if key not in specs:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(specs))}")
    return specs[key]
