"""The FastAPI application: JSON API under ``/api``, the page under ``/``.

FastAPI (on Starlette, served by uvicorn) is the kept library: request bodies can be read as a
stream (uploads go to disk chunk by chunk), and it writes the OpenAPI description
(``/openapi.json``) from the route signatures. Its Swagger page is disabled because it loads
its scripts from a CDN; the page of this service loads nothing from outside.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import shutil
import tempfile
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.middleware.trustedhost import TrustedHostMiddleware

from . import adapter
from . import review as reviews
from .jobs import FINAL, JobStore
from .uploads import UploadError, receive, safe_filename

STATIC = Path(__file__).resolve().parent / "static"
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]", "::1"]
TOKEN_COOKIE = "lpsgm_token"
GiB = 1 << 30


@dataclass
class Settings:
    """Service configuration (the command-line options of ``python -m web``).

    Attributes
    ----------
    weights : str or None
        As ``inference.py --weights`` (default search order when None).
    device : str
        ``auto``/``cpu``/``cuda``, as ``inference.py --device`` (``auto``: CUDA when visible).
    workers : int
        Staging processes (jobs staged at the same time).
    data_dir : str or None
        Where job folders live; a fresh temporary folder when None.
    max_upload_bytes : int
        Size cap of one upload (default 4 GiB).
    retention_s : float
        A job and its files are deleted this long after their last change (default 1 h).
    token : str or None
        Shared token required by every ``/api`` call when set.
    allowed_hosts : list of str or None
        ``Host`` headers accepted (DNS-rebinding guard); None accepts any.
    stride : int or None
        Window stride (``inference.py --stride``); None: its default.
    formats : tuple of str or None
        Output formats (``inference.py --formats``); None: all of them.
    model : dict
        Further model options of ``inference.py`` (``threads``, ``int8``, ``backend``, ``precision``,
        ``batch_size``), passed to :class:`staging.Stager` in each worker.
    """

    weights: str | None = None
    device: str = "auto"
    workers: int = 1
    data_dir: str | None = None
    max_upload_bytes: int = 4 * GiB
    retention_s: float = 3600.0
    token: str | None = None
    allowed_hosts: list | None = None
    stride: int | None = None
    formats: tuple | None = None
    model: dict = field(default_factory=dict)


class ReviewEdit(BaseModel):
    """Body of ``POST /api/jobs/{id}/review``: one epoch set by a scorer."""

    epoch: int = Field(..., ge=0, description="0-based epoch")
    stage: str = Field(..., description="W, N1, N2, N3 or REM", examples=["N2"])
    note: str | None = Field(None, max_length=500, description="optional note, kept in the audit trail")
    by: str | None = Field(None, max_length=80, description="who or which tab made the edit (audit trail)")


OUTPUT_UPLOAD_BYTES = 64 << 20
"""Largest hypnogram CSV / stats.json accepted when opening a night staged earlier (64 MiB)."""


class StartRequest(BaseModel):
    """Body of ``POST /api/jobs/{id}/start``."""

    montage: dict[str, str | list[str] | None] | None = Field(
        None, description="canonical channel -> raw label, [label, reference] (label - reference) or null "
                          "(not used); omitted or null: the automatic montage",
        examples=[{"C3": "EEG C3-M2", "E1": ["EOG E1", "M2"], "Chin": None}])


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the job store and its workers start with the app's lifespan."""
    settings = settings or Settings()
    weights = adapter.find_weights(settings.weights)  # fail at startup, not at the first job
    owned_tmp = settings.data_dir is None
    root = Path(settings.data_dir or tempfile.mkdtemp(prefix="lpsgm-web-"))
    store = JobStore(root, settings.weights, settings.device, settings.stride, settings.workers,
                     settings.retention_s, settings.formats, settings.model)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store.start()
        adapter.warm_up()
        yield
        store.stop()
        if owned_tmp:
            shutil.rmtree(root, ignore_errors=True)

    app = FastAPI(title="LPSGM sleep staging", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Upload an EDF/BDF night, check the montage, stage it with LPSGM and download the "
                              "hypnogram. The same pipeline as `inference.py` (package `staging`).")
    app.state.store, app.state.settings, app.state.weights = store, settings, weights
    review_store = reviews.ReviewStore(root / "reviews")  # kept across restarts with --data-dir
    formats = tuple(settings.formats or adapter.all_formats())
    nights: dict = {}  # job id -> (finished_at, night, info): the automatic night, read once
    if settings.allowed_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    _error_handlers(app)
    auth = _auth_dependency(settings.token)

    # ------------------------------------------------------------------ page
    @app.get("/", include_in_schema=False)
    def index(token: str | None = None):
        page = HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))
        if settings.token and token and hmac.compare_digest(token, settings.token):
            page.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return page

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js():
        import plotly

        return FileResponse(Path(plotly.__file__).parent / "package_data" / "plotly.min.js",
                            media_type="text/javascript")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # ------------------------------------------------------------------ API
    @app.get("/api/info", dependencies=[Depends(auth)], tags=["service"])
    def info():
        """Weights in use (with the demo flag), limits, canonical channels."""
        return {"weights": Path(weights.path).name, "weights_kind": weights.kind, "demo_weights": weights.demo,
                "weights_description": weights.description.replace(weights.path, Path(weights.path).name), "max_upload_bytes": settings.max_upload_bytes,
                "retention_s": settings.retention_s, "workers": settings.workers,
                "channels": adapter.canonical_channels(), "token_required": bool(settings.token)}

    @app.post("/api/jobs", status_code=201, dependencies=[Depends(auth)], tags=["jobs"],
              openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
                  "schema": {"type": "string", "format": "binary"}}}}})
    async def upload(request: Request,
                     filename: str = Query("recording.edf", description="original file name (gives NAME)"),
                     channels: str | None = Query(None, description="explicit montage to check instead of the "
                                                  "automatic one, JSON canonical -> label or [a, b]")):
        """Upload an EDF/BDF as the raw request body (streamed to disk).

        Returns the job with the labels found and the automatic montage (``recording``).
        422 with ``error`` = the reason ``inference.py`` gives when the file cannot be staged.
        """
        montage = _parse_montage_arg(channels)
        expected = request.headers.get("content-length")
        expected = int(expected) if expected and expected.isdigit() else None
        if expected is not None and shutil.disk_usage(root).free < expected + 64 * (1 << 20):
            raise HTTPException(507, "not enough free disk space on the server for this upload")
        job = store.new_job(filename, safe_filename(filename))
        try:
            recording = await receive(request.stream(), job.input_path, settings.max_upload_bytes, expected,
                                      montage)
        except UploadError as exc:
            store.discard(job)
            return _error(exc.status, exc.message, file=filename, **exc.extra)
        except BaseException:  # client disconnect, server stop: nothing is left behind
            store.discard(job)
            raise
        recording["night"] = await asyncio.to_thread(reviews.night_key, job.input_path)  # finds its review again
        job.size_bytes, job.recording = job.input_path.stat().st_size, recording
        job.touch()
        return {**job.public(), "recording": recording}

    @app.get("/api/jobs/{job_id}", dependencies=[Depends(auth)], tags=["jobs"])
    def status(job_id: str):
        """State, phase and progress (0–1) of a job; poll it while the job runs."""
        job = _job(store, job_id)
        return {**job.public(store.position(job)), "recording": job.recording,
                "files": _files(job) if job.state == "done" else []}

    @app.post("/api/jobs/{job_id}/start", status_code=202, dependencies=[Depends(auth)], tags=["jobs"])
    def start(job_id: str, body: StartRequest | None = None):
        """Queue the job for staging with the automatic or an edited montage."""
        job = _job(store, job_id)
        if job.state in ("queued", "running"):
            raise HTTPException(409, f"job is already {job.state}")
        if job.state in ("failed", "cancelled") or not job.input_path.exists():
            raise HTTPException(409, f"job is {job.state}: its upload was deleted, upload the file again")
        montage = body.montage if body else None
        if (montage and job.recording.get("montage_origin") == "auto"
                and _same_montage(montage, job.recording.get("montage") or {})):
            montage = None  # unchanged: staged exactly as `inference.py` (automatic montage) stages it
        if montage:
            try:
                adapter.inspect_recording(job.input_path, montage)
            except adapter.RecordingError as exc:
                return _error(422, str(exc), file=job.filename)
        store.submit(job, montage)
        return job.public(store.position(job))

    @app.post("/api/jobs/{job_id}/cancel", dependencies=[Depends(auth)], tags=["jobs"])
    def cancel(job_id: str):
        """Cancel a queued or running job; its files are deleted."""
        job = _job(store, job_id)
        if job.state in FINAL:
            raise HTTPException(409, f"job is already {job.state}")
        store.cancel(job)
        return job.public()

    @app.delete("/api/jobs/{job_id}", status_code=204, dependencies=[Depends(auth)], tags=["jobs"])
    def delete(job_id: str):
        """Cancel if needed and delete the job and all its files now."""
        job = _job(store, job_id)
        store.cancel(job)
        store.discard(job)

    @app.get("/api/jobs/{job_id}/hypnogram", dependencies=[Depends(auth)], tags=["results"])
    def hypnogram(job_id: str):
        """Per-epoch stages and probabilities (the numbers of ``NAME.hypnogram.csv``)."""
        job = _done(store, job_id)
        return {"epoch_seconds": 30.0, **adapter.read_hypnogram(job.out / f"{job.name}.hypnogram.csv")}

    @app.get("/api/jobs/{job_id}/stats", dependencies=[Depends(auth)], tags=["results"])
    def stats(job_id: str):
        """``NAME.stats.json``: statistics with units, montage, weights, provenance."""
        job = _done(store, job_id)
        doc = adapter.read_stats(job.out / f"{job.name}.stats.json")
        if doc.get("source_file"):  # never a server path in the API
            doc["source_file"] = job.filename
        return doc

    @app.get("/api/jobs/{job_id}/signals", dependencies=[Depends(auth)], tags=["results"])
    def signals(job_id: str, epoch: int = Query(0, ge=0), count: int = Query(1, ge=1, le=10)):
        """Display signals (montage derivations in µV at 100 Hz, mean removed) of ``count`` epochs."""
        job = _done(store, job_id)
        return adapter.viewer_page(job.out, epoch, count)

    @app.get("/api/jobs/{job_id}/files", dependencies=[Depends(auth)], tags=["results"])
    def files(job_id: str):
        """The output files (what ``inference.py --formats all`` writes), with download URLs."""
        return _files(_done(store, job_id))

    @app.get("/api/jobs/{job_id}/files/{name:path}", dependencies=[Depends(auth)], tags=["results"])
    def download(job_id: str, name: str):
        """Download one output file (names from ``/files`` only; BIDS files have a folder path)."""
        job = _done(store, job_id)
        listed = {f["name"]: f for f in _files(job)}
        if name not in listed:  # never a client-built path
            raise HTTPException(404, f"no output file {name!r}")
        return FileResponse(job.out / name, filename=Path(name).name)

    # ------------------------------------------------------------------ review
    def _night(job):
        cached = nights.get(job.id)
        if cached is None or cached[0] != job.finished_at:
            try:
                night, doc = reviews.job_night(job.out, job.name)
            except (reviews.ReviewError, OSError) as exc:
                raise HTTPException(409, f"cannot read this job's outputs: {exc}") from None
            cached = nights[job.id] = (job.finished_at, night, doc)
        return cached[1], cached[2]

    def _review_doc(job) -> dict:
        night, _ = _night(job)
        review = review_store.load(job.recording["night"])
        return {"night": job.recording["night"], **review.to_json(),
                "stages": [s if s >= 0 else None for s in review.stages(night.stages).tolist()],
                "summary": reviews.summary(night.stages, review)}

    @app.get("/api/jobs/{job_id}/review", dependencies=[Depends(auth)], tags=["review"])
    def get_review(job_id: str):
        """The night's review: ``edits`` (epoch → stage), the audit ``trail`` (epoch, old, new, time,
        note, by), the reviewed ``stages`` (codes 0 W … 4 REM, null unknown) and ``summary`` (epochs
        changed, κ auto vs reviewed)."""
        return _review_doc(_done(store, job_id))

    @app.post("/api/jobs/{job_id}/review", dependencies=[Depends(auth)], tags=["review"])
    def post_review(job_id: str, body: ReviewEdit):
        """Set one epoch's stage; saved at once (atomic write, per-night lock). Two clients editing the
        same night lose nothing: the later edit of an epoch wins, both are in the trail."""
        job = _done(store, job_id)
        night, _ = _night(job)
        try:
            review_store.edit(job.recording["night"], body.epoch, body.stage, night.stages, body.note or "",
                              body.by or "", job.filename)
        except reviews.ReviewError as exc:
            return _error(422, str(exc))
        job.touch()
        return _review_doc(job)

    @app.get("/api/jobs/{job_id}/reviewed", dependencies=[Depends(auth)], tags=["review"])
    def reviewed(job_id: str):
        """Write the reviewed outputs (every format, ``NAME.reviewed.*``, statistics recomputed, each epoch
        auto/reviewed, κ auto vs reviewed, the audit trail) and list them with download URLs."""
        job = _done(store, job_id)
        review = review_store.load(job.recording["night"])
        dest = job.folder / "reviewed"
        reviews.write_reviewed_outputs(job.out, dest, job.name, review, formats)
        return [{"name": p.relative_to(dest).as_posix(), "size_bytes": p.stat().st_size,
                 "url": f"/api/jobs/{job.id}/reviewed/{quote(p.relative_to(dest).as_posix())}"}
                for p in sorted(dest.rglob("*")) if p.is_file() and not p.name.startswith(".")]

    @app.get("/api/jobs/{job_id}/reviewed/{name:path}", dependencies=[Depends(auth)], tags=["review"])
    def reviewed_file(job_id: str, name: str):
        """Download one reviewed output (names from ``/reviewed`` only)."""
        job = _done(store, job_id)
        dest = job.folder / "reviewed"
        listed = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()} if dest.is_dir() else set()
        if name not in listed:
            raise HTTPException(404, f"no reviewed file {name!r} (GET /api/jobs/{job_id}/reviewed writes them)")
        return FileResponse(dest / name, filename=Path(name).name)

    @app.get("/api/jobs/{job_id}/spectrogram", dependencies=[Depends(auth)], tags=["results"])
    def spectrogram(job_id: str):
        """Whole-night spectrogram (Welch, 4-s Hann segments per 30-s epoch, 0.5–25 Hz, dB) of the
        preferred EEG channel; ``power_db[f][epoch]``, colour range ``vmin``/``vmax``."""
        job = _done(store, job_id)
        sp = reviews.viewer_spectrogram(job.out)
        if sp is None:
            return {"channel": None}
        vmin, vmax = sp.color_range()
        return {"channel": sp.channel, "unit": sp.unit, "freqs": [round(float(f), 3) for f in sp.freqs],
                "power_db": [[None if v != v else round(float(v), 1) for v in row] for row in sp.power_db],  # NaN: null
                "vmin": round(vmin, 1), "vmax": round(vmax, 1)}

    @app.post("/api/jobs/{job_id}/outputs", dependencies=[Depends(auth)], tags=["review"],
              openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
                  "schema": {"type": "string", "format": "binary"}}}}})
    async def upload_output(job_id: str, request: Request, filename: str = Query(..., description=
                            "NAME.hypnogram.csv or NAME.stats.json written by inference.py for this recording")):
        """Attach one output ``inference.py`` wrote for the uploaded recording (to open it for review
        without staging it again); then ``POST /api/jobs/{id}/open``."""
        job = _job(store, job_id)
        if job.state in ("queued", "running"):
            raise HTTPException(409, f"job is {job.state}")
        kind = "hypnogram.csv" if filename.lower().endswith(".csv") else \
            "stats.json" if filename.lower().endswith(".json") else None
        if kind is None:
            return _error(422, f"{filename}: expected NAME.hypnogram.csv or NAME.stats.json", file=filename)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > OUTPUT_UPLOAD_BYTES:
                return _error(413, f"{filename}: larger than {OUTPUT_UPLOAD_BYTES >> 20} MiB", file=filename)
        staged = job.folder / "opened"
        staged.mkdir(exist_ok=True)
        (staged / f"{job.name}.{kind}").write_bytes(bytes(body))
        return {"file": filename, "as": f"{job.name}.{kind}"}

    @app.post("/api/jobs/{job_id}/open", dependencies=[Depends(auth)], tags=["review"])
    async def open_outputs(job_id: str):
        """Open the uploaded recording with its attached outputs as a finished job (no staging)."""
        job = _job(store, job_id)
        if job.state in ("queued", "running") or not job.input_path.exists():
            raise HTTPException(409, f"job is {job.state}" if job.input_path.exists() else "the upload was deleted")
        staged = job.folder / "opened"
        try:
            night, info = reviews.job_night(staged, job.name)
        except (reviews.ReviewError, OSError) as exc:
            return _error(422, str(exc).replace(str(staged) + "/", ""))
        n_rec = int(job.recording.get("n_epochs") or 0)
        if abs(night.n_epochs - n_rec) > 1:
            return _error(422, f"these outputs have {night.n_epochs} epochs, the recording {n_rec}: not this "
                               f"recording's outputs")
        shutil.rmtree(job.out, ignore_errors=True)
        staged.rename(job.out)
        montage = {c: v for c, v in (info.get("montage") or {}).items()}
        try:
            await asyncio.to_thread(adapter.write_viewer_signals, job.input_path, montage or None, job.out)
        except Exception as exc:  # noqa: BLE001 - one line to the client
            return _error(422, f"cannot read the recording's signals for the viewer: {exc}")
        job.montage = montage or None
        job.started_at = job.started_at or job.created
        store._finish(job, "done", "", {"lines": [f"opened from outputs staged earlier ({night.n_epochs} epochs, "
                                                  f"weights {Path(str(info.get('weights', '?'))).name})"],
                                        "n_epochs": night.n_epochs, "opened": True})
        return job.public()

    return app


