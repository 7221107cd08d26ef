"""Annotation readers: known answers on real scoring files and on hand-made files of each format."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from preprocess.core.annotations import (
    AnnotationError,
    align_to_signal,
    events_to_epochs,
    read_csv_events,
    read_dreams_hypnogram,
    read_edf_annotations,
    read_edf_start,
    read_edfplus_lights,
    read_edfplus_stages,
    read_epoch_text,
    read_nsrr_annot,
    read_nsrr_xml,
    stage_code,
    start_offset,
)

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def real(rel: str) -> Path:
    path = REAL / rel
    if not path.exists():
        pytest.skip(f"real test data not available: {path}")
    return path


def counts(stages) -> dict[int, int]:
    return dict(Counter(np.asarray(stages).tolist()))


# ------------------------------------------------------------------------------ stage words

@pytest.mark.parametrize(
    "text, code",
    [
        ("Sleep stage W", 0), ("Sleep stage 1", 1), ("Sleep stage 2", 2), ("Sleep stage 3", 3),
        ("Sleep stage 4", 3), ("Sleep stage R", 4), ("Sleep stage ?", -1), ("Movement time", -1),
        ("Sleep stage N1", 1), ("Sleep stage N2", 2), ("Sleep stage N3", 3),
        ("W", 0), ("Wake", 0), ("wake", 0), ("N1", 1), ("NREM1", 1), ("NREM 3", 3), ("Stage 1", 1),
        ("stage_4", 3), ("REM", 4), ("R", 4), ("REM sleep|5", 4), ("?", -1), ("Unscored", -1),
        ("Stage 2 sleep|2", 2), ("Wake|0", 0), ("Stage 4 sleep|4", 3), ("Unscored|9", -1),
        ("Artifact", -1), ("  sleep-stage  n2 ", 2),
        ("Lights off@@EEG F4-A1", None), ("Arousal|Arousal ()", None), ("Obstructive apnea", None),
        ("", None), ("0", None), ("5", None),
    ],
)
def test_stage_code(text, code):
    assert stage_code(text) == code


# ------------------------------------------------------------------------------ events -> epochs

def test_events_fill_every_epoch_they_span():
    # STAGES-style rows: one row per run of equal stages, spanning several epochs
    ev = [(0, 90, 0), (90, 60, 2), (150, 30, 3), (180, 120, 4)]
    out = events_to_epochs(ev)
    assert out.dtype == np.int8
    np.testing.assert_array_equal(out, [0, 0, 0, 2, 2, 3, 4, 4, 4, 4])


def test_events_gaps_are_unknown_and_length_follows_n_epochs():
    ev = [(0, 30, 0), (90, 30, 2), (120, 30, None)]  # None codes are not stages
    np.testing.assert_array_equal(events_to_epochs(ev), [0, -1, -1, 2])
    np.testing.assert_array_equal(events_to_epochs(ev, n_epochs=6), [0, -1, -1, 2, -1, -1])
    np.testing.assert_array_equal(events_to_epochs(ev, n_epochs=2), [0, -1])
    assert events_to_epochs([]).shape == (0,)


def test_midpoint_rule_and_offset():
    ev = [(0, 60, 1), (60, 60, 2)]
    # scoring starts 60 s after the signal: first two signal epochs unscored
    np.testing.assert_array_equal(events_to_epochs(ev, offset_s=60), [-1, -1, 1, 1, 2, 2])
    # scoring starts 60 s before the signal: its first two epochs fall before epoch 0
    np.testing.assert_array_equal(events_to_epochs(ev, offset_s=-60), [2, 2])
    # shifted by 10 s (< half an epoch): each epoch takes the stage covering its midpoint
    np.testing.assert_array_equal(events_to_epochs(ev, offset_s=10), [1, 1, 2, 2])
    # shifted by 20 s (> half an epoch): content moves to the next epoch
    np.testing.assert_array_equal(events_to_epochs(ev, offset_s=20), [-1, 1, 1, 2, 2])
    # midpoint exactly on an event start belongs to that event
    np.testing.assert_array_equal(events_to_epochs([(0, 15, 0), (15, 60, 4)]), [4, 4])


def test_overlap_later_event_wins_and_zero_duration_runs_to_next():
    np.testing.assert_array_equal(events_to_epochs([(0, 120, 0), (30, 30, 2)]), [0, 2, 0, 0])
    np.testing.assert_array_equal(events_to_epochs([(0, 0, 0), (90, 0, 2)]), [0, 0, 0, 2])


# ------------------------------------------------------------------------------ length rule

def test_align_drops_trailing_unknown_silently():
    st = np.array([0, 1, 2, -1, -1, -1], dtype=np.int8)
    np.testing.assert_array_equal(align_to_signal(st, 3, "a.edf"), [0, 1, 2])
    np.testing.assert_array_equal(align_to_signal(st, 4, "a.edf"), [0, 1, 2, -1])


def test_align_crops_and_pads_within_tolerance():
    st = np.array([0, 1, 2, 3], dtype=np.int8)
    np.testing.assert_array_equal(align_to_signal(st, 3, "a.edf"), [0, 1, 2])
    np.testing.assert_array_equal(align_to_signal(st, 5, "a.edf"), [0, 1, 2, 3, -1])
    out = align_to_signal(st, 4, "a.edf")
    assert out.dtype == np.int8 and out.tolist() == [0, 1, 2, 3]


def test_align_errors_name_the_file_and_both_lengths():
    st = np.zeros(10, dtype=np.int8)
    with pytest.raises(AnnotationError, match=r"^night7\.xml: scoring covers 10 epochs but the signal "
                       r"has 7 \(difference 3 > 1 allowed\)$"):
        align_to_signal(st, 7, Path("/some/where/night7.xml"))
    with pytest.raises(AnnotationError, match=r"night7\.xml: scoring covers 10 epochs but the signal "
                       r"has 13 \(difference 3 > 2 allowed\)"):
        align_to_signal(st, 13, "night7.xml", max_mismatch_epochs=2)
    assert issubclass(AnnotationError, ValueError)


def test_align_free_when_tolerance_is_none():
    st = np.arange(5, dtype=np.int8) % 5
    assert align_to_signal(st, 2, "a", max_mismatch_epochs=None).tolist() == [0, 1]
    assert align_to_signal(st, 7, "a", max_mismatch_epochs=None).tolist() == [0, 1, 2, 3, 4, -1, -1]


# ------------------------------------------------------------------------------ real EDF+ files

def test_sleep_edf_hypnogram_known_counts():
    path = real("sleep-edf/SC4001EC-Hypnogram.edf")
    st = read_edfplus_stages(path)
    # 2880 epochs = 86400 s; the last annotation is "Sleep stage ?" 79500 s + 6900 s (230 epochs);
    # this night has no "Movement time"; R&K 3 (101) + 4 (119) = 220 N3
    assert len(st) == 2880
    assert counts(st) == {0: 1997, 1: 58, 2: 250, 3: 220, 4: 125, -1: 230}
    assert (st[-230:] == -1).all() and st[-231] != -1
    assert read_edf_start(path) == dt.datetime(1989, 4, 24, 16, 13, 0)
    assert read_edfplus_lights(path) is None


def test_sleep_edf_hypnogram_against_5min_psg_is_a_clear_error():
    path = real("sleep-edf/SC4001EC-Hypnogram.edf")
    st = read_edfplus_stages(path)
    with pytest.raises(AnnotationError, match=r"^SC4001EC-Hypnogram\.edf: scoring covers 2650 epochs but "
                       r"the signal has 10 \(difference 2640 > 1 allowed\)$"):
        align_to_signal(st, 10, path)
    # the first 10 epochs are wake (the night starts with 30630 s of W)
    assert align_to_signal(st, 10, path, max_mismatch_epochs=None).tolist() == [0] * 10


def test_sleep_edf_movement_time_is_unknown():
    path = real("sleep-edf/hypnograms/SC4002EC-Hypnogram.edf")
    events, _ = read_edf_annotations(path)
    movement = [e for e in events if e.label == "Movement time"]
    assert len(movement) == 1
    st = read_edfplus_stages(path)
    assert st[int(movement[0].onset // 30)] == -1
    assert counts(st) == {0: 1885, 1: 59, 2: 373, 3: 94 + 203, 4: 215, -1: 50 + 1}


def test_hmc_scoring_known_counts_and_lights():
    path = real("hmc/SN001_sleepscoring.edf")
    st = read_edfplus_stages(path)
    assert len(st) == 854
    assert counts(st) == {0: 151, 1: 109, 2: 430, 3: 23, 4: 141}
    assert read_edfplus_lights(path) == pytest.approx((33.43, 25618.74))
    assert read_edf_start(path) == dt.datetime(2001, 1, 1, 23, 59, 30)
    events, start = read_edf_annotations(path)
    assert start == dt.datetime(2001, 1, 1, 23, 59, 30)
    assert events[2].label == "Lights off@@EEG F4-A1" and stage_code(events[2].label) is None


# ------------------------------------------------------------------------------ hand-made EDF+

def _write_edfplus(path: Path, annotations, starttime=dt.time(22, 0, 0), seconds=300):
    edfio = pytest.importorskip("edfio")
    signal = edfio.EdfSignal(np.zeros(seconds), 1.0, label="dummy")
    edf = edfio.Edf(
        [signal],
        starttime=starttime,
        recording=edfio.Recording(startdate=dt.date(2020, 3, 1)),
        annotations=[edfio.EdfAnnotation(o, d, t) for o, d, t in annotations],
    )
    edf.write(path)
    return path


def test_handmade_edfplus_hypnogram(tmp_path):
    path = _write_edfplus(tmp_path / "night-Hypnogram.edf", [
        (0, 60, "Sleep stage W"),
        (45, 0, "Lights off@@EEG F4-A1"),
        (60, 90, "Sleep stage N1"),
        (150, 30, "Movement time"),
        (180, 30, "Sleep stage 4"),
        (210, 60, "Sleep stage R"),
        (250, 0, "Arousal"),
        (270, 30, "Sleep stage ?"),
    ])
    np.testing.assert_array_equal(read_edfplus_stages(path), [0, 0, 1, 1, 1, -1, 3, 4, 4, -1])
    # scoring starts 60 s after the signal
    np.testing.assert_array_equal(
        read_edfplus_stages(path, n_epochs=12, offset_s=60), [-1, -1, 0, 0, 1, 1, 1, -1, 3, 4, 4, -1])
    assert read_edfplus_lights(path) == (45.0, None)
    assert read_edf_start(path) == dt.datetime(2020, 3, 1, 22, 0, 0)


def test_edfplus_without_stages_is_an_error(tmp_path):
    path = _write_edfplus(tmp_path / "empty.edf", [(10, 0, "Lights off")])
    with pytest.raises(AnnotationError, match="empty.edf: no sleep stage"):
        read_edfplus_stages(path)


# ------------------------------------------------------------------------------ NSRR XML

PROFUSION = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<CMPStudyConfig>
<EpochLength>30</EpochLength>
<ScoredEvents><ScoredEvent><Name>Arousal ()</Name><Start>40.0</Start><Duration>5</Duration>
<Input>C3</Input></ScoredEvent></ScoredEvents>
<SleepStages>
<SleepStage>0</SleepStage><SleepStage>1</SleepStage><SleepStage>2</SleepStage>
<SleepStage>3</SleepStage><SleepStage>4</SleepStage><SleepStage>5</SleepStage>
<SleepStage>6</SleepStage><SleepStage>9</SleepStage><SleepStage>2</SleepStage>
</SleepStages>
</CMPStudyConfig>
"""

