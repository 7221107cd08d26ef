"""Signal chain with known answers (DESIGN §4)."""

import numpy as np
import pytest
from scipy import signal as sps

from preprocess.core.signal import (
    ChannelDropped,
    SignalParams,
    butter_filter,
    normalize,
    process_channel,
    resample,
    to_epochs,
)


def sine(freq, sfreq, seconds, amp=1.0):
    t = np.arange(int(seconds * sfreq)) / sfreq
    return amp * np.sin(2 * np.pi * freq * t), t


def middle_amplitude(x, sfreq, margin_s=60):
    m = int(margin_s * sfreq)
    return np.sqrt(2) * np.std(x[m:-m])


def zero_phase_gain(freq, sfreq, low, high, order=4):
    """|H(f)|² of the designed filter: forward-backward filtering squares the magnitude."""
    sos = sps.butter(order, [low, high], btype="bandpass", fs=sfreq, output="sos")
    _, h = sps.sosfreqz(sos, worN=[freq], fs=sfreq)
    return abs(h[0]) ** 2


def test_bandpass_passes_10hz_and_attenuates_out_of_band():
    sfreq = 256.0
    for freq, low_db, high_db in [(10.0, -0.1, 0.1), (45.0, -25, -15), (0.05, -200, -60)]:
        x, _ = sine(freq, sfreq, 600)
        y = butter_filter(x, sfreq, 0.3, 35.0, order=4)
        gain_db = 20 * np.log10(middle_amplitude(y, sfreq) / middle_amplitude(x, sfreq))
        assert low_db <= gain_db <= high_db, (freq, gain_db)
        # the measured gain is the designed zero-phase gain
        assert gain_db == pytest.approx(20 * np.log10(zero_phase_gain(freq, sfreq, 0.3, 35.0)), abs=0.5)


def test_filter_is_zero_phase():
    sfreq = 100.0
    x, _ = sine(5.0, sfreq, 120)
    y = butter_filter(x, sfreq, 0.3, 35.0)
    lag = np.argmax(sps.correlate(y[2000:4000], x[2000:4000], mode="full")) - 1999
    assert lag == 0


def test_emg_highpass_removes_low_frequencies():
    sfreq = 200.0
    slow, _ = sine(2.0, sfreq, 300)
    fast, _ = sine(40.0, sfreq, 300)
    y = butter_filter(slow + fast, sfreq, 10.0, None)
    assert middle_amplitude(y, sfreq) == pytest.approx(1.0, abs=0.02)


def test_lowpass_edge_above_nyquist_is_dropped():
    x, _ = sine(20.0, 50.0, 300)  # DREAMS-like 50 Hz recording: 35 Hz low-pass is meaningless
    y = butter_filter(x, 50.0, 0.3, 35.0)
    assert middle_amplitude(y, 50.0) == pytest.approx(1.0, abs=0.01)
    with pytest.raises(ChannelDropped, match="too low"):
        butter_filter(np.random.default_rng(0).normal(size=600), 1.0, 10.0, None)  # 1 Hz EMG envelope


@pytest.mark.parametrize("sfreq", [256.0, 200.0, 128.0, 50.0, 512.0])
def test_resampling_preserves_5hz_sine(sfreq):
    x, _ = sine(5.0, sfreq, 60)
    y = resample(x, sfreq, 100.0)
    assert len(y) == 6000
    expected, _ = sine(5.0, 100.0, 60)
    assert np.max(np.abs(y[500:-500] - expected[500:-500])) < 0.01


def test_resampling_antialiases():
    # a 70 Hz tone at 256 Hz would alias to 30 Hz with plain interpolation; the polyphase FIR removes it
    x, _ = sine(70.0, 256.0, 60)
    y = resample(x, 256.0, 100.0)
    assert np.std(y[500:-500]) < 0.01


def test_zscore_and_robust_normalisation():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, 100_000)
    z = normalize(x, "zscore")
    assert abs(z.mean()) < 1e-9 and z.std() == pytest.approx(1.0)
    r = normalize(x, "robust")
    q25, med, q75 = np.percentile(r, [25, 50, 75])
    assert abs(med) < 1e-9 and q75 - q25 == pytest.approx(1.0)
    with pytest.raises(ChannelDropped, match="flat"):
        normalize(np.full(1000, 3.0))


