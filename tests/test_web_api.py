"""The web service's HTTP API, in-process (FastAPI's TestClient) with a real staging worker.

One service instance (one worker process) serves the module; jobs on the bundled example and
on short hand-made recordings cover upload → montage → job → results, bad uploads, two users
at once, cancellation, retention and the shared token.
"""

from __future__ import annotations

import asyncio
import csv
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from staging import EXAMPLE  # noqa: E402
from tests.conftest import write_edf  # noqa: E402
from web.app import Settings, create_app  # noqa: E402
from web.uploads import UploadError, receive, safe_filename  # noqa: E402

TIMEOUT_S = 300


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    data = tmp_path_factory.mktemp("webdata")
    app = create_app(Settings(data_dir=str(data), workers=1, retention_s=3600))
    with TestClient(app) as client:
        yield client, app, data


def _night(path: Path, minutes: float, labels=("EEG C3-M2", "EOG E1-M2", "EMG Chin"), seed: int = 0) -> Path:
    """A short recording of 1/f noise at 100 Hz in µV (enough for the pipeline; not sleep; white noise
    would be refused by the plausibility gate)."""
    from tests.eeg_noise import pink

    rng = np.random.default_rng(seed)
    n = int(minutes * 60 * 100)
    return write_edf(path, {lab: (pink(rng, n, 30.0), 100.0) for lab in labels})


def _upload(client, path: Path, **params):
    return client.post("/api/jobs", params={"filename": path.name, **params}, content=path.read_bytes(),
                       headers={"content-type": "application/octet-stream"})


def _wait(client, job_id: str, states=("done", "failed", "cancelled")) -> dict:
    t0 = time.monotonic()
    while time.monotonic() - t0 < TIMEOUT_S:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['state']} after {TIMEOUT_S} s")


def _job_folders(data: Path) -> list[Path]:
    return [p for p in data.iterdir() if p.is_dir()]


def _inference_csv(tmp_path: Path, edf: Path, channels: str) -> list[dict]:
    import inference

    out = tmp_path / "cli"
    assert inference.main([str(edf), "--out", str(out), "--channels", channels, "--formats", "csv",
                           "--no-progress"]) == 0
    return _csv_rows((out / f"{edf.stem}.hypnogram.csv").read_text())


def _csv_rows(text: str) -> list[dict]:
    """Rows of a hypnogram CSV after its ``#`` comment lines."""
    return list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))


def test_example_upload_montage_job_results(service, tmp_path):
    client, app, data = service
    r = _upload(client, EXAMPLE)
    assert r.status_code == 201, r.text
    job = r.json()
    rec = job["recording"]
    assert rec["labels"][:3] == ["EEG F3-M2", "EEG F4-M1", "EEG C3-M2"]
    assert rec["n_epochs"] == 90
    # The automatic montage is the one inference.py prints: every canonical channel found.
    assert rec["montage"]["C3"] == "EEG C3-M2" and rec["montage"]["Chin"] == "EMG Chin"
    assert [row["channel"] for row in rec["montage_table"]] == ["F3", "F4", "C3", "C4", "O1", "O2", "E1",
                                                                 "E2", "Chin"]
    # Edited montage: O2 left out, C4 as a derivation of two labels.
    montage = {**rec["montage"], "O2": None, "C4": ["EEG C4-M1", "EEG O2-M1"]}
    r = client.post(f"/api/jobs/{job['id']}/start", json={"montage": montage})
    assert r.status_code == 202, r.text
    done = _wait(client, job["id"])
    assert done["state"] == "done", done["reason"]
    assert done["result"]["channels"] == ["F3", "F4", "C3", "C4", "O1", "E1", "E2", "Chin"]
    names = {f["name"] for f in done["files"]}
    stem = EXAMPLE.stem
    assert {f"{stem}.hypnogram.csv", f"{stem}.stats.json", f"{stem}.png", f"{stem}.STA",
            f"{stem}.annotations.edf", f"{stem}.hypnodensity.npz", f"{stem}.hypnodensity.edf", "summary.csv"} <= names
    bids = [f for f in done["files"] if f["name"].startswith("bids/") and f["name"].endswith("_events.tsv")]
    assert len(bids) == 1  # the BIDS derivative is a folder tree: its files keep their relative path
    assert client.get(bids[0]["url"]).text.startswith("onset\tduration")

    hyp = client.get(f"/api/jobs/{job['id']}/hypnogram").json()
    assert hyp["classes"] == ["W", "N1", "N2", "N3", "REM"] and len(hyp["stage"]) == 90
    # Same numbers as inference.py with the same montage.
    channels = json.dumps({k: [v] for k, v in montage.items() if v})
    ref = _inference_csv(tmp_path, EXAMPLE, channels)
    assert hyp["stage"] == [row["stage"] for row in ref]
    ref_p = np.array([[float(row[f"p_{c}"]) for c in hyp["classes"]] for row in ref])
    np.testing.assert_allclose(np.array(hyp["probabilities"]), ref_p, atol=1e-6, rtol=0)

    csv_text = client.get(f"/api/jobs/{job['id']}/files/{stem}.hypnogram.csv").text
    assert [row["stage"] for row in _csv_rows(csv_text)] == hyp["stage"]
    stats = client.get(f"/api/jobs/{job['id']}/stats").json()
    assert stats["units"]["TST"] == "min" and stats["demo_weights"] is True
    assert stats["montage"]["C4"] == ["EEG C4-M1", "EEG O2-M1"]

    page = client.get(f"/api/jobs/{job['id']}/signals", params={"epoch": 5}).json()
    assert page["epoch"] == 5 and page["unit"] == "uV" and page["channels"][3] == "C4"
    assert len(page["data"]) == 8 and all(len(row) == 3000 for row in page["data"])
    assert 1.0 < np.std(page["data"][2]) < 1000.0  # EEG in µV, not volts nor z-scores
    # No client-chosen path reaches the file system.
    assert client.get(f"/api/jobs/{job['id']}/files/..%2F..%2Fsecret").status_code == 404
    assert client.get(f"/api/jobs/{job['id']}/files/viewer.npy").status_code == 404
    openapi = client.get("/openapi.json").json()
    assert "/api/jobs/{job_id}/hypnogram" in openapi["paths"]


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    good = EXAMPLE.read_bytes()
    files = {"empty": tmp_path / "empty.edf", "text": tmp_path / "notes.edf",
             "truncated_header": tmp_path / "half.edf", "no_record": tmp_path / "header_only.edf"}
    files["empty"].write_bytes(b"")
    files["text"].write_text("This is a text file, not a recording.\n" * 40)
    files["truncated_header"].write_bytes(good[:600])
    files["no_record"].write_bytes(good[:256 * 10 + 100])  # the header and less than one data record
    files["ecg_only"] = _night(tmp_path / "ecg.edf", 2, labels=("ECG",))
    files["chin_only"] = _night(tmp_path / "chin.edf", 2, labels=("EMG Chin",))
    return files


