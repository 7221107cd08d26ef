"""EDF reading: per-channel native rates, units, and one-line errors for bad files."""

import numpy as np
import pytest

from preprocess.core.edf import EdfError, EdfReader, read_header
from tests.conftest import real_file, write_edf


def test_mixed_rates_are_read_at_native_rate_in_volts(tmp_path):
    t256 = np.arange(256 * 60) / 256
    t200 = np.arange(200 * 60) / 200
    path = write_edf(tmp_path / "mixed.edf", {
        "EEG C3": (100 * np.sin(2 * np.pi * 10 * t256), 256.0),
        "EMG chin": (20 * np.sin(2 * np.pi * 50 * t200), 200.0),
    })
    reader = EdfReader(path)
    assert reader.labels == ["EEG C3", "EMG chin"]
    x, sf = reader.read("EEG C3")
    assert sf == 256.0 and len(x) == 256 * 60
    assert np.max(np.abs(x - 100e-6 * np.sin(2 * np.pi * 10 * t256))) < 1e-8  # µV → V, int16 quantisation
    y, sf = reader.read("EMG chin")
    assert sf == 200.0 and len(y) == 200 * 60
    assert reader.start_time.hour == 22


def test_units_are_converted(tmp_path):
    path = write_edf(tmp_path / "mv.edf", {"EEG": (np.linspace(-1, 1, 1000), 100.0)}, unit="mV")
    x, _ = EdfReader(path).read("EEG")
    assert x.max() == pytest.approx(1e-3, rel=1e-4)


def test_same_values_as_mne_on_real_file():
    mne = pytest.importorskip("mne")
    path = real_file("sleep-edf", "SC4001E0-first5min-PSG.edf")
    reader = EdfReader(path)
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    for label in ["EEG Fpz-Cz", "EOG horizontal"]:
        x, sf = reader.read(label)
        assert sf == 100.0
        np.testing.assert_allclose(x, raw.get_data(picks=[label])[0], atol=1e-12)
    # the 1 Hz channels stay at 1 Hz here (MNE would upsample them to 100 Hz)
    assert reader.read("EMG submental")[1] == 1.0 and len(reader.read("EMG submental")[0]) == 300


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.edf").write_bytes(b"")
    with pytest.raises(EdfError, match=r"^empty\.edf: file is empty"):
        read_header(tmp_path / "empty.edf")


def test_not_an_edf(tmp_path):
    (tmp_path / "notes.edf").write_text("this is a text file, not a recording\n" * 20)
    with pytest.raises(EdfError, match=r"^notes\.edf: not an EDF"):
        read_header(tmp_path / "notes.edf")


def test_truncated_file_is_read_up_to_the_last_complete_record(tmp_path):
    # issue 9: a recorder that crashed leaves a file shorter than its header declares; it is read
    # up to its last complete record, with a warning (it used to be refused).
    x = np.random.default_rng(0).normal(size=6000)
    path = write_edf(tmp_path / "cut.edf", {"EEG C3": (x, 100.0)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 5000])
    reader = EdfReader(path)
    assert reader.header.warnings[0].startswith(
        "truncated: header declares 60 data records but the file holds 35; read up to the last complete record")
    y, sf = reader.read("EEG C3")
    assert sf == 100.0 and len(y) == 3500  # 35 complete 1-s records
    span = (x.max() - x.min()) / 65535
    np.testing.assert_allclose(y, x[:3500] * 1e-6, atol=span * 1e-6)


def test_discontinuous_edfplus_refused(tmp_path):
    path = write_edf(tmp_path / "d.edf", {"EEG C3": (np.zeros(3000) + np.arange(3000), 100.0)})
    data = bytearray(path.read_bytes())
    data[192:192 + 5] = b"EDF+D"
    path.write_bytes(bytes(data))
    with pytest.raises(EdfError, match=r"d\.edf: EDF\+D"):
        EdfReader(path)
