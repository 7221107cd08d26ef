"""End to end in headless Chromium (Playwright): the page stages the bundled example.

The service is started as a user starts it (``python -m web`` on 127.0.0.1, a free port);
Chromium is the system one (``/usr/bin/chromium``, installed by ``.ci/run``), so no browser
download is needed. Set ``WEB_SCREENSHOT=docs/web-screenshot.png`` to refresh the screenshot.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from staging import EXAMPLE

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run", "--disable-dev-shm-usage"]
TIMEOUT_MS = 300_000

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chromium() -> str:
    """The system Chromium; the test skips only when none is installed."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip("Chromium is not installed (/usr/bin/chromium missing; .ci/run installs it with apt-get)")


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "web", "--host", "127.0.0.1", "--port", str(port),
                             "--data-dir", str(tmp_path / "data")], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    while True:
        try:
            urllib.request.urlopen(url + "/api/info", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() - t0 > 300:
                proc.kill()
                raise AssertionError("the service did not start: " + (tmp_path / "server.log").read_text()) from None
            time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _csv_rows(path: Path) -> list[dict]:
    """Rows of a hypnogram CSV after its ``#`` comment lines."""
    return list(csv.DictReader(line for line in path.read_text().splitlines() if not line.startswith("#")))


def _ecg_only(path: Path) -> Path:
    from tests.conftest import write_edf

    return write_edf(path, {"ECG": (np.random.default_rng(0).normal(0, 100, 6000), 100.0)})


def _chromium_context(playwright, executable: str, profile: Path):
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=executable, headless=True, args=CHROMIUM_ARGS, accept_downloads=True,
        viewport={"width": 1280, "height": 900})


def test_page_stages_example_like_inference(chromium, server, tmp_path):
    from playwright import sync_api

    with sync_api.sync_playwright() as pw:
        ctx = _chromium_context(pw, chromium, tmp_path / "profile")  # a fresh profile folder
        try:
            page = ctx.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(server + "/")
            page.wait_for_selector("#demo-banner:not([hidden])")  # the shipped weights are demo weights
            t0 = time.monotonic()
            page.set_input_files("#file", str(EXAMPLE))
            page.wait_for_selector('#montage-table tr[data-channel="C3"]')
            assert page.input_value('tr[data-channel="C3"] select.pos') == "EEG C3-M2"  # prefilled
            page.select_option('tr[data-channel="O2"] select.pos', "")  # one channel changed: O2 not used
            page.click("#run")
            page.wait_for_selector("#results:not([hidden])")
            page.wait_for_selector("#hypnogram .main-svg")
            upload_to_hypnogram_s = time.monotonic() - t0
            page.wait_for_function("document.querySelector('#viewer-title').textContent.includes('epoch 1 /')")

            # Click epoch 31 (0-based 30) in the hypnodensity: the viewer jumps there.
            n_epochs = 90
            density = page.locator("#hypnogram .draglayer .xy .nsewdrag")  # the hypnodensity subplot
            density.scroll_into_view_if_needed()
            box = density.bounding_box()  # viewport coordinates, as the mouse uses
            target = 30
            page.mouse.move(box["x"] + box["width"] * (target + 0.5) / n_epochs, box["y"] + box["height"] * 0.5)
            page.mouse.click(box["x"] + box["width"] * (target + 0.5) / n_epochs, box["y"] + box["height"] * 0.5)
            page.wait_for_function(f"document.querySelector('#viewer-title').textContent.includes('epoch {target + 1} /')")
            title = page.text_content("#viewer-title")
            assert "stage" in title and "confidence" in title
            assert page.locator("#viewer .scatterlayer .trace").count() > 0
            assert page.locator("#stats-table tbody tr").count() > 5
            shot = os.environ.get("WEB_SCREENSHOT")
            if shot:
                page.screenshot(path=shot, full_page=True)

            with page.expect_download() as dl:
                page.click(f'a.download[data-name="{EXAMPLE.stem}.hypnogram.csv"]')
            got = tmp_path / "download.csv"
            dl.value.save_as(got)
            job_id = page.evaluate("state.job")

            # Bad files: one readable line on the page, and the service keeps serving.
            bad = {"empty.edf": b"", "notes.edf": b"just some text\n" * 50}
            for name, payload in bad.items():
                page.set_input_files("#file", files=[{"name": name, "mimeType": "application/octet-stream",
                                                      "buffer": payload}])
                page.wait_for_selector("#error:not([hidden])")
                message = page.text_content("#error")
                assert message.startswith(f"{name}: ") and "\n" not in message
            ecg = _ecg_only(tmp_path / "ecg.edf")
            page.set_input_files("#file", str(ecg))
            page.wait_for_function("document.querySelector('#error').textContent.startsWith('ecg.edf: no ')")
            page.wait_for_selector("#reupload:not([hidden])")  # labels offered for a manual montage
        finally:
            ctx.close()

    montage = json.loads(urllib.request.urlopen(f"{server}/api/jobs/{job_id}").read())["montage"]
    assert montage["O2"] is None and montage["C3"] == "EEG C3-M2"
    channels = json.dumps({k: [v] for k, v in montage.items() if v})
    out = tmp_path / "cli"
    subprocess.run([sys.executable, "inference.py", str(EXAMPLE), "--out", str(out), "--channels", channels,
                    "--formats", "csv", "--no-progress"], cwd=REPO, check=True, capture_output=True)
    ref = _csv_rows(out / f"{EXAMPLE.stem}.hypnogram.csv")
    web = _csv_rows(got)
    assert [r["stage"] for r in web] == [r["stage"] for r in ref]
    cols = [c for c in ref[0] if c.startswith("p_")]
    np.testing.assert_allclose(np.array([[float(r[c]) for c in cols] for r in web]),
                               np.array([[float(r[c]) for c in cols] for r in ref]), atol=1e-6, rtol=0)
    print(f"upload to hypnogram: {upload_to_hypnogram_s:.1f} s")


