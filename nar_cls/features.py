"""Window embeddings of a frozen backbone (``partial``), computed once and optionally cached.

With a frozen backbone in eval mode the embedding of a window does not change during training,
so it is computed once for every evaluation window of the cohort and every fold trains its head
on these arrays (no signal is read again). ``--feature-cache FILE.npz`` keeps them across runs
(e.g. the three tasks on the same backbone); the cache stores the backbone's weight hash and the
window list and is recomputed when either differs.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from engine.loop import autocast, make_loader, params_sha256
from models import LPSGM
from preprocess.core.atomic import atomic_write

from .cohort import Cohort
from .model import window_embedding_and_stages


@torch.no_grad()
def extract_embeddings(backbone: LPSGM, cohort: Cohort, windows: np.ndarray, device: torch.device,
                       batch_size: int = 32, workers: int = 0, bf16: bool = True, progress: bool = True,
                       stages: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Embeddings (n_windows, d_model) float32 of the given evaluation windows, backbone in eval mode.

    With ``stages``, also the softmax of the backbone's own staging logits, (n_windows, L, 5)
    float32, from the same forward pass (the predicted hypnogram of :mod:`nar_cls.hypnogram`).
    """
    backbone.eval().to(device)
    keys = cohort.eval_keys(windows)
    out = np.zeros((len(keys), backbone.cfg.d_model), dtype=np.float32)
    prob = np.zeros((len(keys), cohort.seq_len, backbone.cfg.n_classes), dtype=np.float32) if stages else None
    pos = 0
    loader = make_loader(cohort.data, batch_size, keys, workers)
    for batch in tqdm(loader, desc="embeddings", disable=not progress, dynamic_ncols=True):
        with autocast(device, bf16):
            z, logits = window_embedding_and_stages(backbone, batch["x"].to(device), batch["channels"].to(device))
        out[pos : pos + len(z)] = z.cpu().numpy()
        if stages:
            prob[pos : pos + len(z)] = torch.softmax(logits.float(), -1).cpu().numpy()
        pos += len(z)
    return (out, prob) if stages else out


def _signature(backbone: LPSGM, cohort: Cohort, channels) -> dict:
    return {"backbone_sha256": params_sha256(backbone), "seq_len": cohort.seq_len,
            "channels": sorted(channels) if channels else None}


def cohort_embeddings(backbone: LPSGM, cohort: Cohort, device: torch.device, cache: str | os.PathLike | None = None,
                      channels=None, **kw) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and staging probabilities of every evaluation window of ``cohort``, read from /
    written to ``cache`` (npz).

    Parameters
    ----------
    backbone, cohort, device
        What to embed, with what, where.
    cache : path, optional
        ``.npz`` holding ``emb``, ``stage_prob``, ``recording`` and ``start`` per window plus a JSON
        ``signature`` (a cache without ``stage_prob``, from an older version, is recomputed).
    channels : sequence of str, optional
        The channel selection (part of the signature).
    **kw
        Passed to :func:`extract_embeddings`.

    Returns
    -------
    tuple
        ``(emb (n_windows, d_model), stage_prob (n_windows, L, 5))``, float32.
    """
    names = np.array(cohort.recording_names())[cohort.win_rec]
    sig = _signature(backbone, cohort, channels)
    if cache is not None and Path(cache).exists():
        with np.load(cache, allow_pickle=False) as f:
            same = ("stage_prob" in f.files and json.loads(str(f["signature"])) == sig
                    and np.array_equal(f["recording"], names) and np.array_equal(f["start"], cohort.win_start))
            if same:
                return f["emb"], f["stage_prob"]
        warnings.warn(f"feature cache {cache} was made for other windows or weights: recomputing", stacklevel=2)
    emb, prob = extract_embeddings(backbone, cohort, np.arange(len(cohort.win_rec)), device, stages=True, **kw)
    if cache is not None:
        cache = Path(cache)
        cache.parent.mkdir(parents=True, exist_ok=True)

        def write(tmp: str) -> None:  # a file object: np.savez would append .npz to a name
            with open(tmp, "wb") as fh:
                np.savez(fh, emb=emb, stage_prob=prob, recording=names, start=cohort.win_start,
                         signature=json.dumps(sig))

        atomic_write(cache, write)  # unique temp + rename: concurrent --fold runs never clash
    return emb, prob
