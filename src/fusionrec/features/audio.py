"""Audio encoders: librosa spectral statistics (weight-free) and the pretrained aiSFX sound-event embedding.

Items are file paths (anything libsndfile reads: wav, flac, ogg, ...), ``(waveform, sample_rate)`` tuples,
or 1-D / 2-D waveform arrays at ``input_sample_rate`` (2-D arrays are ``channels x samples`` and are
averaged to mono).  Everything is resampled to the encoder's ``sample_rate``.  Long files are read and
processed in fixed windows of ``window_seconds`` (never loaded whole) and the frame statistics are pooled
over all windows, so memory does not grow with the file length.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from fusionrec._params import POSITIVE, POSITIVE_INT
from fusionrec.errors import ConfigError
from fusionrec.features.base import Encoder, ItemError

__all__ = ["AisfxEncoder", "AudioStatsEncoder", "iter_audio_windows"]


def _mono(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr.mean(0) if arr.shape[0] <= arr.shape[1] else arr.mean(1)
    if arr.ndim != 1:
        raise ItemError(f"a waveform must be 1-D (or channels x samples), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ItemError("the waveform holds NaN or infinity")
    return arr


def _resample(y: np.ndarray, sr_in: float, sr: int) -> np.ndarray:
    if int(sr_in) == int(sr) or y.size == 0:
        return y
    import librosa

    return np.asarray(librosa.resample(y, orig_sr=float(sr_in), target_sr=float(sr)), dtype=np.float32)


def iter_audio_windows(
    item: Any, sr: int, window_seconds: float, input_sample_rate: int | None = None
) -> Iterator[np.ndarray]:
    """Yield mono float32 windows (at ``sr``) of at most ``window_seconds`` from a path, tuple or array.

    Files are read window by window through soundfile (resampled per window); arrays are resampled whole
    and sliced.  Raises :class:`ItemError` for unreadable files and empty or non-finite waveforms.
    """
    win = max(1, round(window_seconds * sr))
    if isinstance(item, tuple) and len(item) == 2:
        y = _resample(_mono(item[0]), float(item[1]), sr)
    elif isinstance(item, np.ndarray):
        y = _resample(_mono(item), float(input_sample_rate or sr), sr)
    elif isinstance(item, str) or hasattr(item, "__fspath__"):
        yield from _file_windows(item, sr, window_seconds)
        return
    else:
        raise ItemError(f"cannot read audio from a {type(item).__name__}; pass a path, an array or (array, sr)")
    if y.size == 0:
        raise ItemError("empty waveform")
    for s in range(0, len(y), win):
        yield y[s : s + win]


def _file_windows(path: Any, sr: int, window_seconds: float) -> Iterator[np.ndarray]:
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises its own error types (and RuntimeError on old versions)
        raise ItemError(f"unreadable audio file ({type(exc).__name__}: {exc})") from exc
    if info.frames == 0:
        raise ItemError("empty audio file")
    block = max(1, round(window_seconds * info.samplerate))
    try:
        with sf.SoundFile(str(path)) as fh:
            while True:
                data = fh.read(block, dtype="float32", always_2d=True)
                if len(data) == 0:
                    break
                yield _resample(data.mean(1), info.samplerate, sr)
    except ItemError:
        raise
    except Exception as exc:
        raise ItemError(f"audio file truncated or corrupt ({type(exc).__name__}: {exc})") from exc


class AudioStatsEncoder(Encoder):
    """Spectral statistics: mean and standard deviation over frames of MFCC, log-mel, chroma and spectral shape.

    Frame features (``n_fft`` window, ``hop_length`` hop at ``sample_rate``): ``n_mfcc`` MFCCs, ``n_mels``
    log-mel energies (dB), 12 chroma bins, spectral centroid / bandwidth / roll-off (divided by the Nyquist
    frequency), spectral flatness, zero-crossing rate and RMS energy.  The output is
    ``[mean(F), std(F)]`` over every frame of the file, accumulated window by window
    (``window_seconds``), hence ``2 * (n_mfcc + n_mels + 12 + 6)`` dimensions.  Scales differ between blocks;
    follow it with ``PostProcess(method="standard")`` before cosine similarities.
    """

    name = "audio-stats"
    item_kind = "file"
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "sample_rate": [*POSITIVE_INT],
        "n_mfcc": [*POSITIVE_INT],
        "n_mels": [*POSITIVE_INT],
        "n_fft": [*POSITIVE_INT],
        "hop_length": [*POSITIVE_INT],
        "window_seconds": [*POSITIVE],
        "input_sample_rate": [*POSITIVE_INT, None],
    }

    def __init__(
        self,
        *,
        sample_rate: int = 22050,
        n_mfcc: int = 20,
        n_mels: int = 40,
        n_fft: int = 2048,
        hop_length: int = 512,
        window_seconds: float = 30.0,
        input_sample_rate: int | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.n_mfcc = n_mfcc
        self.n_mels = n_mels
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.window_seconds = window_seconds
        self.input_sample_rate = input_sample_rate

    @property
    def dim(self) -> int:
        return 2 * (int(self.n_mfcc) + int(self.n_mels) + 12 + 6)

    def frame_features(self, y: np.ndarray) -> np.ndarray:
        """Frame-level features ``[n_features, n_frames]`` of one mono window."""
        import librosa

        sr, n_fft, hop = int(self.sample_rate), int(self.n_fft), int(self.hop_length)
        if len(y) < n_fft:
            y = np.pad(y, (0, n_fft - len(y)))
        power = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop)) ** 2
        mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=int(self.n_mels))
        log_mel = librosa.power_to_db(mel, ref=1.0, top_db=None)
        mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=int(self.n_mfcc))
        chroma = librosa.feature.chroma_stft(S=power, sr=sr, n_fft=n_fft)
        mag = np.sqrt(power)
        nyq = sr / 2.0
        shape = np.vstack(
            [
                librosa.feature.spectral_centroid(S=mag, sr=sr, n_fft=n_fft) / nyq,
                librosa.feature.spectral_bandwidth(S=mag, sr=sr, n_fft=n_fft) / nyq,
                librosa.feature.spectral_rolloff(S=mag, sr=sr, n_fft=n_fft) / nyq,
                librosa.feature.spectral_flatness(S=mag),
                librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop)[:, : mag.shape[1]],
                librosa.feature.rms(S=mag, frame_length=n_fft)[:, : mag.shape[1]],
            ]
        )
        t = min(mfcc.shape[1], shape.shape[1])
        return np.vstack([mfcc[:, :t], log_mel[:, :t], chroma[:, :t], shape[:, :t]]).astype(np.float64)

    def _encode_one(self, item: Any) -> np.ndarray:
        total = np.zeros(self.dim // 2)
        total_sq = np.zeros(self.dim // 2)
        count = 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # librosa's short-signal notices
            for y in iter_audio_windows(
                item, int(self.sample_rate), float(self.window_seconds), self.input_sample_rate
            ):
                feats = self.frame_features(y)
                total += feats.sum(1)
                total_sq += (feats**2).sum(1)
                count += feats.shape[1]
        if count == 0:
            raise ItemError("no audio frames")
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
        return np.concatenate([mean, std]).astype(np.float32)


class AisfxEncoder(Encoder):
    """aiSFX (X-Sequential-CE, ISMIR 2021) 512-d sound-event embeddings, mean-pooled over ~2 s blocks.

    Needs ``pip install --no-deps aisfx`` (weights ship in the package).  Audio is resampled to 44.1 kHz and
    turned into the package's librosa log-mel spectrogram (96 bands, 2048 / 1024), min-max normalised as in the
    paper, cut into blocks of 100 frames with a 50-frame hop; the block embeddings are averaged.  The checkpoint
    is read with ``torch.load(weights_only=True)`` (numpy scalars allow-listed), never with full pickle.
    """

    name = "aisfx"
    item_kind = "file"
    _models: ClassVar[dict[str, Any]] = {}
    packages = ("aisfx",)
    SAMPLE_RATE = 44100

    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "window_seconds": [*POSITIVE],
        "input_sample_rate": [*POSITIVE_INT, None],
        "device": [str],
    }

    def __init__(
        self, *, window_seconds: float = 60.0, input_sample_rate: int | None = None, device: str = "cpu"
    ) -> None:
        self.window_seconds = window_seconds
        self.input_sample_rate = input_sample_rate
        self.device = device

    @property
    def dim(self) -> int:
        return 512

    def _load(self) -> Any:
        if self.device in self._models:
            return self._models[self.device]
        try:
            import torch
            from aisfx import inference
        except ImportError as exc:
            raise ConfigError("AisfxEncoder needs the aisfx package: pip install --no-deps aisfx") from exc
        scalar = np._core.multiarray.scalar  # type: ignore[attr-defined]
        safe: list[Any] = [(scalar, "numpy.core.multiarray.scalar"), np.dtype, type(np.dtype(np.int64))]
        with torch.serialization.safe_globals(safe):
            weights, ds_dict = torch.load(inference.get_path_modelWeights(), map_location="cpu", weights_only=True)
        model = inference.load_bestModel(weights, ds_dict, self.device)
        self._models[self.device] = model
        return model

    def _spectrogram(self, y: np.ndarray) -> np.ndarray:
        import librosa

        peak = float(np.max(np.abs(y))) if y.size else 0.0
        y = y / (peak if peak > 0 else 1.0)
        if len(y) < 2048:
            y = np.pad(y, (0, 2048 - len(y)))
        spec = librosa.feature.melspectrogram(
            y=y,
            sr=self.SAMPLE_RATE,
            n_mels=96,
            norm=1.0,
            fmin=0.0,
            fmax=22050.0,
            htk=True,
            power=2.0,
            hop_length=1024,
            win_length=2048,
        )
        spec = np.log10(spec * 10000.0 + 1).T  # frames x bands
        return spec / 9.457798957824707  # the paper's min-max range (min 0)

    def _encode_one(self, item: Any) -> np.ndarray:
        import torch

        model = self._load()
        specs = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            for y in iter_audio_windows(item, self.SAMPLE_RATE, float(self.window_seconds), self.input_sample_rate):
                specs.append(self._spectrogram(y))
        spec = np.vstack(specs)
        if len(spec) < 100:
            spec = np.vstack([spec, np.zeros((100 - len(spec), spec.shape[1]))])
        starts = range(0, len(spec) - 100 + 1, 50)
        blocks = np.stack([spec[s : s + 100] for s in starts]).astype(np.float32)
        with torch.inference_mode():
            emb = model.get_embedding(torch.from_numpy(blocks).to(self.device)).cpu().numpy()
        return emb.mean(0).astype(np.float32)
