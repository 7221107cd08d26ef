"""Shared logic of the NSRR dataset modules (sleepdata.org releases).

Most NSRR cohorts (SHHS, MrOS, MESA, CFS, CCSHS, CHAT, ABC, HomePAP, ...) share one release
layout::

    <dataset>/polysomnography/edfs/[<visit>/]<id>.edf
    <dataset>/polysomnography/annotations-events-nsrr/[<visit>/]<id>-nsrr.xml
    <dataset>/polysomnography/annotations-events-profusion/[<visit>/]<id>-profusion.xml

(see e.g. the "Signal and annotation files" section of the MrOS, MESA and CCSHS polysomnography
introduction pages in github.com/nsrr/<dataset>-documentation). Later releases processed with
Luna (APPLES, PATS, NCHSDB, WSC) put the scoring next to the EDF instead (``<id>.annot``,
``<id>.tsv``, ``<id>.eannot``, ``<id>.stg.txt`` ...). :func:`find_records` covers both: each EDF
is paired with the first scoring file that exists among its sidecars and the NSRR / Profusion
XML files carrying its id, in the order the dataset asks for.

Ids look like ``<cohort>-<visit>-<subject>`` (``shhs1-200001``, ``mros-visit1-aa0001``,
``chat-baseline-300001``); the subject is the last hyphen field, shared across visits.

Lights-off/on: where lights times live in the scoring file (clock times need the EDF start),
the stage readers here return them with the stages as a :class:`preprocess.core.dataset.Scoring`
(seconds from the signal start; a missing half is NaN).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from . import safe_xml
from .annotations import (
    AnnotationError,
    events_to_epochs,
    lights_pair,
    read_csv_events,
    read_nsrr_annot,
    read_nsrr_xml,
)
from .channels import Option
from .clock import find_clock, hms_seconds, since_start
from .dataset import Record, Scoring
from .dataset_helpers import pad_to
from .edf import read_header
from .lights import first_last, lights_kind  # noqa: F401 - re-exported for the dataset modules

NSRR_XML = "nsrr"
PROFUSION_XML = "profusion"
_XML_SUFFIX = {NSRR_XML: "-nsrr.xml", PROFUSION_XML: "-profusion.xml"}

__all__ = [
    "NSRR_XML", "PROFUSION_XML", "referenced", "eeg_vs_contralateral_mastoid", "last_field", "visit_field", "find_records",
    "read_xml_stages", "read_annot_stages", "pad_to_signal", "clock_seconds",
    "lights_kind", "first_last", "edf_duration", "xml_lights", "annot_lights", "read_tsv_stages", "tsv_lights", "read_scoring",
]


# --------------------------------------------------------------------------------------------
# channel options
# --------------------------------------------------------------------------------------------

def referenced(site: str, refs: Sequence[str], raw: bool = False) -> list[Option]:
    """Options for an electrode recorded against a common reference (Fpz in most NSRR cohorts).

    AASM-style labels first (``C3-M2``; ``C3_M2`` and ``C3 M2`` match the same key), then the
    derivation ``(site, ref)`` for each reference in order, then (``raw=True``) the electrode
    alone as the last resort (DESIGN §3 referencing rule).
    """
    options: list[Option] = [f"{site}-{r}" for r in refs]
    options += [(site, r) for r in refs]
    if raw:
        options.append(site)
    return options


def eeg_vs_contralateral_mastoid(refs_left=("M2", "A2"), refs_right=("M1", "A1"), raw: bool = False,
                                 sites=("F3", "F4", "C3", "C4", "O1", "O2")) -> dict[str, list[Option]]:
    """The EEG channels of the AASM montage, each against its contralateral mastoid.

    Left sites (F3, C3, O1, E1) are referenced to ``refs_left``, right sites to ``refs_right``,
    in order; see :func:`referenced` for the option order and ``raw``.
    """
    return {site: referenced(site, refs_left if site.endswith(("3", "1")) else refs_right, raw=raw)
            for site in sites}


# --------------------------------------------------------------------------------------------
# ids, subjects, visits
# --------------------------------------------------------------------------------------------

def last_field(rid: str) -> str:
    """Subject of an NSRR id: its last hyphen field (``shhs1-200001`` → ``200001``)."""
    return rid.rsplit("-", 1)[-1]


def visit_field(rid: str, index: int = 1) -> str:
    """One hyphen field of the id (``chat-baseline-300001`` → ``baseline``)."""
    parts = rid.split("-")
    return parts[index] if len(parts) > index else ""


# --------------------------------------------------------------------------------------------
# discovery
# --------------------------------------------------------------------------------------------

def _edf_files(src: Path) -> list[Path]:
    files = {p for pattern in ("*.edf", "*.EDF") for p in src.rglob(pattern)}
    return sorted(p for p in files if not p.name.startswith(".") and p.is_file())


def _xml_index(src: Path, kinds: Iterable[str]) -> dict[str, dict[str, Path]]:
    index: dict[str, dict[str, Path]] = {}
    for kind in kinds:
        suffix = _XML_SUFFIX[kind]
        found: dict[str, Path] = {}
        for p in sorted(src.rglob(f"*{suffix}")):
            if not p.name.startswith("."):
                found.setdefault(p.name[: -len(suffix)], p)
        index[kind] = found
    return index


def _xml_expected(edf: Path, kind: str) -> Path:
    """Where the release puts the XML of ``edf`` (mirror of ``edfs/`` under annotations-events-*)."""
    parts = list(edf.parts)
    name = edf.stem + _XML_SUFFIX[kind]
    if "edfs" in parts:
        i = len(parts) - 1 - parts[::-1].index("edfs")
        parts[i] = f"annotations-events-{kind}"
        return Path(*parts[:-1]) / name
    return edf.with_name(name)


def find_records(
    src: Path,
    *,
    scoring: Sequence[str] = (NSRR_XML, PROFUSION_XML),
    id_of: Callable[[Path], str] = lambda p: p.stem,
    subject_of: Callable[[str], str] = last_field,
    labels_of: Callable[[str], dict] | None = None,
    accept: Callable[[Path], bool] | None = None,
) -> list[Record]:
    """Pair every EDF under ``src`` (recursive) with its scoring file.

    Parameters
    ----------
    scoring : sequence of str
        Preference order of the scoring file: ``"nsrr"`` (``<id>-nsrr.xml`` anywhere under
        ``src``), ``"profusion"`` (``<id>-profusion.xml``), or a suffix starting with ``.``
        for a sidecar file next to the EDF (``".annot"``, ``".tsv"``, ``".stg.txt"``). The first
        that exists wins; when none exists the first candidate is kept (and reported missing
        by the pipeline, naming the file).
    id_of, subject_of, labels_of
        Recording id from the EDF path, subject from the id, labels from the id.
    accept : callable(Path) -> bool, optional
        Filter on EDF paths (e.g. skip files of another kind in the same tree).
    """
    src = Path(src)
    xml_kinds = [k for k in scoring if k in _XML_SUFFIX]
    index = _xml_index(src, xml_kinds)
    records = []
    for edf in _edf_files(src):
        if accept is not None and not accept(edf):
            continue
        rid = id_of(edf)
        candidates: list[Path] = []
        for kind in scoring:
            if kind in _XML_SUFFIX:
                candidates.append(index[kind].get(edf.stem) or _xml_expected(edf, kind))
            else:
                candidates.append(edf.with_name(edf.stem + kind))
        annotation = next((c for c in candidates if c.exists()), candidates[0] if candidates else None)
        records.append(Record(id=rid, subject=subject_of(rid), signal=edf, annotation=annotation,
                              labels=labels_of(rid) if labels_of else {}))
    return records


# --------------------------------------------------------------------------------------------
# lights
# --------------------------------------------------------------------------------------------



def clock_seconds(text: str, start: dt.datetime | dt.time | None) -> float | None:
    """Seconds from ``start`` to the first clock time ``hh:mm:ss[.f]`` in ``text``.

    Times earlier than the start are taken as after midnight (recordings last < 24 h).
    None when ``text`` holds no clock time or ``start`` is unknown.
    """
    t = find_clock(text)
    return None if t is None or start is None else since_start(t, start)


def xml_lights(path: Path) -> tuple[float | None, float | None]:
    """Lights events of an NSRR / Profusion XML (``ScoredEvent`` whose concept/name says lights)."""
    try:  # same policy as the stage reader: no entity declarations
        root = safe_xml.fromstring(Path(path).read_bytes(), Path(path).name)
    except (ValueError, safe_xml.ParseError):
        return None, None
    found = []
    for ev in root.iter():
        if ev.tag.rsplit("}", 1)[-1] != "ScoredEvent":
            continue
        fields = {c.tag.rsplit("}", 1)[-1]: (c.text or "").strip() for c in ev}
        kind = lights_kind(fields.get("EventConcept") or fields.get("Name"))
        if kind:
            try:
                found.append((float(fields.get("Start", "")), kind))
            except ValueError:
                continue
    return first_last(found)


def annot_lights(path: Path, start: dt.datetime | dt.time | None) -> tuple[float | None, float | None]:
    """Lights rows of an NSRR / Luna ``.annot`` (class ``lights_off`` / ``lights_on``)."""
    found = []
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for line in f:
            if line.lstrip().startswith("#"):
                continue
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) < 4:
                fields = line.split()
            if not fields or not lights_kind(fields[0]):
                continue
            tok = fields[3] if len(fields) >= 6 else fields[2] if len(fields) >= 4 else ""
            t = clock_seconds(tok, start) if hms_seconds(tok) is not None else _float_or_none(tok)
            if t is not None:
                found.append((t, lights_kind(fields[0])))
    return first_last(found)


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# stage readers
# --------------------------------------------------------------------------------------------

def edf_duration(record: Record) -> float | None:
    """Duration of the recording's EDF in seconds (header only); None when unreadable (the
    signal reader then reports the file with its own reason)."""
    try:
        return read_header(record.signal).duration
    except Exception:  # noqa: BLE001
        return None


def pad_to_signal(stages: np.ndarray, record: Record) -> np.ndarray:
    """Pad ``stages`` with −1 up to the whole 30-s epochs of the EDF (time-stamped scorings
    that stop before the end of the recording keep the full timeline, DESIGN §5)."""
    duration = edf_duration(record)
    if duration is None:
        return stages
    return pad_to(stages, int(math.floor(duration / 30.0 + 1e-9)))


def read_xml_stages(record: Record, signal_start=None) -> Scoring:
    """Stages from an NSRR or Profusion XML (epochs from the EDF start); lights if present."""
    stages = read_nsrr_xml(record.annotation)
    return Scoring(stages, lights_pair(*xml_lights(record.annotation)))


def read_annot_stages(record: Record, signal_start=None) -> Scoring:
    """Stages from an NSRR / Luna ``.annot`` (clock or elapsed times); lights if present."""
    stages = read_nsrr_annot(record.annotation, start_time=signal_start)
    return Scoring(pad_to_signal(stages, record), lights_pair(*annot_lights(record.annotation, signal_start)))


def read_tsv_stages(record: Record, signal_start=None) -> Scoring:
    """Stages from an ``onset / duration / description`` TSV (seconds from the EDF start)."""
    name = Path(record.annotation).name
    with open(record.annotation, "rb") as f:
        if b"\x00" in f.read(4096):  # the release holds one TSV of NUL bytes (NSRR proc notes)
            raise AnnotationError(f"{name}: corrupt TSV (NUL bytes)")
    try:
        events = read_csv_events(record.annotation, "onset", "duration", "description", delimiter="\t")
    except csv.Error as exc:  # e.g. a file of NUL bytes
        raise AnnotationError(f"{name}: not a readable TSV ({exc})") from exc
    if not events:
        raise AnnotationError(f"{name}: no sleep stage rows")
    return Scoring(pad_to_signal(events_to_epochs(events), record), lights_pair(*tsv_lights(record.annotation)))


def tsv_lights(path: Path) -> tuple[float | None, float | None]:
    """Lights rows (``Lights Off`` / ``Lights On`` descriptions) of an onset/duration/description TSV."""
    found = []
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for line in f:
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) >= 3 and lights_kind(fields[2]):
                t = _float_or_none(fields[0])
                if t is not None:
                    found.append((t, lights_kind(fields[2])))
    return first_last(found)


def read_scoring(record: Record, signal_start=None) -> Scoring:
    """Dispatch on the scoring file type: NSRR/Profusion ``.xml``, Luna ``.annot``, NCHSDB ``.tsv``."""
    name = str(record.annotation).lower()
    if name.endswith(".xml"):
        return read_xml_stages(record, signal_start)
    if name.endswith(".tsv"):
        return read_tsv_stages(record, signal_start)
    return read_annot_stages(record, signal_start)
