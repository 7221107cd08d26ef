"""Fetching the official LPSGM weights: ``python -m staging.weights fetch official``.

Steps, each stopping with one line on a problem, nothing installed before the last one:

1. download the published Google Drive file with ``gdown`` (Drive's confirmation flow, a progress bar);
2. unpack it when it is a zip or tar archive (regular ``.pth``/``.pt`` members only, by their base
   name: no member can write outside the temporary folder);
3. open every checkpoint with ``torch.load(weights_only=True)`` and check its keys and shapes against
   the published list (:mod:`models.official_spec`), which also gives its block count N;
4. print the sha256 of each, and move it atomically to ``weights/ched32_seqed64_ch9_seql20_blockN.pth``,
   where :func:`staging.weights.find_weights` finds it, with ``NAME.source.json`` beside it (source,
   sha256, size, time, software version).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable

from models.weights import WEIGHTS_DIR
from preprocess.core.atomic import atomic_write, atomic_write_text
from preprocess.core.digest import files_sha256
from preprocess.core.extras import FETCH, check
from preprocess.core.version import software_version

DRIVE_ID = "1Gg8mc2AC2Pt_sa4POp9kMZO92nW5XuLu"
"""The Google Drive file of the official weights, as linked by the published LPSGM README."""
SOURCES = {"official": f"https://drive.google.com/uc?id={DRIVE_ID}"}
"""Named sources of ``fetch``."""
CHECKPOINT_SUFFIXES = (".pth", ".pt")
MAX_UNPACKED_BYTES = 4 << 30
"""Refuse archives that unpack to more than this (4 GiB; the official files are ~40-60 MB each)."""


class FetchError(RuntimeError):
    """The download, the archive or a checkpoint is not usable; one line says why."""


def official_name(n_blocks: int) -> str:
    """File name under which :mod:`staging.weights` looks for an official checkpoint of N blocks."""
    return f"ched32_seqed64_ch9_seql20_block{n_blocks}.pth"


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1-MiB chunks."""
    return files_sha256([path])


def download(url: str, folder: Path, quiet: bool = False) -> Path:
    """Download ``url`` into ``folder`` with gdown (a Drive link or any http(s) URL); returns the file."""
    check(FETCH)
    import gdown

    try:
        got = gdown.download(url, output=f"{folder}{os.sep}", quiet=quiet, use_cookies=False)
    except Exception as exc:  # gdown's errors: no network, Drive refusing, HTTP errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise FetchError(f"download of {url} failed: {type(exc).__name__}: {first}") from None
    if not got or not Path(got).is_file():
        raise FetchError(f"download of {url} failed (no file received)")
    return Path(got)


def _is_torch_zip(path: Path) -> bool:
    """``torch.save`` writes a zip too: one top folder holding ``data.pkl``."""
    with zipfile.ZipFile(path) as z:
        return any(PurePosixPath(n).name == "data.pkl" and len(PurePosixPath(n).parts) == 2 for n in z.namelist())


def _safe_member(name: str) -> str | None:
    """Base name of an archive member that is a checkpoint; None for anything else. Absolute names and
    ``..`` are refused outright, since such an archive was made to write elsewhere."""
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts:
        raise FetchError(f"archive member {name!r} points outside the archive: refused")
    return p.name if p.suffix in CHECKPOINT_SUFFIXES and not p.name.startswith(".") else None


def unpack(path: Path, folder: Path) -> list[Path]:
    """The checkpoints in ``path``: itself, or the ``.pth``/``.pt`` regular files of a zip/tar archive,
    written into ``folder`` by base name."""
    is_zip = zipfile.is_zipfile(path)
    if path.suffix in CHECKPOINT_SUFFIXES or (is_zip and _is_torch_zip(path)):
        return [path]
    if is_zip:
        with zipfile.ZipFile(path) as z:
            members = [(i, _safe_member(i.filename)) for i in z.infolist() if not i.is_dir()]
            return _extract([(name, lambda i=i: z.open(i)) for i, name in members if name], folder, path)
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as t:
            members = [(m, _safe_member(m.name)) for m in t.getmembers()]
            files = [(name, lambda m=m: t.extractfile(m)) for m, name in members if name and m.isfile()]
            return _extract(files, folder, path)
    return [path]  # not an archive: torch.load says whether it is a checkpoint


