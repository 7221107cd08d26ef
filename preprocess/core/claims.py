"""Who owns a file on shared storage: owner-tagged temp names, stale clean-up, per-item claims.

Several processes on several hosts may write into one folder (preprocessing shards sharing
``--dst``, ``inference.py`` processes sharing ``--out``). Three rules keep them from racing:

* **Temp names carry their owner.** :func:`temp_name` gives ``.NAME.HOST.PID.XXXXXXXX.tmp``
  (host name reduced to letters, digits and ``-``), so a clean-up can tell whose file it is.
* **Clean-up removes only what is provably abandoned** (:func:`remove_stale_temp_files`): a temp
  file written by a process of *this* host that no longer exists, or one not written to for
  :data:`STALE_AFTER_S` seconds (6 h; a recording is written in seconds to minutes, and a writer
  touches its file all the time it writes). Another host's live process is never judged from here.
* **One claim per item** (:func:`try_claim`): ``NAME.claim`` created with ``O_CREAT | O_EXCL``
  (atomic on local file systems and on NFSv3+) holding JSON ``host``, ``pid``, ``start`` (Unix
  seconds) and a random ``token``. A claim whose owner is gone (same host, dead pid) or older than
  the timeout is taken over, once, by whoever first creates ``NAME.claim.TOKEN.taken`` for it.

Limits (documented in docs/cluster.md): "same host" means the same host name, so containers that
share a host name but not a process table must not share one folder; a reused pid keeps a dead
owner's file until the age limit (the safe direction: nothing live is ever removed).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = ["STALE_AFTER_S", "Claim", "Owner", "host_tag", "pid_alive", "remove_stale_temp_files", "temp_name",
           "try_claim"]

STALE_AFTER_S = 6 * 3600.0
"""Seconds without a write after which any temp file, whoever its owner, counts as abandoned."""

_TEMP = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


def host_tag(host: str | None = None) -> str:
    """This host's name as used in file names: letters, digits and ``-`` only, at most 63 characters.

    >>> host_tag("node01.cluster.example")
    'node01-cluster-example'
    """
    name = socket.gethostname() if host is None else host
    return (re.sub(r"[^A-Za-z0-9-]", "-", name)[:63]) or "host"


def temp_name(path: Path) -> Path:
    """A fresh temp path next to ``path``: ``.NAME.HOST.PID.XXXXXXXX.tmp`` (8 random hex digits)."""
    return path.parent / f".{path.name}.{host_tag()}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a process of another user counts; a zombie — killed,
    not yet reaped by its parent — does not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to someone else
        pass
    try:  # Linux: the state after the parenthesised command name; Z = zombie
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (macOS) or gone meanwhile
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _abandoned(path: Path, max_age_s: float, now: float) -> bool:
    """Whether temp file ``path`` is provably abandoned (see the module docstring)."""
    try:
        age = now - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if age > max_age_s:
        return True
    m = _TEMP.match(path.name)
    if m is None or m["host"] != host_tag():  # an old-style name, or another host: only the age tells
        return False
    pid = int(m["pid"])
    return pid != os.getpid() and not pid_alive(pid)


def remove_stale_temp_files(folder: str | os.PathLike, pattern: str = ".*.tmp",
                            max_age_s: float = STALE_AFTER_S) -> list[Path]:
    """Delete the abandoned temp files matching ``pattern`` in ``folder``; return those deleted.

    A temp file of a live writer (on this host, or written to in the last ``max_age_s`` seconds
    on any host) is left alone, so a process starting next to running ones never breaks them.
    """
    now, removed = time.time(), []
    for p in sorted(Path(folder).glob(pattern)):
        if p.is_file() and _abandoned(p, max_age_s, now):
            try:
                p.unlink()
            except FileNotFoundError:  # removed by another cleaner at the same time
                continue
            removed.append(p)
    return removed


@dataclass(frozen=True)
class Owner:
    """The holder of a claim, as written in the claim file."""

    host: str
    pid: int
    start: float  # Unix seconds
    token: str

    @classmethod
    def me(cls) -> Owner:
        return cls(host_tag(), os.getpid(), time.time(), secrets.token_hex(8))

    @classmethod
    def read(cls, path: Path) -> Owner | None:
        """The owner in ``path``; None when the claim is gone. A claim still being written (empty
        or cut) reads as an unknown owner that started when the file was last modified."""
        try:
            text = path.read_text(encoding="utf-8")
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return None
        try:
            d = json.loads(text)
            return cls(str(d["host"]), int(d["pid"]), float(d["start"]), str(d["token"]))
        except (ValueError, KeyError, TypeError):
            return cls("?", 0, mtime, "unreadable")

    def to_json(self) -> str:
        return json.dumps({"host": self.host, "pid": self.pid, "start": self.start, "token": self.token})

    def gone(self) -> bool:
        """Provably dead: a process of this host that no longer exists."""
        return self.host == host_tag() and self.pid != os.getpid() and not pid_alive(self.pid)

    def describe(self) -> str:
        started = dt.datetime.fromtimestamp(self.start, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{self.host} pid {self.pid} (since {started})"


@dataclass
class Claim:
    """A claim held by this process; :meth:`release` (or ``with``) removes it."""

    path: Path
    owner: Owner
    taken_over: Owner | None = None  # the dead/stale owner this claim replaced

    def release(self) -> None:
        """Remove the claim if it is still ours (a slow owner whose claim was taken over keeps its hands off)."""
        current = Owner.read(self.path)
        if current is not None and current.token == self.owner.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _create(path: Path, owner: Owner) -> bool:
    """Create ``path`` holding ``owner`` with O_EXCL; False when it already exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(owner.to_json())
    return True


def try_claim(path: str | os.PathLike, timeout_s: float,
              warn: Callable[[str], None] | None = None) -> Claim | Owner:
    """Claim the item of claim file ``path`` for this process.

    Parameters
    ----------
    path : path-like
        The claim file (its folder must exist).
    timeout_s : float
        A claim older than this (seconds since its owner took it) is taken over even when its
        owner may be alive on another host.
    warn : callable, optional
        Receives one line when a claim is taken over.

    Returns
    -------
    Claim or Owner
        Our :class:`Claim`, or the :class:`Owner` of the live claim that holds the item.
    """
    path = Path(path)
    me, held = Owner.me(), None
    for _ in range(3):  # the claim may vanish (released) between our attempts
        if _create(path, me):
            return Claim(path, me)
        held = Owner.read(path) or held
        if held is None:
            continue
        stale = "its owner is gone" if held.gone() else (
            f"it is older than the claim timeout ({timeout_s:g} s)" if time.time() - held.start > timeout_s else "")
        if not stale:
            return held
        # Exactly one process may replace this particular stale claim: the one creating its marker.
        if not _create(path.with_name(f"{path.name}.{held.token}.taken"), me):
            return Owner.read(path) or held
        tmp = temp_name(path)
        tmp.write_text(me.to_json(), encoding="utf-8")
        os.replace(tmp, path)
        if warn is not None:
            warn(f"warning: took over the claim on {path.stem} held by {held.describe()}: {stale}")
        return Claim(path, me, taken_over=held)
    return held if held is not None else Owner("?", 0, time.time(), "busy")  # claimed and released in a loop
