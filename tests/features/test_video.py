"""Video encoder on a tiny generated MP4 (PyAV), with and without an audio track."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")


def _make_video(path: Path, colour: tuple[int, int, int], n: int = 12, audio: bool = True) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        astream = out.add_stream("aac", rate=16000) if audio else None
        for k in range(n):
            img = np.zeros((32, 32, 3), dtype=np.uint8)
            img[:] = colour
            img[k % 32, :, :] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if astream is not None:
            t = np.arange(16000) / 16000
            samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = 16000
            for packet in astream.encode(frame):
                out.mux(packet)
            for packet in astream.encode():
                out.mux(packet)
    return path


def test_video_frames_and_audio(tmp_path: Path) -> None:
    pytest.importorskip("librosa")
    from fusionrec.features import AudioStatsEncoder, ImageDescriptorEncoder, VideoEncoder, read_video

    red = _make_video(tmp_path / "red.mp4", (200, 30, 30))
    blue = _make_video(tmp_path / "blue.mp4", (30, 30, 200), audio=False)
    frames, track = read_video(red, n_frames=4, audio_rate=16000)
    assert 1 <= len(frames) <= 4 and frames[0].shape == (32, 32, 3)
    assert track is not None and track[1] == 16000 and track[0].size > 8000
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    enc = VideoEncoder(
        image_encoder=ImageDescriptorEncoder(size=32), audio_encoder=AudioStatsEncoder(n_mfcc=4, n_mels=8), n_frames=4
    )
    enc.fit([])
    rows, report = enc.transform_report([str(red), str(blue), str(bad)], ids=["r", "b", "x"])
    img_dim = ImageDescriptorEncoder(size=32).dim
    assert rows.shape == (3, enc.dim) and report.failed_ids == ["x"]
    assert rows[0, img_dim:].any() and not rows[1, img_dim:].any()  # blue has no audio track
    assert np.linalg.norm(rows[0, :img_dim] - rows[1, :img_dim]) > 0.05
