"""ZLIB baskets and pages inflated by libdeflate (hepnn.io.decompression): the same arrays as
uproot's zlib, zlib's errors for bad streams, and a switch back."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import uproot
import uproot.compression

import hepnn.io
from hepnn.io import decompression as D

deflate = pytest.importorskip("deflate")


@pytest.fixture(autouse=True)
def restore_default():
    """Each test leaves uproot as hepnn's reader sets it up (libdeflate unless HEPNN_ZLIB=zlib)."""
    yield
    D._STATE["decided"] = False
    D.use_libdeflate(None)


def _calls(monkeypatch) -> dict:
    """Count the streams libdeflate, hepnn's zlib fallback and uproot's own decompression inflate."""
    counts = {"libdeflate": 0, "zlib": 0}
    lib = deflate.zlib_decompress
    cls = type(uproot.compression._decompress_ZLIB)
    own = cls.decompress

    def counted_lib(data, size):
        counts["libdeflate"] += 1
        return lib(data, size)

    def counted_own(self, data, size=None):
        counts["zlib"] += 1
        return own(self, data, size)

    def counted_fallback(data, *args, **kwargs):
        counts["zlib"] += 1
        return zlib.decompress(data, *args, **kwargs)

    monkeypatch.setattr(deflate, "zlib_decompress", counted_lib)
    monkeypatch.setattr(cls, "decompress", counted_own)
    monkeypatch.setattr(D, "zlib", type("Z", (), {"decompress": staticmethod(counted_fallback)}))
    return counts


def _write(path, n=3000, rntuple=False):
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 40, n)
    import awkward as ak

    arrays = {"jet_pt": rng.uniform(300, 600, n).astype(np.float32),
              "part_pt": ak.unflatten(rng.exponential(20, int(counts.sum())).astype(np.float32), counts),
              "label": rng.integers(0, 2, n).astype(np.int32)}
    with uproot.recreate(path, compression=uproot.ZLIB(4)) as f:
        if rntuple:
            f.mkrntuple("jets", ak.Array(arrays))
        else:
            f.mktree("jets", {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in arrays.items()})
            f["jets"].extend(arrays)
    return path


def _config(path):
    return {"data": {"layout": "per_jet", "files": [{"path": str(path), "tree": "jets"}],
                     "label": {"branch": "label", "classes": {"a": 0, "b": 1}},
                     "inputs": {"jet": {"kind": "flat", "variables": ["jet_pt"]},
                                "parts": {"kind": "sequence", "variables": ["part_pt"], "max_length": 20,
                                          "sort_by": {"variable": "part_pt"}}}}}


@pytest.mark.parametrize("rntuple", [False, True])
def test_the_reader_inflates_with_libdeflate_and_gets_the_arrays_of_zlib(tmp_path, monkeypatch, rntuple):
    path = _write(tmp_path / "jets.root", rntuple=rntuple)
    D._STATE["decided"] = False
    D.use_libdeflate(False)
    D._STATE["decided"] = False  # as in a fresh process: the reader installs libdeflate on its first open
    monkeypatch.delenv(D.ENV, raising=False)
    counts = _calls(monkeypatch)
    fast = hepnn.io.load(_config(path))
    assert D.libdeflate_in_use()
    assert counts["libdeflate"] > 0 and counts["zlib"] == 0
    D.use_libdeflate(False)
    counts.update(libdeflate=0, zlib=0)
    slow = hepnn.io.load(_config(path))
    assert counts["zlib"] > 0 and counts["libdeflate"] == 0
    for key in ("jet", "parts", "parts_mask", "label", "split"):
        assert fast[key].tobytes() == slow[key].tobytes(), key
    # plain uproot in the same process: the same arrays either way
    D.use_libdeflate(True)
    tree = uproot.open(path)["jets"]
    with_lib = tree.arrays(library="np")
    D.use_libdeflate(False)
    tree = uproot.open(path)["jets"]
    with_zlib = tree.arrays(library="np")
    for key in with_lib:
        assert all(np.array_equal(a, b) for a, b in zip(with_lib[key], with_zlib[key])) if with_lib[key].dtype == object \
            else np.array_equal(with_lib[key], with_zlib[key])


