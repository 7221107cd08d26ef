"""Disorder classification from PSG (narcolepsy on MNC, sleep apnoea and depression from the NSRR
subject tables) by fine-tuning LPSGM.

``python -m nar_cls --help`` / ``bash nar_cls/run_nar.sh``. Modules:

* :mod:`nar_cls.labels`   diagnosis normalisation map, tasks (3class, merge_NT1, normal_vs_abnormal, osa,
  depression, custom); AHI / questionnaire values come from :mod:`preprocess.core.subject_tables`
* :mod:`nar_cls.cohort`   labelled subjects, recordings and 20-epoch windows read from the HDF5 files
* :mod:`nar_cls.splits`   subject-wise stratified K-fold + inner validation split, class weights
* :mod:`nar_cls.model`    window head, backbone + head model, strategies (partial, full, joint, scratch), saving
* :mod:`nar_cls.features` frozen-backbone window embeddings (computed once, optional cache)
* :mod:`nar_cls.train`    per-fold training loop with validation-based epoch selection
* :mod:`nar_cls.metrics`  window/subject metrics (accuracy, balanced accuracy, kappa, F1, confusion, AUC),
  operating point, Brier score, reliability curve
* :mod:`nar_cls.hypnogram` night-level summary of the staging head's predicted hypnogram (subject features)
* :mod:`nar_cls.probe`    linear probe (StandardScaler + balanced logistic regression) on frozen subject features
* :mod:`nar_cls.explain`  per-subject decision shares by sleep stage and part of the night (occlusion)
* :mod:`nar_cls.cv`       the cross-validation run and its output folder
"""
