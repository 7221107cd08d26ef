"""Content digests of files: the identity of a night under review, of a downloaded checkpoint, of the
weights an ONNX graph was exported from."""

from __future__ import annotations

import hashlib
import os
from typing import Iterable


def files_sha256(paths: Iterable[str | os.PathLike]) -> str:
    """Hex SHA-256 of the bytes of ``paths`` in order, read in 1-MiB chunks (one file or several).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"
    >>> _ = p.write_bytes(b"abc")
    >>> files_sha256([p]) == hashlib.sha256(b"abc").hexdigest()
    True
    """
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()
