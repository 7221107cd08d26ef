import pytest

from preprocess.core.channels import (
    ALIASES,
    CANONICAL,
    MontageError,
    normalize_label,
    parse_channel_map,
    resolve_montage,
)


def test_canonical_order_is_fixed():
    assert CANONICAL == ("F3", "F4", "C3", "C4", "O1", "O2", "E1", "E2", "Chin")


@pytest.mark.parametrize("label", ["EEG C3-A2", "C3_A2", "C3:A2", "c3-a2", " C3 A2 ", "EEG:C3-A2"])
def test_normalize_label_equivalent_spellings(label):
    assert normalize_label(label) == "C3A2"


def test_normalize_label_keeps_bare_type_names():
    assert normalize_label("EEG(sec)") == "EEGSEC"
    assert normalize_label("EEG") == "EEG"
    assert normalize_label("EMG") == "EMG"


def test_first_available_option_wins_and_derivation_pairs():
    cmap = {"C3": ["C3-M2", ("C3", "M2"), "C3"], "C4": [("C4", "M1")], "E1": ["LOC"]}
    found = resolve_montage(["EEG C3", "EEG M2", "C4", "M1", "Fp1"], cmap, "x.edf")
    assert [(s.canonical, s.positive, s.negative) for s in found] == [
        ("C3", "EEG C3", "EEG M2"), ("C4", "C4", "M1")]
    found = resolve_montage(["C3-M2", "C3", "M2"], cmap)
    assert found[0].positive == "C3-M2" and found[0].negative is None


def test_no_channel_gives_error_naming_file_and_labels():
    with pytest.raises(MontageError, match=r"night\.edf.*\['ECG', 'SpO2'\]"):
        resolve_montage(["ECG", "SpO2"], ALIASES, "night.edf")


def test_alias_table_detects_common_montages():
    labels = ["EEG F4-M1", "EEG C4-M1", "EEG O2-M1", "EEG C3-M2", "EMG chin", "EOG E1-M2", "EOG E2-M2", "ECG"]
    got = {s.canonical: s.describe() for s in resolve_montage(labels, ALIASES)}
    assert got == {"F4": "EEG F4-M1", "C3": "EEG C3-M2", "C4": "EEG C4-M1", "O2": "EEG O2-M1",
                   "E1": "EOG E1-M2", "E2": "EOG E2-M2", "Chin": "EMG chin"}
    # unreferenced electrodes are re-referenced to the contralateral mastoid
    got = {s.canonical: s.describe() for s in resolve_montage(["C3", "C4", "A1", "A2", "LOC", "ROC"], ALIASES)}
    assert got == {"C3": "C3 - A2", "C4": "C4 - A1", "E1": "LOC - A2", "E2": "ROC - A1"}


def test_parse_channel_map_json_forms():
    cmap = parse_channel_map({"C3": ["C3-M2", ["C3", "M2"]], "E1": "LOC"})
    assert cmap == {"C3": ["C3-M2", ("C3", "M2")], "E1": ["LOC"]}
    with pytest.raises(KeyError, match="Cz"):
        parse_channel_map({"Cz": ["Cz-M1"]})
