"""Simulated PSG in each dataset's raw format (tests, demo weights, benchmarks).

CLI: ``python -m simulate --out DIR --recordings N --seed S [--dataset NAME] [--hours H]``.
API: ``simulate.generate(out_dir, n_recordings, seed, dataset="sleepedf", hours=None)`` returns one
dict per recording (``id``, ``subject``, ``files``, ``stages``, ...) and writes ``simulation.json``.

Modules: :mod:`simulate.hypnogram` (real hypnograms, cropping, Markov nights),
:mod:`simulate.physiology` (stage-dependent signals: ``simulate_sites`` / ``simulate_site``),
:mod:`simulate.formats` (dataset profiles ``sleepedf``, ``hmc``, ``generic`` and the EDF helpers;
``PROFILES`` registry). Everything produced here is synthetic and must be labelled as simulated
wherever its numbers appear.
"""

from .formats import PROFILES, get_profile, register_profile
from .generator import generate
from .physiology import draw_subject_params, simulate_site, simulate_sites

__all__ = [
    "PROFILES",
    "draw_subject_params",
    "generate",
    "get_profile",
    "register_profile",
    "simulate_site",
    "simulate_sites",
]
