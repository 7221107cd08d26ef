"""One ``--out`` folder shared by many staging processes, on any hosts.

Each recording is staged once between them: before staging ``NAME`` a process claims it
(``summary.d/NAME.claim``, :func:`preprocess.core.claims.try_claim`); a recording claimed by a live
process is left to it, and one whose row was written by another process since this one started
is not staged again. Each finished recording's ``summary.csv`` row is written on its own,
atomically, as ``summary.d/NAME.csv``; ``summary.csv`` is rebuilt from those rows, so concurrent
batches can neither lose nor duplicate a row.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Callable, Iterable

from preprocess.core.atomic import atomic_write_text
from preprocess.core.claims import Claim, Owner, remove_stale_temp_files, temp_name, try_claim

__all__ = ["DEFAULT_CLAIM_TIMEOUT_S", "ROWS_DIR", "SharedOut"]

ROWS_DIR = "summary.d"
"""Folder (inside ``--out``) of the per-recording rows and the claims."""

DEFAULT_CLAIM_TIMEOUT_S = 3600.0
"""A claim older than this is taken over even if its owner (on another host) may be alive: one
night stages in well under a minute on a CPU (docs/benchmarks.md), so an hour means a lost host."""


def _csv_text(rows: Iterable[dict], fields: tuple) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in fields})
    return buf.getvalue()


def _read_rows(path: Path) -> list[dict]:
    try:
        with open(path, newline="") as fh:
            return [r for r in csv.DictReader(fh) if r.get("name")]
    except (OSError, csv.Error):
        return []


class SharedOut:
    """Claims and per-recording rows of one output folder.

    Parameters
    ----------
    out : Path
        The output folder (exists).
    fields : tuple of str
        Columns of ``summary.csv``.
    claim_timeout_s : float
        Claims older than this are taken over (``--claim-timeout``).
    echo : callable
        Where the take-over warnings go.
    write_text : callable(path, text), optional
        Atomic text writer (default :func:`preprocess.core.atomic.atomic_write_text`).
    """

    def __init__(self, out: Path, fields: tuple, claim_timeout_s: float = DEFAULT_CLAIM_TIMEOUT_S,
                 echo: Callable[[str], None] = print, write_text: Callable | None = None) -> None:
        self.out, self.fields, self.timeout, self.echo = Path(out), tuple(fields), claim_timeout_s, echo
        self.write_text = write_text or atomic_write_text
        self.rows = self.out / ROWS_DIR
        self.rows.mkdir(exist_ok=True)
        self._adopt_old_summary()
        self.start_ns = self._storage_now_ns()

    def _storage_now_ns(self) -> int:
        """Now, by the clock of the storage (it stamps every row), not this host's."""
        probe = temp_name(self.out / "clock")
        probe.touch()
        try:
            return probe.stat().st_mtime_ns
        finally:
            probe.unlink(missing_ok=True)

    def _adopt_old_summary(self) -> None:
        """A folder written before rows were kept one per file: its summary.csv rows become files."""
        old = self.out / "summary.csv"
        if old.exists() and not any(self.rows.glob("*.csv")):
            for r in _read_rows(old):
                self.write_text(self._row_path(r["name"]), _csv_text([r], self.fields))

    def _row_path(self, name: str) -> Path:
        return self.rows / f"{name}.csv"

    def remove_stale_temp_files(self) -> int:
        """Temp files in ``out`` and the rows folder that no live process owns (see :mod:`preprocess.core.claims`)."""
        return len(remove_stale_temp_files(self.out) + remove_stale_temp_files(self.rows))

    def claim(self, name: str) -> Claim | Owner:
        """Our claim on recording ``name``, or the live owner of the claim that holds it."""
        try:
            return try_claim(self.rows / f"{name}.claim", self.timeout, self.echo)
        except FileNotFoundError:  # the rows folder was tidied away by a process that just finished
            self.rows.mkdir(exist_ok=True)
            return try_claim(self.rows / f"{name}.claim", self.timeout, self.echo)

    def tidy(self) -> None:
        """Remove the rows folder when nothing is in it (no row written, every claim released)."""
        try:
            self.rows.rmdir()
        except OSError:  # not empty (rows, another process's claim) or already gone
            pass

    def done_since_start(self, name: str) -> str | None:
        """The status another process recorded for ``name`` since this one started, else None."""
        path = self._row_path(name)
        try:
            fresh = path.stat().st_mtime_ns >= self.start_ns
        except FileNotFoundError:
            return None
        rows = _read_rows(path) if fresh else []
        return (rows[0].get("status") or "done") if rows else None

    def write_row(self, row: dict) -> None:
        """The ``summary.csv`` row of one recording, atomically."""
        self.write_text(self._row_path(row["name"]), _csv_text([row], self.fields))

    def write_summary(self) -> Path:
        """Rebuild ``summary.csv`` from every row, until no row changed while it was written.

        Two processes finishing together each rebuild it; whichever renames last checks after
        renaming that no row appeared or changed since it read them, and rebuilds otherwise, so
        the last ``summary.csv`` holds every row.
        """
        path = self.out / "summary.csv"
        while True:
            before = self._snapshot()
            rows = [r for p in sorted(before) for r in _read_rows(self.rows / p)[:1]]
            self.write_text(path, _csv_text(rows, self.fields))
            if self._snapshot() == before:
                return path

    def _snapshot(self) -> dict[str, int]:
        out = {}
        for p in self.rows.glob("*.csv"):
            try:
                out[p.name] = p.stat().st_mtime_ns
            except FileNotFoundError:
                continue
        return out
