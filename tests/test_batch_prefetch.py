"""Batch staging with prefetch: file k+1 is read and chained on a CPU thread while the model stages file k
(what keeps a GPU busy). Results, their order, each file's outputs and each file's own error are those of a
plain run; the overlap itself is shown with events (no timing)."""

from __future__ import annotations

import threading

import numpy as np

from staging.batch import OutputOptions, ReadOptions, run_batch
from staging.stager import Stager
from tests.conftest import write_edf
from tests.eeg_noise import pink

NAMES = ("n1", "n2_broken", "n3", "n4")


def nights(folder):
    rng = np.random.default_rng(7)
    paths = []
    for k, name in enumerate(NAMES):
        p = folder / f"{name}.edf"
        if "broken" in name:
            p.write_bytes(b"0       not an EDF header" + b" " * 300)
        else:
            n = (24 + 6 * k) * 3000
            # n3's EEG at 1009 Hz: its resampling ratio is approximated, a note in its own outputs only
            fs = 1009.0 if name == "n3" else 100.0
            write_edf(p, {"EEG C3-M2": (pink(rng, int(n * fs / 100), 20.0), fs),
                          "EOG E1-M2": (pink(rng, n, 30.0), 100.0)})
        paths.append(p)
    return paths


class SpyStager(Stager):
    """A Stager whose model part for file k waits (an event, not a clock) until file k+1's preparation
    has begun: with prefetch this can only happen on another thread; every call is logged."""

    def __init__(self, *a, wait_for_next: bool, **k):
        super().__init__(*a, **k)
        self.begun = {n: threading.Event() for n in NAMES}
        self.calls: list[tuple[str, str, str]] = []
        self.wait_for_next = wait_for_next

    def prepare(self, source, *a, **k):
        self.calls.append(("prepare", k["name"], threading.current_thread().name))
        self.begun[k["name"]].set()
        return super().prepare(source, *a, **k)

    def finish(self, prepared, *a, **k):
        self.calls.append(("finish", prepared.name, threading.current_thread().name))
        i = NAMES.index(prepared.name)
        if self.wait_for_next and i + 1 < len(NAMES):
            assert self.begun[NAMES[i + 1]].wait(timeout=120), f"{NAMES[i + 1]} was not read ahead"
        return super().finish(prepared, *a, **k)


def run(tmp_path, tiny_weights, paths, prefetch):
    stager = SpyStager(tiny_weights, device="cpu", stride=5, wait_for_next=prefetch)
    out = tmp_path / ("ahead" if prefetch else "plain")
    res = run_batch(paths, stager, ReadOptions(), OutputOptions(out, ("csv",)), echo=lambda s: None,
                    progress_bar=False, prefetch=prefetch)
    return stager, out, res


def test_prefetch_overlaps_and_changes_nothing(tmp_path, tiny_weights):
    paths = nights(tmp_path)
    plain_stager, plain_out, plain = run(tmp_path, tiny_weights, paths, prefetch=False)
    spy, ahead_out, ahead = run(tmp_path, tiny_weights, paths, prefetch=True)
    # the same results in the same order, the broken file failing with its own reason
    assert [(r.name, r.status, r.reason, r.n_epochs) for r in ahead] == \
        [(r.name, r.status, r.reason, r.n_epochs) for r in plain]
    assert [r.status for r in ahead] == ["ok", "failed", "ok", "ok"] and "n2_broken" in str(ahead[1].path)
    assert [r.lines for r in ahead] == [r.lines for r in plain]
    assert [r.warnings for r in ahead] == [r.warnings for r in plain]
    assert [any("approximated" in w for w in r.warnings) for r in ahead] == [False, False, True, False]
    for a, b in zip(ahead, plain):
        if a.status == "ok":
            assert np.array_equal(a.night.probabilities, b.night.probabilities)
            assert (ahead_out / f"{a.name}.hypnogram.csv").read_bytes() == \
                (plain_out / f"{b.name}.hypnogram.csv").read_bytes()
    # files 2-4 were prepared on the prefetch thread, the model ran on the caller's thread only
    main = threading.current_thread().name
    prepared_on = {name: thread for kind, name, thread in spy.calls if kind == "prepare"}
    assert prepared_on["n1"] == main
    assert all(prepared_on[n].startswith("lpsgm-prefetch") for n in NAMES[1:])
    assert {thread for kind, _, thread in spy.calls if kind == "finish"} == {main}
    assert all(thread == main for _, _, thread in plain_stager.calls)
