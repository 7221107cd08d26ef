"""NSRR XML scoring files: Compumedics Profusion and NSRR-XML, parsed through defusedxml."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from .. import safe_xml
from .epochs import (
    EPOCH_S,
    N1,
    N2,
    N3,
    REM,
    UNKNOWN,
    AnnotationError,
    W,
    _fit,
    _float,
    _name,
    events_to_epochs,
    stage_code,
)

# Compumedics Profusion per-epoch codes.
_PROFUSION = {0: W, 1: N1, 2: N2, 3: N3, 4: N3, 5: REM}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(elem: ET.Element, name: str) -> str | None:
    for child in elem:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return None


def _parse_xml(path: str | os.PathLike) -> ET.Element:
    try:
        return safe_xml.fromstring(Path(path).read_bytes(), _name(path))
    except ValueError as exc:  # entity declarations / external references (defusedxml)
        raise AnnotationError(str(exc)) from None
    except safe_xml.ParseError as exc:
        raise AnnotationError(f"{_name(path)}: not well-formed XML ({exc})") from exc


def read_nsrr_xml(
    path: str | os.PathLike,
    n_epochs: int | None = None,
    epoch_s: float = EPOCH_S,
) -> np.ndarray:
    """Stages from an NSRR XML scoring file, either flavour.

    * **Compumedics Profusion** (SHHS, MESA, CFS, CHAT ``-profusion.xml``): root
      ``<CMPStudyConfig>``, ``<EpochLength>`` in seconds (30), then ``<SleepStages>`` with one
      ``<SleepStage>`` per epoch from the EDF start: 0 W, 1 N1, 2 N2, 3 N3, 4 R&K stage 4 (-> N3),
      5 REM; anything else (e.g. 6 movement, 9 unscored) -> -1.
    * **NSRR-XML** (``-nsrr.xml``): root ``<PSGAnnotation>``, ``<ScoredEvents>`` of
      ``<ScoredEvent>`` with ``<EventType>Stages|Stages</EventType>``, ``<EventConcept>`` such as
      ``Wake|0``, ``Stage 2 sleep|2``, ``REM sleep|5``, ``Unscored|9``, and ``<Start>`` /
      ``<Duration>`` in seconds from the EDF start; one event may span several epochs. Events of
      other types (arousals, respiratory, ``Recording Start Time``) are ignored.

    XML is parsed with :mod:`defusedxml.ElementTree`: files declaring entities or referring to
    external resources are refused (in any encoding), so a hostile file cannot read local files
    or expand entities.

    Returns
    -------
    numpy.ndarray of int8
        One code per 30-s epoch from the EDF start (``n_epochs`` crops/pads without checks).
    """
    root = _parse_xml(path)
    sleep_stages = [e for e in root.iter() if _local(e.tag) == "SleepStage"]
    if sleep_stages or _local(root.tag) == "CMPStudyConfig":
        epoch_len = None
        for e in root.iter():
            if _local(e.tag) == "EpochLength":
                epoch_len = _float(e.text, path, "EpochLength")
                break
        epoch_len = epoch_len or epoch_s
        codes = []
        for e in sleep_stages:
            text = (e.text or "").strip()
            try:
                codes.append(_PROFUSION.get(int(text), UNKNOWN))
            except ValueError:
                codes.append(UNKNOWN)
        if not codes:
            raise AnnotationError(f"{_name(path)}: Profusion XML without <SleepStage> entries")
        if epoch_len == epoch_s:
            out = np.asarray(codes, dtype=np.int8)
            return out if n_epochs is None else _fit(out, n_epochs)
        events = [(i * epoch_len, epoch_len, c) for i, c in enumerate(codes)]
        return events_to_epochs(events, n_epochs=n_epochs, epoch_s=epoch_s)

    events = []
    for ev in root.iter():
        if _local(ev.tag) != "ScoredEvent":
            continue
        etype = _child_text(ev, "EventType")
        concept = _child_text(ev, "EventConcept")
        if concept is None:
            concept = _child_text(ev, "Name")
        if etype and "stage" not in etype.lower():
            continue
        code = stage_code(concept)
        if code is None:
            continue
        start = _float(_child_text(ev, "Start"), path, "Start")
        duration = _float(_child_text(ev, "Duration") or "0", path, "Duration")
        events.append((start, duration, code))
    if not events:
        raise AnnotationError(f"{_name(path)}: no sleep stage events found in the XML")
    return events_to_epochs(events, n_epochs=n_epochs, epoch_s=epoch_s)