NSRR_XML = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<PSGAnnotation>
<SoftwareVersion>Compumedics</SoftwareVersion>
<EpochLength>30</EpochLength>
<ScoredEvents>
<ScoredEvent><EventType/><EventConcept>Recording Start Time</EventConcept><Start>0</Start>
<Duration>300.0</Duration><ClockTime>00.00.00 22.00.00</ClockTime></ScoredEvent>
<ScoredEvent><EventType>Stages|Stages</EventType><EventConcept>Wake|0</EventConcept>
<Start>0.0</Start><Duration>30.0</Duration></ScoredEvent>
<ScoredEvent><EventType>Stages|Stages</EventType><EventConcept>Stage 2 sleep|2</EventConcept>
<Start>30.0</Start><Duration>60.0</Duration></ScoredEvent>
<ScoredEvent><EventType>Arousals|Arousals</EventType><EventConcept>Arousal|Arousal ()</EventConcept>
<Start>40.0</Start><Duration>5.0</Duration></ScoredEvent>
<ScoredEvent><EventType>Stages|Stages</EventType><EventConcept>Stage 4 sleep|4</EventConcept>
<Start>90.0</Start><Duration>30.0</Duration></ScoredEvent>
<ScoredEvent><EventType>Stages|Stages</EventType><EventConcept>REM sleep|5</EventConcept>
<Start>150.0</Start><Duration>90.0</Duration></ScoredEvent>
<ScoredEvent><EventType>Stages|Stages</EventType><EventConcept>Unscored|9</EventConcept>
<Start>240.0</Start><Duration>30.0</Duration></ScoredEvent>
<ScoredEvent><EventType>Stages|Stages</EventType><EventConcept>Stage 1 sleep|1</EventConcept>
<Start>270.0</Start><Duration>30.0</Duration></ScoredEvent>
</ScoredEvents>
</PSGAnnotation>
"""


def test_profusion_xml(tmp_path):
    path = tmp_path / "shhs1-200001-profusion.xml"
    path.write_text(PROFUSION)
    np.testing.assert_array_equal(read_nsrr_xml(path), [0, 1, 2, 3, 3, 4, -1, -1, 2])
    np.testing.assert_array_equal(read_nsrr_xml(path, n_epochs=3), [0, 1, 2])


def test_profusion_xml_with_20s_epochs_is_resampled(tmp_path):
    path = tmp_path / "old-profusion.xml"
    path.write_text(PROFUSION.replace("<EpochLength>30<", "<EpochLength>20<"))
    # 20-s codes W N1 N2 N3 N3 REM ? ? N2 on 0..180 s; 30-s midpoints 15, 45, 75, 105, 135, 165
    np.testing.assert_array_equal(read_nsrr_xml(path), [0, 2, 3, 4, -1, 2])


def test_nsrr_xml_events(tmp_path):
    path = tmp_path / "shhs1-200001-nsrr.xml"
    path.write_text(NSRR_XML)
    # epoch 4 (120-150 s) has no stage event -> -1
    np.testing.assert_array_equal(read_nsrr_xml(path), [0, 2, 2, 3, -1, 4, 4, 4, -1, 1])


def test_xml_with_entities_or_garbage_is_refused(tmp_path):
    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><PSGAnnotation>&a;</PSGAnnotation>')
    with pytest.raises(AnnotationError, match="bomb.xml: XML entity"):
        read_nsrr_xml(bomb)
    bad = tmp_path / "bad.xml"
    bad.write_text("<PSGAnnotation><ScoredEvents>")
    with pytest.raises(AnnotationError, match="bad.xml: not well-formed"):
        read_nsrr_xml(bad)
    none = tmp_path / "none.xml"
    none.write_text("<PSGAnnotation><ScoredEvents/></PSGAnnotation>")
    with pytest.raises(AnnotationError, match="none.xml: no sleep stage"):
        read_nsrr_xml(none)


# ------------------------------------------------------------------------------ .annot

def test_annot_elapsed_seconds(tmp_path):
    path = tmp_path / "night.annot"
    path.write_text(
        "# N1 | NREM1\n"
        "class\tinstance\tchannel\tstart\tstop\tmeta\n"
        "L\t.\t.\t0.0\t30.0\t.\n"
        "W\t.\t.\t30.0\t90.0\t.\n"
        "arousal\t.\tC3\t40.0\t45.0\t.\n"
        "N1\t.\t.\t90.0\t+30\t.\n"
        "N2\t.\t.\t0+00:02:00\t...\t.\n"
        "N3\t.\t.\te:6\te:7\t.\n"
        "R\t.\t.\t210.0\t240.0\t.\n"
        "?\t.\t.\t240.0\t270.0\t.\n"
    )
    np.testing.assert_array_equal(read_nsrr_annot(path), [-1, 0, 0, 1, 2, 3, 3, 4, -1])


def test_annot_clock_times_wrap_midnight(tmp_path):
    path = tmp_path / "clock.annot"
    path.write_text(
        "class\tinstance\tchannel\tstart\tstop\tmeta\n"
        "W\t.\t.\t23:59:00\t23:59:30\t.\n"
        "N1\t.\t.\t23:59:30\t00:00:30\t.\n"
        "N2\t.\t.\t00.00.30\t00.01.00\t.\n"
    )
    np.testing.assert_array_equal(read_nsrr_annot(path, start_time="23:59:00"), [0, 1, 1, 2])
    np.testing.assert_array_equal(
        read_nsrr_annot(path, start_time=dt.datetime(2020, 1, 1, 23, 58, 30)), [-1, 0, 1, 1, 2])
    with pytest.raises(AnnotationError, match="clock.annot: line 2: clock time .* needs start_time"):
        read_nsrr_annot(path)


# ------------------------------------------------------------------------------ per-epoch text

def test_epoch_text_with_mapping(tmp_path):
    path = tmp_path / "subject1.txt"
    path.write_text("epoch stage\n1 5\n2 0\n\n3 1\n4 2\n5 3\n6 7\n")
    mapping = {0: 0, 1: 1, 2: 2, 3: 3, 5: 4, 7: -1}
    np.testing.assert_array_equal(read_epoch_text(path, mapping, skip_rows=1, column=1),
                                  [4, 0, 1, 2, 3, -1])


def test_epoch_text_unknown_token_names_file_and_token(tmp_path):
    path = tmp_path / "subject2.txt"
    path.write_text("0\n1\nX\n")
    with pytest.raises(AnnotationError, match=r"subject2\.txt: line 3: unknown stage token 'X'"):
        read_epoch_text(path, {"0": 0, "1": 1})


def test_epoch_text_stage_words_and_delimiter(tmp_path):
    path = tmp_path / "words.csv"
    path.write_text("# comment\n1;W\n2;N1\n3;Sleep stage 4\n4;REM\n5;?\n")
    np.testing.assert_array_equal(read_epoch_text(path, None, column=1, delimiter=";"), [0, 1, 3, 4, -1])


def test_real_yasa_hypnograms():
    six_hours = read_epoch_text(real("yasa/data_full_6hrs_100Hz_hypno_30s.txt"), {i: i for i in range(5)})
    assert len(six_hours) == 720
    assert counts(six_hours) == {0: 43, 1: 22, 2: 318, 3: 182, 4: 155}
    words = read_epoch_text(real("yasa/sub-02_hypno_30s.txt"), None)
    assert counts(words) == {0: 36, 1: 9, 2: 31, 3: 22}


# ------------------------------------------------------------------------------ DREAMS

def test_dreams_handmade_majority_and_ties(tmp_path):
    path = tmp_path / "Hypnogram_excerptX.txt"
    codes = [5, 5, 5, 5, 4, 4,      # W wins 4:2
             3, 3, 2, 2, 2, 2,      # N2 wins 4:2
             1, 1, 1, 0, 0, 0,      # S3 + S4 are both N3
             2, 2, 2, 4, 4, 4,      # 3:3 tie -> -1
             -1, -1, -1, -1, 5, 5,  # movement wins
             -2, -3, 4, 4, 4, 3,    # REM wins 3:2:1
             5, 5]                  # incomplete trailing epoch dropped
    path.write_text("[Hypnogram]\r\n" + "".join(f"{c}\r\n" for c in codes))
    np.testing.assert_array_equal(read_dreams_hypnogram(path), [0, 2, 3, -1, -1, 4])


def test_dreams_real_hypnograms_are_30_minutes():
    ex1 = read_dreams_hypnogram(real("dreams/Hypnogram_excerpt1.txt"))
    ex3 = read_dreams_hypnogram(real("dreams/Hypnogram_excerpt3.txt"))
    assert len(ex1) == len(ex3) == 60  # 360 codes x 5 s = 30 min
    assert ex1[:6].tolist() == [0, 0, 0, 0, 0, 0]
    assert counts(ex1) == {0: 10, 1: 1, 2: 36, 3: 13}
    assert counts(ex3) == {0: 6, 1: 12, 2: 39, 3: 3}
    for path in sorted(real("dreams/rems_hypnograms").glob("Hypnogram_excerpt*.txt")):
        assert len(read_dreams_hypnogram(path)) == 60


def test_dreams_bad_header(tmp_path):
    path = tmp_path / "h.txt"
    path.write_text("5\n5\n")
    with pytest.raises(AnnotationError, match=r"h\.txt: not a DREAMS hypnogram"):
        read_dreams_hypnogram(path)


# ------------------------------------------------------------------------------ CSV events

def test_csv_events_seconds(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(
        "Onset (s),Duration,Event\n"
        "0,60,Wake\n"
        "20,3,Arousal\n"
        "60,90,N2\n"
        "150,30,Movement\n"
        "180,30,REM\n"
    )
    ev = read_csv_events(path, "onset (s)", "duration", "event")
    assert [tuple(e) for e in ev] == [(0.0, 60.0, 0), (60.0, 90.0, 2), (150.0, 30.0, -1), (180.0, 30.0, 4)]
    np.testing.assert_array_equal(events_to_epochs(ev), [0, 0, 2, 2, 2, -1, 4])


def test_csv_events_clock_times_wrap_midnight(tmp_path):
    path = tmp_path / "scoring.tsv"
    path.write_text(
        "23:59:00\tSleep stage W\n"
        "23:59:30\tSleep stage N1\n"
        "00:00:00\tSleep stage N2\n"
        "00:00:30\tLights on\n"
        "00:01:00\tSleep stage R\n"
    )
    start = dt.datetime(2021, 6, 1, 23, 58, 30)
    ev = read_csv_events(path, 0, None, 1, time_format="clock", start_time=start, delimiter="\t")
    assert [(e.onset, e.duration, e.label) for e in ev] == [
        (30.0, 30.0, 0), (60.0, 30.0, 1), (90.0, 30.0, 2), (150.0, 30.0, 4)]
    np.testing.assert_array_equal(events_to_epochs(ev), [-1, 0, 1, 2, -1, 4])
    ev2 = read_csv_events(path, 0, None, 1, time_format="%H:%M:%S", start_time="23:58:30",
                          delimiter="\t")
    assert [e.onset for e in ev2] == [30.0, 60.0, 90.0, 150.0]


def test_csv_events_errors(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("onset,label\n0,W\nabc,N1\n")
    with pytest.raises(AnnotationError, match=r"e\.csv: line 3: bad onset 'abc'"):
        read_csv_events(path, "onset", None, "label")
    with pytest.raises(AnnotationError, match=r"e\.csv: no column 'stage'"):
        read_csv_events(path, "onset", None, "stage")


def test_signal_start_sets_the_offset(tmp_path):
    path = _write_edfplus(tmp_path / "late-Hypnogram.edf", [(0, 60, "W"), (60, 30, "N2")],
                          starttime=dt.time(22, 1, 0))
    # scoring starts 60 s after the signal
    np.testing.assert_array_equal(
        read_edfplus_stages(path, signal_start=dt.datetime(2020, 3, 1, 22, 0, 0)), [-1, -1, 0, 0, 2])
    # anonymised signal date: only the clock times count
    np.testing.assert_array_equal(
        read_edfplus_stages(path, signal_start=dt.datetime(1985, 1, 1, 22, 0, 0)), [-1, -1, 0, 0, 2])
    assert start_offset(dt.datetime(2001, 1, 2, 0, 0, 10), dt.datetime(2001, 1, 1, 23, 59, 30)) == 40.0
    assert start_offset(None, dt.datetime(2001, 1, 1)) == 0.0


def test_sleep_edf_psg_and_hypnogram_share_the_start():
    psg = real("sleep-edf/SC4001E0-first5min-PSG.edf")
    hyp = real("sleep-edf/SC4001EC-Hypnogram.edf")
    st = read_edfplus_stages(hyp, signal_start=read_edf_start(psg))
    assert len(st) == 2880 and st[:10].tolist() == [0] * 10


def test_xml_entities_refused_in_utf16(tmp_path):
    # a byte search for "<!ENTITY" misses UTF-16; defusedxml refuses the declaration itself
    doc = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "Wake|0">]>'
           '<PSGAnnotation><ScoredEvents><ScoredEvent><EventType>Stages|Stages</EventType>'
           '<EventConcept>&a;</EventConcept><Start>0</Start><Duration>30</Duration>'
           '</ScoredEvent></ScoredEvents></PSGAnnotation>')
    bomb = tmp_path / "bomb16.xml"
    bomb.write_bytes(doc.encode("utf-16"))
    assert b"<!ENTITY" not in bomb.read_bytes()
    with pytest.raises(AnnotationError, match="bomb16.xml: XML entity"):
        read_nsrr_xml(bomb)
    # the same document without the entity parses
    ok = tmp_path / "ok16.xml"
    ok.write_bytes(doc.replace(' [<!ENTITY a "Wake|0">]', "").replace("&a;", "Wake|0").encode("utf-16"))
    np.testing.assert_array_equal(read_nsrr_xml(ok), [0])
