"""Streaming an upload to disk: chunks straight into the job folder, header checked early.

The body is never held in memory: chunks are appended to the job's input file as they arrive
(at most :data:`FLUSH_BYTES` buffered). As soon as the EDF header is complete it is checked
with the project's own header parser and montage (:func:`web.adapter.inspect_recording`): the
file is made sparse at its announced size (``Content-Length``) for the check, so the check sees
the file as ``inference.py`` will: one whose header declares more records than it holds is
accepted with the reader's truncation warning (staged up to its last complete record, as
``inference.py`` stages it), and a file without any EEG/EOG channel is refused before its body
is written. The rest of a refused body is read and discarded, so HTTP clients
get the JSON answer instead of a reset connection.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import AsyncIterator

from .adapter import RecordingError, inspect_recording, labels_of

FLUSH_BYTES = 1 << 20
"""Bytes buffered before a write (1 MiB)."""
FIXED_HEADER = 256


class UploadError(Exception):
    """An upload refused before or while its body is received (HTTP ``status``)."""

    def __init__(self, status: int, message: str, extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra or {}


def safe_filename(name: str | None, head: bytes = b"") -> str:
    """A file name for the job folder: no folders, only ``[A-Za-z0-9._-]``, ``.edf``/``.bdf``.

    The client's name only gives the output names (``NAME.hypnogram.csv``); the extension
    follows the file's magic bytes when the client's is not ``.edf``/``.bdf``.
    """
    base = re.split(r"[\\/]", name or "")[-1]
    stem, ext = os.path.splitext(base)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:80] or "recording"
    ext = ext.lower()
    if ext not in (".edf", ".bdf"):
        ext = ".bdf" if head[:1] == b"\xff" else ".edf"
    return stem + ext


def header_length(head: bytes) -> int | None:
    """Bytes of the whole EDF header announced by the fixed part, or None when not parseable
    (the full parser then gives the reason once the body is complete)."""
    try:
        return FIXED_HEADER * (int(head[252:256].decode("latin-1").strip()) + 1)
    except ValueError:
        return None


async def receive(stream: AsyncIterator[bytes], path: Path, max_bytes: int, expected: int | None,
                  channels: dict | None = None) -> dict:
    """Write the request body to ``path`` and return the recording summary.

    Parameters
    ----------
    stream : async iterator of bytes
        The request body (``request.stream()``).
    path : Path
        Destination inside the job folder (created here).
    max_bytes : int
        Size cap; larger bodies get HTTP 413.
    expected : int or None
        ``Content-Length`` when the client sent one.
    channels : dict, optional
        Explicit montage to check instead of the automatic one.

    Raises
    ------
    UploadError
        413 too large, 422 not stageable (with ``inference.py``'s reason), 400 incomplete body.
    """
    if expected is not None and expected > max_bytes:
        raise UploadError(413, f"upload of {expected} bytes exceeds the limit of {max_bytes} bytes")
    size, buf, need, checked, refused = 0, bytearray(), None, False, None
    with open(path, "wb") as fh:
        async for chunk in stream:
            size += len(chunk)
            if size > max_bytes:
                refused = refused or UploadError(413, f"upload exceeds the limit of {max_bytes} bytes")
            if refused is not None:
                continue  # drain the body so that the client reads our answer
            if need is None and fh.tell() + len(buf) < FIXED_HEADER <= size:
                head = bytes((buf + chunk)[:FIXED_HEADER])
                need = header_length(head)
                checked = need is None  # unparseable: the full parser says why at the end
            buf += chunk
            if not checked and need is not None and size >= need:
                fh.write(buf)
                buf.clear()
                checked = True
                refused = _early_check(fh, path, expected, channels)
            elif len(buf) >= FLUSH_BYTES:
                fh.write(buf)
                buf.clear()
        fh.write(buf)
    if refused is not None:
        raise refused
    if expected is not None and size != expected:
        raise UploadError(400, f"incomplete upload: received {size} of {expected} bytes")
    try:
        return inspect_recording(path, channels)
    except RecordingError as exc:
        raise UploadError(422, str(exc), _labels(path)) from None


def _early_check(fh, path: Path, expected: int | None, channels: dict | None) -> UploadError | None:
    """Check the header while the body is still arriving; None when it looks stageable."""
    if expected is None:
        return None  # without the final size a truncation check would be a guess: check at the end
    fh.flush()
    written = fh.tell()
    try:
        os.truncate(path, expected)  # sparse: the parser sees the announced size
        inspect_recording(path, channels)
    except RecordingError as exc:
        return UploadError(422, str(exc), _labels(path))
    finally:
        os.truncate(path, written)
        fh.seek(written)
    return None


def _labels(path: Path) -> dict:
    """Labels of a refused file when its header is readable (the page offers a manual montage)."""
    labels = labels_of(path)
    return {"labels": labels} if labels else {}
