"""Many processes sharing one folder: shard selection, owner-tagged temp files, claims, shared --out,
and the batch/learning-rate rule of train.py."""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from preprocess.core.atomic import atomic_write_text
from preprocess.core.claims import Claim, Owner, host_tag, remove_stale_temp_files, temp_name, try_claim
from preprocess.core.shards import ShardError, parse_shard, select
from tests import corpus
from tests.test_ingest import cli

# ---- shards ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("env, want", [
    ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "9"}, (1, 10)),
    ({"SLURM_ARRAY_TASK_ID": "10", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "10"}, (10, 10)),
    ({"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "18",
      "SLURM_ARRAY_TASK_STEP": "2"}, (4, 10)),
    ({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "4"}, (3, 4)),
    ({"SGE_TASK_ID": "3", "SGE_TASK_FIRST": "1", "SGE_TASK_LAST": "5", "SGE_TASK_STEPSIZE": "1"}, (3, 5)),
])
def test_shard_auto_reads_the_array_job(env, want):
    assert parse_shard("auto", env) == want


def test_shard_auto_covers_every_item_once_over_the_array():
    items = list(range(23))
    env = {"SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "4"}
    parts = [select(items, "auto", env | {"SLURM_ARRAY_TASK_ID": str(t)}) for t in range(5)]
    assert sorted(x for p in parts for x in p) == items and [len(p) for p in parts] == [5, 5, 5, 4, 4]


@pytest.mark.parametrize("spec, env, message", [
    ("auto", {}, "not in an array job"),
    ("auto", {"SGE_TASK_ID": "undefined"}, "not in an array job"),
    ("auto", {"SLURM_ARRAY_TASK_ID": "3"}, "SLURM_ARRAY_TASK_MAX"),
    ("auto", {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "8",
              "SLURM_ARRAY_TASK_STEP": "2"}, "not on the array's grid"),
    ("0/3", {}, "1 <= i <= n"), ("2-3", {}, "i/n"),
])
def test_bad_shards_are_one_line_errors(spec, env, message):
    with pytest.raises(ShardError, match=message):
        parse_shard(spec, env)


# ---- temp files and claims ------------------------------------------------------------------------


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def live_process():
    with subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE) as proc:
        yield proc.pid
        proc.stdin.close()


