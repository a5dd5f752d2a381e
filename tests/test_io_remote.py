"""Remote input files: ``data.files`` paths that are URLs (root://, http(s)://, file://, ...).

The end-to-end tests serve the test's own ROOT files over HTTP from 127.0.0.1 (a small
``http.server`` that honours ``Range: bytes=a-b``, as fsspec's HTTP reader needs), and compare
what ``hepnn.io.load``/``iterate`` read by URL with what they read from the local paths.
"""

from __future__ import annotations

import functools
import http.server
import io
import os
import re
import socket
import textwrap
import threading

import numpy as np
import pytest

import hepnn.io
from hepnn.config import DataConfig, FileGroup
from hepnn.exceptions import ConfigError, InputDataError
from hepnn.io.sources import is_url, resolve_files, url_file_name
from hepnn.io.split import assign_split, file_base_name, fold_key
from hepnn.io.stream import batch_runs, chunk_cache, file_stamps
from test_io_fixtures import PER_JET_YAML, per_jet_data, write_tree

pytest.importorskip("aiohttp")  # fsspec's HTTP file system


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files, with ``Range: bytes=a-b`` (and ``bytes=-n``) answered by 206 Partial Content."""

    def log_message(self, *args):  # quiet
        pass

    def send_head(self):
        path = self.translate_path(self.path)
        wanted = self.headers.get("Range")
        if not wanted or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", wanted.strip())
        if not match or match.groups() == ("", ""):
            self.send_error(416)
            return None
        first, last = match.groups()
        start, stop = (max(size - int(last), 0), size - 1) if first == "" else (int(first), min(int(last or size - 1), size - 1))
        if start >= size or start > stop:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return None
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read(stop - start + 1)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {start}-{stop}/{size}")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        return io.BytesIO(data)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``(folder, base URL)``: top.root and qcd.root (per-jet layout) served over HTTP from 127.0.0.1."""
    folder = tmp_path_factory.mktemp("served")
    write_tree(folder / "top.root", "jets", per_jet_data(40, seed=1))
    write_tree(folder / "qcd.root", "jets", per_jet_data(40, seed=2))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RangeHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def _config(folder, top: str, qcd: str):
    """The per-jet contract config of the fixtures, reading ``top`` and ``qcd`` (paths or URLs)."""
    text = textwrap.dedent(PER_JET_YAML).replace("path: top.root", f"path: '{top}'").replace("path: qcd.root", f"path: '{qcd}'")
    path = folder / f"config_{abs(hash((top, qcd)))}.yaml"
    path.write_text(text)
    return path


def _local_and_remote(served):
    folder, url = served
    return _config(folder, "top.root", "qcd.root"), _config(folder, f"{url}/top.root", f"{url}/qcd.root")


# --- 1. load and iterate by URL read what the local files give ------------------------------------------------


def test_load_by_http_url_equals_local(served):
    local, remote = _local_and_remote(served)
    a = hepnn.io.load(local, step_size=25)
    b = hepnn.io.load(remote, step_size=25)
    assert sorted(a) == sorted(b) and len(a["label"]) == 80
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert a.class_names == b.class_names == ["qcd", "top"]
    assert set(np.unique(b["split"]).tolist()) == {0, 1, 2}


def test_iterate_by_http_url_equals_local(served):
    local, remote = _local_and_remote(served)
    summary: dict = {}
    a = list(hepnn.io.iterate(local, step_size=25))
    b = list(hepnn.io.iterate(remote, step_size=25, summary=summary))
    assert summary["n_files"] == 2 and summary["n_skipped"] == 0
    assert len(a) == len(b) > 2
    for chunk_a, chunk_b in zip(a, b):
        assert sorted(chunk_a) == sorted(chunk_b)
        for key in chunk_a:
            np.testing.assert_array_equal(chunk_a[key], chunk_b[key], err_msg=key)


def test_load_by_file_url_equals_local(served):
    folder, _ = served
    local = _config(folder, "top.root", "qcd.root")
    remote = _config(folder, (folder / "top.root").as_uri(), (folder / "qcd.root").as_uri())
    a, b = hepnn.io.load(local, standardize=False), hepnn.io.load(remote, standardize=False)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# --- 2. resolving: passed through as written, no globs, duplicates by string -------------------------------


def test_urls_pass_through_unchanged(tmp_path):
    urls = ["root://eosuser.cern.ch//eos/user/j/jdoe/top.root", "https://host:8443/data/qcd.root?token=abc",
            "file:///data/w.root", "s3://bucket/z.root", "http://[::1]:8000/v.root"]
    config = DataConfig(directory=str(tmp_path), files=tuple(FileGroup(path=u, label=k % 2) for k, u in enumerate(urls)))
    assert [f.path for f in resolve_files(config)] == urls  # not joined onto data.directory, nothing asked of a server