def _extract(members: list[tuple[str, Callable]], folder: Path, archive: Path) -> list[Path]:
    names = [n for n, _ in members]
    if not names:
        raise FetchError(f"{archive.name}: no .pth/.pt checkpoint in the archive")
    if len(set(names)) != len(names):
        raise FetchError(f"{archive.name}: several checkpoints named alike in the archive: {sorted(names)}")
    folder.mkdir(parents=True, exist_ok=True)
    total, out = 0, []
    for name, open_member in members:
        dst = folder / name
        with open_member() as src, open(dst, "wb") as f:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                total += len(chunk)
                if total > MAX_UNPACKED_BYTES:
                    raise FetchError(f"{archive.name}: unpacks to more than {MAX_UNPACKED_BYTES >> 30} GiB: refused")
                f.write(chunk)
        out.append(dst)
    return out


def verify(path: Path) -> int:
    """Block count N of an official checkpoint file, after checking every key and shape; FetchError otherwise."""
    import torch

    from models.official_spec import check_official_state_dict

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # corrupt, truncated, or holding objects other than tensors (never unpickled)
        raise FetchError(f"{path.name}: not a readable PyTorch checkpoint (corrupt, truncated, or holding "
                         "objects other than tensors)") from None
    state = obj.get("model_state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise FetchError(f"{path.name}: not an official LPSGM checkpoint (no model_state_dict)")
    try:
        return check_official_state_dict(state, path.name)
    except ValueError as exc:
        raise FetchError(str(exc)) from None


def fetch(source: str = "official", dest: str | Path = WEIGHTS_DIR, url: str | None = None, force: bool = False,
          quiet: bool = False, echo: Callable[[str], None] = print) -> list[Path]:
    """Download, unpack, verify and install the official weights (module docstring); returns the installed files.

    Parameters
    ----------
    source : str
        A key of :data:`SOURCES` (``"official"``).
    dest : path
        Folder searched by :func:`staging.weights.find_weights` (default ``weights/``).
    url : str, optional
        Download from here instead of the source's address (a mirror, or a local server in tests).
    force : bool
        Replace an installed checkpoint whose content differs (default: refuse).
    quiet : bool
        No progress bar.
    """
    if source not in SOURCES:
        raise FetchError(f"unknown source {source!r} (known: {', '.join(SOURCES)})")
    url = url or SOURCES[source]
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest) as tmp:  # same file system: atomic rename
        got = download(url, Path(tmp), quiet)
        got_sha = sha256(got)
        echo(f"downloaded {got.name}: {got.stat().st_size} bytes, sha256 {got_sha}")
        checked = []
        for ckpt in unpack(got, Path(tmp) / "unpacked"):
            n = verify(ckpt)
            digest = sha256(ckpt)
            echo(f"verified {ckpt.name}: official LPSGM, N = {n} blocks, every key and shape as published; "
                 f"sha256 {digest}")
            checked.append((ckpt, n, digest))
        if len({n for _, n, _ in checked}) != len(checked):
            raise FetchError("several checkpoints with the same block count: cannot tell which to install")
        source = {"source": url, "downloaded": got.name, "downloaded_sha256": got_sha}
        return [_install(ckpt, n, digest, source, dest, force, echo) for ckpt, n, digest in checked]


def _install(ckpt: Path, n: int, digest: str, source: dict, dest: Path, force: bool, echo) -> Path:
    """Copy a verified checkpoint atomically to its official name in ``dest``, its record beside it."""
    target = dest / official_name(n)
    if target.exists():
        if sha256(target) == digest:
            echo(f"{target} is already this file: kept")
            return target
        if not force:
            raise FetchError(f"{target} exists with other content: pass --force to replace it")
    record = {"file": target.name, "sha256": digest, "bytes": ckpt.stat().st_size, "n_blocks": n, **source,
              "fetched_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "software_version": software_version()}
    atomic_write_text(target.with_name(target.name + ".source.json"), json.dumps(record, indent=2) + "\n")
    atomic_write(target, lambda tmp: shutil.copyfile(ckpt, tmp))  # a normal file mode, never half a file
    echo(f"installed {target} (sha256 recorded in {target.name}.source.json)")
    return target
