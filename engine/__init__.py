"""Training machinery shared by ``train.py``, ``finetune.py`` and ``nar_cls``.

- :mod:`engine.distributed` — torchrun/DDP setup (NCCL on GPU, Gloo on CPU), rank helpers
- :mod:`engine.optim` — AdamW parameter groups, warmup-cosine schedule (never LR 0)
- :mod:`engine.loop` — train step, whole-recording evaluation, :func:`engine.loop.fit`
- :mod:`engine.metrics` — accuracy, macro-F1, Cohen's κ, per-class F1, confusion (pooled / per recording)
- :mod:`engine.state` — training-state file for exact resume (``weights_only`` loadable)
- :mod:`engine.logger` — TensorBoard + ``metrics.jsonl`` on rank 0, provenance
"""
