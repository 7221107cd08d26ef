"""Montage for inference: automatic detection, a dataset's own layout, or an explicit map.

Automatic detection uses the shared alias table (:func:`preprocess.datasets.alias_table`, built
explicitly from every dataset module's channel map). Within each canonical channel the options
are ordered by the referencing rule of the design (AASM derivation, contralateral mastoid
re-reference, raw electrode), and the first one present in the file wins.

Files labelled the way a public dataset labels them (SHHS ``EEG``/``EEG(sec)``, MESA ``EEG1..3``)
carry labels the shared table cannot interpret; when a dataset's own map explains more EEG
channels of a file than the shared table does, that map is used and the montage says so
("labels match the SHHS layout"). ``--dataset NAME`` forces a dataset's map.

An explicit map is JSON in the format of :func:`preprocess.core.channels.parse_channel_map`,
given as a file path or inline::

    {"C3": [["C3", "M2"]], "C4": "C4-M1", "E1": ["LOC-M2", "E1"], "Chin": [["Chin1", "Chin2"]]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from preprocess.core.channels import (
    CANONICAL,
    CHANNEL_KIND,
    MontageError,
    normalize_label,
    parse_channel_map,
    resolve_montage,
)


class ChannelMapError(ValueError):
    """An explicit channel map that cannot be read."""


AUTO_ORIGIN = "auto (shared alias table, or a dataset layout the labels match)"


def auto_channel_map() -> dict:
    """The shared alias table built from every dataset module's channel map."""
    from preprocess.datasets import alias_table

    return alias_table()


PUBLISHED_CHANNELS = Path(__file__).with_name("published_channels.json")
"""The channel map of the published ``inference.py`` (F3…E2 against the contralateral mastoid, else
the raw electrode; the chin commented out): ``--channels published`` reproduces a published run."""


def channel_map_from_arg(arg: str | None, dataset: str | None = None) -> tuple[dict, str]:
    """Channel map from ``--channels`` / ``--dataset``.

    Parameters
    ----------
    arg : str or None
        ``auto``/None, ``published``, a JSON file path or an inline JSON string.
    dataset : str, optional
        A dataset module name: its channel map is used (``--dataset``; not with a JSON map).

    Returns
    -------
    tuple
        ``(channel map, description)``; the description names the map's origin.
    """
    auto = arg is None or arg.strip().lower() == "auto"
    if dataset:
        if not auto:
            raise ChannelMapError("--dataset and an explicit --channels map exclude each other")
        from preprocess.datasets import get_dataset

        try:
            spec = get_dataset(dataset)
        except KeyError as exc:
            raise ChannelMapError(f"--dataset: {exc.args[0]}") from None
        return dict(spec.channel_map), f"dataset {spec.name} (forced by --dataset)"
    if auto:
        return auto_channel_map(), AUTO_ORIGIN
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
        cmap = parse_channel_map(obj)
    except (KeyError, TypeError, ValueError) as exc:
        msg = exc.args[0] if exc.args else str(exc)
        raise ChannelMapError(f"--channels ({origin}): {msg}") from None
    if not any(cmap.values()):
        raise ChannelMapError(f"--channels ({origin}): the channel map is empty; give at least one "
                              f"canonical channel among {' '.join(CANONICAL)}")
    return cmap, origin


@dataclass(frozen=True)
class LayoutMatch:
    """A dataset whose channel map explains a file's labels better than the shared table.

    Attributes
    ----------
    name : str
        Dataset module name (``shhs``).
    channel_map : mapping
    also : tuple of str
        Other datasets that explain the labels equally well (reported, not used).
    """

    name: str
    channel_map: dict
    also: tuple = ()

    def describe(self) -> str:
        tail = f" (also matches: {', '.join(self.also)})" if self.also else ""
        return f"labels match the {self.name.upper()} layout: its channel map is used{tail}"


def _eeg_count(sources) -> int:
    return sum(CHANNEL_KIND[s.canonical] == "eeg" for s in sources)