def _stage_codes(names):
    return [{"W": 0, "N1": 1, "N2": 2, "N3": 3, "REM": 4}.get(s, -1) for s in names]


def test_review_by_keyboard_survives_reload_and_downloads_reviewed(chromium, server, tmp_path):
    """Open a night staged by inference.py (its EDF + outputs), change 3 epochs by keyboard, reload: the
    edits are there; download the reviewed CSV: those 3 stages, the reviewed marks, the recomputed TST; the
    audit trail. Then the page after a new upload and after a refused file (state reset; screenshots)."""
    from playwright import sync_api

    import inference
    from staging.stats import sleep_statistics

    staged = tmp_path / "staged"
    assert inference.main([str(EXAMPLE), "--out", str(staged), "--formats", "csv,stats", "--no-progress"]) == 0
    auto_rows = _csv_rows(staged / f"{EXAMPLE.stem}.hypnogram.csv")
    auto = [r["stage"] for r in auto_rows]
    shots = Path(os.environ.get("WEB_SCREENSHOT_DIR") or tmp_path)
    with sync_api.sync_playwright() as pw:
        ctx = _chromium_context(pw, chromium, tmp_path / "profile")
        try:
            page = ctx.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(server + "/")
            page.set_input_files("#file", str(EXAMPLE))
            page.wait_for_selector("#open-outputs:not([hidden])")
            page.set_input_files("#outputs-files", [str(staged / f"{EXAMPLE.stem}.hypnogram.csv"),
                                                    str(staged / f"{EXAMPLE.stem}.stats.json")])
            page.wait_for_selector("#results:not([hidden])")
            page.wait_for_function("document.querySelector('#viewer-title').textContent.includes('epoch 1 /')")
            assert page.text_content("#job-status").startswith("opened: 90 epochs")

            def at(epoch: int) -> None:  # 0-based epoch shown in the viewer and the review line
                page.wait_for_function(f"document.querySelector('#review-epoch').textContent.startsWith('epoch {epoch + 1} ')")

            def set_by_key(key: str, n_edits: int) -> None:
                page.keyboard.press(key)
                page.wait_for_function(f"document.querySelector('#trail-count').textContent === '{n_edits}'")

            for _ in range(10):
                page.keyboard.press("ArrowRight")
            at(10)
            key_of = {"W": "w", "N1": "1", "N2": "2", "N3": "3", "REM": "r"}
            first = "N3" if auto[10] != "N3" else "N1"
            set_by_key(key_of[first], 1)
            at(11)  # a stage key moves on to the next epoch
            second = "REM" if auto[11] != "REM" else "W"
            set_by_key(key_of[second], 2)
            at(12)
            page.keyboard.press("ArrowLeft")
            at(11)
            # F: the next flagged or low-confidence epoch after the current one.
            check = [i for i, r in enumerate(auto_rows) if r["flag"] not in ("ok", "outside_tib")
                     or not float(r["confidence"] or 0) >= 0.5]
            target = next(i for i in check if i > 11)
            page.keyboard.press("f")
            at(target)
            third = "N2" if auto[target] != "N2" else "N1"
            set_by_key(key_of[third], 3)
            edits = {10: first, 11: second, target: third}

            page.reload()
            page.wait_for_selector("#results:not([hidden])")
            page.wait_for_function("document.querySelector('#trail-count').textContent === '3'")
            assert page.evaluate("state.review.edits") == {str(k): v for k, v in edits.items()}
            trail_rows = page.locator("#trail tbody tr")
            assert trail_rows.count() == 3
            assert {trail_rows.nth(i).locator("td").nth(2).text_content() for i in range(3)} == \
                {f"{auto[e]} → {s}" for e, s in edits.items()}
            page.wait_for_selector("#spectrogram .main-svg")  # drawn from its own request
            page.click("#trail-box summary")
            page.evaluate("window.scrollTo(0, 0)")
            top = page.locator("#results").bounding_box()["y"]
            bottom = page.locator("#trail-box").bounding_box()
            page.screenshot(path=str(shots / "web-review.png"), full_page=True,
                            clip={"x": 0, "y": top, "width": 1280, "height": bottom["y"] + bottom["height"] + 10 - top})

            page.click("#download-reviewed")
            name = f"{EXAMPLE.stem}.reviewed.hypnogram.csv"
            page.wait_for_selector(f'a.download.reviewed[data-name="{name}"]')
            with page.expect_download() as dl:
                page.click(f'a.download.reviewed[data-name="{name}"]')
            got = tmp_path / "reviewed.csv"
            dl.value.save_as(got)
            job_id = page.evaluate("state.job")

            # A second tab on the same night: its edit of epoch 10 and the first tab's next edit both land.
            tab2 = ctx.new_page()
            tab2.set_default_timeout(TIMEOUT_MS)
            tab2.goto(f"{server}/#job={job_id}")
            tab2.wait_for_function("document.querySelector('#trail-count').textContent === '3'")
            for _ in range(10):
                tab2.keyboard.press("ArrowRight")
            tab2.wait_for_function("document.querySelector('#review-epoch').textContent.startsWith('epoch 11 ')")
            tab2.keyboard.press("w")
            tab2.wait_for_function("document.querySelector('#trail-count').textContent === '4'")
            page.keyboard.press("Home")
            at(0)
            page.keyboard.press("ArrowRight")
            at(1)
            page.keyboard.press("2")  # tab 1 has not seen tab 2's edit; the server keeps both
            page.wait_for_function("document.querySelector('#trail-count').textContent === '5'")
            both = page.evaluate("state.review")
            assert both["edits"]["10"] == "W" and both["edits"]["1"] == "N2"
            assert len({t["by"] for t in both["trail"][-2:]}) == 2  # two tabs in the trail
            tab2.close()

            # A new upload: nothing of the previous job is left (status, button, results).
            page.set_input_files("#file", str(EXAMPLE))
            page.wait_for_selector("#montage-section:not([hidden])")
            page.wait_for_function("document.querySelector('#upload-status').textContent.startsWith('uploaded')")
            assert page.is_hidden("#results") and page.text_content("#job-status") == ""
            assert page.is_enabled("#run") and page.is_hidden("#cancel")
            page.screenshot(path=str(shots / "web-after-new-upload.png"), full_page=True)
            # A refused file: the error alone, no description of the previous recording under it.
            page.set_input_files("#file", str(_ecg_only(tmp_path / "ecg.edf")))
            page.wait_for_function("document.querySelector('#error').textContent.startsWith('ecg.edf: no ')")
            assert page.text_content("#recording-info") == "" and page.is_hidden("#results")
            assert page.is_hidden("#run") and page.is_hidden("#open-outputs")
            page.screenshot(path=str(shots / "web-after-refused-file.png"), full_page=True)
        finally:
            ctx.close()

    rows = _csv_rows(got)
    expected = list(auto)
    for e, s in edits.items():
        expected[e] = s
    assert [r["stage"] for r in rows] == expected
    assert [r["review"] for r in rows] == ["reviewed" if i in edits else "auto" for i in range(len(rows))]
    tst = sleep_statistics(_stage_codes(expected))["TST"]
    assert tst != sleep_statistics(_stage_codes(auto))["TST"] or any(a in ("W",) for a in (first, second, third))
    head = [ln for ln in got.read_text().splitlines() if ln.startswith("#")]
    assert any(f"TST {tst:g} min" in ln for ln in head), head
    trail = json.loads(urllib.request.urlopen(f"{server}/api/jobs/{job_id}/review").read())["trail"]
    assert [(t["epoch"], t["old"], t["new"]) for t in trail[:3]] == [(e, auto[e], s) for e, s in edits.items()]
    assert [(t["epoch"], t["old"], t["new"]) for t in trail[3:]] == [(10, first, "W"), (1, auto[1], "N2")]
    assert all(t["time"].endswith("+00:00") for t in trail)
