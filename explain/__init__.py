"""Why did the model stage an epoch so? Grad-CAM, guided Grad-CAM and channel attribution.

Split by concern: :mod:`explain.attribution` (the maps and attributions, and their checks against
known event times), :mod:`explain.render` (``NAME.explain.npz`` and the PNG pages, and the hook of
``inference.py --explain``), :mod:`explain.cli` (``python -m explain``). Above :mod:`staging` in the
layers: it stages recordings with :class:`staging.Stager` and never the other way round.
"""

from .attribution import (
    EPOCH_SAMPLES,
    SFREQ,
    STAGES,
    Explanation,
    band_power,
    branch_last_convs,
    channel_shapley,
    epoch_signals,
    event_mask,
    explain_features,
    explain_recording,
    explain_windows,
    explainable_model,
    guided_envelope,
    mass_ratio,
    select_epochs,
    step_centres,
    upsample_steps,
    window_for,
    within_epoch_ratio,
)
from .cli import build_parser, explain_file, main
from .render import explain_hook, page_title, render_page, save_npz, write_explanation

__all__ = ["EPOCH_SAMPLES", "Explanation", "SFREQ", "STAGES", "band_power", "branch_last_convs", "build_parser",
           "channel_shapley", "epoch_signals", "event_mask", "explain_features", "explain_file", "explain_hook",
           "explain_recording", "explain_windows", "explainable_model", "guided_envelope", "main", "mass_ratio",
           "page_title", "render_page", "save_npz", "select_epochs", "step_centres", "upsample_steps", "window_for",
           "within_epoch_ratio", "write_explanation"]
