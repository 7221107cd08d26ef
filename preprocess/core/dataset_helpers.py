"""Small helpers shared by several dataset modules (STAGES, MASS, BOAS, MNC).

Kept out of the individual modules so that each stays declarative:

* **tables** – :func:`read_table` reads CSV / TSV / XLSX subject tables (a minimal, safe OOXML
  reader: no ``openpyxl`` dependency), :func:`pick_column` finds a column by any of its usual
  names, :func:`id_key` normalises subject IDs written differently in file names and tables
  (``Sub01`` vs ``SUB001``, ``ssc_4708_1`` vs ``SSC 4708 1``);
* **event tables with clock times** – :func:`read_event_rows` (header detection, any column
  order) and :func:`clock_time` (``22:31:05``, ``10:31:05 PM``, ``5/22/2018 8:16:00 PM``, ISO);
* **alignment** – :class:`OffsetSource` drops the first seconds of every channel so that the
  signal's 30-s grid starts on the scoring grid (scorings whose first epoch does not start on a
  multiple of 30 s from the file start), :func:`grid_offset`, :func:`signal_epochs` (length of an
  EDF in epochs from its header) and :func:`pad_to` (trailing unscored epochs up to the signal end);
* lights annotations: use :func:`preprocess.core.lights.lights_kind` and
  :func:`~preprocess.core.lights.lights_pair` (the one lights parser).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from . import safe_xml
from .annotations import UNKNOWN, AnnotationError
from .clock import clock_time  # the one clock parser; re-exported for the dataset modules
from .edf import read_header

# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------

_NS_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_NS_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


def _xml(data: bytes, where: str) -> ET.Element:
    return safe_xml.fromstring(data, where)  # refuses entity declarations (ValueError)


def _col_index(ref: str) -> int:
    letters = re.match(r"[A-Z]+", ref.upper())
    n = 0
    for ch in letters.group(0) if letters else "A":
        n = n * 26 + (ord(ch) - 64)
    return n - 1


def read_xlsx(path: str | os.PathLike, sheet: int = 0) -> list[list[str]]:
    """Cell texts of one worksheet of an ``.xlsx`` file (Office Open XML), row by row.

    Shared strings, inline strings, numbers and booleans are read; formulas give their cached
    value. Numbers are returned as written (``"12.5"``, ``"3"``); integers stored as ``3.0`` are
    shortened to ``"3"``.
    """
    name = Path(path).name
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ValueError(f"{name}: not an .xlsx file") from None
    with zf:
        names = set(zf.namelist())
        shared: list[str] = []
        if "xl/sharedStrings.xml" in names:
            root = _xml(zf.read("xl/sharedStrings.xml"), name)
            for si in root.iter(f"{_NS_MAIN}si"):
                shared.append("".join(t.text or "" for t in si.iter(f"{_NS_MAIN}t")))
        sheets = sorted((n for n in names if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n)),
                        key=lambda n: int(re.findall(r"\d+", n)[-1]))
        if "xl/workbook.xml" in names and "xl/_rels/workbook.xml.rels" in names:
            wb = _xml(zf.read("xl/workbook.xml"), name)
            rels = _xml(zf.read("xl/_rels/workbook.xml.rels"), name)
            targets = {r.get("Id"): r.get("Target", "") for r in rels}
            ordered = []
            for s in wb.iter(f"{_NS_MAIN}sheet"):
                target = targets.get(s.get(f"{_NS_REL}id"), "")
                target = target.lstrip("/")
                target = target if target.startswith("xl/") else f"xl/{target}"
                if target in names:
                    ordered.append(target)
            sheets = ordered or sheets
        if sheet >= len(sheets):
            raise ValueError(f"{name}: no worksheet {sheet}")
        root = _xml(zf.read(sheets[sheet]), name)
    rows: list[list[str]] = []
    for row in root.iter(f"{_NS_MAIN}row"):
        cells: dict[int, str] = {}
        for k, c in enumerate(row.iter(f"{_NS_MAIN}c")):
            idx = _col_index(c.get("r")) if c.get("r") else k
            kind = c.get("t", "n")
            v = c.find(f"{_NS_MAIN}v")
            if kind == "inlineStr":
                text = "".join(t.text or "" for t in c.iter(f"{_NS_MAIN}t"))
            elif v is None or v.text is None:
                text = ""
            elif kind == "s":
                text = shared[int(v.text)]
            elif kind == "b":
                text = "TRUE" if v.text.strip() == "1" else "FALSE"
            else:
                text = v.text
                if kind == "n" and re.fullmatch(r"-?\d+\.0+", text):
                    text = text.split(".")[0]
            cells[idx] = text
        if cells:
            line = [""] * (max(cells) + 1)
            for idx, text in cells.items():
                line[idx] = text
            rows.append(line)
    return rows


def read_table(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a CSV, TSV or XLSX table as dicts keyed by the header row (first non-empty row).

    The delimiter of text files is sniffed among ``,``, ``;`` and tab. Values are stripped.
    """
    path = Path(path)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        raw = read_xlsx(path)
    else:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
        first = next((ln for ln in text.splitlines() if ln.strip()), "")
        delim = max(["\t", ",", ";"], key=first.count)
        raw = list(csv.reader(text.splitlines(), delimiter=delim))
    raw = [r for r in raw if any(c.strip() for c in r)]
    if not raw:
        return []
    header = [h.strip() for h in raw[0]]
    return [{h: (r[i].strip() if i < len(r) else "") for i, h in enumerate(header) if h} for r in raw[1:]]


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


