"""Video encoder: frames sampled through an image encoder and the audio track through an audio encoder.

Decoding uses PyAV (``pip install av``; FFmpeg is bundled in its wheels).  Without it,
:class:`VideoEncoder` raises :class:`~fusionrec.errors.ConfigError` with the install command.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from fusionrec._params import BOOL, POSITIVE_INT
from fusionrec.errors import ConfigError
from fusionrec.features.base import Encoder, ItemError

__all__ = ["VideoEncoder", "read_video"]


def _av() -> Any:
    try:
        import av
    except ImportError as exc:
        raise ConfigError("video decoding needs PyAV: pip install av (its wheels bundle FFmpeg)") from exc
    return av


def read_video(
    path: Any, n_frames: int = 8, audio_rate: int | None = 22050
) -> tuple[list[np.ndarray], tuple[np.ndarray, int] | None]:
    """Decode ``n_frames`` RGB frames spread uniformly over the video, and its mono audio track.

    Returns ``(frames uint8 [H, W, 3] list, (waveform float32, rate) or None)``; the audio is ``None`` when
    the file has no audio stream or ``audio_rate`` is None.  Raises :class:`ItemError` for unreadable files.
    """
    av = _av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ItemError("the file has no video stream")
            stream = container.streams.video[0]
            total = int(stream.frames or 0)
            frames: list[np.ndarray] = []
            if total > 0:
                targets = set(np.unique(np.linspace(0, total - 1, n_frames).round().astype(int)).tolist())
                for idx, frame in enumerate(container.decode(stream)):
                    if idx in targets:
                        frames.append(frame.to_ndarray(format="rgb24"))
            else:  # frame count unknown: keep a thumbnail of every frame, then sample
                thumbs = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
                if thumbs:
                    pick = np.unique(np.linspace(0, len(thumbs) - 1, n_frames).round().astype(int))
                    frames = [thumbs[i] for i in pick]
        audio = None
        if audio_rate is not None:
            with av.open(str(path)) as container:
                if container.streams.audio:
                    resampler = av.AudioResampler(format="flt", layout="mono", rate=int(audio_rate))
                    chunks = []
                    for frame in container.decode(container.streams.audio[0]):
                        for out in resampler.resample(frame):
                            chunks.append(out.to_ndarray().reshape(-1))
                    for out in resampler.resample(None):
                        chunks.append(out.to_ndarray().reshape(-1))
                    if chunks:
                        audio = (np.concatenate(chunks).astype(np.float32), int(audio_rate))
    except ItemError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise ItemError(f"unreadable video ({type(exc).__name__}: {exc})") from exc
    if not frames:
        raise ItemError("no decodable video frames")
    return frames, audio


class VideoEncoder(Encoder):
    """``[mean over sampled frames of image_encoder(frame), audio_encoder(audio track)]``.

    Parameters
    ----------
    image_encoder
        Encoder applied to each of the ``n_frames`` frames (default :class:`ImageDescriptorEncoder`).
    audio_encoder
        Encoder of the mono audio track (default :class:`AudioStatsEncoder`); ``None`` leaves audio out.
        Videos without sound get zeros in the audio part.
    n_frames
        Frames sampled uniformly over the video.
    """

    name = "video"
    item_kind = "file"

    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "image_encoder": [Encoder, None],
        "audio_encoder": [Encoder, None],
        "n_frames": [*POSITIVE_INT],
        "with_audio": [*BOOL],
    }

    def __init__(
        self,
        *,
        image_encoder: Encoder | None = None,
        audio_encoder: Encoder | None = None,
        n_frames: int = 8,
        with_audio: bool = True,
    ) -> None:
        self.image_encoder = image_encoder
        self.audio_encoder = audio_encoder
        self.n_frames = n_frames
        self.with_audio = with_audio

    def _image(self) -> Encoder:
        from fusionrec.features.image import ImageDescriptorEncoder

        return self.image_encoder if self.image_encoder is not None else ImageDescriptorEncoder()

    def _audio(self) -> Encoder | None:
        from fusionrec.features.audio import AudioStatsEncoder

        if not self.with_audio:
            return None
        return self.audio_encoder if self.audio_encoder is not None else AudioStatsEncoder()

    def _validate(self) -> None:
        _av()

    @property
    def dim(self) -> int:
        audio = self._audio()
        return self._image().dim + (audio.dim if audio is not None else 0)

    def _encode_batch(self, items: list[Any]) -> tuple[np.ndarray, dict[int, str]]:
        _av()
        image, audio = self._image(), self._audio()
        rate = int(getattr(audio, "sample_rate", getattr(audio, "SAMPLE_RATE", 22050))) if audio is not None else None
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        errors: dict[int, str] = {}
        for j, item in enumerate(items):
            if item is None:
                errors[j] = "missing (no video)"
                continue
            try:
                frames, track = read_video(item, int(self.n_frames), rate)
            except ItemError as exc:
                errors[j] = str(exc)
                continue
            rows, frame_errors = image._encode_batch(frames)
            good = [r for r in range(len(frames)) if r not in frame_errors]
            if not good:
                errors[j] = "no frame could be encoded"
                continue
            out[j, : image.dim] = rows[good].mean(0)
            if audio is not None and track is not None and track[0].size:
                arow, aerr = audio._encode_batch([track])
                if not aerr:
                    out[j, image.dim :] = arow[0]
        return out, errors
