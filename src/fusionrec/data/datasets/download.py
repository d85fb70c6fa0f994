"""Download public dataset archives into the cache, verified by sha256 and extracted safely.

``fetch("ml-100k")`` downloads ``ml-100k.zip`` from GroupLens into ``<cache>/datasets/`` (see
:func:`fusionrec.config.cache_dir`) with `pooch <https://www.fatiando.org/pooch>`_ (streamed to a temporary file,
checked against the published sha256, kept only when it matches), extracts the zip into a temporary folder
(refusing absolute paths, ``..`` and links), and only then moves the result into place, so a failed or tampered
download never destroys an earlier good copy.  A second call finds the verified copy and touches no network.

Every archive needs a known sha256: the registry carries the published ones (from the TensorFlow Datasets
checksum list), and other archives can be fetched with ``url=`` and ``sha256=`` given by the caller.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from fusionrec.errors import ChecksumError, ConfigError, CorruptArchiveError, DownloadError

__all__ = ["ARCHIVES", "Archive", "cached_path", "fetch"]

PathLike = str | os.PathLike[str]
CHUNK = 1 << 20
MARKER = ".fusionrec-sha256"


@dataclass(frozen=True)
class Archive:
    """A downloadable archive.

    Attributes
    ----------
    name
        Key used by :func:`fetch` and the cache folder name.
    url
        Where it comes from.
    sha256
        The published sha256 of the archive (hex); downloads that differ are rejected.
    size
        Size in bytes, for information.
    folder
        The folder inside the zip that holds the data (returned by :func:`fetch`).
    description
        One line for ``fusionrec datasets list``.
    """

    name: str
    url: str
    sha256: str
    size: int | None = None
    folder: str | None = None
    description: str = ""


_GL = "https://files.grouplens.org/datasets/movielens/"
# sha256 as published in tensorflow/datasets (tensorflow_datasets/url_checksums/movielens.txt)
ARCHIVES: dict[str, Archive] = {
    a.name: a
    for a in (
        Archive(
            "ml-100k",
            _GL + "ml-100k.zip",
            "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
            4924029,
            "ml-100k",
            "MovieLens 100K: 100000 ratings, 943 users, 1682 movies, demographics, official folds",
        ),
        Archive(
            "ml-latest-small",
            _GL + "ml-latest-small.zip",
            "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
            978202,
            "ml-latest-small",
            "MovieLens latest-small (2018-09): 100836 ratings, 610 users, 9742 movies, tags, links",
        ),
        Archive(
            "ml-1m",
            _GL + "ml-1m.zip",
            "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
            5917549,
            "ml-1m",
            "MovieLens 1M: 1000209 ratings, 6040 users, 3706 movies, demographics",
        ),
        Archive(
            "ml-20m",
            _GL + "ml-20m.zip",
            "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
            198702078,
            "ml-20m",
            "MovieLens 20M: 20000263 ratings, 138493 users, 27278 movies, tags",
        ),
        Archive(
            "ml-25m",
            _GL + "ml-25m.zip",
            "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
            261978986,
            "ml-25m",
            "MovieLens 25M: 25000095 ratings, 162541 users, 62423 movies, tags",
        ),
    )
}


def _root(cache_dir: PathLike | None, create: bool = True) -> Path:
    from fusionrec.config import cache_dir as configured

    root = configured(cache_dir, create=create) / "datasets"
    if create:
        root.mkdir(parents=True, exist_ok=True)
    return root


def _result_path(target: Path, folder: str | None) -> Path:
    if folder and (target / folder).is_dir():
        return target / folder
    entries = [p for p in target.iterdir() if p.name != MARKER]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return target


def cached_path(name: str, cache_dir: PathLike | None = None) -> Path | None:
    """The verified extracted folder of a fetched archive, or ``None`` when it is not in the cache."""
    target = _root(cache_dir, create=False) / name
    marker = target / MARKER
    if not marker.is_file():
        return None
    archive = ARCHIVES.get(name)
    if archive is not None and marker.read_text().strip() != archive.sha256:
        return None
    return _result_path(target, None if archive is None else archive.folder)


def _resolve(name: str, url: str | None, sha256: str | None) -> Archive:
    base = ARCHIVES.get(name)
    if base is None and url is None:
        raise ConfigError(
            f"unknown dataset archive {name!r}; known: {sorted(ARCHIVES)}; or pass url= and sha256= to fetch another"
        )
    chosen_url = url or (base.url if base else "")
    # a mirror of a registered archive must serve the same bytes, so the registered sha256 still applies
    chosen_sha = (sha256 or (base.sha256 if base else "")).lower()
    if not chosen_sha:
        raise ConfigError(
            f"no sha256 known for {chosen_url}; pass sha256=<published hex digest> (downloads are never trusted "
            "without one)"
        )
    if len(chosen_sha) != 64 or any(c not in "0123456789abcdef" for c in chosen_sha):
        raise ConfigError(f"sha256 must be 64 hex digits, got {chosen_sha!r}")
    return Archive(name, chosen_url, chosen_sha, None, base.folder if base else None, base.description if base else "")


class _Bar:
    """A pooch progress bar (``total``, ``update``, ``reset``, ``close``) drawn with rich, like every fusionrec bar."""

    def __init__(self, desc: str) -> None:
        from rich.progress import Progress

        self.total: int | None = None
        self._progress = Progress(transient=True)
        self._task = self._progress.add_task(desc, total=None)
        self._progress.start()

    def update(self, n: int) -> None:
        self._progress.update(self._task, total=self.total, advance=n)

    def reset(self) -> None:
        self._progress.reset(self._task, total=self.total)

    def close(self) -> None:
        self._progress.stop()


def _progressbar(name: str) -> Any:
    from fusionrec import _progress

    return _Bar(f"download {name}") if getattr(_progress, "_ENABLED", False) else False


def _download(archive: Archive, root: Path, timeout: float) -> Path:
    """Download ``archive`` into ``root`` with pooch, verified against its sha256; returns the zip's path.

    Pooch streams to a temporary file beside the target and keeps it only when the hash matches, so a failed or
    tampered download leaves nothing behind.
    """
    import pooch
    import requests

    fname = f".{archive.name}.{os.getpid()}.zip"
    downloader = pooch.HTTPDownloader(progressbar=_progressbar(archive.name), timeout=timeout, chunk_size=CHUNK)
    try:
        path = pooch.retrieve(
            archive.url, known_hash=f"sha256:{archive.sha256}", fname=fname, path=root, downloader=downloader
        )
    except ValueError as exc:
        if "hash" not in str(exc).lower():
            raise DownloadError(f"could not download {archive.url} ({exc})") from exc
        raise ChecksumError(
            f"{archive.url}: the sha256 does not match the expected {archive.sha256} ({exc}); the download is "
            "corrupt or the file changed upstream. It was deleted; retry, or pass the new published sha256= if "
            "you trust it"
        ) from exc
    except (requests.exceptions.RequestException, OSError) as exc:
        raise DownloadError(
            f"could not download {archive.url} ({exc}); check the network, or download the archive "
            f"yourself and unpack it into the data directory"
        ) from exc
    return Path(path)


def _safe_members(zf: zipfile.ZipFile, source: str) -> list[zipfile.ZipInfo]:
    members = []
    for info in zf.infolist():
        name = info.filename
        path = PurePosixPath(name.replace("\\", "/"))
        mode = info.external_attr >> 16
        if path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":") or stat.S_ISLNK(mode):
            raise CorruptArchiveError(
                f"{source}: member {name!r} would be written outside the target folder (absolute path, '..' "
                "or a link); the archive is unsafe and was not extracted"
            )
        members.append(info)
    return members


def _extract(zip_path: Path, dest: Path, source: str) -> None:
    try:
        with zipfile.ZipFile(zip_path) as zf:
            members = _safe_members(zf, source)
            bad = zf.testzip()
            if bad is not None:
                raise CorruptArchiveError(f"{source}: member {bad!r} fails its CRC check; re-download the archive")
            for info in members:
                zf.extract(info, dest)
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, ValueError) as exc:
        raise CorruptArchiveError(f"{source} is not a readable zip archive ({exc}); re-download it") from exc


def fetch(
    name: str,
    cache_dir: PathLike | None = None,
    *,
    url: str | None = None,
    sha256: str | None = None,
    force: bool = False,
    timeout: float = 60.0,
) -> Path:
    """Download (once) and unpack a dataset archive; return the folder holding its files.

    Parameters
    ----------
    name
        A key of :data:`ARCHIVES` (``"ml-100k"``, ``"ml-latest-small"``, ``"ml-1m"``, ``"ml-20m"``,
        ``"ml-25m"``) or, with ``url``, any name for the cache folder.
    cache_dir
        Cache root (default :func:`fusionrec.config.cache_dir`); archives go to ``<cache_dir>/datasets/<name>``.
    url, sha256
        Fetch another zip (or a mirror): the sha256 is then required.
    force
        Download again even when a verified copy is cached (the old copy stays until the new one is verified).
    timeout
        Socket timeout in seconds.

    Returns
    -------
    pathlib.Path
        The extracted data folder (the archive's single top folder, e.g. ``.../ml-100k/ml-100k``).

    Raises
    ------
    ConfigError
        Unknown name without ``url``, or no sha256.
    ChecksumError
        The download does not match the sha256 (the partial file is deleted, the cache is untouched).
    CorruptArchiveError
        Not a zip, a CRC failure, or a member that escapes the target folder.
    DownloadError
        The network request failed.
    """
    archive = _resolve(name, url, sha256)
    root = _root(cache_dir)
    target = root / archive.name
    marker = target / MARKER
    if not force and marker.is_file() and marker.read_text().strip() == archive.sha256:
        return _result_path(target, archive.folder)
    if not archive.url.startswith(("http://", "https://")):
        raise ConfigError(f"only http(s) URLs can be fetched, got {archive.url!r}")
    zip_path = _download(archive, root, timeout)
    staging = Path(tempfile.mkdtemp(prefix=f".{archive.name}.", suffix=".extract", dir=root))
    try:
        _extract(zip_path, staging, archive.url)
        (staging / MARKER).write_text(archive.sha256 + "\n")
        old = None
        if target.exists():
            old = root / f".{archive.name}.old-{os.getpid()}"
            target.rename(old)
        staging.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        with contextlib.suppress(OSError):
            zip_path.unlink()
    return _result_path(target, archive.folder)
