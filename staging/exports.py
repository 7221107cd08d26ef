"""Exports of a staged night for other tools: BIDS derivative, NumPy hypnodensity, hypnodensity EDF.

=================================================  ================================================
``bids/sub-<NAME>/eeg/sub-<NAME>_task-sleep_``     BIDS derivative: one row per 30-s epoch,
``desc-lpsgm_events.tsv`` + ``.json`` sidecar;     columns in :data:`BIDS_COLUMNS` (described in
``bids/dataset_description.json``                  the sidecar); ``n/a`` where a value does not
                                                   exist (probabilities of an unknown epoch).
                                                   ``<NAME>`` is the recording name with every
                                                   character that is not a letter or digit removed.
``NAME.hypnodensity.npz``                          ``probs`` (n, 5) float32 (W N1 N2 N3 REM),
                                                   ``stages`` int8 (−1 unknown), ``onset_s``,
                                                   ``confidence``, ``entropy``, ``in_bed``, ``flags``,
                                                   ``stage_names``, ``epoch_seconds``, ``marks``.
``NAME.hypnodensity.edf``                          EDF+C: five signals ``p_W`` … ``p_REM`` (one
                                                   sample per 30-s data record, physical range
                                                   0–1) beside one ``Sleep stage …`` annotation
                                                   per epoch, starting at the recording's start
                                                   time, so EDFbrowser shows it under the PSG; a
                                                   0-s note at onset 0 names the signals.
=================================================  ================================================
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from preprocess.core.atomic import atomic_write, atomic_write_text
from preprocess.core.version import software_version

from .stats import EDF_TEXT, STAGE_NAMES

if TYPE_CHECKING:  # annotations only: the night module writes through this one
    from .night import StagedNight

BIDS_COLUMNS = ("onset", "duration", "stage", "p_W", "p_N1", "p_N2", "p_N3", "p_REM", "confidence",
                "entropy", "flag", "in_bed")
"""Columns of the BIDS ``*_events.tsv``."""


def edf_field(text: str, width: int) -> str:
    """Printable ASCII without spaces (EDF+ subfields are space-separated), cut to ``width``."""
    return "".join(c if c.isascii() and c.isprintable() and c != " " else "_" for c in text)[:width] or "X"

BIDS_SIDECAR = {
    "onset": {"Description": "Start of the 30-s epoch, from the beginning of the recording.", "Units": "s"},
    "duration": {"Description": "Epoch length.", "Units": "s"},
    "stage": {"LongName": "Sleep stage (AASM)", "Description": "Most probable stage predicted by LPSGM.",
              "Levels": {"W": "Wake", "N1": "NREM stage 1", "N2": "NREM stage 2", "N3": "NREM stage 3",
                         "REM": "REM sleep", "?": "Unknown: no usable EEG/EOG channel in the epoch"}},
    **{f"p_{s}": {"Description": f"Predicted probability of stage {s} (the five sum to 1).", "Units": "1"}
       for s in STAGE_NAMES},
    "confidence": {"Description": "Largest of the five probabilities.", "Units": "1"},
    "entropy": {"Description": "Shannon entropy of the probabilities (0 = certain, 2.32 = uniform).",
                "Units": "bit"},
    "flag": {"Description": "ok, or the signal problems of the epoch joined by '+': nan, flat, saturated, "
                            "gap, artefact, outside_tib, unknown (see docs/clinical.md)."},
    "in_bed": {"Description": "1 when the epoch lies between lights-off and lights-on, else 0.",
               "Levels": {"1": "in bed", "0": "outside time in bed"}},
}


def bids_label(name: str) -> str:
    """BIDS entity label of a recording name (letters and digits only).

    >>> bids_label("SC4001E0-PSG_night 1")
    'SC4001E0PSGnight1'
    """
    label = re.sub(r"[^A-Za-z0-9]", "", name)
    return label or "recording"


def bids_path(out_dir: Path, name: str) -> Path:
    """``out/bids/sub-<label>/eeg/sub-<label>_task-sleep_desc-lpsgm_events.tsv`` (mne-bids naming)."""
    from mne_bids import BIDSPath

    return Path(BIDSPath(subject=bids_label(name), task="sleep", suffix="events", extension=".tsv",
                         datatype="eeg", description="lpsgm", root=Path(out_dir) / "bids", check=False).fpath)


def _na(v, fmt: str) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, fmt)


def bids_events_tsv(night: StagedNight, epoch_seconds: float = 30.0) -> str:
    """Text of the ``*_events.tsv`` (tab-separated, header row, ``n/a`` for missing values)."""
    buf = io.StringIO()
    buf.write("\t".join(BIDS_COLUMNS) + "\n")
    names = night.stage_names()
    for i in range(night.n_epochs):
        p = night.probs[i]
        row = [f"{i * epoch_seconds:g}", f"{epoch_seconds:g}", names[i], *(_na(float(v), ".6f") for v in p),
               _na(float(night.confidence[i]), ".6f"), _na(float(night.entropy[i]), ".6f"), night.flags[i],
               str(int(night.in_bed[i]))]
        buf.write("\t".join(row) + "\n")
    return buf.getvalue()


def write_bids(path: Path, night: StagedNight, info: dict, epoch_seconds: float = 30.0, marks=()) -> None:
    """Events TSV, its JSON sidecar and the derivative's ``dataset_description.json``.

    ``marks`` (DEMO weights, warnings) go into the sidecar (``LPSGM.marks``)."""
    from mne_bids import make_dataset_description

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = path.parents[2]
    if not (root / "dataset_description.json").exists():
        make_dataset_description(path=root, name="LPSGM sleep staging", dataset_type="derivative",
                                 generated_by=[{"Name": "LPSGM inference.py",
                                                "Description": "automatic sleep staging"}], overwrite=False,
                                 verbose="error")
    sidecar = dict(BIDS_SIDECAR)
    sidecar["LPSGM"] = {"source_file": info.get("source_file"), "weights": info.get("weights"),
                        "demo_weights": info.get("demo_weights"), "software": info.get("software_version"),
                        "lights": info.get("lights"), "marks": list(marks)}
    atomic_write_text(path.with_suffix(".json"), json.dumps(sidecar, indent=2, default=str) + "\n")
    atomic_write_text(path, bids_events_tsv(night, epoch_seconds))


def write_npz(path: Path, night: StagedNight, epoch_seconds: float = 30.0, marks=()) -> None:
    """``NAME.hypnodensity.npz`` (see the module table); ``marks`` (DEMO weights, warnings) as ``marks``."""
    arrays = {"software_version": np.array(software_version()), "probs": night.probs.astype(np.float32), "stages": night.stages.astype(np.int8),
              "onset_s": np.arange(night.n_epochs) * float(epoch_seconds),
              "confidence": night.confidence.astype(np.float32), "entropy": night.entropy.astype(np.float32),
              "in_bed": night.in_bed.astype(bool), "flags": np.array(night.flags, dtype=str),
              "stage_names": np.array(STAGE_NAMES), "epoch_seconds": np.float64(epoch_seconds),
              "marks": np.array(list(marks), dtype=str)}
    if getattr(night, "reviewed", None) is not None:  # a reviewed night (staging.review): True = set by a scorer
        arrays["reviewed"] = np.asarray(night.reviewed, dtype=bool)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append .npz to a path
            np.savez_compressed(fh, **arrays)

    atomic_write(path, write)


HYPNODENSITY_NOTE = "LPSGM hypnodensity: p_W p_N1 p_N2 p_N3 p_REM, one value per {:g}-s epoch"
"""Text of the 0-s annotation at onset 0 describing the signals of ``NAME.hypnodensity.edf``."""


def write_hypnodensity_edf(path: Path, night: StagedNight, start: dt.datetime | None,
                           epoch_seconds: float = 30.0, marks=()) -> None:
    """``NAME.hypnodensity.edf``: probabilities as EDF signals + stage annotations (edfio);
    ``marks`` (DEMO weights, warnings) as 0-s annotations at onset 0, as in ``NAME.annotations.edf``.

    One data record per epoch, one sample per record and signal. edfio sizes the annotation
    signal from its longest record (``spr`` samples per ``epoch_seconds``-s record) and refuses
    the file when ``n_records * spr / (spr / 30)`` misses ``30 * n_records`` by a rounding
    error (it did for 8-h nights). ``spr / 30`` is exact when ``spr`` is a multiple of 15, so
    the note annotation of record 0 (the longest record: it also holds the marks) is padded
    with trailing spaces until edfio accepts the durations (at most 30 tries, one per byte).
    """
    import edfio

    probs = np.nan_to_num(night.probs, nan=0.0)  # EDF has no NaN: unknown epochs are 0 and annotated "?"
    signals = [edfio.EdfSignal(probs[:, k], 1.0 / epoch_seconds, label=f"p_{s}", physical_dimension="prob",
                               physical_range=(0.0, 1.0), digital_range=(-32768, 32767))
               for k, s in enumerate(STAGE_NAMES)]
    anns = [edfio.EdfAnnotation(0.0, 0.0, m[:200]) for m in marks]
    anns += [edfio.EdfAnnotation(i * epoch_seconds, epoch_seconds,
                                EDF_TEXT[s] if s >= 0 else "Sleep stage ?") for i, s in enumerate(night.stages)]
    kw = {"recording": edfio.Recording(startdate=start.date() if start is not None else None,
                                       equipment_code=edf_field(software_version(), 28))}  # as NAME.annotations.edf
    if start is not None:
        kw["starttime"] = start.time().replace(microsecond=0)
    note = HYPNODENSITY_NOTE.format(epoch_seconds)
    for pad in range(32):
        try:
            edf = edfio.Edf(signals, annotations=[edfio.EdfAnnotation(0.0, 0.0, note + " " * pad)] + anns,
                            data_record_duration=epoch_seconds, **kw)
            break
        except ValueError as exc:
            if not str(exc).startswith("Inconsistent signal durations") or pad == 31:
                raise
    atomic_write(path, lambda tmp: edf.write(tmp))


__all__ = ["BIDS_COLUMNS", "BIDS_SIDECAR", "HYPNODENSITY_NOTE", "bids_events_tsv", "bids_label", "bids_path", "write_bids",
           "write_hypnodensity_edf", "write_npz"]
