"""Review in the web service (no staging worker needed): a night staged earlier by ``inference.py`` is
opened from its EDF + outputs; edits are saved with an audit trail, survive a restart of the service,
and two clients editing the same night lose nothing; the reviewed outputs carry the reviewed stages,
auto/reviewed marks, recomputed statistics and κ auto vs reviewed."""

from __future__ import annotations

import csv
import json
import threading

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from staging import EXAMPLE  # noqa: E402
from staging.stats import sleep_statistics  # noqa: E402
from web.app import Settings, create_app  # noqa: E402


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """The bundled example staged once by inference.py (its CSV and stats.json)."""
    import inference

    out = tmp_path_factory.mktemp("staged")
    assert inference.main([str(EXAMPLE), "--out", str(out), "--formats", "csv,stats", "--no-progress"]) == 0
    return out


def _open(client, staged) -> str:
    r = client.post("/api/jobs", params={"filename": EXAMPLE.name}, content=EXAMPLE.read_bytes(),
                    headers={"content-type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    job = r.json()["id"]
    for suffix in (".hypnogram.csv", ".stats.json"):
        f = staged / f"{EXAMPLE.stem}{suffix}"
        assert client.post(f"/api/jobs/{job}/outputs", params={"filename": f.name}, content=f.read_bytes()).status_code == 200
    r = client.post(f"/api/jobs/{job}/open")
    assert r.status_code == 200 and r.json()["state"] == "done", r.text
    return job


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(ln for ln in text.splitlines() if not ln.startswith("#")))


def test_review_trail_restart_two_clients_and_reviewed_outputs(tmp_path, staged):
    data = tmp_path / "data"
    client = TestClient(create_app(Settings(data_dir=str(data))))
    job = _open(client, staged)
    auto = [r["stage"] for r in _rows((staged / f"{EXAMPLE.stem}.hypnogram.csv").read_text())]
    assert client.get(f"/api/jobs/{job}/hypnogram").json()["stage"] == auto
    assert "/" not in client.get(f"/api/jobs/{job}/stats").json()["source_file"]  # no server path
    assert "/" not in client.get("/api/info").json()["weights"]

    edits = {10: "N3", 11: "REM", 60: "W"}
    assert all(auto[e] != s for e, s in edits.items())
    for e, s in edits.items():
        r = client.post(f"/api/jobs/{job}/review", json={"epoch": e, "stage": s, "note": f"note {e}"})
        assert r.status_code == 200
    doc = r.json()
    assert doc["edits"] == {str(e): s for e, s in edits.items()}
    assert [(t["epoch"], t["old"], t["new"], t["note"]) for t in doc["trail"]] == \
        [(e, auto[e], s, f"note {e}") for e, s in edits.items()]
    assert doc["summary"]["n_changed"] == 3
    bad = client.post(f"/api/jobs/{job}/review", json={"epoch": 10_000, "stage": "N2"})
    assert bad.status_code == 422 and "outside the night" in bad.json()["error"]
    assert client.post(f"/api/jobs/{job}/review", json={"epoch": 1, "stage": "S4"}).status_code == 422

    # Two clients (tabs) at once on the same night: 20 edits each on interleaved epochs, one shared epoch.
    def tab(name: str, epochs):
        c = TestClient(client.app)
        for e in epochs:
            assert c.post(f"/api/jobs/{job}/review", json={"epoch": e, "stage": "N1", "by": name}).status_code == 200
    threads = [threading.Thread(target=tab, args=("A", range(20, 40, 2))),
               threading.Thread(target=tab, args=("B", range(21, 41, 2)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.post(f"/api/jobs/{job}/review", json={"epoch": 20, "stage": "N2", "by": "B"})  # a later edit of 20
    doc = client.get(f"/api/jobs/{job}/review").json()
    assert len(doc["trail"]) == 3 + 20 + 1  # nothing lost
    assert doc["edits"]["20"] == "N2" and all(doc["edits"][str(e)] == "N1" for e in range(21, 40))
    assert [t["new"] for t in doc["trail"] if t["epoch"] == 20] == ["N1", "N2"]  # both in the trail, last wins

    # Restart: a new service on the same --data-dir; the same recording opened again finds its review.
    client2 = TestClient(create_app(Settings(data_dir=str(data))))
    job2 = _open(client2, staged)
    assert client2.get(f"/api/jobs/{job2}/review").json()["edits"] == doc["edits"]

    # Reviewed outputs: every format, reviewed stages, marks, recomputed statistics, kappa.
    files = {f["name"]: f["url"] for f in client2.get(f"/api/jobs/{job2}/reviewed").json()}
    stem = f"{EXAMPLE.stem}.reviewed"
    assert {f"{stem}.hypnogram.csv", f"{stem}.stats.json", f"{stem}.png", f"{stem}.STA", f"{stem}.annotations.edf",
            f"{stem}.hypnodensity.npz", f"{stem}.hypnodensity.edf", f"{stem}.report.pdf", f"{stem}.review.json"} <= set(files)
    text = client2.get(files[f"{stem}.hypnogram.csv"]).text
    rows = _rows(text)
    expected = list(auto)
    for e, s in doc["edits"].items():
        expected[int(e)] = s
    assert [r["stage"] for r in rows] == expected
    assert [r["review"] for r in rows] == ["reviewed" if str(i) in doc["edits"] else "auto" for i in range(len(rows))]
    codes = {"W": 0, "N1": 1, "N2": 2, "N3": 3, "REM": 4}
    tst = sleep_statistics([codes[s] for s in expected])["TST"]
    stats = client2.get(files[f"{stem}.stats.json"]).json()
    assert stats["statistics"]["TST"] == tst != stats["statistics_auto"]["TST"]
    assert f"TST {tst:g} min" in text and "# REVIEWED by a scorer" in text
    changed = sum(a != b for a, b in zip(auto, expected))
    assert stats["review"]["n_changed"] == changed
    from staging.scorers import kappa

    assert stats["review"]["kappa_auto_vs_reviewed"] == pytest.approx(
        kappa(np.array([codes[s] for s in auto]), np.array([codes[s] for s in expected])))
    trail = json.loads(client2.get(files[f"{stem}.review.json"]).text)
    assert len(trail["trail"]) == 24
    assert client2.get(files[f"{stem}.report.pdf"]).content[:4] == b"%PDF"


def test_open_refuses_outputs_of_another_recording(tmp_path, staged):
    client = TestClient(create_app(Settings(data_dir=str(tmp_path / "d"))))
    r = client.post("/api/jobs", params={"filename": EXAMPLE.name}, content=EXAMPLE.read_bytes(),
                    headers={"content-type": "application/octet-stream"})
    job = r.json()["id"]
    lines = (staged / f"{EXAMPLE.stem}.hypnogram.csv").read_text().splitlines()
    client.post(f"/api/jobs/{job}/outputs", params={"filename": "x.hypnogram.csv"},
                content="\n".join(lines[:40]).encode())
    client.post(f"/api/jobs/{job}/outputs", params={"filename": "x.stats.json"},
                content=(staged / f"{EXAMPLE.stem}.stats.json").read_bytes())
    r = client.post(f"/api/jobs/{job}/open")
    assert r.status_code == 422 and "not this recording's outputs" in r.json()["error"]
