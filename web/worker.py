"""The staging worker: a child process that loads the model once and stages one job at a time.

Staging runs outside the server process so that a cancelled job is stopped at once (the
process is terminated), a crash or an out-of-memory kill fails one job instead of the service,
and the memory a night needs is returned to the system when the worker goes. Messages to the
server go through a pipe as tuples: ``("ready", None)``, ``("progress", phase, done, total)``,
``("done", result)``, or ``("fatal", reason)`` when the model cannot be loaded.
"""

from __future__ import annotations

import os
from pathlib import Path


def main(conn, weights: str | None, device: str, stride: int | None, formats: tuple | None = None,
         model: dict | None = None) -> None:
    """Worker loop: receive ``(path, name, out, montage)``, stage, reply; ``None`` stops it.

    ``model``: further :class:`staging.Stager` keywords (threads, int8, backend, precision, batch size)."""
    import logging

    from . import adapter

    logging.basicConfig(level=logging.WARNING)
    try:
        stager = adapter.load_stager(weights, device, stride, formats, **(model or {}))
    except Exception as exc:  # corrupt weights, no GPU: report once, in one line
        conn.send(("fatal", f"cannot load the model: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"))
        return
    # No server path in what the service hands out (stats.json, summary.csv): Stager names the weights by
    # file name, and each upload is staged from its own folder under its bare name (below).
    conn.send(("ready", None))
    while True:
        job = conn.recv()
        if job is None:
            return
        path, name, out, montage = Path(job[0]), job[1], Path(job[2]), job[3]

        def progress(done: int, total: int) -> None:
            conn.send(("progress", "staging", done, total))

        conn.send(("progress", "reading, filtering, encoding", 0, 1))
        os.chdir(path.parent)  # this process stages one job at a time
        result = adapter.stage_recording(stager, Path(path.name), name, out, montage, progress)
        if result["status"] == "ok":
            conn.send(("progress", "preparing the signal viewer", 0, 1))
            adapter.write_viewer_signals(path, montage, out)
        conn.send(("done", result))
