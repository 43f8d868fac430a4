"""load_audio at any rate: bounded memory, one second of 16 kHz audio, pitch kept."""
import numpy as np
import pytest
import soundfile as sf

from conftest import memory_capped, tone
from seqapp.errors import UserError
from seqapp.speech.data.audio import SAMPLE_RATE, load_audio, read_audio

RATES = [8_000, 11_025, 22_050, 44_100, 44_101, 47_952, 48_000, 96_001, 383_999]


def dominant_frequency(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()])


@memory_capped(extra_mb=400)  # a second of audio is 64 kB: anything near the cap is a blow-up
@pytest.mark.parametrize("rate", RATES)
def test_every_rate_loads_one_second_at_16k_with_its_pitch(tmp_path, rate):
    path = tmp_path / f"tone_{rate}.wav"
    sf.write(path, tone(1000, seconds=1.0, rate=rate), rate, subtype="PCM_16")
    wave = load_audio(path).numpy()
    assert wave.shape == (SAMPLE_RATE,)
    assert abs(dominant_frequency(wave, SAMPLE_RATE) - 1000) <= 2
    whole = read_audio(path).numpy()
    assert abs(len(whole) - SAMPLE_RATE) <= 1


@memory_capped(extra_mb=400)
def test_a_short_clip_at_an_odd_rate_is_padded_not_blown_up(tmp_path):
    path = tmp_path / "short.wav"  # the case: 0.1 s whose header says 96,001 Hz
    sf.write(path, tone(440, seconds=0.1, rate=96_001), 96_001, subtype="PCM_16")
    assert load_audio(path).shape == (SAMPLE_RATE,)


def test_rates_outside_the_accepted_range_are_refused(tmp_path):
    path = tmp_path / "slow.wav"
    sf.write(path, tone(100, seconds=0.5, rate=800), 800, subtype="PCM_16")
    with pytest.raises(UserError, match="unsupported sample rate 800"):
        load_audio(path)