def test_urls_that_differ_as_strings_are_two_files():
    """``root://h//eos/a.root`` and ``root://h/eos/a.root`` were one "real path" (``cwd/root:/h/eos/a.root``)."""
    config = DataConfig(files=(FileGroup(path="root://h//eos/a.root", label=0), FileGroup(path="root://h/eos/a.root", label=1)))
    assert [f.path for f in resolve_files(config)] == ["root://h//eos/a.root", "root://h/eos/a.root"]


def test_one_url_in_two_groups_is_an_error():
    url = "root://eosuser.cern.ch//eos/user/j/jdoe/top.root"
    config = DataConfig(files=(FileGroup(path=url, label=0), FileGroup(path=url, label=1)))
    with pytest.raises(ConfigError, match=re.escape(f"{url} (tree 'Events'): matched by data.files[0]")):
        resolve_files(config)


@pytest.mark.parametrize("url", ["root://eosuser.cern.ch//eos/user/j/jdoe/top_*.root", "https://host/data/qcd_[0-9].root",
                                 "s3://bucket/**/x.root"])
def test_remote_glob_is_a_clear_error(url):
    config = DataConfig(files=(FileGroup(path=url, label=0),))
    with pytest.raises(ConfigError, match=r"data\.files\[0\]\.path: .*URL with glob characters.*list the files"):
        resolve_files(config)


def test_query_string_is_not_a_glob():
    url = "https://host/data/top.root?token=abc"
    assert [f.path for f in resolve_files(DataConfig(files=(FileGroup(path=url, label=0),)))] == [url]


def test_relative_path_with_url_directory_is_a_clear_error():
    config = DataConfig(directory="root://eosuser.cern.ch//eos/user/j/jdoe", files=(FileGroup(path="top.root", label=0),))
    with pytest.raises(ConfigError, match=r"data\.files\[0\]\.path: 'top.root' is relative.*data\.directory.*URL"):
        resolve_files(config)


def test_is_url_and_file_name():
    assert is_url("root://h//eos/a.root") and is_url("file:///a.root") and is_url("s3+x://b/a.root")
    assert not is_url("a.root") and not is_url("/data/a.root") and not is_url("C://data/a.root") and not is_url(None)
    assert url_file_name("https://host/d/top.root?sig=a/b#frag") == "top.root"
    assert url_file_name("root://eosuser.cern.ch//eos/user/j/jdoe/top.root") == "top.root"


# --- 3. opening: missing file, unreachable server, missing package ---------------------------------------


def test_missing_remote_file_names_the_url(served):
    folder, url = served
    config = _config(folder, f"{url}/top.root", f"{url}/no_such.root")
    with pytest.raises(InputDataError, match=re.escape(f"{url}/no_such.root") + r": no such remote file.*not found"):
        hepnn.io.load(config)


def test_secrets_in_the_url_are_masked(served):
    folder, url = served
    config = _config(folder, f"{url}/top.root", f"{url}/no_such.root?token=s3cret")
    with pytest.raises(InputDataError) as info:
        hepnn.io.load(config)
    assert "s3cret" not in str(info.value) and "no_such.root?token=***: no such remote file" in str(info.value)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = _config(folder, f"http://jdoe:pa55@127.0.0.1:{port}/top.root?sig=s3cret", "qcd.root")
    with pytest.raises(InputDataError) as info:
        hepnn.io.load(config)
    assert "pa55" not in str(info.value) and "s3cret" not in str(info.value)
    assert f"http://jdoe:***@127.0.0.1:{port}/top.root?sig=***: cannot open the remote file" in str(info.value)


def test_unreachable_server_names_the_url_and_the_error(served):
    folder, _ = served
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = _config(folder, f"http://127.0.0.1:{port}/top.root", "qcd.root")
    with pytest.raises(InputDataError, match=rf"http://127\.0\.0\.1:{port}/top\.root: cannot open the remote file \(Client"):
        hepnn.io.load(config)


def test_root_url_without_fsspec_xrootd_names_the_package(served, monkeypatch):
    """Whether fsspec-xrootd is installed or not: fsspec is made to find no ``root://`` implementation."""
    fsspec_registry = pytest.importorskip("fsspec.registry")
    monkeypatch.delitem(fsspec_registry._registry, "root", raising=False)
    monkeypatch.setitem(fsspec_registry.known_implementations, "root", {
        "class": "hepnn_test_no_such_module.XRootDFileSystem",
        "err": "Install fsspec-xrootd to access xrootd storage system."})
    folder, _ = served
    config = _config(folder, "root://eosuser.cern.ch//eos/user/j/jdoe/top.root", "qcd.root")
    with pytest.raises(InputDataError, match=r"root://eosuser\.cern\.ch//eos/user/j/jdoe/top\.root: reading root:// URLs "
                                             r"needs a package .*`pip install fsspec-xrootd`"):
        hepnn.io.load(config)


# --- 4. stream cache key: a URL enters by its string ---------------------------------------------------


