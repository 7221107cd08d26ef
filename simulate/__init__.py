"""Simulated PSG in each dataset's raw format (tests, demo weights, benchmarks).

CLI: ``python -m simulate --out DIR --recordings N --seed S [--dataset NAME] [--hours H]``.
API: ``simulate.generate(out_dir, n_recordings, seed, dataset="sleepedf", hours=None, spread=1.0)``
(``spread`` > 1: domain randomisation for training data) returns one
dict per recording (``id``, ``subject``, ``files``, ``events``, ``stages``, ...) and writes ``simulation.json``.

Events table: beside each simulated EDF, ``<stem>.events.tsv`` lists where the simulator placed
its transient events (columns ``onset`` and ``duration`` in seconds from the recording start,
``kind`` - spindle, kcomplex, vertex, sawtooth, alpha, rem, saccade, sem, blink, twitch, pop,
sweat, movement, ... - and ``channels``: the comma-separated sites it reaches, or ``all``).
``simulate.read_events(path)`` (the table or its EDF) returns a list of dicts ``{"onset": float,
"duration": float, "kind": str, "channels": list[str]}`` sorted by onset.

Modules: :mod:`simulate.hypnogram` (real hypnograms, cropping, Markov nights),
:mod:`simulate.physiology` (stage-dependent signals: ``simulate_sites`` / ``simulate_site``),
:mod:`simulate.formats` (dataset profiles ``sleepedf``, ``hmc``, ``generic`` and the EDF helpers;
``PROFILES`` registry). Everything produced here is synthetic and must be labelled as simulated
wherever its numbers appear.
"""

from .events import events_path, read_events, write_events
from .formats import PROFILES, get_profile, register_profile
from .generator import generate
from .physiology import draw_subject_params, simulate_site, simulate_sites

__all__ = [
    "PROFILES",
    "draw_subject_params",
    "events_path",
    "generate",
    "get_profile",
    "read_events",
    "register_profile",
    "simulate_site",
    "simulate_sites",
    "write_events",
]
