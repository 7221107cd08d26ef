"""Disorder classification from PSG (narcolepsy on MNC) by fine-tuning LPSGM.

``python -m nar_cls --help`` / ``bash nar_cls/run_nar.sh``. Modules:

* :mod:`nar_cls.labels`   diagnosis normalisation map, tasks (3class, merge_NT1, normal_vs_abnormal, custom)
* :mod:`nar_cls.cohort`   labelled subjects, recordings and 20-epoch windows read from the HDF5 files
* :mod:`nar_cls.splits`   subject-wise stratified K-fold + inner validation split, class weights
* :mod:`nar_cls.model`    window head, backbone + head model, strategies (partial, full, scratch), saving
* :mod:`nar_cls.features` frozen-backbone window embeddings (computed once, optional cache)
* :mod:`nar_cls.train`    per-fold training loop with validation-based epoch selection
* :mod:`nar_cls.metrics`  window/subject metrics (accuracy, balanced accuracy, kappa, F1, confusion, AUC)
* :mod:`nar_cls.cv`       the cross-validation run and its output folder
"""
