"""Jobs: one folder per upload, a FIFO queue, worker slots, cancellation and retention.

A job is created by an upload (state ``uploaded``), queued when the client starts it
(``queued`` → ``running`` → ``done`` | ``failed`` | ``cancelled``). Each worker slot is a
thread that feeds one staging process (:mod:`web.worker`) one job at a time, so jobs of
several users wait in the queue and all finish. A failed or cancelled job's folder is deleted
at once (its record keeps the reason); every job folder is deleted ``retention_s`` after its
last change.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("web")

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
MARKER = ".lpsgm-web-job"
"""File marking a folder as ours, so a startup sweep never deletes anything else."""
FINAL = ("done", "failed", "cancelled")


@dataclass
class Job:
    """State of one upload / staging job (what ``GET /api/jobs/{id}`` returns, plus internals)."""

    id: str
    folder: Path
    filename: str
    input_path: Path
    name: str
    size_bytes: int = 0
    recording: dict = field(default_factory=dict)
    state: str = "uploaded"
    reason: str = ""
    phase: str = ""
    done: int = 0
    total: int = 0
    montage: dict | None = None
    result: dict = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    queued_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def out(self) -> Path:
        return self.folder / "out"

    def touch(self) -> None:
        self.updated = time.time()

    def public(self, position: int | None = None) -> dict:
        fraction = self.done / self.total if self.total else 0.0
        return {"id": self.id, "file": self.filename, "name": self.name, "size_bytes": self.size_bytes,
                "state": self.state, "reason": self.reason, "phase": self.phase, "progress": round(fraction, 4),
                "queue_position": position, "montage": self.montage, "result": self.result or None,
                "started_at": self.started_at or None, "finished_at": self.finished_at or None,
                "seconds": round(self.finished_at - self.started_at, 2) if self.finished_at and self.started_at
                else None}


class JobStore:
    """The job index, the queue and the worker slots of one service instance.

    Parameters
    ----------
    root : Path
        Folder holding one sub-folder per job.
    weights, device, stride, formats
        Passed to each worker process (``formats`` None: every output format).
    model : dict, optional
        Further :class:`staging.Stager` keywords (``threads``, ``int8``, ``backend``, ``precision``,
        ``batch_size``), as ``inference.py`` takes them.
    workers : int
        Worker slots (each stages one job at a time).
    retention_s : float
        Seconds after its last change before a job and its folder are deleted.
    """

    def __init__(self, root: Path, weights: str | None = None, device: str = "cpu", stride: int | None = None,
                 workers: int = 1, retention_s: float = 3600.0, formats: tuple | None = None,
                 model: dict | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.weights, self.device, self.stride, self.formats = weights, device, stride, formats
        self.model = dict(model or {})
        self.retention_s = retention_s
        self.jobs: dict[str, Job] = {}
        self.lock = threading.RLock()
        self.queue: queue.Queue[Job | None] = queue.Queue()
        self.pending: list[str] = []  # queued job ids, in order
        self.slots = [WorkerSlot(self, i) for i in range(max(1, workers))]
        self._stop = threading.Event()
        self._janitor: threading.Thread | None = None
        self.sweep_leftovers()

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        for s in self.slots:
            s.start()
        self._janitor = threading.Thread(target=self._janitor_loop, name="web-janitor", daemon=True)
        self._janitor.start()

    def stop(self) -> None:
        self._stop.set()
        with self.lock:
            for job in self.jobs.values():
                if job.state in ("queued", "running"):
                    job.cancel.set()
        for _ in self.slots:
            self.queue.put(None)
        for s in self.slots:
            s.stop()
        with self.lock:
            for job in list(self.jobs.values()):
                self._delete_folder(job)

    def sweep_leftovers(self) -> None:
        """Delete job folders a previous run left in ``root`` (only folders carrying our marker)."""
        for p in self.root.iterdir():
            if p.is_dir() and JOB_ID.match(p.name) and (p / MARKER).exists():
                shutil.rmtree(p, ignore_errors=True)

    # ---------------------------------------------------------------- jobs
    def new_job(self, filename: str, safe_name: str) -> Job:
        """A job with a fresh server-chosen folder; the upload goes to ``input_path`` only."""
        job_id = uuid.uuid4().hex
        folder = self.root / job_id
        (folder / "input").mkdir(parents=True)
        (folder / MARKER).touch()
        job = Job(job_id, folder, filename, folder / "input" / safe_name, Path(safe_name).stem)
        with self.lock:
            self.jobs[job_id] = job
        return job

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id) if JOB_ID.match(job_id or "") else None

    def discard(self, job: Job) -> None:
        """Forget a job entirely (a rejected upload)."""
        with self.lock:
            self.jobs.pop(job.id, None)
        self._delete_folder(job)

    def submit(self, job: Job, montage: dict | None) -> None:
        with self.lock:
            job.montage, job.state, job.reason, job.result = montage, "queued", "", {}
            job.phase, job.done, job.total = "queued", 0, 0
            job.cancel.clear()
            job.queued_at, job.started_at, job.finished_at = time.time(), 0.0, 0.0
            job.touch()
            self.pending.append(job.id)
        shutil.rmtree(job.out, ignore_errors=True)  # a rerun never mixes old and new outputs
        self.queue.put(job)

    def position(self, job: Job) -> int | None:
        with self.lock:
            return self.pending.index(job.id) + 1 if job.id in self.pending else None

    def cancel(self, job: Job) -> None:
        """Cancel a queued or running job; its folder is deleted."""
        with self.lock:
            if job.state == "queued":
                if job.id in self.pending:
                    self.pending.remove(job.id)  # the slot skips it when it comes out of the queue
                self._finish(job, "cancelled", "cancelled by the user")
            elif job.state == "running":
                job.cancel.set()  # the slot terminates the worker and finishes the job
            elif job.state not in FINAL:
                self._finish(job, "cancelled", "cancelled by the user")

    def _finish(self, job: Job, state: str, reason: str = "", result: dict | None = None) -> None:
        # The folder goes before the final state is published: whoever sees "failed" or "cancelled"
        # (a polling page, a test) must never still find the upload on disk.
        if state in ("failed", "cancelled"):
            self._delete_folder(job)
        with self.lock:
            job.state, job.reason, job.result = state, reason, result or {}
            job.finished_at = time.time()
            job.phase = state
            job.touch()

    def _delete_folder(self, job: Job) -> None:
        shutil.rmtree(job.folder, ignore_errors=True)

    # ---------------------------------------------------------------- retention
    def cleanup(self, now: float | None = None) -> list[str]:
        """Delete jobs (and folders) unchanged for ``retention_s``; running/queued jobs are kept.

        Returns
        -------
        list of str
            Ids of the jobs removed.
        """
        now = time.time() if now is None else now
        removed = []
        with self.lock:
            for job in list(self.jobs.values()):
                if job.state in ("queued", "running"):
                    continue
                if now - job.updated >= self.retention_s:
                    self.jobs.pop(job.id)
                    removed.append(job.id)
        for job_id in removed:
            shutil.rmtree(self.root / job_id, ignore_errors=True)
        return removed

    def _janitor_loop(self) -> None:
        period = max(1.0, min(60.0, self.retention_s / 4))
        while not self._stop.wait(period):
            for job_id in self.cleanup():
                log.info("retention: deleted job %s", job_id)


class WorkerSlot:
    """One thread feeding one staging process; restarts the process after a cancel or a crash."""

    POLL_S = 0.1

    def __init__(self, store: JobStore, index: int):
        self.store, self.index = store, index
        self.proc = None
        self.conn = None
        self.ready = False
        self.thread = threading.Thread(target=self._loop, name=f"web-slot-{index}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.thread.join(timeout=5)
        self._kill()

    def _spawn(self) -> None:
        from . import worker

        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        s = self.store
        self.proc = ctx.Process(target=worker.main, args=(child, s.weights, s.device, s.stride, s.formats,
                                                                  s.model),
                                name=f"lpsgm-web-worker-{self.index}", daemon=True)
        self.proc.start()
        child.close()
        self.conn, self.ready = parent, False

    def _kill(self) -> None:
        if self.proc is not None:
            if self.proc.is_alive():
                self.proc.terminate()
                self.proc.join(timeout=5)
                if self.proc.is_alive():
                    self.proc.kill()
                    self.proc.join(timeout=5)
            self.proc = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _loop(self) -> None:
        s = self.store
        self._spawn()  # load the model while the first user is still uploading
        while True:
            job = s.queue.get()
            if job is None:
                return
            with s.lock:
                if job.id in s.pending:
                    s.pending.remove(job.id)
                if job.state != "queued":  # cancelled while waiting
                    continue
                job.state, job.phase, job.started_at = "running", "starting", time.time()
                job.touch()
            try:
                self._run(job)
            except Exception as exc:  # never lose the slot thread
                log.exception("job %s", job.id)
                self._kill()
                s._finish(job, "failed", f"internal error: {type(exc).__name__}: {exc}")
            if self.proc is None and not s._stop.is_set():
                self._spawn()  # after a cancel or a crash: warm up the next worker now

    def _run(self, job: Job) -> None:
        s = self.store
        if self.proc is None or not self.proc.is_alive():
            self._kill()
            self._spawn()
        if not self.ready:
            job.phase = "loading model"
            ok, _ = self._wait_for("ready", job)
            if not ok:
                return
            self.ready = True
        self.conn.send((str(job.input_path), job.name, str(job.out), job.montage))
        ok, result = self._wait_for("done", job)
        if not ok:
            return
        if result.get("status") == "ok":
            s._finish(job, "done", "", result)
        else:
            s._finish(job, "failed", result.get("reason") or "staging failed", result)

    def _wait_for(self, kind: str, job: Job) -> tuple[bool, dict | None]:
        """Relay messages until ``kind`` arrives; handles cancellation and worker death.

        Returns
        -------
        tuple
            ``(True, payload)``, or ``(False, None)`` when the job ended otherwise (cancelled,
            worker died); the job is then already finished.
        """
        s = self.store
        while True:
            if job.cancel.is_set():
                self._kill()
                s._finish(job, "cancelled", "cancelled by the user")
                return False, None
            msg = None
            if self.conn.poll(self.POLL_S):
                try:
                    msg = self.conn.recv()
                except (EOFError, OSError):  # the worker is gone; its exit code says why below
                    self.proc.join(timeout=5)
            if msg is None:
                if not self.proc.is_alive():
                    code = self.proc.exitcode
                    self._kill()
                    s._finish(job, "failed", f"the staging worker stopped (exit code {code}; out of memory?)")
                    return False, None
                continue
            if msg[0] == "progress":
                with s.lock:
                    job.phase, job.done, job.total = msg[1], msg[2], msg[3]
                    job.touch()
            elif msg[0] == "fatal":  # the worker could not load the model
                self._kill()
                s._finish(job, "failed", msg[1])
                return False, None
            elif msg[0] == kind:
                return True, msg[1] or {}