def test_a_killed_process_not_yet_reaped_counts_as_gone(live_process):
    import signal

    from preprocess.core.claims import pid_alive

    assert pid_alive(live_process) and pid_alive(os.getpid()) and not pid_alive(dead_pid())
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    proc.send_signal(signal.SIGKILL)
    while Path(f"/proc/{proc.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
        os.sched_yield()  # until the kernel has made it a zombie (its parent, this test, has not reaped it)
    assert not pid_alive(proc.pid)
    proc.wait()
    proc.stdin.close()


def test_temp_names_carry_host_and_pid(tmp_path):
    name = temp_name(tmp_path / "a.h5").name
    assert name.startswith(f".a.h5.{host_tag()}.{os.getpid()}.") and name.endswith(".tmp")
    assert host_tag("node-7.cluster.example.org") == "node-7-cluster-example-org"


def test_clean_up_removes_only_provably_abandoned_temp_files(tmp_path, live_process):
    me = host_tag()
    dead = tmp_path / f".a.h5.{me}.{dead_pid()}.00000000.tmp"
    live = tmp_path / f".b.h5.{me}.{live_process}.00000000.tmp"
    mine = tmp_path / f".c.h5.{me}.{os.getpid()}.00000000.tmp"
    other_host = tmp_path / f".d.h5.elsewhere-{me}.{dead_pid()}.00000000.tmp"
    old_style = tmp_path / ".e.h5.0a1b2c3d.tmp"
    old_other_host = tmp_path / f".f.h5.elsewhere-{me}.1.00000000.tmp"
    for p in (dead, live, mine, other_host, old_style, old_other_host):
        p.write_text("x")
    hours_ago = time.time() - 7 * 3600  # older than STALE_AFTER_S (6 h): abandoned whoever wrote it
    os.utime(old_other_host, (hours_ago, hours_ago))
    removed = remove_stale_temp_files(tmp_path, ".*.h5*.tmp")
    assert sorted(p.name for p in removed) == sorted([dead.name, old_other_host.name])
    assert live.exists() and mine.exists() and other_host.exists() and old_style.exists()


def test_claim_is_exclusive_and_released(tmp_path):
    path = tmp_path / "n.claim"
    first = try_claim(path, timeout_s=60)
    assert isinstance(first, Claim)
    doc = json.loads(path.read_text())
    assert (doc["host"], doc["pid"]) == (host_tag(), os.getpid()) and abs(doc["start"] - time.time()) < 60
    assert try_claim(path, timeout_s=60) == first.owner  # held (by us, alive): not taken again
    first.release()
    assert not path.exists() and isinstance(try_claim(path, timeout_s=60), Claim)


def test_dead_or_timed_out_claims_are_taken_over_once_with_a_warning(tmp_path, live_process):
    dead = Owner(host_tag(), dead_pid(), time.time(), "deadbeef")
    (tmp_path / "a.claim").write_text(dead.to_json())
    warnings: list[str] = []
    got = try_claim(tmp_path / "a.claim", 60, warnings.append)
    assert isinstance(got, Claim) and got.taken_over == dead
    assert warnings == [f"warning: took over the claim on a held by {dead.describe()}: its owner is gone"]
    # a second process seeing the same dead claim (read before the take-over) does not take it again
    assert not isinstance(try_claim(tmp_path / "a.claim", 60), Claim)
    # a live owner on another host: left alone until the timeout, then taken over
    far = Owner("elsewhere", live_process, time.time() - 120, "cafe")
    (tmp_path / "b.claim").write_text(far.to_json())
    assert try_claim(tmp_path / "b.claim", 600) == far
    got = try_claim(tmp_path / "b.claim", 60, warnings.append)
    assert isinstance(got, Claim) and "older than the claim timeout (60 s)" in warnings[-1]
    # a claim being written (empty) counts as held by an unknown owner, not as free
    (tmp_path / "c.claim").write_text("")
    assert try_claim(tmp_path / "c.claim", 60).token == "unreadable"


# ---- one --out shared by several inference processes ----------------------------------------------


def nights(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        corpus.write(folder / f"night{i}.edf", corpus.PSG, seconds=90.0)
    return folder


def rows(out: Path) -> list[dict]:
    with open(out / "summary.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_shared_out_waits_for_live_claims_takes_over_dead_ones_and_keeps_every_row(tmp_path, tiny_weights,
                                                                                   live_process, monkeypatch):
    from staging import batch

    folder, out = nights(tmp_path / "in", 3), tmp_path / "out"
    rows_dir = out / "summary.d"
    rows_dir.mkdir(parents=True)
    # another host's process stages night0 right now; a process of this host died staging night1
    elsewhere = Owner("elsewhere", live_process, time.time(), "a1")
    (rows_dir / "night0.claim").write_text(elsewhere.to_json())
    gone = Owner(host_tag(), dead_pid(), time.time() - 5, "b2")
    (rows_dir / "night1.claim").write_text(gone.to_json())
    # and a row from an earlier batch in the same folder
    atomic_write_text(rows_dir / "old.csv", "name,status\nold,ok\n")
    waits = []

    def other_process_finishes_night0(seconds):  # what the other host does while we wait
        waits.append(seconds)
        atomic_write_text(rows_dir / "night0.csv", "name,status\nnight0,ok\n")
        (rows_dir / "night0.claim").unlink()

    monkeypatch.setattr(batch, "_wait_for_others", other_process_finishes_night0)
    code, lines = cli(folder, "--out", out, "--weights", tiny_weights)
    assert code == 0, lines
    assert f"    {folder / 'night0.edf'}: being staged by another process ({elsewhere.describe()}); " \
           "coming back to it" in lines
    assert f"warning: took over the claim on night1 held by {gone.describe()}: its owner is gone" in lines
    assert f"[1/3] skipped {folder / 'night0.edf'}: staged by another process during this run (ok)" in lines
    assert sum(" ok " in line for line in lines) == 2 and waits == [batch.CLAIM_POLL_S]
    got = {r["name"]: r["status"] for r in rows(out)}
    assert got == {"old": "ok", "night0": "ok", "night1": "ok", "night2": "ok"}
    assert sorted(p.name for p in rows_dir.iterdir()) == [
        "night0.csv", "night1.claim.b2.taken", "night1.csv", "night2.csv", "old.csv"]


def test_a_row_written_by_another_process_during_the_run_is_not_staged_again(tmp_path, tiny_weights,
                                                                            monkeypatch):
    from staging import batch

    folder, out = nights(tmp_path / "in", 2), tmp_path / "out"
    real = batch.SharedOut.claim

    def other_finishes_night1_first(self, name):  # another process stages night1 while we stage night0
        if name == "night1":
            self.write_row({"name": "night1", "status": "failed", "reason": "elsewhere"})
        return real(self, name)

    monkeypatch.setattr(batch.SharedOut, "claim", other_finishes_night1_first)
    code, lines = cli(folder, "--out", out, "--weights", tiny_weights, "--shard", "1/1")
    assert code == 0
    assert any(line.endswith("night1.edf: staged by another process during this run (failed)") for line in lines)
    assert {r["name"]: r["status"] for r in rows(out)} == {"night0": "ok", "night1": "failed"}


def test_static_shards_split_the_files_and_share_the_summary(tmp_path, tiny_weights):
    folder, out = nights(tmp_path / "in", 3), tmp_path / "out"
    env = {"SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "1"}
    staged = []
    for task in ("1", "0"):
        os.environ.update(env | {"SLURM_ARRAY_TASK_ID": task})
        try:
            code, lines = cli(folder, "--out", out, "--weights", tiny_weights, "--shard", "auto")
        finally:
            for k in [*env, "SLURM_ARRAY_TASK_ID"]:
                os.environ.pop(k, None)
        assert code == 0
        staged.append(sorted(line.split(" -> ")[1].split(":")[0] for line in lines if " ok " in line))
    assert staged == [["night1"], ["night0", "night2"]]
    assert sorted(r["name"] for r in rows(out)) == ["night0", "night1", "night2"]
    code, lines = cli(folder, "--out", out, "--weights", tiny_weights, "--shard", "3/2")
    assert code == 2 and lines[-1].startswith("error: --shard must be i/n")


# ---- train.py: global batch and learning-rate rule ------------------------------------------------


@pytest.mark.parametrize("given, world, want", [
    ({"global_batch_size": 32}, 8, (4, 1e-4)),
    ({"global_batch_size": 256, "lr_scaling": "sqrt"}, 32, (8, 1e-4 * 8 ** 0.5)),
    ({"global_batch_size": 64, "lr_scaling": "linear"}, 4, (16, 2e-4)),
    ({"batch_size": 4}, 2, (4, 1e-4)),
    ({}, 1, (32, 1e-4)),
])
def test_global_batch_gives_the_per_rank_batch_and_the_lr(given, world, want):
    from train import batch_and_lr

    args = argparse.Namespace(**({"global_batch_size": None, "batch_size": None, "lr": 1e-4,
                                  "lr_scaling": "none"} | given))
    per_rank, lr = batch_and_lr(args, world)
    assert per_rank == want[0] and lr == pytest.approx(want[1])


def test_global_batch_that_does_not_divide_is_a_clear_error(tmp_path):
    import train
    from engine.cli_errors import InputError

    with pytest.raises(InputError, match=r"--global-batch-size 30 does not divide over 4 processes"):
        os.environ["WORLD_SIZE"] = "4"
        try:
            train.main(["--data", str(tmp_path), "--out", str(tmp_path / "r"), "--global-batch-size", "30"])
        finally:
            os.environ.pop("WORLD_SIZE")


def test_checkpoints_follow_the_clock_at_log_steps(tmp_path, monkeypatch):
    import engine.loop
    import train
    from tests.test_train import toy_root

    saved = []
    real = engine.loop.save_state
    monkeypatch.setattr(engine.loop, "save_state", lambda *a, **k: saved.append(k["step"]) or real(*a, **k))
    root = toy_root(tmp_path / "h5", {"aa": 2, "bb": 2}, n_epochs=12, seed=5)
    # 1e-9 minutes: due at every look; the looks are the log steps (2, 4), plus the end (5)
    train.main(["--data", str(root), "--out", str(tmp_path / "r"), "--model", "lpsgm-small", "--seq-len", "5",
                "--batch-size", "1", "--workers", "0", "--max-steps", "5", "--log-every", "2", "--ckpt-every", "0",
                "--ckpt-minutes", "1e-9", "--val-fraction", "0", "--wake-margin", "-1", "--precision", "fp32",
                "--device", "cpu", "--warmup-steps", "1"])
    assert saved == [2, 4, 5]