def test_hepnn_zlib_keeps_uproots_own_and_an_explicit_choice_is_kept(tmp_path, monkeypatch):
    path = _write(tmp_path / "jets.root", n=300)
    D.use_libdeflate(False)
    D._STATE["decided"] = False
    monkeypatch.setenv(D.ENV, "zlib")
    counts = _calls(monkeypatch)
    hepnn.io.load(_config(path))
    assert not D.libdeflate_in_use() and counts["libdeflate"] == 0 and counts["zlib"] > 0
    # a call of use_libdeflate decides for the process: the reader does not undo it
    monkeypatch.delenv(D.ENV)
    assert D.use_libdeflate(True)
    monkeypatch.setenv(D.ENV, "zlib")
    hepnn.io.load(_config(path))
    assert D.libdeflate_in_use()


def test_a_stream_libdeflate_refuses_gives_zlibs_error_or_zlibs_result():
    data = zlib.compress(np.arange(5000, dtype=np.float32).tobytes(), 6)
    out = D.inflate(data, 20000)
    assert bytes(out) == np.arange(5000, dtype=np.float32).tobytes()
    assert out.readonly  # as zlib's bytes: uproot's arrays are read-only views either way
    corrupt = data[:40] + bytes([data[40] ^ 0xFF]) + data[41:]
    with pytest.raises(zlib.error) as expected:
        zlib.decompress(corrupt, bufsize=20000)
    with pytest.raises(zlib.error) as got:
        D.inflate(corrupt, 20000)
    assert str(got.value) == str(expected.value)
    with pytest.raises(zlib.error):
        D.inflate(data[:-10], 20000)  # truncated
    # trailing bytes after the stream: zlib ignores them, and so does the fallback
    assert bytes(D.inflate(data + b"tail", 20000)) == zlib.decompress(data + b"tail")
    # a size that does not match the stream: the same bytes as zlib (uproot compares the length)
    assert bytes(D.inflate(data, 19000)) == zlib.decompress(data, bufsize=19000)


def test_a_corrupt_basket_gives_the_readers_usual_error(tmp_path):
    path = _write(tmp_path / "jets.root", n=2000)
    raw = bytearray(path.read_bytes())
    tree = uproot.open(path)["jets"]
    branch = tree["part_pt"]
    seek = int(branch.member("fBasketSeek")[0])
    key_len = 100  # past the basket's key: inside its compressed payload
    raw[seek + key_len + 200: seek + key_len + 260] = bytes(60)
    bad = tmp_path / "bad.root"
    bad.write_bytes(bytes(raw))
    D.use_libdeflate(True)
    with pytest.raises(hepnn.io.load.__globals__["InputDataError"]) as err:
        hepnn.io.load(_config(bad))
    assert str(bad) in str(err.value) and "truncated" in str(err.value)
    D.use_libdeflate(False)
    with pytest.raises(hepnn.io.load.__globals__["InputDataError"]) as err_zlib:
        hepnn.io.load(_config(bad))
    assert str(err.value) == str(err_zlib.value)


def test_without_the_package_or_with_another_library_uproot_keeps_its_own(monkeypatch):
    monkeypatch.setattr(D, "_libdeflate", lambda: None)
    assert not D.use_libdeflate(True) and not D.libdeflate_in_use()
    data = zlib.compress(b"x" * 100)
    assert bytes(D.inflate(data, 100)) == b"x" * 100  # zlib
    monkeypatch.undo()
    assert D.use_libdeflate(True)
    # uproot told to use another library for ZLIB: that choice wins over hepnn's
    target = uproot.compression._decompress_ZLIB
    seen = []
    monkeypatch.setattr(type(target), "library", "isal")
    monkeypatch.setattr(type(target), "decompress", lambda self, d, n=None: seen.append(n) or b"")
    target.decompress(data, 100)
    assert seen == [100]
