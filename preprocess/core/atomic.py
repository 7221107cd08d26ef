"""Atomic file writes: every output of the project (HDF5, manifests, checkpoints, staging outputs,
caches) is written to a temporary file in the destination folder and renamed onto its name, so a
reader never sees half a file and an interrupted run leaves the previous version intact.

The temporary file is named ``.NAME.HOST.PID.XXXXXXXX.tmp`` (:func:`preprocess.core.claims.temp_name`),
so a clean-up on shared storage can tell a live writer's file from an abandoned one
(:func:`preprocess.core.claims.remove_stale_temp_files`). It is created with mode ``0o666``
filtered by the process umask, like any file ``open()`` creates: the result has the usual permissions (``0o644`` under umask 022), not the
``0o600`` of :func:`tempfile.mkstemp`.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Callable, Sequence

from .claims import temp_name

__all__ = ["atomic_write", "atomic_write_csv", "atomic_write_text"]


def _create_temp(path: Path) -> Path:
    """Create an empty, unique ``.NAME.HOST.PID.XXXXXXXX.tmp`` next to ``path`` (mode 0o666 & ~umask)."""
    while True:
        tmp = temp_name(path)
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)  # the kernel applies the umask
        except FileExistsError:  # another writer drew the same name: draw again
            continue
        os.close(fd)
        return tmp


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it onto ``path``.

    Parameters
    ----------
    path : path-like
        Destination; its folder must exist.
    write : callable
        Writes the whole content to the path it is given (a ``str``); it may truncate, reopen
        or recreate the file (the umask-derived mode is restored afterwards).

    Returns
    -------
    pathlib.Path
        ``path``.

    Notes
    -----
    On any exception (including KeyboardInterrupt) the temporary file is removed and the
    exception re-raised; ``path`` keeps its previous content.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> atomic_write(folder / "a.txt", lambda tmp: Path(tmp).write_text("hello")).read_text()
    'hello'
    >>> sorted(p.name for p in folder.iterdir())  # no temporary file left
    ['a.txt']
    """
    path = Path(path)
    tmp = _create_temp(path)
    try:
        wanted = tmp.stat().st_mode & 0o777
        write(str(tmp))
        if tmp.stat().st_mode & 0o777 != wanted:  # some writers (safetensors) recreate it as 0o600
            os.chmod(tmp, wanted)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write` of a UTF-8 text."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_csv(path: str | os.PathLike, rows: Sequence[dict], fieldnames: Sequence[str] | None = None) -> Path:
    """:func:`atomic_write` of a CSV table: a header (``fieldnames``, default the keys of the first
    row) and one line per dict of ``rows``."""
    fields = list(fieldnames if fieldnames is not None else rows[0])

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)

    return atomic_write(path, write)
