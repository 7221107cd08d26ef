"""DOD-H: Dreem Open Dataset, healthy volunteers (25 nights, 5 scorers), Guillot et al. 2020.

Layout: one HDF5 file per night, ``<uuid>.h5`` (the public S3 bucket ``dreem-dod-h`` is flat; any
depth is accepted). Signals live under ``signals/<modality>/<derivation>``
(dreem-learning-open ``convert_data_to_edf.py`` walks ``signals/eeg``, ``signals/emg``,
``signals/eog``; its README memmap example reads ``signals/eeg/C3_M2``, ``signals/eog/EOG1``).
DOD-H derivations (listed by third-party loaders of the same files): EEG ``C3_M2, F3_F4, F3_M2,
F3_O1, F4_M1, F4_O2, FP1_F3, FP1_M2, FP1_O1, FP2_F4, FP2_M1, FP2_O2``; ``EOG1``, ``EOG2``;
``signals/emg/EMG`` (chin) and ``signals/emg/ECG``. All signals 250 Hz in µV (the converter
writes 250 Hz records with dimension uV); the rate is taken from the file's ``fs`` attributes /
``description`` JSON when present, else 250 Hz.

Channel map: F3 ← F3_M2, F4 ← F4_M1, C3 ← C3_M2 (AASM derivations), E1 ← EOG1, E2 ← EOG2 (the files
do not name the EOG reference), Chin ← EMG. No occipital-mastoid derivation exists (F3_O1 and
F4_O2 are frontal-occipital, not used). This equals the official LPSGM DOD-H channel list.

Stages: the ``hypnogram`` dataset in the file is the **consensus** of the five scorers (a user
comparing it with the per-scorer files of dreem-learning-evaluation calls it "the consensus
hypnograms found in the .h5 files", dreem-learning-open issue #11; those per-scorer JSON files
cover a different span — longer, untrimmed for artefacts/lights — so they are not used). Codes
-1 not scored, 0 W, 1 N1, 2 N2, 3 N3, 4 REM (dreem-learning-open README), one per 30 s from the
signal start (the LPSGM reference assumes hypnogram length x 30 s x 250 Hz = signal length; a
file whose signal is much longer than its hypnogram fails the shared length check instead of
being silently shifted — dreem-learning-open pads such hypnograms symmetrically, which we do not
copy without evidence). Lights times are not stored in the files. Licence: open (Dreem, see
https://github.com/Dreem-Organization/dreem-learning-open).
"""

from __future__ import annotations

from preprocess.core.dataset import DatasetSpec
from preprocess.core.sources import dod_stages, find_dod, open_dod

CHANNEL_MAP = {
    "F3": ["F3_M2"],
    "F4": ["F4_M1"],
    "C3": ["C3_M2"],
    "E1": ["EOG1"],
    "E2": ["EOG2"],
    "Chin": ["EMG"],
}

SPEC = DatasetSpec(
    name="dodh",
    description="Dreem Open Dataset - Healthy (25 nights, 250 Hz HDF5, 5-scorer consensus hypnogram)",
    layout="<src>/**/<uuid>.h5 (signals/eeg/*, signals/eog/EOG1|EOG2, signals/emg/EMG, hypnogram)",
    url="https://github.com/Dreem-Organization/dreem-learning-open (S3 bucket dreem-dod-h, open)",
    channel_map=CHANNEL_MAP,
    find=lambda src: find_dod(src, {"diagnosis": "healthy"}),
    read_stages=dod_stages,
    open_signals=open_dod,
)