def match_layout(labels) -> LayoutMatch | None:
    """The dataset layout a file's labels match, or None when the shared table does as well.

    A dataset matches when its own map forms more EEG channels from ``labels`` than the shared
    alias table does (SHHS's ``EEG(sec)`` is C3-A2 only inside SHHS). Among matches the one
    forming the most EEG channels wins, then the one whose map is most completely present in
    the file (a MESA file is not taken for SHHS because SHHS's ``EEG`` is missing), then the
    one forming the most channels; remaining ties are reported in :attr:`LayoutMatch.also`.
    """
    from preprocess.datasets import layouts

    labels = list(labels)
    try:
        base = _eeg_count(resolve_montage(labels, auto_channel_map()))
    except MontageError:
        base = 0
    scored = []
    for name, spec in layouts().items():
        try:
            found = resolve_montage(labels, spec.channel_map)
        except (MontageError, KeyError, TypeError):
            continue
        n_eeg = _eeg_count(found)
        if n_eeg > base:
            wanted = [c for c, options in spec.channel_map.items() if options]
            scored.append(((n_eeg, len(found) / max(len(wanted), 1), len(found)), name, spec))
    if not scored:
        return None
    scored.sort(key=lambda t: t[0], reverse=True)
    best = scored[0][0]
    ties = tuple(name for score, name, _ in scored[1:] if score == best)
    return LayoutMatch(scored[0][1], dict(scored[0][2].channel_map), ties)


def has_eeg_or_eog(channels) -> bool:
    """Whether at least one of the canonical ``channels`` is an EEG or EOG channel."""
    return any(CHANNEL_KIND[c] in ("eeg", "eog") for c in channels)


def has_eeg(channels) -> bool:
    """Whether at least one of the canonical ``channels`` is an EEG channel."""
    return any(CHANNEL_KIND[c] == "eeg" for c in channels)


_LEFT_REFS, _RIGHT_REFS = ("M1", "A1"), ("M2", "A2")
_STAND_INS = {("F3", "FPZCZ"): "bipolar Fpz-Cz standing in for F3",
              ("O1", "PZOZ"): "bipolar Pz-Oz standing in for O1"}


def substitution(source) -> str | None:
    """What a montage choice substitutes for the AASM derivation, or None when it is one.

    Reported: bipolar leads standing in for a site (Sleep-EDF's Fpz-Cz for F3), unreferenced
    electrodes, ipsilateral EEG references (C3-M1 instead of C3-M2), linked/recording references.
    EEG and EOG only (the chin EMG is bipolar by nature).
    """
    name = source.canonical
    if CHANNEL_KIND[name] == "emg":
        return None
    pos = normalize_label(source.positive)
    stand_in = _STAND_INS.get((name, pos))
    if stand_in:
        return stand_in
    site = {"E1": ("E1", "LOC", "EOG1", "EOGL", "LEOG"), "E2": ("E2", "ROC", "EOG2", "EOGR", "REOG")}.get(
        name, (name.upper(),))
    prefix = next((w for w in site if pos.startswith(w)), None)
    if prefix is None:
        return None  # a dataset's own label (SHHS EEG(sec)): its layout line says what it is
    ref = normalize_label(source.negative) if source.negative is not None else pos[len(prefix):]
    if not ref:
        return "reference not stated in the label"
    left = name in ("F3", "C3", "O1")
    # EEG only: the AASM EOG derivations E1-M2 and E2-M2 share one mastoid on purpose
    if CHANNEL_KIND[name] == "eeg" and ref in (_LEFT_REFS if left else _RIGHT_REFS):
        return "ipsilateral reference"
    if ref in ("M1M2", "A1A2"):
        return "linked-mastoid reference"
    if ref == "REF":
        return "recording reference"
    return None


def applied_band(kind: str, sfreq: float, params) -> dict:
    """Filter band actually applied to a channel of ``kind`` sampled at ``sfreq``.

    Uses :func:`preprocess.core.signal.usable_band` (the signal chain's own rule). ``high`` is the
    low-pass edge, or where the band really ends when the sampling rate drops it (the Nyquist
    rate of the native or output rate, whichever is lower); ``limited`` says so.
    """
    from preprocess.core.signal import usable_band

    if kind == "emg":
        requested = (params.emg_highpass, None)
    else:
        requested = tuple(params.eog_band if kind == "eog" else params.eeg_band)
    low, high = usable_band(sfreq, *requested)
    limited = requested[1] is not None and high is None
    end = min(sfreq, params.sfreq) / 2.0
    return {"low": low, "high": high if high is not None else end, "requested": list(requested),
            "limited": limited}


BAND_WARN_SHARE = 0.9
"""A sampling rate that ends the band below this share of the low-pass the weights were trained
with (35 Hz EEG/EOG) is a warning in every output, not only a console note: losing the top 10 %
is within the low-pass filter's own roll-off (a 64-Hz EOG keeps 0.3-32 Hz); a 50-Hz EEG keeping
0.3-25 Hz loses the beta/muscle activity the model uses to tell wake and REM."""


def band_limits_staging(band: dict) -> bool:
    """Whether the rate cut the band below :data:`BAND_WARN_SHARE` of its requested low-pass."""
    high = band["requested"][1]
    return bool(band["limited"] and high is not None and band["high"] < BAND_WARN_SHARE * high)


