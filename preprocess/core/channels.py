"""Canonical channels, label normalisation and montage resolution (DESIGN §3).

A *channel map* sends each canonical channel name to an ordered list of options. An option is
either one raw label that is already referenced (``"C3-M2"``) or a pair ``(a, b)`` meaning the
derivation ``a - b``. The first option whose labels are all present in the file wins.

Matching ignores case, spaces, separators and the usual type prefixes, so ``"EEG C3-A2"``,
``"c3_a2"`` and ``"C3:A2"`` are the same label.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence, Union

CANONICAL: tuple[str, ...] = ("F3", "F4", "C3", "C4", "O1", "O2", "E1", "E2", "Chin")
"""Canonical channel names; the index of each name is part of the checkpoint format."""

CHANNEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(CANONICAL)}

CHANNEL_KIND: dict[str, str] = {name: "eeg" for name in CANONICAL[:6]}
CHANNEL_KIND.update({"E1": "eog", "E2": "eog", "Chin": "emg"})

Option = Union[str, tuple[str, str]]
ChannelMap = Mapping[str, Sequence[Option]]

# Type prefixes that some systems put in front of the electrode name ("EEG C3-A2", "EOG(L)").
_PREFIXES = ("EEG", "EOG", "EMG", "ECG", "EKG", "POL")
_SEPARATORS = re.compile(r"[\s\-_:./\\|()\[\]]+")


class MontageError(ValueError):
    """No canonical channel can be formed from the labels of a file."""


def normalize_label(label: str) -> str:
    """Return a comparison key for a channel label.

    Upper-cases, removes one leading type prefix (``EEG``, ``EOG``, ``EMG``, ...) followed by a
    space, colon or underscore, and removes spaces and separators. ``"EEG C3-A2"``, ``"C3_A2"``
    and ``"c3:a2"`` all give ``"C3A2"``. A prefix joined by ``-`` or ``(`` is part of the name:
    ``"EEG(sec)"`` gives ``"EEGSEC"`` and ``"EOG(L)"`` gives ``"EOGL"``, so SHHS's ``EEG`` and
    ``EEG(sec)`` and the ``EOG(L)``/``EMG(L)`` pairs never collide.
    """
    text = label.strip().upper()
    for prefix in _PREFIXES:
        if len(text) > len(prefix) and text.startswith(prefix) and text[len(prefix)] in " :_":
            text = text[len(prefix):]
            break
    return _SEPARATORS.sub("", text)


@dataclass(frozen=True)
class Source:
    """How one canonical channel is obtained from a file.

    Attributes
    ----------
    canonical : str
        Canonical channel name (``"C3"``).
    positive : str
        Raw label in the file (exact spelling).
    negative : str or None
        Raw label subtracted from ``positive`` (a derivation ``positive - negative``), or None.
    """

    canonical: str
    positive: str
    negative: str | None = None

    def describe(self) -> str:
        return self.positive if self.negative is None else f"{self.positive} - {self.negative}"

    def to_json(self) -> str | list[str]:
        return self.positive if self.negative is None else [self.positive, self.negative]


def _as_pair(option: Option) -> tuple[str, str | None]:
    if isinstance(option, str):
        return option, None
    if isinstance(option, (list, tuple)) and len(option) == 2 and all(isinstance(o, str) for o in option):
        return option[0], option[1]
    raise TypeError(f"channel option must be a label or a pair of labels, got {option!r}")


def resolve_montage(labels: Iterable[str], channel_map: ChannelMap, source: str = "") -> list[Source]:
    """Choose, for each canonical channel, the first option present in ``labels``.

    Parameters
    ----------
    labels : iterable of str
        Channel labels found in the file.
    channel_map : mapping
        Canonical name → ordered options (label or ``(a, b)`` pair for ``a - b``).
    source : str
        File name used in the error message.

    Returns
    -------
    list of Source
        In canonical index order; canonical channels with no available option are absent.

    Raises
    ------
    MontageError
        When no canonical channel can be formed; the message names the file and the labels found.
    """
    labels = list(labels)
    by_key: dict[str, str] = {}
    for label in labels:
        by_key.setdefault(normalize_label(label), label)
    unknown = set(channel_map) - set(CANONICAL)
    if unknown:
        raise KeyError(f"unknown canonical channel(s) in channel map: {sorted(unknown)}")
    chosen: list[Source] = []
    for name in CANONICAL:
        for option in channel_map.get(name, ()):
            pos, neg = _as_pair(option)
            pos_raw = by_key.get(normalize_label(pos))
            neg_raw = by_key.get(normalize_label(neg)) if neg is not None else None
            if pos_raw is not None and (neg is None or neg_raw is not None):
                chosen.append(Source(name, pos_raw, neg_raw))
                break
    if not chosen:
        where = f"{source}: " if source else ""
        raise MontageError(f"{where}no canonical channel could be formed from the labels {labels}")
    return chosen


def parse_channel_map(obj: Mapping[str, object]) -> dict[str, list[Option]]:
    """Validate a JSON channel map into options.

    Each value is an ordered list of options; an option is a label string or a two-element list
    ``[a, b]`` for the derivation ``a - b``. A bare string stands for a one-option list::

        {"C3": ["C3-M2", ["C3", "M2"]], "E1": "LOC", "Chin": [["Chin1", "Chin2"]]}
    """
    out: dict[str, list[Option]] = {}
    for name, options in obj.items():
        if name not in CHANNEL_INDEX:
            raise KeyError(f"unknown canonical channel {name!r}; expected one of {list(CANONICAL)}")
        if isinstance(options, str):
            options = [options]
        if not isinstance(options, (list, tuple)):
            raise TypeError(f"options for {name} must be a list, got {options!r}")
        parsed: list[Option] = []
        for option in options:
            pos, neg = _as_pair(tuple(option) if isinstance(option, list) else option)
            parsed.append(pos if neg is None else (pos, neg))
        out[name] = parsed
    return out


def _referenced(site: str, ref: str, alt_ref: str) -> list[Option]:
    """Options for an EEG site: AASM derivation, then re-referencing, then the raw electrode."""
    return [
        f"{site}-{ref}", f"{site}-{alt_ref}", f"{site}{ref}", f"{site}{alt_ref}",
        (site, ref), (site, alt_ref), f"{site}-M1M2", f"{site}-A1A2", f"{site}-REF", site,
    ]


def _alias_table() -> dict[str, list[Option]]:
    """The shared alias table used for automatic montage detection (inference).

    Ordered by the referencing rule of DESIGN §3: AASM derivation, contralateral mastoid
    re-reference, ipsilateral/other reference, raw channel.
    """
    table: dict[str, list[Option]] = {
        "F3": _referenced("F3", "M2", "A2") + _referenced("F3", "M1", "A1")[:6],
        "F4": _referenced("F4", "M1", "A1") + _referenced("F4", "M2", "A2")[:6],
        "C3": _referenced("C3", "M2", "A2") + _referenced("C3", "M1", "A1")[:6],
        "C4": _referenced("C4", "M1", "A1") + _referenced("C4", "M2", "A2")[:6],
        "O1": _referenced("O1", "M2", "A2") + _referenced("O1", "M1", "A1")[:6],
        "O2": _referenced("O2", "M1", "A1") + _referenced("O2", "M2", "A2")[:6],
        "E1": [
            "E1-M2", "E1-A2", "LOC-M2", "LOC-A2", "E1-M1", "LOC-A1", "EOG1-A2", "EOG1-A1",
            ("E1", "M2"), ("E1", "A2"), ("LOC", "M2"), ("LOC", "A2"), ("LOC", "A1"), ("E1", "M1"),
            "E1-E2", "LOC-ROC", "EOG-L", "EOGL", "EOG(L)", "LEOG", "L-EOG", "EOG LEFT", "LEFT EOG",
            "E1", "LOC", "EOG1", "EOG", "EOG horizontal", "HEOG",
        ],
        "E2": [
            "E2-M1", "E2-A1", "ROC-M1", "ROC-A1", "E2-M2", "ROC-A2", "EOG2-A1", "EOG2-A2",
            ("E2", "M1"), ("E2", "A1"), ("ROC", "M1"), ("ROC", "A1"), ("ROC", "A2"), ("E2", "M2"),
            "EOG-R", "EOGR", "EOG(R)", "REOG", "R-EOG", "EOG RIGHT", "RIGHT EOG", "E2", "ROC", "EOG2",
        ],
        "Chin": [
            "Chin1-Chin2", "Chin-Chin", "CHIN1-CHIN3", "Chin2-Chin1", "LChin-RChin", "Chin1-Chin3",
            "EMG Chin", "Chin", "CHIN EMG", "EMG chin", "Chin EMG", "EMG submental", "Submental",
            ("Chin1", "Chin2"), ("Chin1", "Chin3"), ("LChin", "RChin"), ("EMG1", "EMG2"),
            "EMG", "EMG1", "Chin1", "Chin2", "Chin3",
        ],
    }
    # Sleep-EDF's bipolar leads (see preprocess/datasets/sleepedf.py for the reasoning)
    table["F3"].append("Fpz-Cz")
    table["O1"].append("Pz-Oz")
    return table


ALIASES: dict[str, list[Option]] = _alias_table()
"""Canonical name → ordered options of the shared alias table *before* any dataset's labels.

It is never modified: the table used for automatic detection is built explicitly from the
dataset specs by :func:`build_alias_table` (see :func:`preprocess.datasets.alias_table`)."""


_SITE_WORDS = {
    "E1": ("E1", "LOC", "EOGL", "LEOG", "LEFT", "EOG1"),
    "E2": ("E2", "ROC", "EOGR", "REOG", "RIGHT", "EOG2"),
    "Chin": ("CHIN", "EMG", "SUBMENTAL", "MENTALIS"),
}


def names_its_site(name: str, option: Option) -> bool:
    """Whether an option's label names the canonical site itself (``C3``, ``LOC``, ``Chin``…).

    Dataset-specific labels such as SHHS's ``EEG``/``EEG(sec)`` or MESA's ``EEG3`` are only
    meaningful inside their dataset; in the shared table they would mislead automatic detection
    on other files (MESA's ``EEG2`` is Cz-Oz, not C3). Such files are recognised by their whole
    layout instead (:func:`staging.montage.match_layout`).
    """
    positive = normalize_label(option if isinstance(option, str) else option[0])
    words = _SITE_WORDS.get(name, (name.upper(),))
    return any(positive.startswith(w) or positive.startswith("EOG" + w) for w in words) or positive in words


def build_alias_table(channel_maps: Iterable[ChannelMap]) -> dict[str, list[Option]]:
    """The shared alias table: :data:`ALIASES` followed by the site-naming options of each map.

    Parameters
    ----------
    channel_maps : iterable of mapping
        Dataset channel maps, in the order their options are appended (callers pass them sorted
        by dataset name, so the table does not depend on import order).

    Returns
    -------
    dict
        A new table; :data:`ALIASES` is left as it is.
    """
    table = {name: list(options) for name, options in ALIASES.items()}
    for channel_map in channel_maps:
        for name, options in channel_map.items():
            column = table.setdefault(name, [])
            for option in options:
                option = option if isinstance(option, str) else tuple(option)
                if option not in column and names_its_site(name, option):
                    column.append(option)
    return table