def test_chain_notes_are_collected_per_thread():
    """What the chain tolerated goes to the chain_notes of the thread that chained it, even while another
    thread collects its own (batch staging chains the next file on a second thread); outside a
    collection it stays a UserWarning."""
    import threading

    from preprocess.core.signal import chain_notes, clean_nan

    both_inside = threading.Barrier(2)
    got = {}

    def chain(key: int, n_bad: int) -> None:
        x = np.ones(1000)
        x[:n_bad] = np.nan
        with chain_notes() as notes:
            both_inside.wait()  # both collections open at once
            clean_nan(x)
            both_inside.wait()  # both messages given before either collection closes
        got[key] = list(notes)

    threads = [threading.Thread(target=chain, args=(k, n)) for k, n in ((0, 100), (1, 250))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {0: ["10.0% of samples are NaN/inf; replaced by the channel median"],
                   1: ["25.0% of samples are NaN/inf; replaced by the channel median"]}
    x = np.ones(1000)
    x[:50] = np.nan
    with pytest.warns(UserWarning, match="5.0% of samples"):
        clean_nan(x)


def test_process_channel_units_and_nan_handling():
    x, _ = sine(10.0, 256.0, 120, amp=50e-6)  # 50 µV in volts
    y = process_channel(x, 256.0, "eeg")
    assert y.dtype == np.float32 and len(y) == 12000
    assert np.std(y) == pytest.approx(1.0, abs=1e-3)
    x_nan = x.copy()
    x_nan[1000:1100] = np.nan
    with pytest.warns(UserWarning, match="NaN"):
        y = process_channel(x_nan, 256.0, "eeg")
    assert np.isfinite(y).all()
    with pytest.raises(ChannelDropped, match="NaN"):
        process_channel(np.full(25600, np.nan), 256.0, "eeg")
    with pytest.raises(ChannelDropped, match="flat"):
        process_channel(np.zeros(25600), 256.0, "eog")


def test_epoching_drops_partial_epoch_and_keeps_order():
    signals = np.arange(2 * 7500, dtype=np.float32).reshape(2, 7500)
    ep = to_epochs(signals, 3000)
    assert ep.shape == (2, 2, 3000)
    assert ep[1, 0, 0] == 3000 and ep[1, 1, 0] == 7500 + 3000


def test_params_round_trip():
    p = SignalParams(normalization="robust", eeg_band=(0.5, 30.0))
    assert SignalParams.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError):
        SignalParams(normalization="minmax")


@pytest.mark.parametrize("sfreq", [256.0, 200.0, 128.0, 512.0, 250.0, 100.0])
@pytest.mark.parametrize("kind, band", [("eeg", (0.3, 35.0)), ("emg", (10.0, None))])
def test_antialiased_chain_is_sosfiltfilt_then_resample_poly(sfreq, kind, band):
    """The antialiased chain, computed by hand: sosfiltfilt of the order-4 design at the native rate,
    resample_poly by the exact rational factor, z-score (replaces the one-FFT chain's test)."""
    from fractions import Fraction

    low, high = band
    rng = np.random.default_rng(0)
    n = int(sfreq * 300)
    t = np.arange(n) / sfreq
    x = rng.normal(size=n) * 20e-6 + 40e-6 * np.sin(2 * np.pi * 0.05 * t) + 15e-6 * np.sin(2 * np.pi * 13 * t)
    wn, btype = ([low, high], "bandpass") if high else (low, "highpass")
    y = sps.sosfiltfilt(sps.butter(4, wn, btype=btype, fs=sfreq, output="sos"), x)
    r = Fraction(100, int(sfreq))
    if r != 1:
        y = sps.resample_poly(y, r.numerator, r.denominator)
    expected = (y - y.mean()) / y.std()
    out = process_channel(x, sfreq, kind)
    assert len(out) == 30000
    np.testing.assert_allclose(out, expected, atol=1e-5)
