"""Any folder of scored EDF/BDF recordings (a new centre's data, the simulator's ``generic`` layout).

Layout: ``<src>/**/<name>.edf`` (or ``.bdf``) with its scoring beside it, the first that exists of
``<name>-Hypnogram.edf`` / ``<name>_sleepscoring.edf`` (EDF+ ``Sleep stage …`` annotations),
``<name>-nsrr.xml`` / ``<name>.xml`` (NSRR or Profusion XML), ``<name>.annot`` (NSRR/Luna) or
``<name>.tsv`` (onset/duration/description). One recording per subject unless the names follow
``<subject>_<visit>`` — then pass the subject map through ``labels`` later; splits treat each
file as its own subject here.

Channels come from the shared alias table (the same automatic montage detection inference
uses), so the common label styles (``EEG C3-M2``, ``C3-A2``, unreferenced ``C3`` + ``M2``,
``LOC``/``ROC``, ``Chin1-Chin2``…) all work without configuration.
"""

from __future__ import annotations

from pathlib import Path

from preprocess.core.annotations import read_edf_start, read_edfplus_stages, start_offset
from preprocess.core.dataset import DatasetSpec, Record, first_existing
from preprocess.core.edf import is_annotation_only
from preprocess.core.nsrr import read_scoring
from preprocess.datasets import AUTO_MAP

_SCORING_SUFFIXES = ("-Hypnogram.edf", "_sleepscoring.edf", "-nsrr.xml", ".xml", ".annot", ".tsv")


def _is_scoring(path: Path) -> bool:
    return path.name.endswith(("-Hypnogram.edf", "_sleepscoring.edf"))


def find(src: Path) -> list[Record]:
    records = []
    for path in sorted(p for p in Path(src).rglob("*") if p.suffix.lower() in (".edf", ".bdf")):
        if _is_scoring(path) or path.name.startswith(".") or not path.is_file() or is_annotation_only(path):
            continue  # folders named x.edf and annotation-only EDF+ files are not recordings
        candidates = [path.with_name(path.stem + s) for s in _SCORING_SUFFIXES]
        records.append(Record(id=path.stem, subject=path.stem, signal=path,
                              annotation=first_existing(candidates)))
    return records


def read_stages(record: Record, signal_start):
    if record.annotation.suffix.lower() == ".edf":
        offset = start_offset(read_edf_start(record.annotation), signal_start)
        return read_edfplus_stages(record.annotation, offset_s=offset)
    return read_scoring(record, signal_start)


SPEC = DatasetSpec(
    name="generic",
    description="any folder of scored EDF/BDF files (EDF+ hypnogram, NSRR XML, .annot or .tsv beside each)",
    layout="<src>/**/<name>.edf + <name>-Hypnogram.edf | <name>_sleepscoring.edf | <name>.xml | <name>.annot | <name>.tsv",
    url="your own data (also: python -m simulate --dataset generic)",
    channel_map=AUTO_MAP,
    find=find,
    read_stages=read_stages,
)
