"""Real-time sleep staging from a live stream (Lab Streaming Layer), for closed-loop research.

Split by concern: the causal signal chain lives beside the offline chains
(:class:`preprocess.core.signal.CausalChain`, :class:`~preprocess.core.signal.RunningNorm`);
:mod:`online.stager` stages completed epochs (immediate and refined stages, gaps) and logs them;
:mod:`online.lsl` is the LSL transport (inlet, marker outlet, replay, the feeding loop);
:mod:`online.cli` is ``python -m online``. Above :mod:`staging` in the layers: the model comes from
:class:`staging.Stager`, the one model-loading path.
"""

from preprocess.core.signal import ANTIALIAS_HZ, CausalChain, RunningNorm

from .cli import main, parse_args
from .lsl import (
    ReplayPlayer,
    RunSummary,
    marker_outlet,
    open_inlet,
    read_for_replay,
    restrict_lsl_to_this_machine,
    run_stream,
)
from .stager import CSV_FIELDS, GAP_TOLERANCE_S, UNKNOWN, CsvLog, EpochResult, OnlineStager, console_line

__all__ = ["ANTIALIAS_HZ", "CSV_FIELDS", "CausalChain", "CsvLog", "EpochResult", "GAP_TOLERANCE_S", "OnlineStager",
           "ReplayPlayer", "RunSummary", "RunningNorm", "UNKNOWN", "console_line", "main", "marker_outlet",
           "open_inlet", "parse_args", "read_for_replay", "restrict_lsl_to_this_machine", "run_stream"]
