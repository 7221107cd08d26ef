"""The software version: the ``VERSION`` file at the repository root, plus the git commit in a checkout.

One string names the code that produced a result; every entry point prints it (``--version``),
every staging output and every checkpoint JSON carries it::

    >>> from preprocess.core.version import __version__, software_version
    >>> software_version().startswith(f"lpsgm {__version__}")
    True

It lives in the lowest layer so that ``preprocess``, ``models``, ``engine``, ``staging`` and the
scripts all read the same one.
"""

from __future__ import annotations

import argparse
import functools
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
__version__ = (ROOT / "VERSION").read_text(encoding="utf-8").strip()


@functools.lru_cache(maxsize=1)
def git_state() -> tuple[str | None, bool]:
    """``(full commit hash, dirty)`` of the checkout holding this code; ``(None, False)`` outside one.

    ``dirty`` is True when tracked files differ from the commit (untracked files do not count).
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):  # no git, or not a checkout (an unpacked release)
        return None, False
    return commit or None, dirty


def software_version() -> str:
    """``lpsgm 0.1.0 git 1a2b3c4d5e6f`` (``+dirty`` with local changes); ``lpsgm 0.1.0`` outside a checkout."""
    commit, dirty = git_state()
    if commit is None:
        return f"lpsgm {__version__}"
    return f"lpsgm {__version__} git {commit[:12]}{'+dirty' if dirty else ''}"


def software_info() -> dict:
    """The version as JSON fields: ``{"version", "git_commit", "git_dirty"}`` (commit None outside a checkout)."""
    commit, dirty = git_state()
    return {"version": __version__, "git_commit": commit, "git_dirty": dirty}


class _VersionAction(argparse.Action):
    """``--version``: print :func:`software_version` and exit 0 (git is asked only when the flag is given)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog} ({software_version()})")  # on stdout, as argparse's own version action
        parser.exit()


def add_version_argument(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give ``parser`` a ``--version`` option; returns the parser (one line in every entry point)."""
    parser.add_argument("--version", action=_VersionAction, help="print the software version and git commit, then exit")
    return parser