def test_file_stamps_of_urls_are_their_strings(served):
    folder, url = served
    remote = _config(folder, f"{url}/top.root", "root://eosuser.cern.ch//eos/user/j/jdoe/qcd.root")
    assert file_stamps(remote) == [(f"{url}/top.root", None, None),
                                   ("root://eosuser.cern.ch//eos/user/j/jdoe/qcd.root", None, None)]
    local = file_stamps(_config(folder, "top.root", "qcd.root"))
    assert local[0] == (os.path.realpath(folder / "top.root"), (folder / "top.root").stat().st_size,
                        (folder / "top.root").stat().st_mtime_ns)


def test_stream_cache_keys_differ_by_url(served, tmp_path):
    folder, url = served
    a = chunk_cache(tmp_path, _config(folder, f"{url}/top.root", "root://h//eos/qcd.root"))
    b = chunk_cache(tmp_path, _config(folder, f"{url}/top.root", "root://h/eos/qcd.root"))
    assert a.fingerprint != b.fingerprint


# --- 5. the split hash takes the file name of a URL ------------------------------------------------------


def test_split_of_a_url_is_that_of_its_file_name():
    entry, jet = np.arange(2000), np.zeros(2000, int)
    local = assign_split("/data/top.root", entry, jet, (0.6, 0.2, 0.2), 7)
    for url in ("root://eosuser.cern.ch//eos/user/j/jdoe/top.root", "https://host/top.root?token=abc/def",
                "https://host/top.root#x", "file:///elsewhere/top.root"):
        np.testing.assert_array_equal(assign_split(url, entry, jet, (0.6, 0.2, 0.2), 7), local, err_msg=url)
        np.testing.assert_array_equal(fold_key(url, entry, jet, 7), fold_key("top.root", entry, jet, 7), err_msg=url)
    # a local name with '?' is not a URL: its whole base name is hashed, as before
    assert file_base_name("/data/top?.root") == "top?.root"
    assert (assign_split("/data/top?.root", entry, jet, (0.6, 0.2, 0.2), 7) != local).any()


def test_streamed_batches_by_url_equal_local_and_are_cached(served, tmp_path):
    """The streaming reader (no preprocessing: raw values) reads the same batches by URL, writes its chunk
    cache on the first pass and serves the second pass from it (the URL's stamp is its string: no stat)."""
    local, remote = _local_and_remote(served)

    def one_pass(config, cache_dir=None):
        runs = list(batch_runs(config, "train", batch_size=16, shuffle=False, cache_dir=cache_dir))
        return {k: np.concatenate([r[0][k].reshape(-1, *r[0][k].shape[2:]) for r in runs]) for k in runs[0][0]}, \
            np.concatenate([r[1].ravel() for r in runs])

    (x_local, y_local), (x_remote, y_remote) = one_pass(local), one_pass(remote, tmp_path / "cache")
    assert chunk_cache(tmp_path / "cache", remote, "train").is_complete()
    x_cached, y_cached = one_pass(remote, tmp_path / "cache")
    np.testing.assert_array_equal(y_remote, y_local)
    np.testing.assert_array_equal(y_cached, y_local)
    for key in x_local:
        np.testing.assert_array_equal(x_remote[key], x_local[key], err_msg=key)
        np.testing.assert_array_equal(x_cached[key], x_local[key], err_msg=key)


# --- 6. signed URLs: split, class names and provenance take the file name, not the query ---------------------


def test_signed_url_gives_the_local_split_class_names_and_a_masked_provenance(served):
    from hepnn.config import load_config
    from hepnn.io.labels import name_from_path
    from hepnn.training.rundir import input_files, provenance

    folder, url = served
    local = _config(folder, "top.root", "qcd.root")
    signed = _config(folder, f"{url}/top.root?token=abc", f"{url}/qcd.root?token=abc")
    a, b = hepnn.io.load(local, standardize=False), hepnn.io.load(signed, standardize=False)
    np.testing.assert_array_equal(a["split"], b["split"])  # the jets' split from the file name, not the query
    np.testing.assert_array_equal(a["label"], b["label"])
    assert b.class_names == a.class_names == ["qcd", "top"]  # no token in the class names
    assert name_from_path(f"{url}/top.root?sig=a/b") == "top"
    config = load_config(signed)
    assert input_files(config.data) == [f"{url}/top.root?token=abc", f"{url}/qcd.root?token=abc"]
    inputs = provenance(config, {"seed": 1})["inputs"]
    assert [i["path"] for i in inputs] == [f"{url}/top.root?token=***", f"{url}/qcd.root?token=***"]
    assert all(set(i) == {"path"} for i in inputs)  # a remote file: no checksum or size read from afar


def test_same_path_compares_urls_as_written():
    import hepnn.io.chunks as chunks  # the first-file check of ReferencePlan compares with it

    assert chunks._same_path("root://h//eos/a.root", "root://h//eos/a.root")
    assert not chunks._same_path("root://h//eos/a.root", "root://h/eos/a.root")
    assert chunks._same_path("/data/./a.root", "/data/a.root")
