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
