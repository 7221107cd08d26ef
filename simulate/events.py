"""Events table: where the simulator placed transient events, beside each simulated EDF.

``<stem>.events.tsv`` (tab-separated, one header line) has the columns

* ``onset`` - seconds from the start of the recording (the EDF's first sample),
* ``duration`` - seconds,
* ``kind`` - what was placed: ``spindle``, ``kcomplex``, ``vertex``, ``slow_wave``, ``sawtooth``
  (brain); ``alpha`` (a run of eyes-closed wake with posterior alpha); ``rem`` (rapid eye movement),
  ``saccade`` (waking saccade), ``sem`` (slow rolling eye movement), ``blink``; ``twitch`` (chin);
  ``pop``, ``sweat``, ``movement`` (artefacts),
* ``channels`` - comma-separated simulator sites of the file's channels that the event reaches
  with at least a quarter of its largest amplitude among them (``C4-M1``, ``E1-M2``, ``CHIN``), or
  ``all``.

Rows are sorted by onset. The kinds are the simulator's own ground truth, not a scorer's.
"""

from __future__ import annotations

from pathlib import Path

from preprocess.core.atomic import atomic_write_text

COLUMNS = ("onset", "duration", "kind", "channels")


def events_path(edf_path) -> Path:
    """``dir/SIM0001.edf`` -> ``dir/SIM0001.events.tsv``."""
    p = Path(edf_path)
    return p.with_name(p.stem + ".events.tsv")


def write_events(path, events: list[dict]) -> Path:
    """Write ``events`` (dicts with :data:`COLUMNS`) atomically as TSV; onsets/durations in ms precision."""
    path = Path(path)
    lines = ["\t".join(COLUMNS)]
    for e in sorted(events, key=lambda e: (e["onset"], e["kind"])):
        lines.append(f"{e['onset']:.3f}\t{e['duration']:.3f}\t{e['kind']}\t{e['channels']}")
    return atomic_write_text(path, "\n".join(lines) + "\n")


def read_events(path) -> list[dict]:
    """Read an events table: a list of dicts ``{"onset": float s, "duration": float s, "kind": str,
    "channels": list[str] (["all"] for every channel)}`` in file order (sorted by onset).

    ``path`` may be the ``.events.tsv`` itself or the EDF it sits beside. Raises ``ValueError``
    naming the file when the header or a row is malformed.
    """
    path = Path(path)
    if not path.name.endswith(".events.tsv"):
        path = events_path(path)
    lines = path.read_text().splitlines()
    if not lines or tuple(lines[0].split("\t")) != COLUMNS:
        raise ValueError(f"{path}: not an events table (header must be {' '.join(COLUMNS)})")
    out = []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        try:
            onset, duration, kind, channels = parts
            out.append({"onset": float(onset), "duration": float(duration), "kind": kind,
                        "channels": channels.split(",")})
        except ValueError:
            raise ValueError(f"{path}: line {i} is not onset<TAB>duration<TAB>kind<TAB>channels") from None
    return out
