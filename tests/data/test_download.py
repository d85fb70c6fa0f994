"""fetch(): streaming download from a local http.server, sha256 check, safe extraction, cache hits."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fusionrec.data.datasets.download import ARCHIVES, cached_path, fetch
from fusionrec.errors import ChecksumError, ConfigError, CorruptArchiveError, DownloadError


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


GOOD = make_zip({"toy/u.data": b"1\t1\t5\t100\n", "toy/README": b"toy"})


class Server:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_fetch_success_and_cache_hit(server: Server, tmp_path: Path) -> None:
    server.files["/toy.zip"] = GOOD
    path = fetch("toy", tmp_path, url=server.url("/toy.zip"), sha256=sha(GOOD))
    assert path == tmp_path / "datasets" / "toy" / "toy"
    assert (path / "u.data").read_bytes() == b"1\t1\t5\t100\n"
    assert len(server.requests) == 1
    assert not list((tmp_path / "datasets").glob(".toy.*"))  # no temp files left
    again = fetch("toy", tmp_path, url=server.url("/toy.zip"), sha256=sha(GOOD))
    assert again == path and len(server.requests) == 1  # cached: no network
    assert cached_path("toy", tmp_path) == path


def test_checksum_mismatch_keeps_cache(server: Server, tmp_path: Path) -> None:
    server.files["/toy.zip"] = GOOD
    good = fetch("toy", tmp_path, url=server.url("/toy.zip"), sha256=sha(GOOD))
    server.files["/evil.zip"] = make_zip({"toy/u.data": b"evil"})
    with pytest.raises(ChecksumError, match="does not match"):
        fetch("toy", tmp_path, url=server.url("/evil.zip"), sha256=sha(GOOD), force=True)
    assert (good / "u.data").read_bytes() == b"1\t1\t5\t100\n"  # previous copy intact
    assert not list((tmp_path / "datasets").glob(".toy.*"))  # partial download removed


def test_corrupt_archive(server: Server, tmp_path: Path) -> None:
    junk = b"this is not a zip file"
    server.files["/bad.zip"] = junk
    with pytest.raises(CorruptArchiveError, match="not a readable zip"):
        fetch("bad", tmp_path, url=server.url("/bad.zip"), sha256=sha(junk))
    assert not (tmp_path / "datasets" / "bad").exists()
    assert not list((tmp_path / "datasets").glob(".bad.*"))


@pytest.mark.parametrize("member", ["../escape.txt", "/abs/escape.txt", "toy/../../escape.txt"])
def test_path_traversal_member(server: Server, tmp_path: Path, member: str) -> None:
    data = make_zip({"toy/ok.txt": b"ok", member: b"owned"})
    server.files["/trav.zip"] = data
    with pytest.raises(CorruptArchiveError, match="outside the target folder"):
        fetch("trav", tmp_path, url=server.url("/trav.zip"), sha256=sha(data))
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "datasets" / "escape.txt").exists()
    assert not (tmp_path / "datasets" / "trav").exists()


def test_sha_required_and_errors(server: Server, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sha256"):
        fetch("toy", tmp_path, url=server.url("/toy.zip"))
    with pytest.raises(ConfigError, match="64 hex"):
        fetch("toy", tmp_path, url=server.url("/toy.zip"), sha256="abc")
    with pytest.raises(ConfigError, match="unknown dataset archive"):
        fetch("nope", tmp_path)
    with pytest.raises(DownloadError, match="could not download"):
        fetch("missing", tmp_path, url=server.url("/missing.zip"), sha256=sha(b""))
    with pytest.raises(ConfigError, match="http"):
        fetch("f", tmp_path, url="file:///etc/passwd", sha256=sha(b""))


def test_registry_has_official_checksums() -> None:
    for name in ("ml-100k", "ml-latest-small", "ml-1m"):
        a = ARCHIVES[name]
        assert a.url.startswith("https://files.grouplens.org/datasets/movielens/")
        assert len(a.sha256) == 64


def test_downloads_go_through_pooch_with_the_sha256(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pooch fetches the archive, given the sha256 to verify (issue 11); nothing but the result is left behind."""
    import pooch

    calls: list[dict[str, object]] = []
    real = pooch.retrieve

    def spy(url: str, known_hash: str, **kwargs: object) -> str:
        calls.append({"url": url, "known_hash": known_hash, **kwargs})
        return real(url, known_hash, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pooch, "retrieve", spy)
    server.files["/toy.zip"] = GOOD
    fetch("toy", tmp_path, url=server.url("/toy.zip"), sha256=sha(GOOD))
    assert [c["known_hash"] for c in calls] == [f"sha256:{sha(GOOD)}"]
    assert calls[0]["path"] == tmp_path / "datasets"
    server.files["/evil.zip"] = make_zip({"toy/u.data": b"evil"})
    with pytest.raises(ChecksumError, match="does not match"):
        fetch("toy", tmp_path, url=server.url("/evil.zip"), sha256=sha(GOOD), force=True)
    assert sorted(p.name for p in (tmp_path / "datasets").iterdir()) == ["toy"]  # no zip, no pooch temp file


def test_fetch_with_progress_bars_on(server: Server, tmp_path: Path) -> None:
    from fusionrec._progress import set_progress

    server.files["/toy.zip"] = GOOD
    set_progress(True)
    try:
        path = fetch("toy", tmp_path, url=server.url("/toy.zip"), sha256=sha(GOOD))
    finally:
        set_progress(False)
    assert (path / "u.data").is_file()