def pick_column(columns: Iterable[str], *candidates: str) -> str | None:
    """The first column whose name matches a candidate (case, spaces and punctuation ignored)."""
    by_key = {}
    for c in columns:
        by_key.setdefault(_norm(c), c)
    for cand in candidates:
        if _norm(cand) in by_key:
            return by_key[_norm(cand)]
    return None


def id_key(text: str) -> str:
    """Normalised subject ID: upper case, separators removed, zero-padding of numbers ignored.

    ``"Sub01"``, ``"SUB001"`` → ``"SUB|1"``; ``"ssc_4708_1"``, ``"SSC 4708 1"`` → ``"SSC|4708|1"``.
    """
    parts = re.findall(r"[A-Za-z]+|\d+", str(text))
    return "|".join(str(int(p)) if p.isdigit() else p.upper() for p in parts)


def find_near(start: str | os.PathLike, names: Sequence[str], levels: int = 2) -> Path | None:
    """The first file matching one of ``names`` (glob patterns) in ``start`` or up to
    ``levels`` parent folders."""
    folder = Path(start).resolve()
    for _ in range(levels + 1):
        for pattern in names:
            hits = sorted(p for p in folder.glob(pattern) if p.is_file() and not p.name.startswith((".", "~$")))
            if hits:
                return hits[0]
        if folder.parent == folder:
            break
        folder = folder.parent
    return None


# --------------------------------------------------------------------------------------------
# event tables with clock times
# --------------------------------------------------------------------------------------------



def read_event_rows(path: str | os.PathLike, time_names: Sequence[str], duration_names: Sequence[str],
                    label_names: Sequence[str]) -> list[tuple[int, str, str, str]]:
    """Rows ``(line, time, duration, label)`` of an event table, whatever its column order.

    The header row is recognised by its column names (``time_names`` ...; case, spaces and
    punctuation ignored). Without a header the columns are taken as ``time, duration, label``.
    The delimiter is sniffed (``,``, ``;`` or tab). Empty rows are skipped.
    """
    name = Path(path).name
    text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    lines = [(k, ln) for k, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    if not lines:
        raise AnnotationError(f"{name}: empty event table")
    delim = max([",", "\t", ";"], key=lines[0][1].count)
    rows = [(k, r) for k, r in zip((k for k, _ in lines), csv.reader((ln for _, ln in lines), delimiter=delim))]
    header = [c.strip() for c in rows[0][1]]
    cols = [pick_column(header, *names) for names in (time_names, duration_names, label_names)]
    if cols[0] is not None and cols[2] is not None:
        idx = [header.index(c) if c is not None else None for c in cols]
        rows = rows[1:]
    else:
        try:
            clock_time(header[0])
        except (ValueError, IndexError):
            raise AnnotationError(f"{name}: no time/event columns in header {header}") from None
        idx = [0, 1, 2]
    out = []
    for k, r in rows:
        cells = [c.strip() for c in r]
        try:
            out.append((k, cells[idx[0]], cells[idx[1]] if idx[1] is not None else "", cells[idx[2]]))
        except IndexError:
            raise AnnotationError(f"{name}: line {k}: too few columns ({len(cells)})") from None
    return out


# --------------------------------------------------------------------------------------------
# alignment
# --------------------------------------------------------------------------------------------

def grid_offset(first_onset_s: float, epoch_s: float = 30.0, tol_s: float = 1e-3) -> float:
    """Seconds to drop from the signal start so that its epoch grid meets the scoring grid.

    The scoring grid is fixed by the onset of the first scored epoch (relative to the signal
    start); the result is that onset modulo ``epoch_s`` (0 when already on the grid).
    """
    g = float(first_onset_s) % epoch_s
    return 0.0 if g < tol_s or epoch_s - g < tol_s else g


class OffsetSource:
    """A signal source whose first ``offset_s`` seconds are dropped from every channel.

    Each channel loses ``round(offset_s * sfreq)`` samples at its own rate, and ``start_time``
    moves forward by ``offset_s``, so the stages that a dataset counts from the new start fall
    exactly on the scoring epochs.
    """

    def __init__(self, source, offset_s: float):
        self.source = source
        self.offset_s = float(offset_s)
        self.labels = list(source.labels)
        start = source.start_time
        self.start_time = start + dt.timedelta(seconds=self.offset_s) if start is not None else None

    def read(self, label: str) -> tuple[np.ndarray, float]:
        x, sfreq = self.source.read(label)
        return x[int(round(self.offset_s * sfreq)):], sfreq


def signal_epochs(path: str | os.PathLike, epoch_s: float = 30.0, skip_s: float = 0.0) -> int:
    """Whole epochs in an EDF/BDF recording (from its header), after dropping ``skip_s`` seconds."""
    h = read_header(path)
    return max(int(math.floor((h.duration - skip_s) / epoch_s + 1e-9)), 0)


def pad_to(stages: np.ndarray, n_epochs: int) -> np.ndarray:
    """Pad ``stages`` with -1 up to ``n_epochs`` (never crops: longer scorings stay longer, so the
    pipeline's length check still catches a scoring that runs past the signal).

    For datasets whose scoring legitimately ends before the recording does (scoring stops at
    lights-on, the recorder keeps running): the trailing unscored epochs are kept as -1.
    """
    stages = np.asarray(stages, dtype=np.int8)
    if len(stages) >= n_epochs:
        return stages
    return np.concatenate([stages, np.full(n_epochs - len(stages), UNKNOWN, dtype=np.int8)])
