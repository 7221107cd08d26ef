"""Sleep-EDF Expanded (Sleep Cassette SC and Sleep Telemetry ST), PhysioNet.

Layout: ``sleep-cassette/SC4ssNE0-PSG.edf`` + ``SC4ssNEC-Hypnogram.edf`` and
``sleep-telemetry/ST7ssNJ0-PSG.edf`` + ``ST7ssNJR-Hypnogram.edf`` (any folder depth); ``ss`` is the
subject, ``N`` the night. The hypnogram shares the first 7 characters of the PSG file name; its
last-but-one letter (the scorer) varies, so it is matched by prefix.

Channels: only two bipolar EEG derivations exist, ``EEG Fpz-Cz`` and ``EEG Pz-Oz`` (100 Hz).
Neither is an AASM derivation; we map Fpz-Cz → F3 (a fronto-central lead: frontal slow waves and
K-complexes, like F3-M2) and Pz-Oz → O1 (parieto-occipital: posterior alpha, like O1-M2).
``EOG horizontal`` is a differential ROC−LOC lead and maps to E1 (DESIGN §3). ``EMG submental``
is a 1 Hz RMS envelope in SC, too slow for the 10 Hz chin high-pass, so the pipeline drops it
(recorded in ``dropped_channels``); in ST it is sampled at 100 Hz and kept as Chin.

Stages: R&K (``Sleep stage W/1/2/3/4/R/?``, ``Movement time``) as EDF+ annotations; stage 4
merges into N3, ``?`` and movement are −1. The trailing ``Sleep stage ?`` span that runs past the
end of the PSG is dropped. Licence: ODC-BY 1.0 (Kemp et al. 2000).
"""

from __future__ import annotations

from pathlib import Path

from preprocess.core.annotations import read_edf_start, read_edfplus_stages, start_offset
from preprocess.core.dataset import DatasetSpec, Record

CHANNEL_MAP = {
    "F3": ["EEG Fpz-Cz"],
    "O1": ["EEG Pz-Oz"],
    "E1": ["EOG horizontal"],
    "Chin": ["EMG submental"],
}


def find(src: Path) -> list[Record]:
    hypnograms = {p.name[:7]: p for p in Path(src).rglob("*-Hypnogram.edf")}
    records = []
    for psg in sorted(Path(src).rglob("*-PSG.edf")):
        rid = psg.name.split("-")[0]  # e.g. SC4001E0
        cohort, subject = psg.name[:2], psg.name[3:5]
        records.append(Record(id=rid, subject=f"{cohort}{subject}", signal=psg,
                              annotation=hypnograms.get(psg.name[:7], psg.with_name(f"{psg.name[:7]}?-Hypnogram.edf"))))
    return records


def read_stages(record: Record, signal_start):
    offset = start_offset(read_edf_start(record.annotation), signal_start)
    return read_edfplus_stages(record.annotation, offset_s=offset)


SPEC = DatasetSpec(
    name="sleepedf",
    description="Sleep-EDF Expanded SC+ST: Fpz-Cz, Pz-Oz, horizontal EOG, chin EMG (ST), R&K hypnograms",
    layout="<src>/**/SC4ssNE0-PSG.edf + SC4ssNEC-Hypnogram.edf (and ST7ssNJ0-PSG.edf + ST7ssNJR-Hypnogram.edf)",
    url="https://physionet.org/content/sleep-edfx/ (open, ODC-BY 1.0)",
    channel_map=CHANNEL_MAP,
    find=find,
    read_stages=read_stages,
)
