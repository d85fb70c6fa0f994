"""Spectral audio statistics on generated wav files, resampling, chunking, broken files; aiSFX when installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrec.features import AudioStatsEncoder

from .conftest import write_wav

pytest.importorskip("librosa")


def test_wav_paths_arrays_and_resampling(tmp_path: Path) -> None:
    enc = AudioStatsEncoder(n_mfcc=8, n_mels=16)
    f16 = write_wav(tmp_path / "a16.wav", rate=16000)
    f8 = write_wav(tmp_path / "a8.wav", rate=8000)
    stereo = write_wav(tmp_path / "st.wav", rate=16000, channels=2)
    high = write_wav(tmp_path / "hi.wav", rate=16000, freq=2000.0)
    import wave

    with wave.open(str(f16)) as w:
        wave_arr = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
    x = enc.transform([str(f16), str(f8), str(stereo), (wave_arr, 16000), str(high)])
    assert x.shape == (5, enc.dim) == (5, 2 * (8 + 16 + 12 + 6)) and np.isfinite(x).all()
    d = lambda a, b: np.linalg.norm(x[a] - x[b]) / np.linalg.norm(x[a])
    assert d(0, 2) < 1e-3  # stereo copy -> same mono signal
    assert d(0, 3) < 1e-4  # the same samples given as (array, rate)
    chroma = slice(8 + 16, 8 + 16 + 12)
    assert x[0, chroma].argmax() == x[1, chroma].argmax() == 9  # 440 Hz is an A at either input rate
    assert x[4, chroma].argmax() != 9
    # centroid (normalised) higher for the 2 kHz tone
    centroid = 8 + 16 + 12
    assert x[4, centroid] > x[0, centroid]


def test_chunked_windows_pool_like_whole_file(tmp_path: Path) -> None:
    f = write_wav(tmp_path / "long.wav", seconds=3.0, rate=8000)
    whole = AudioStatsEncoder(sample_rate=8000, n_mfcc=8, n_mels=16, window_seconds=60).transform([str(f)])
    chunked = AudioStatsEncoder(sample_rate=8000, n_mfcc=8, n_mels=16, window_seconds=1.0).transform([str(f)])
    np.testing.assert_allclose(chunked, whole, rtol=0.05, atol=1.0)


def test_broken_and_empty_audio_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEnope")
    good = write_wav(tmp_path / "ok.wav", seconds=0.2)
    rows, report = AudioStatsEncoder(n_mfcc=4, n_mels=8).transform_report(
        [str(bad), str(good), np.zeros(0, dtype=np.float32), np.array([np.nan, 1.0])], ids=["b", "g", "e", "n"]
    )
    assert report.failed_ids == ["b", "e", "n"]
    assert rows[1].any() and not rows[[0, 2, 3]].any()


@pytest.mark.pretrained
def test_aisfx_embedding(tmp_path: Path) -> None:
    pytest.importorskip("aisfx")
    pytest.importorskip("torch")
    from fusionrec.features import AisfxEncoder

    f = write_wav(tmp_path / "t.wav", seconds=1.0, rate=16000)
    rows, report = AisfxEncoder().transform_report([str(f), str(tmp_path / "missing.wav")])
    assert rows.shape == (2, 512) and np.isfinite(rows).all() and rows[0].any()
    assert [x.position for x in report.failures] == [1]