# ---------------------------------------------------------------------- helpers

def _error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": message, "status": status, **extra}, status_code=status)


def _error_handlers(app: FastAPI) -> None:
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(422, f"invalid request: {where}: {first.get('msg', 'invalid')}")


def _auth_dependency(token: str | None):
    def check(request: Request) -> None:
        if not token:
            return
        given = (request.headers.get("x-token") or request.query_params.get("token")
                 or request.cookies.get(TOKEN_COOKIE) or "")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "a valid token is required (Authorization: Bearer TOKEN, or open the page "
                                     "with ?token=TOKEN)")
    return check


def _same_montage(edited: dict, auto: dict) -> bool:
    def norm(m):
        return {k: (v if isinstance(v, str) else list(v)) for k, v in m.items() if v not in (None, "", [])}
    return norm(edited) == norm(auto)


def _parse_montage_arg(text: str | None) -> dict | None:
    if not text:
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HTTPException(400, f"channels: invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise HTTPException(400, "channels: expected a JSON object canonical name -> label or [a, b]")
    return obj


def _job(store: JobStore, job_id: str):
    job = store.get(job_id)
    if job is None:
        raise HTTPException(404, "no such job (unknown id, or deleted after the retention time)")
    return job


def _done(store: JobStore, job_id: str):
    job = _job(store, job_id)
    if job.state != "done":
        reason = f": {job.reason}" if job.reason else ""
        raise HTTPException(409, f"job is {job.state}{reason}")
    return job


def _files(job) -> list[dict]:
    """Every output file under the job's output folder (recursively: the BIDS derivative is a
    folder tree), by path relative to it; the viewer's own files and temp files are left out."""
    out = job.out
    if not out.is_dir():
        return []
    items = sorted(p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")
                   and p.relative_to(out).as_posix() not in (adapter.VIEWER_FILE, adapter.VIEWER_META))
    rows = []
    for p in items:
        rel = p.relative_to(out).as_posix()
        rows.append({"name": rel, "size_bytes": p.stat().st_size,
                     "url": f"/api/jobs/{job.id}/files/{quote(rel)}"})
    return rows
