"""Montage for inference: automatic detection from the shared alias table, or an explicit map.

Automatic detection uses :data:`preprocess.core.channels.ALIASES`, the table every dataset module
adds its channel map to (imported through :func:`preprocess.datasets.registry`), so a file
laid out like any supported dataset is recognised. Within each canonical channel the options are
ordered by the referencing rule of the design (AASM derivation, contralateral mastoid
re-reference, raw electrode), and the first one present in the file wins.

An explicit map is JSON in the format of :func:`preprocess.core.channels.parse_channel_map`,
given as a file path or inline::

    {"C3": [["C3", "M2"]], "C4": "C4-M1", "E1": ["LOC-M2", "E1"], "Chin": [["Chin1", "Chin2"]]}
"""

from __future__ import annotations

import json
from pathlib import Path

from preprocess.core.channels import ALIASES, CANONICAL, CHANNEL_KIND, parse_channel_map


class ChannelMapError(ValueError):
    """An explicit channel map that cannot be read."""


def auto_channel_map() -> dict:
    """The shared alias table, after every dataset module has registered its labels."""
    from preprocess.datasets import registry

    registry()
    return ALIASES


PUBLISHED_CHANNELS = Path(__file__).with_name("published_channels.json")
"""The channel map of the published ``inference.py`` (F3…E2 against the contralateral mastoid, else
the raw electrode; the chin commented out): ``--channels published`` reproduces a published run."""


def channel_map_from_arg(arg: str | None) -> tuple[dict, str]:
    """Channel map from ``--channels``: ``auto``/None, ``published``, a JSON file path or inline JSON.

    Returns
    -------
    tuple
        ``(channel map, description)``; the description names the map's origin.
    """
    if arg is None or arg.strip().lower() == "auto":
        return auto_channel_map(), "auto (shared alias table)"
    if arg.strip().lower() == "published":
        arg = str(PUBLISHED_CHANNELS)
    text, origin = arg, "inline JSON"
    if not arg.lstrip().startswith("{"):
        path = Path(arg)
        if not path.is_file():
            raise ChannelMapError(f"--channels {arg!r}: neither 'auto', a JSON file nor inline JSON")
        text, origin = path.read_text(), str(path)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ChannelMapError(f"--channels ({origin}): invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ChannelMapError(f"--channels ({origin}): expected a JSON object canonical name -> options")
    try:
        return parse_channel_map(obj), origin
    except (KeyError, TypeError, ValueError) as exc:
        msg = exc.args[0] if exc.args else str(exc)
        raise ChannelMapError(f"--channels ({origin}): {msg}") from None


def has_eeg_or_eog(channels) -> bool:
    """Whether at least one of the canonical ``channels`` is an EEG or EOG channel."""
    return any(CHANNEL_KIND[c] in ("eeg", "eog") for c in channels)


def describe(montaged) -> list[str]:
    """Lines describing which raw label or derivation feeds each canonical channel.

    Parameters
    ----------
    montaged : preprocess.core.pipeline.Montaged

    Returns
    -------
    list of str
        One line per kept channel (``"C3   <- EEG C3-A2"``), then dropped and missing channels.
    """
    lines = [f"{s.canonical:<4} <- {s.describe()}" for s in montaged.sources]
    for name, reason in montaged.dropped.items():
        lines.append(f"{name:<4} dropped: {reason}")
    missing = [c for c in CANONICAL if c not in montaged.channels and c not in montaged.dropped]
    if missing:
        lines.append("not found: " + ", ".join(missing))
    return lines


def montage_string(montaged) -> str:
    """Compact one-line form for ``summary.csv``: ``C3=EEG C3-A2; Chin=EMG1 - EMG2``."""
    return "; ".join(f"{s.canonical}={s.describe()}" for s in montaged.sources)
