"""``python -m staging.weights fetch official`` against a loopback HTTP server (never the internet):
download with a progress bar, unpacking, key/shape verification, sha256, atomic install, then
``inference.py`` uses the fetched file."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest
import torch

from models.official_spec import official_shapes
from staging.weights import main as weights_main
from tests.conftest import write_edf
from tests.robust_corpus import base_night


def fake_official(path: Path, blocks: int = 1, wrong: str | None = None) -> Path:
    """An official-format file: ``{"model_state_dict": {"module.…": tensor}}`` with the published shapes
    of N blocks (random values); ``wrong`` names a key given one extra row."""
    g = torch.Generator().manual_seed(blocks)
    state = {}
    for key, shape in official_shapes()[f"block{blocks}"].items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7, dtype=torch.int64)
        else:
            shape = (shape[0] + 1, *shape[1:]) if key == wrong else shape
            t = torch.randn(shape, generator=g) * 0.05
            state[key] = t.abs() + 0.5 if key.endswith("running_var") else t
    torch.save({"model_state_dict": state, "epoch": 3}, path)
    return path


@pytest.fixture(scope="module")
def official_n1(tmp_path_factory) -> Path:
    return fake_official(tmp_path_factory.mktemp("official") / "LPSGM_small.pth")


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server over ``tmp_path/srv``; yields (folder, base URL)."""
    folder = tmp_path / "srv"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def fetch_cli(capsys, url: str, dest: Path, *extra: str) -> tuple[int, str, str]:
    code = weights_main(["fetch", "official", "--url", url, "--dest", str(dest), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_fetch_verifies_records_installs_and_inference_uses_it(tmp_path, server, official_n1, capsys):
    folder, base = server
    (folder / "LPSGM_small.pth").write_bytes(official_n1.read_bytes())
    digest = hashlib.sha256(official_n1.read_bytes()).hexdigest()
    dest = tmp_path / "weights"
    code, out, err = fetch_cli(capsys, f"{base}/LPSGM_small.pth", dest)
    assert code == 0, err
    assert "100%" in err  # gdown's progress bar
    assert f"verified LPSGM_small.pth: official LPSGM, N = 1 blocks, every key and shape as published; " \
           f"sha256 {digest}" in out
    installed = dest / "ched32_seqed64_ch9_seql20_block1.pth"
    assert installed.read_bytes() == official_n1.read_bytes()
    assert installed.stat().st_mode & 0o044 == 0o044  # a normal file, not gdown's 0600 temp file
    record = json.loads((dest / f"{installed.name}.source.json").read_text())
    assert record["sha256"] == digest and record["n_blocks"] == 1 and record["source"].startswith(base)
    assert record["software_version"].startswith("lpsgm ")
    assert sorted(p.name for p in dest.iterdir()) == [installed.name, f"{installed.name}.source.json"]

    # a second fetch of the same file keeps it; inference.py then stages with it
    assert fetch_cli(capsys, f"{base}/LPSGM_small.pth", dest, "--quiet")[0] == 0
    import inference

    signals = base_night()  # 20 epochs of the bundled example: they pass the signal-quality gate
    night = write_edf(tmp_path / "night.edf", {"C3-M2": (signals["EEG C3-M2"], 100.0),
                                               "E1-M2": (signals["EOG E1-M2"], 100.0)})
    out_dir = tmp_path / "out"
    assert inference.main([str(night), "--weights", str(dest), "--out", str(out_dir), "--no-progress",
                           "--formats", "csv,stats"]) == 0
    printed = capsys.readouterr().out
    assert f"weights: {installed} [official]" in printed and "signal chain: published" in printed
    stats = json.loads((out_dir / "night.stats.json").read_text())
    assert stats["weights_kind"] == "official" and stats["model"]["n_blocks"] == 1


def test_default_destination_is_where_inference_looks():
    import inspect

    from staging import fetch, weights

    assert inspect.signature(fetch.fetch).parameters["dest"].default == weights.WEIGHTS_DIR
    assert inspect.signature(weights.find_weights).parameters["folder"].default == weights.WEIGHTS_DIR
    assert {fetch.official_name(n) for n in (1, 4, 6)} == set(weights.OFFICIAL_NAMES)
    assert fetch.SOURCES["official"] == "https://drive.google.com/uc?id=1Gg8mc2AC2Pt_sa4POp9kMZO92nW5XuLu"


def test_archives_are_unpacked(tmp_path, server, official_n1, capsys):
    folder, base = server
    with zipfile.ZipFile(folder / "weights.zip", "w") as z:
        z.write(official_n1, "LPSGM/ched32_seqed64_ch9_seql20_block1.pth")
        z.writestr("LPSGM/README.txt", "not a checkpoint")
    code, out, err = fetch_cli(capsys, f"{base}/weights.zip", tmp_path / "w1", "--quiet")
    assert code == 0, err
    assert (tmp_path / "w1" / "ched32_seqed64_ch9_seql20_block1.pth").read_bytes() == official_n1.read_bytes()

    with tarfile.open(folder / "weights.tar.gz", "w:gz") as t:
        t.add(official_n1, "weights/block1.pth")
    code, out, err = fetch_cli(capsys, f"{base}/weights.tar.gz", tmp_path / "w2", "--quiet")
    assert code == 0, err
    assert (tmp_path / "w2" / "ched32_seqed64_ch9_seql20_block1.pth").read_bytes() == official_n1.read_bytes()


def test_path_traversal_in_an_archive_is_refused(tmp_path, server, capsys):
    folder, base = server
    with tarfile.open(folder / "evil.tar", "w") as t:
        data = b"x" * 10
        info = tarfile.TarInfo("../../evil.pth")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    dest = tmp_path / "sub" / "weights"
    code, out, err = fetch_cli(capsys, f"{base}/evil.tar", dest, "--quiet")
    assert code == 1 and err == "error: archive member '../../evil.pth' points outside the archive: refused\n"
    assert not list(tmp_path.rglob("evil.pth")) and list(dest.iterdir()) == []


def test_wrong_shape_checkpoint_is_refused_with_one_line(tmp_path, server, capsys):
    folder, base = server
    key = "module.seq_encoder.transformer_blocks.0.mlp.linear_1.weight"
    assert key in official_shapes()["block1"]
    fake_official(folder / "bad.pth", wrong=key)
    dest = tmp_path / "weights"
    code, out, err = fetch_cli(capsys, f"{base}/bad.pth", dest, "--quiet")
    assert code == 1
    assert err == (f"error: bad.pth: not an official LPSGM checkpoint: {key} has shape [609, 608], the "
                   "published block1 has [608, 608] (1 key(s) differ)\n")
    assert list(dest.iterdir()) == []  # nothing installed, no temp folder left


def test_other_content_is_not_replaced_without_force(tmp_path, server, official_n1, capsys):
    folder, base = server
    (folder / "a.pth").write_bytes(official_n1.read_bytes())
    dest = tmp_path / "weights"
    dest.mkdir()
    mine = dest / "ched32_seqed64_ch9_seql20_block1.pth"
    mine.write_bytes(b"my own file")
    code, _, err = fetch_cli(capsys, f"{base}/a.pth", dest, "--quiet")
    assert code == 1 and "exists with other content: pass --force" in err and mine.read_bytes() == b"my own file"
    assert fetch_cli(capsys, f"{base}/a.pth", dest, "--quiet", "--force")[0] == 0
    assert mine.read_bytes() == official_n1.read_bytes()


def test_without_gdown_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gdown", None)
    code = None
    with pytest.raises(SystemExit) as info:
        weights_main(["fetch", "official", "--dest", str(tmp_path / "w")])
    code = info.value.code
    err = capsys.readouterr().err
    assert code == 2 and err == ("error: fetching the official weights: the Python package gdown is not installed; "
                                 "install it with: python3 -m pip install gdown (or everything: python3 -m pip "
                                 "install -r requirements.txt)\n")
    assert not (tmp_path / "w").exists()


def test_failed_download_is_one_line(tmp_path, server, capsys):
    _, base = server
    code, out, err = fetch_cli(capsys, f"{base}/absent.pth", tmp_path / "weights", "--quiet")
    assert code == 1 and err.startswith(f"error: download of {base}/absent.pth failed") and err.count("\n") == 1
    assert list((tmp_path / "weights").iterdir()) == []
