"""Sleep-stage annotation readers: scoring files -> int8 stages on 30-s epochs.

Every reader returns (or feeds :func:`events_to_epochs` with) stage codes of the harmonized
format (DESIGN.md §5)::

    W = 0, N1 = 1, N2 = 2, N3 = 3, REM = 4
    R&K stage 3 and stage 4 -> N3
    movement, artefact, unscored, unknown -> -1

Two layers:

* *events* are ``(onset_s, duration_s, code)`` triples in seconds relative to the start of the
  scoring file; :func:`events_to_epochs` turns them into one code per epoch, aligned to the signal
  through ``offset_s`` (scoring start - signal start);
* :func:`align_to_signal` applies the shared length rule between a stage array and the number of
  epochs of the signal, and raises :class:`AnnotationError` with one clear line otherwise.

Readers: EDF+ annotations (Sleep-EDF, HMC, MASS, NCHSDB style), NSRR XML (Compumedics Profusion
and NSRR-XML), NSRR/Luna ``.annot``, one-token-per-epoch text files, DREAMS 5-s hypnograms and
generic CSV event tables.
"""


from .annot import read_nsrr_annot
from .csv_events import read_csv_events
from .edf import (
    lights_kind,
    lights_pair,
    read_edf_annotations,
    read_edf_start,
    read_edfplus_lights,
    read_edfplus_stages,
    start_offset,
)
from .epochs import (
    EPOCH_S,
    N1,
    N2,
    N3,
    REM,
    STAGE_WORDS,
    UNKNOWN,
    AnnotationError,
    Event,
    W,
    align_to_signal,
    events_to_epochs,
    stage_code,
)
from .nsrr_xml import read_nsrr_xml
from .text import read_dreams_hypnogram, read_epoch_text

__all__ = [
    "AnnotationError",
    "Event",
    "STAGE_WORDS",
    "UNKNOWN",
    "W", "N1", "N2", "N3", "REM",
    "stage_code",
    "events_to_epochs",
    "align_to_signal",
    "read_edf_annotations",
    "read_edf_start",
    "start_offset",
    "read_edfplus_stages",
    "read_edfplus_lights",
    "read_nsrr_xml",
    "read_nsrr_annot",
    "read_epoch_text",
    "read_dreams_hypnogram",
    "read_csv_events",
    "lights_kind",
    "lights_pair",
    "EPOCH_S",
]
