"""The sleep stages of the harmonized format (DESIGN.md §5): codes and names, defined once.

``W=0, N1=1, N2=2, N3=3, REM=4``; R&K stage 4 merges into N3; movement, artefact, unscored and
unknown are ``UNKNOWN = -1``. ``STAGE_NAMES[code]`` is the name every output uses (CSV columns
``p_W`` …, manifest counts ``n_W`` …, metric keys, checkpoint JSON ``"stages"``).

>>> STAGE_NAMES[REM], N_STAGES
('REM', 5)
"""

from __future__ import annotations

__all__ = ["W", "N1", "N2", "N3", "REM", "UNKNOWN", "STAGE_NAMES", "N_STAGES"]

W, N1, N2, N3, REM = 0, 1, 2, 3, 4
UNKNOWN = -1
STAGE_NAMES: tuple[str, ...] = ("W", "N1", "N2", "N3", "REM")
N_STAGES = len(STAGE_NAMES)
