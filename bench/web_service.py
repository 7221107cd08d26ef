"""The web service end to end: time from upload to hypnogram, and the server's memory on a big upload.

Starts ``python -m web`` on 127.0.0.1 (a free port, a temporary data folder) as a user would, then

- ``latency FILE``: uploads FILE (streamed), starts the job with the automatic montage, polls
  until done and fetches the hypnogram JSON: the time a page user waits. Prints one line:
  ``upload_s``, ``job_s`` (queue + staging + outputs + viewer signals, as the worker reports it),
  ``total_s`` (upload start → hypnogram JSON received), ``worker_cpu_s`` (CPU seconds of the
  staging process: the load-independent figure on a shared machine), epochs.
- ``upload --gib G``: streams a G-GiB EDF (a valid 9-channel header declaring exactly that much
  data, zeros after it) without staging it, and prints the server's peak RSS (``VmHWM``) before
  and after, and the worker's (which never sees the upload).

Usage::

    python bench/web_service.py latency examples/simulated_night.edf
    python bench/web_service.py latency /tmp/sim8h/rec.edf
    python bench/web_service.py upload --gib 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(pid: int, key: str) -> int:
    """A ``/proc/PID/status`` memory field in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(p.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    import os

    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _worker(pid: int) -> int | None:
    """The staging process: the server's child running ``multiprocessing`` spawn."""
    for c in _children(pid):
        cmd = Path(f"/proc/{c}/cmdline").read_bytes()
        if b"multiprocessing" in cmd and b"resource_tracker" not in cmd:
            return c
    return None


class Server:
    def __init__(self, extra: tuple = ()):
        self.port = _free_port()
        self.tmp = tempfile.TemporaryDirectory(prefix="lpsgm-web-bench-")
        self.proc = subprocess.Popen([sys.executable, "-m", "web", "--port", str(self.port), "--data-dir",
                                      self.tmp.name, "--max-upload-gb", "8", *extra], cwd=REPO,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(base_url=self.url, timeout=600)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 120:
            try:
                self.client.get("/api/info")
                break
            except httpx.TransportError:
                time.sleep(0.2)
        while _worker(self.proc.pid) is None and time.monotonic() - t0 < 120:
            time.sleep(0.2)

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.tmp.cleanup()


def _chunks(path: Path, size: int = 1 << 20):
    with open(path, "rb") as fh:
        while block := fh.read(size):
            yield block


def latency(path: Path, formats: str) -> None:
    srv = Server(("--formats", formats))
    try:
        worker = _worker(srv.proc.pid)
        cpu0 = -1.0
        while (cpu := _cpu_s(worker)) != cpu0:  # wait for the model to be loaded: a warm service
            cpu0 = cpu
            time.sleep(1.0)
        t0 = time.monotonic()
        r = srv.client.post("/api/jobs", params={"filename": path.name}, content=_chunks(path),
                            headers={"content-type": "application/octet-stream",
                                     "content-length": str(path.stat().st_size)})
        r.raise_for_status()
        job = r.json()
        t_up = time.monotonic() - t0
        srv.client.post(f"/api/jobs/{job['id']}/start").raise_for_status()
        while (s := srv.client.get(f"/api/jobs/{job['id']}").json())["state"] not in ("done", "failed"):
            time.sleep(0.1)
        if s["state"] != "done":
            raise SystemExit(f"job failed: {s['reason']}")
        hyp = srv.client.get(f"/api/jobs/{job['id']}/hypnogram").json()
        total = time.monotonic() - t0
        cpu = _cpu_s(worker) - cpu0
        print(f"web latency {path.name}: epochs={len(hyp['stage'])} size_mb={path.stat().st_size / 1e6:.1f} "
              f"upload_s={t_up:.2f} job_s={s['seconds']:.1f} total_s={total:.1f} worker_cpu_s={cpu:.1f} "
              f"server_hwm_mb={_status(srv.proc.pid, 'VmHWM') / 1024:.0f} "
              f"worker_hwm_mb={_status(worker, 'VmHWM') / 1024:.0f}")
    finally:
        srv.close()


def _big_edf_header(total_bytes: int) -> tuple[bytes, int]:
    """Header of a 9-channel 256-Hz EDF whose declared data fills ``total_bytes``."""
    import edfio

    labels = ["EEG F3-M2", "EEG F4-M1", "EEG C3-M2", "EEG C4-M1", "EEG O1-M2", "EEG O2-M1", "EOG E1-M2",
              "EOG E2-M1", "EMG Chin"]
    sigs = [edfio.EdfSignal(np.zeros(256), 256, label=lab, physical_dimension="uV", physical_range=(-500, 500))
            for lab in labels]
    buf = io.BytesIO()
    edfio.Edf(sigs, starttime=dt.time(22, 0), data_record_duration=1).write(buf)
    raw = bytearray(buf.getvalue())
    header_bytes = int(raw[184:192])
    record = 9 * 256 * 2
    n = (total_bytes - header_bytes) // record
    raw[236:244] = f"{n:<8d}".encode()
    return bytes(raw[:header_bytes]), header_bytes + n * record


def upload(gib: float) -> None:
    srv = Server()
    try:
        header, total = _big_edf_header(int(gib * (1 << 30)))
        pid = srv.proc.pid
        before = _status(pid, "VmHWM")

        def body():
            yield header
            left, zeros = total - len(header), bytes(1 << 20)
            while left > 0:
                yield zeros[:min(left, len(zeros))]
                left -= len(zeros)

        t0 = time.monotonic()
        r = srv.client.post("/api/jobs", params={"filename": "big.edf"}, content=body(),
                            headers={"content-type": "application/octet-stream", "content-length": str(total)})
        took = time.monotonic() - t0
        r.raise_for_status()
        after = _status(pid, "VmHWM")
        worker = _worker(pid)
        print(f"web upload {total / (1 << 30):.2f} GiB: status={r.status_code} upload_s={took:.1f} "
              f"({total / 1e6 / took:.0f} MB/s) server_hwm_mb before={before / 1024:.0f} after={after / 1024:.0f} "
              f"worker_hwm_mb={_status(worker, 'VmHWM') / 1024 if worker else float('nan'):.0f} "
              f"epochs_declared={r.json()['recording']['n_epochs']}")
        srv.client.delete(f"/api/jobs/{r.json()['id']}")
    finally:
        srv.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("latency")
    a.add_argument("file", type=Path)
    a.add_argument("--formats", default="all", help="the service's --formats (default all)")
    b = sub.add_parser("upload")
    b.add_argument("--gib", type=float, default=1.0)
    args = ap.parse_args()
    latency(args.file, args.formats) if args.cmd == "latency" else upload(args.gib)


if __name__ == "__main__":
    main()
