"""Every command-line entry point of the shipped code, found from the source (not from a list that
could miss one), and the argparse parser each builds.

An entry point is a shipped file with an ``if __name__ == "__main__":`` block: a top-level script
(``python inference.py``), a package's ``__main__.py`` (``python -m web``) or a module run with
``-m`` (``python -m staging.evaluate``). Its parser is captured by running it with no arguments while
:meth:`argparse.ArgumentParser.parse_args` is replaced by a function that hands the parser back
instead of parsing, so nothing else runs and no entry point needs a special hook.
"""

from __future__ import annotations

import argparse
import ast
import runpy
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNSHIPPED = {"tests", "bench"}


@dataclass(frozen=True)
class EntryPoint:
    path: Path
    module: str | None  # dotted name run with ``-m`` (None for a script outside any package)

    @property
    def command(self) -> str:
        """How a user runs it: ``inference.py``, ``-m web``, ``-m staging.evaluate``."""
        if self.module is None or "." not in self.module and self.path.parent == ROOT:
            return str(self.path.relative_to(ROOT))
        return f"-m {self.module}"

    @property
    def key(self) -> str:
        """The name without the package it happens to live in: ``staging.explain`` and ``explain`` are both
        ``explain`` (entry points may move between packages), ``-m web`` is ``web``, ``train.py`` is ``train``."""
        parts = (self.module or self.path.stem).split(".")
        parts = [p for p in parts if p not in ("__main__", "cli", "staging")]
        return ".".join(parts)

    def run(self, argv: list[str]) -> int:
        """Run it in this process as ``__main__`` with ``argv``; its exit code."""
        old = sys.argv
        sys.argv = [str(self.path), *argv]
        try:
            with warnings.catch_warnings():  # runpy: "found in sys.modules" (a module its package imported)
                warnings.simplefilter("ignore", RuntimeWarning)
                if self.module is None:
                    runpy.run_path(str(self.path), run_name="__main__")
                else:
                    runpy.run_module(self.module, run_name="__main__", alter_sys=False)
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv = old
        return 0


def _has_main_block(path: Path) -> bool:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and \
                getattr(node.test.left, "id", None) == "__name__" and \
                any(getattr(c, "value", None) == "__main__" for c in node.test.comparators):
            return True
    return False


def _module_name(path: Path) -> str | None:
    rel = path.relative_to(ROOT).with_suffix("")
    if len(rel.parts) == 1:
        return rel.parts[0]
    if not (ROOT / rel.parts[0] / "__init__.py").is_file():
        return None  # e.g. examples/*.py: run as a script
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__main__" else parts)


def entry_points() -> list[EntryPoint]:
    """Every shipped entry point, sorted by path."""
    files = [f for f in ROOT.glob("*.py")] + [f for d in ROOT.iterdir() if d.is_dir() and d.name not in UNSHIPPED
                                               and not d.name.startswith(".") for f in d.rglob("*.py")]
    return sorted((EntryPoint(f, _module_name(f)) for f in files if _has_main_block(f)), key=lambda e: e.path)


class _Captured(Exception):
    def __init__(self, parser):
        self.parser = parser


@contextmanager
def _capturing():
    def capture(self, *args, **kwargs):
        raise _Captured(self)

    saved = argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args
    argparse.ArgumentParser.parse_args = capture
    argparse.ArgumentParser.parse_known_args = capture
    try:
        yield
    finally:
        argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args = saved


def parses_arguments(path: Path) -> bool:
    """Whether the file, or a project module it imports from, calls ``parse_args``: only such a file is run
    by :func:`parser_of` (a script that acts without parsing would do its work)."""
    text = path.read_text(encoding="utf-8")
    if "parse_args" in text:
        return True
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and node.module:
            base = ROOT if node.level == 0 else path.parents[node.level - 1]
            target = base.joinpath(*node.module.split("."))
            for f in (target.with_suffix(".py"), target / "__init__.py"):
                if f.is_file() and "parse_args" in f.read_text(encoding="utf-8"):
                    return True
    return False


def parser_of(entry: EntryPoint) -> argparse.ArgumentParser | None:
    """The parser the entry point parses its arguments with (None when it parses none)."""
    assert parses_arguments(entry.path), f"{entry.command} parses no arguments: it would run for real"
    with _capturing():
        try:
            entry.run([])
        except _Captured as captured:
            return captured.parser
    return None


def options(parser: argparse.ArgumentParser) -> set[str]:
    """Every ``--option`` the parser and its sub-command parsers accept (``--help`` and ``--version`` aside)."""
    found = set()
    for action in parser._actions:
        found |= {o for o in action.option_strings if o.startswith("--") and o not in ("--help", "--version")}
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= options(sub)
    return found
