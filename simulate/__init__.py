"""Simulated PSG in each dataset's raw format (tests, demo weights, benchmarks).

``python -m simulate --out DIR --recordings N --seed S [--dataset NAME] [--hours H]`` or
``simulate.generate(out_dir, n_recordings, seed, dataset="sleepedf", hours=None)``.
Everything produced here is synthetic and must be labelled as simulated wherever its numbers appear.
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