def test_bad_uploads_get_inference_reason_as_4xx(service, tmp_path):
    from staging import stage

    client, app, data = service
    before = set(_job_folders(data))
    for kind, path in _bad_files(tmp_path).items():
        results, code = stage([path], out=tmp_path / "cli", echo=lambda s: None, progress_bar=False)
        assert code == 1 and results[0].status == "failed", kind
        r = _upload(client, path)
        assert r.status_code == 422, (kind, r.text)
        body = r.json()
        assert body["error"] == results[0].reason, kind
        assert "\n" not in body["error"]
        assert client.get("/api/info").status_code == 200  # still serving
    assert set(_job_folders(data)) == before, "a refused upload left files behind"


def test_truncated_night_is_accepted_with_the_warning_inference_gives(service, tmp_path):
    """A file whose data stops early is staged up to its last complete record (as by inference.py)."""
    client, app, data = service
    good = EXAMPLE.read_bytes()
    path = tmp_path / "cut.edf"
    path.write_bytes(good[: len(good) // 2])
    r = _upload(client, path)
    assert r.status_code == 201, r.text
    rec = r.json()["recording"]
    assert any(w.startswith("truncated: header declares 2700 data records") for w in rec["warnings"])
    assert rec["n_epochs"] < 90
    client.delete(f"/api/jobs/{r.json()['id']}")


def test_edited_montage_is_validated(service):
    client, app, data = service
    job = _upload(client, EXAMPLE).json()
    r = client.post(f"/api/jobs/{job['id']}/start", json={"montage": {"C3": "no such label"}})
    assert r.status_code == 422 and "no such label" in r.json()["error"]
    r = client.post(f"/api/jobs/{job['id']}/start", json={"montage": {"Chin": "EMG Chin"}})
    assert r.status_code == 422 and "no usable EEG or EOG channel" in r.json()["error"]
    client.delete(f"/api/jobs/{job['id']}")
    assert client.get(f"/api/jobs/{job['id']}").status_code == 404


def test_two_users_at_once_both_finish_one_at_a_time(service, tmp_path):
    client, app, data = service
    paths = [_night(tmp_path / f"user{i}.edf", 12, seed=i) for i in range(2)]
    ids: list[str] = []

    def user(path):
        job = _upload(client, path).json()
        ids.append(job["id"])
        assert client.post(f"/api/jobs/{job['id']}/start").status_code == 202

    threads = [threading.Thread(target=user, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    jobs = [_wait(client, i) for i in ids]
    assert [j["state"] for j in jobs] == ["done", "done"], [j["reason"] for j in jobs]
    first, second = sorted(jobs, key=lambda j: j["started_at"])
    assert second["started_at"] >= first["finished_at"]  # one worker: one job at a time
    for j in jobs:
        assert len(client.get(f"/api/jobs/{j['id']}/hypnogram").json()["stage"]) == 24


def test_cancel_running_and_queued_jobs_leaves_nothing(service, tmp_path):
    client, app, data = service
    long_night = _night(tmp_path / "long.edf", 240, seed=3)
    short = _night(tmp_path / "short.edf", 12, seed=4)
    a = _upload(client, long_night).json()
    b = _upload(client, short).json()
    client.post(f"/api/jobs/{a['id']}/start")
    client.post(f"/api/jobs/{b['id']}/start")
    assert client.get(f"/api/jobs/{b['id']}").json()["state"] == "queued"
    r = client.post(f"/api/jobs/{b['id']}/cancel")
    assert r.json()["state"] == "cancelled"
    _wait(client, a["id"], states=("running", "done", "failed"))
    r = client.post(f"/api/jobs/{a['id']}/cancel")
    assert r.status_code == 200, "the 4-h job finished before it could be cancelled"
    job = _wait(client, a["id"])
    assert job["state"] == "cancelled" and job["reason"] == "cancelled by the user"
    assert not (data / a["id"]).exists() and not (data / b["id"]).exists()
    assert client.get(f"/api/jobs/{a['id']}/hypnogram").status_code == 409
    # The worker is replaced: the next job is staged.
    c = _upload(client, short).json()
    client.post(f"/api/jobs/{c['id']}/start")
    assert _wait(client, c["id"])["state"] == "done"


def test_retention_deletes_old_jobs(service, tmp_path):
    client, app, data = service
    job = _upload(client, _night(tmp_path / "old.edf", 2)).json()
    store = app.state.store
    assert (data / job["id"]).is_dir()
    assert job["id"] not in store.cleanup(now=time.time() + 10)  # younger than the retention time
    assert job["id"] in store.cleanup(now=time.time() + store.retention_s + 1)
    assert not (data / job["id"]).exists()
    assert client.get(f"/api/jobs/{job['id']}").status_code == 404


def test_token_required_when_set(tmp_path):
    app = create_app(Settings(data_dir=str(tmp_path), token="s3cret"))
    client = TestClient(app)  # no lifespan: no worker needed to check access
    r = client.get("/api/info")
    assert r.status_code == 401 and "token" in r.json()["error"]
    assert client.post("/api/jobs", content=b"x").status_code == 401
    assert client.get("/api/info", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/api/info", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/info", params={"token": "s3cret"}).status_code == 200
    page = client.get("/", params={"token": "s3cret"})
    assert page.status_code == 200 and "lpsgm_token" in page.headers.get("set-cookie", "")
    assert client.get("/api/info").status_code == 200  # the cookie the page set


def test_upload_size_cap_and_hosts(tmp_path):
    app = create_app(Settings(data_dir=str(tmp_path), max_upload_bytes=100_000, allowed_hosts=["127.0.0.1"]))
    client = TestClient(app, base_url="http://127.0.0.1")
    r = _upload(client, EXAMPLE)
    assert r.status_code == 413 and "limit" in r.json()["error"]
    assert _job_folders(tmp_path) == []
    evil = TestClient(app, base_url="http://attacker.example")
    assert evil.get("/api/info").status_code == 400  # DNS-rebinding guard


def test_page_and_scripts_are_served_locally(tmp_path):
    client = TestClient(create_app(Settings(data_dir=str(tmp_path))))
    html = client.get("/").text
    assert "https://" not in html and "http://" not in html.replace("http://127.0.0.1", "")
    for src in ("/static/plotly.min.js", "/static/app.js", "/static/style.css"):
        assert client.get(src).status_code == 200, src
    assert "cdn" not in client.get("/static/app.js").text.lower()


def test_safe_filename_never_leaves_the_folder():
    assert safe_filename("../../etc/passwd") == "passwd.edf"
    assert safe_filename("C:\\data\\night 1.EDF") == "night_1.edf"
    assert safe_filename("..", b"\xffBIOSEMI") == "recording.bdf"
    assert "/" not in safe_filename("a/b/../../c.bdf") and safe_filename("a/b/../../c.bdf").endswith(".bdf")


def test_header_is_refused_before_the_body(tmp_path):
    """An ECG-only header is refused as soon as the header arrives: the body is not written."""
    src = _night(tmp_path / "ecg.edf", 2, labels=("ECG",)).read_bytes()
    header, body = src[:512], b"\0" * (4 << 20)

    async def stream():
        yield header
        for i in range(0, len(body), 1 << 16):
            yield body[i:i + (1 << 16)]

    dst = tmp_path / "upload.edf"
    with pytest.raises(UploadError) as err:
        asyncio.run(receive(stream(), dst, 1 << 30, len(header) + len(body)))
    assert err.value.status == 422 and "no canonical channel" in err.value.message
    assert dst.stat().st_size == len(header)


def test_incomplete_body_is_refused(tmp_path):
    data = EXAMPLE.read_bytes()

    async def stream():
        yield data[:100_000]

    with pytest.raises(UploadError) as err:
        asyncio.run(receive(stream(), tmp_path / "x.edf", 1 << 30, len(data)))
    assert err.value.status == 400 and "incomplete upload" in err.value.message


def test_montage_given_at_upload_and_unchanged_montage_is_automatic(tmp_path):
    """A file without an automatic montage can be uploaded with an explicit one; an edited montage
    equal to the automatic one is staged as the automatic montage (as ``inference.py`` would)."""
    client = TestClient(create_app(Settings(data_dir=str(tmp_path / "data"))))  # no worker: jobs stay queued
    ecg = _night(tmp_path / "odd.edf", 2, labels=("ECG", "Kanal 2"))
    assert _upload(client, ecg).status_code == 422
    r = _upload(client, ecg, channels=json.dumps({"C3": ["Kanal 2", "ECG"]}))
    assert r.status_code == 201, r.text
    rec = r.json()["recording"]
    assert rec["montage"] == {"C3": ["Kanal 2", "ECG"]} and rec["montage_origin"] == "explicit"
    started = client.post(f"/api/jobs/{r.json()['id']}/start", json={"montage": rec["montage"]}).json()
    assert started["montage"] == {"C3": ["Kanal 2", "ECG"]}

    job = _upload(client, EXAMPLE).json()
    same = {**job["recording"]["montage"], "O2": job["recording"]["montage"]["O2"]}
    started = client.post(f"/api/jobs/{job['id']}/start", json={"montage": same}).json()
    assert started["state"] == "queued" and started["montage"] is None


def test_docs_options_table_matches_the_command_line():
    import re

    from web.__main__ import build_parser

    md = (Path(__file__).resolve().parents[1] / "docs" / "web.md").read_text(encoding="utf-8")
    cells = [ln.split("|")[1] for ln in md.splitlines() if ln.startswith("| `--")]
    documented = {o for c in cells for o in re.findall(r"--[a-z][a-z0-9-]*", c)}
    options = {o for a in build_parser()._actions for o in a.option_strings if o.startswith("--") and o != "--help"}
    assert documented == options


def test_only_loopback_counts_as_local():
    from web.__main__ import _is_loopback

    assert _is_loopback("127.0.0.1") and _is_loopback("localhost") and _is_loopback("::1")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("192.168.1.10") and not _is_loopback("::")


def test_failed_job_reports_inference_reason_and_leaves_nothing(service, tmp_path):
    """A header that looks fine but flat signals: the job fails as inference.py fails the file."""
    from staging import stage

    client, app, data = service
    n = 12 * 60 * 100
    flat = write_edf(tmp_path / "flat.edf", {lab: (np.zeros(n), 100.0) for lab in ("EEG C3-M2", "EOG E1-M2")})
    results, _ = stage([flat], out=tmp_path / "cli", echo=lambda s: None, progress_bar=False)
    assert results[0].status == "failed"
    job = _upload(client, flat).json()
    client.post(f"/api/jobs/{job['id']}/start")
    done = _wait(client, job["id"])
    assert done["state"] == "failed" and done["reason"] == results[0].reason
    assert not (data / job["id"]).exists()
    assert client.post(f"/api/jobs/{job['id']}/start").status_code == 409  # its upload is gone


def test_hypnogram_json_reads_comments_clinical_columns_and_unknown_epochs(tmp_path):
    from web.adapter import read_hypnogram

    path = tmp_path / "x.hypnogram.csv"
    path.write_text("# DEMO weights\nepoch,onset_s,stage,p_W,p_N1,p_N2,p_N3,p_REM,confidence,flag\n"
                    "0,0,W,0.900000,0.100000,0.000000,0.000000,0.000000,0.9,ok\n"
                    "1,30,?,,,,,,,flat\n")
    hyp = read_hypnogram(path)
    assert hyp["stage"] == ["W", "?"] and hyp["onset_s"] == [0.0, 30.0]
    assert hyp["probabilities"] == [[0.9, 0.1, 0.0, 0.0, 0.0], [None] * 5]
    assert hyp["flag"] == ["ok", "flat"] and hyp["classes"] == ["W", "N1", "N2", "N3", "REM"]