def band_note(band: dict, sfreq: float) -> str | None:
    """One-line note when the sampling rate could not carry the requested band."""
    if not band["limited"]:
        return None
    low, high = band["requested"]
    return (f"band {band['low']:g}-{band['high']:g} Hz: {sfreq:g} Hz sampling cannot carry the "
            f"{high:g} Hz low-pass")


def describe(montaged, sfreqs: dict | None = None, params=None, layout: LayoutMatch | None = None) -> list[str]:
    """Lines describing which raw label or derivation feeds each canonical channel.

    Parameters
    ----------
    montaged : preprocess.core.pipeline.Montaged
    sfreqs : dict, optional
        Canonical name → native sampling rate, to report bands the rate cannot carry.
    params : SignalParams, optional
    layout : LayoutMatch, optional
        The dataset layout used, printed first.

    Returns
    -------
    list of str
        The layout line, one line per kept channel (``"C3   <- EEG C3-A2"``, with what was
        substituted in brackets), then dropped and missing channels.
    """
    lines = [layout.describe()] if layout is not None else []
    for s in montaged.sources:
        notes = [n for n in (substitution(s),) if n]
        if sfreqs and params is not None and s.canonical in sfreqs:
            note = band_note(applied_band(CHANNEL_KIND[s.canonical], sfreqs[s.canonical], params),
                             sfreqs[s.canonical])
            if note:
                notes.append(note)
        lines.append(f"{s.canonical:<4} <- {s.describe()}" + (f"   [{'; '.join(notes)}]" if notes else ""))
    for name, reason in montaged.dropped.items():
        lines.append(f"{name:<4} dropped: {reason}")
    missing = [c for c in CANONICAL if c not in montaged.channels and c not in montaged.dropped]
    if missing:
        lines.append("not found: " + ", ".join(missing))
    return lines


def montage_string(montaged) -> str:
    """Compact one-line form for ``summary.csv``: ``C3=EEG C3-A2; Chin=EMG1 - EMG2``."""
    return "; ".join(f"{s.canonical}={s.describe()}" for s in montaged.sources)


_AASM_REF = {"F3": ("M2",), "C3": ("M2",), "O1": ("M2",), "F4": ("M1",), "C4": ("M1",), "O2": ("M1",),
             "E1": ("M2",), "E2": ("M2", "M1"), "Chin": ()}


def derivations_text(sources) -> str:
    """``F3←Fpz-Cz O1←Pz-Oz E1←horizontal C3``: each canonical channel, with the derivation feeding
    it when that is not the AASM one (``C3`` alone for ``EEG C3-M2``; the chin EMG by its name).
    What the PNG title shows."""
    parts = []
    for s in sources:
        text = s.describe().replace(" - ", "-")
        norm = normalize_label(text)
        name = s.canonical.upper()
        plain = norm == name or norm in {name + ref for ref in _AASM_REF.get(s.canonical, ())} or \
            (s.canonical == "Chin" and (norm.startswith("CHIN") or norm.startswith("EMG")))
        parts.append(s.canonical if plain else f"{s.canonical}\u2190{_short_label(text)}")
    return " ".join(parts)


def _short_label(text: str) -> str:
    for prefix in ("EEG ", "EOG ", "EMG "):
        text = text.replace(prefix, "")
    return text


def montage_warnings(montaged, sfreqs: dict, params, quality=None) -> list[str]:
    """What the montage substituted or gave up, as warnings every output carries.

    Substitutions for the AASM derivation (:func:`substitution`), bands the
    sampling rate limits (:func:`band_note`), channels the signal chain or the quality gate dropped,
    and the gate's notes on kept channels (coarse quantisation).
    """
    out = []
    for s in montaged.sources:
        note = substitution(s)
        if note:
            out.append(f"{s.canonical} <- {s.describe()}: {note}")
        band = applied_band(CHANNEL_KIND[s.canonical], sfreqs[s.canonical], params) if s.canonical in sfreqs else None
        if band is not None and band_limits_staging(band):
            out.append(f"{s.canonical} <- {s.describe()}: {band_note(band, sfreqs[s.canonical])} the weights were "
                       "trained on")
    gate = set(quality.canonical.values()) if quality is not None else set()
    for canonical, why in montaged.dropped.items():
        if canonical not in gate:  # dropped by the signal chain itself, e.g. a rate its filters cannot use
            derivation, _, reason = why.partition(": ")
            out.append(f"{canonical} {derivation} dropped: {reason}")
    if quality is not None:
        out += [f"{quality.canonical[lab]} {lab} dropped: {why}" for lab, why in quality.dropped.items()]
        out += list(quality.warnings)
    return out
