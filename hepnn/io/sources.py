"""Input files: file groups with globs, opening TTrees and RNTuples, chunked reading.

Every failure names the file and what was wrong: a glob that matches nothing, a file
that cannot be opened, a tree or branch that is missing (with the nearest names).

A file group's path may also be a URL (``root://eosuser.cern.ch//eos/user/j/jdoe/top.root``,
``https://host/top.root``, ``s3://``, ``file://``, any scheme uproot opens through fsspec):
it is passed to uproot as written, never joined onto ``data.directory`` nor globbed
(:func:`is_url`). ``root://`` needs the package ``fsspec-xrootd``, ``http(s)://`` needs
``aiohttp``; a missing one is named in the error.

Examples
--------
>>> from hepnn.io.sources import resolve_files
>>> from hepnn.config import DataConfig, FileGroup
>>> resolve_files(DataConfig(files=(FileGroup(path="no_such_*.root", label=0),)))
Traceback (most recent call last):
...
hepnn.exceptions.InputDataError: data.files[0]: no file matches 'no_such_*.root' ...
"""

from __future__ import annotations

import bisect
import glob
import os
import re
import warnings
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit

from .._redact import redact
from ..exceptions import ConfigError, InputDataError, suggest
from .decompression import install_default
from .rntuple import ParallelFields
from .threads import reader_threads

__all__ = ["SourceFile", "resolve_files", "open_tree", "check_names", "entries_per_step", "iterate_tree", "BadFileWarning",
           "BoundaryClusterCache", "is_url", "url_file_name", "URL_PACKAGES"]

#: ``scheme://``: a URL. The scheme has two characters at least, so a Windows drive (``C://data``) is a path.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]+://")

#: the package that lets uproot (fsspec) read a URL scheme, named when it is missing
URL_PACKAGES = {"root": "fsspec-xrootd", "http": "aiohttp", "https": "aiohttp", "s3": "s3fs", "gs": "gcsfs",
                "gcs": "gcsfs", "abfs": "adlfs", "abfss": "adlfs", "az": "adlfs", "sftp": "paramiko",
                "ssh": "paramiko"}


class BadFileWarning(UserWarning):
    """A file was skipped because it could not be read (``data.skip_bad_files``)."""


@dataclass(frozen=True)
class SourceFile:
    """One input file of a file group."""

    path: str
    tree: str
    group: int
    label: int | None
    weight: float


def is_url(path: Any) -> bool:
    """Whether a ``data.files`` path is a URL (``scheme://...``), which uproot opens through fsspec.

    Examples
    --------
    >>> is_url("root://eosuser.cern.ch//eos/user/j/jdoe/top.root"), is_url("https://host/top.root")
    (True, True)
    >>> is_url("/data/top.root"), is_url("top_*.root"), is_url("C://data/top.root")
    (False, False, False)
    """
    return isinstance(path, str) and _URL.match(path) is not None


def url_file_name(url: str) -> str:
    """The file name of a URL: the last part of its path, without ``?query`` or ``#fragment``.

    Examples
    --------
    >>> url_file_name("root://eosuser.cern.ch//eos/user/j/jdoe/top.root")
    'top.root'
    >>> url_file_name("https://host/data/top.root?X-Amz-Signature=abc/def")
    'top.root'
    """
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]


def _base_directory(config) -> Path:
    return Path(config.directory) if config.directory else Path.cwd()


def _file_identity(path: str) -> tuple:
    """What makes two names one file: its device and inode (symbolic and hard links alike), or,
    where the file system gives none, its real path; a URL is its string."""
    if is_url(path):
        return ("url", path)
    try:
        st = os.stat(path)
    except OSError:
        return ("path", os.path.realpath(path))
    if st.st_ino == 0:  # file systems without inode numbers
        return ("path", os.path.realpath(path))
    return ("inode", st.st_dev, st.st_ino)


def _same_file(path: str, other: str) -> str:
    """Why ``path`` and ``other`` are one file, for an error message."""
    if is_url(path):
        return path
    real = os.path.realpath(path)
    if real == os.path.realpath(other):
        return real
    return "hard links: the same device and inode"


def resolve_files(config) -> list[SourceFile]:
    """Expand the globs of ``data.files`` into files, in group order then sorted by name.

    A path that is a URL (:func:`is_url`: ``root://``, ``http(s)://``, ``s3://``, ``file://``, ...)
    is one file, passed to uproot as written: it is not joined onto ``data.directory``, ``~`` is
    not expanded, and nothing is asked of the server here (a missing remote file is reported when
    it is opened). Remote globs are not supported: list the files, one group each (give the groups
    of one class the same ``label`` and ``name``). In a URL, ``?`` starts the query, so only
    ``*`` and ``[`` in its path are glob characters. Two groups name one remote file when their
    URLs are the same string.

    Raises
    ------
    InputDataError
        When a group matches no file.
    ConfigError
        When one file (and tree) is matched by two groups, or twice by one (under two names: a
        symbolic or hard link, told by the file's device and inode); for a URL with glob characters
        in its path, or a relative path with a URL as ``data.directory``.
    """
    out = []
    owner: dict[tuple[str, str], int] = {}
    first_match: dict[tuple[str, str], str] = {}
    for i, group in enumerate(config.files):
        matches = group_files(config, i)
        for m in matches:
            key = (_file_identity(m), group.tree)
            j = owner.setdefault(key, i)
            seen = first_match.setdefault(key, m)
            if j == i and seen != m:  # one file under two names (a link): its jets would be read twice
                msg = (
                    f"data.files[{i}] ({group.path!r}): {m} and {seen} are the same file ({_same_file(m, seen)}), "
                    "so its jets would be read twice (in different splits: the split hash takes the file name); "
                    "narrow the pattern or remove the link"
                )
                raise ConfigError(msg)
            if j != i:
                other = config.files[j]
                also = "" if seen == m else f" (as {seen}, the same file: {_same_file(m, seen)})"
                msg = (
                    f"{m} (tree {group.tree!r}): matched by data.files[{j}] ({other.path!r}, label {other.label}){also} "
                    f"and by data.files[{i}] ({group.path!r}, label {group.label}); each file belongs to one group "
                    "(one label): narrow one of the patterns" + (" or remove the link" if also else "")
                )
                raise ConfigError(msg)
        out.extend(SourceFile(m, group.tree, i, group.label, group.weight) for m in matches)
    if not out:
        msg = "data.files is empty: give at least one file group, e.g. files: [{path: top.root, tree: jets, label: 1}]"
        raise InputDataError(msg)
    return out


def group_files(config, i: int) -> list[str]:
    """The files ``data.files[i]`` names, as :func:`resolve_files` finds them (``~`` expanded, relative
    to ``data.directory``, globs sorted by name, a URL as written), without its checks across
    groups. For records of what a run read (provenance, the key of stored predictions).

    Raises
    ------
    InputDataError
        When the group matches no file.
    ConfigError
        For a URL with glob characters, or a relative path with a URL as ``data.directory``.
    """
    path = config.files[i].path
    return _remote_match(i, path) if is_url(path) else _local_matches(config, i, path)


def _remote_match(i: int, url: str) -> list[str]:
    """A URL of ``data.files[i].path`` as the one file it names; an error for a remote glob."""
    path = urlsplit(url).path
    if glob.has_magic(path):
        chars = "".join(sorted({c for c in path if c in "*?["}))
        msg = (f"data.files[{i}].path: {redact(url)!r} is a URL with glob characters ({chars}), and hepnn does not "
               "expand globs on remote storage; list the files instead, one data.files entry per URL with the same "
               "label and name (e.g. from `xrdfs <host> ls <folder>` for root://)")
        raise ConfigError(msg)
    return [url]


def _local_matches(config, i: int, path: str) -> list[str]:
    """The local files ``data.files[i].path`` matches (relative to ``data.directory``), sorted by name."""
    pattern = os.path.expanduser(path)
    relative = not os.path.isabs(pattern)
    if relative and is_url(config.directory):
        msg = (f"data.files[{i}].path: {path!r} is relative, and data.directory ({config.directory!r}) is a URL: "
               f"relative paths are only joined onto a local folder; give the file's full URL in data.files[{i}].path")
        raise ConfigError(msg)
    base = _base_directory(config)
    if relative:
        pattern = str(base / pattern)
    matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else ([pattern] if os.path.exists(pattern) else [])
    if not matches:
        if relative and not base.is_dir():
            msg = (f"data.files[{i}]: {path!r} is relative to data.directory, {base}, which does not exist; "
                   "fix data.directory (relative paths resolve against it)")
        else:
            msg = (f"data.files[{i}]: no file matches {path!r} (looked in {base}); "
                   "check the path, or set data.directory")
        raise InputDataError(msg)
    return matches


def _open_error(path: str, err: Exception) -> str:
    """Why uproot could not open ``path``, for an ``InputDataError`` (a URL's secrets masked)."""
    if not is_url(path):
        if isinstance(err, FileNotFoundError):
            return f"{path}: file not found"
        return f"{path}: cannot read the file ({type(err).__name__}: {err}); is it a complete ROOT file?"
    scheme = urlsplit(path).scheme.lower()
    shown, why = redact(path), f"{type(err).__name__}: {redact(str(err))}"
    if isinstance(err, ImportError):
        package = URL_PACKAGES.get(scheme)
        fix = (f"pip install {package}" if package else
               f"install the fsspec implementation of {scheme}:// (see fsspec's list of known implementations)")
        return f"{shown}: reading {scheme}:// URLs needs a package that is not installed ({why}); run `{fix}`"
    if isinstance(err, FileNotFoundError):
        return f"{shown}: no such remote file (the server answered: not found); check the URL"
    return (f"{shown}: cannot open the remote file ({why}); check the URL, the network and your credentials "
            "(a grid proxy or Kerberos token for root://), or whether it is a ROOT file")


def open_tree(source: SourceFile) -> Any:
    """Open ``source.tree`` in ``source.path`` (TTree or RNTuple).

    ``source.path`` may be a URL (:func:`is_url`), which uproot reads through fsspec: a missing
    package (``fsspec-xrootd`` for ``root://``, ``aiohttp`` for ``http(s)://``) is named with its
    ``pip install`` line, and an unreachable or missing remote file with the URL and the error
    (passwords and tokens in the URL masked).

    Raises
    ------
    InputDataError
        Naming the file, for unreadable files and missing trees (with the nearest names).
    """
    import uproot

    install_default()  # ZLIB baskets and pages inflated by libdeflate (hepnn.io.decompression)
    threads = reader_threads()
    # baskets are decompressed in threads (the compression libraries release the GIL)
    options = {"decompression_executor": uproot.source.futures.ThreadPoolExecutor(threads)} if threads > 1 else {}
    try:
        file = uproot.open(source.path, **options)
    except Exception as err:  # noqa: BLE001 - uproot raises many kinds for corrupt files
        raise InputDataError(_open_error(source.path, err)) from None
    try:
        keys = file.keys(cycle=False)
        classes = file.classnames(cycle=False)
    except Exception as err:  # noqa: BLE001
        msg = f"{source.path}: cannot read the file's directory ({type(err).__name__}: {err})"
        raise InputDataError(msg) from None
    if source.tree not in keys:
        trees = [k for k in keys if "TTree" in classes.get(k, "") or "RNTuple" in classes.get(k, "")]
        msg = (
            f"{source.path}: no tree or RNTuple named {source.tree!r}{suggest(source.tree, trees)}; "
            f"the file has: {', '.join(trees) or '(none)'}"
        )
        raise InputDataError(msg)
    try:
        return file[source.tree]
    except Exception as err:  # noqa: BLE001
        msg = f"{source.path}: cannot read {source.tree!r} ({type(err).__name__}: {err})"
        raise InputDataError(msg) from None


def tree_keys(tree: Any) -> list[str]:
    """Branch (TTree) or field (RNTuple) names."""
    return list(tree.keys())


def check_names(source: SourceFile, available: Iterable[str], wanted: dict[str, str]) -> None:
    """Raise ``InputDataError`` for the first name of ``wanted`` (name -> where) not in ``available``."""
    have = set(available)
    for name, where in wanted.items():
        if name not in have:
            msg = (
                f"{source.path}: tree {source.tree!r} has no branch {name!r} (used by {where})"
                f"{suggest(name, have)}; fix the name in the config"
            )
            raise InputDataError(msg)


def entries_per_step(tree: Any, branches: list[str], step_size: Any) -> int | None:
    """The entries per chunk uproot's ``iterate`` makes of a memory-size ``step_size`` ("100 MB").

    uproot reads the key of every basket of every branch (a Python object each) to add up
    their uncompressed sizes; for a local TTree file this reads the same two numbers of each
    key (``fObjlen`` and ``fKeylen``) with one numpy gather, and applies uproot's rule to them,
    so the chunks are the same. ``None`` where it cannot (RNTuple, remote file, embedded
    baskets, subbranches): then uproot computes it.

    Examples
    --------
    >>> import uproot                                                              # doctest: +SKIP
    >>> entries_per_step(uproot.open("f.root")["Events"], ["Jet_pt"], "100 MB")  # doctest: +SKIP
    1297811
    """
    import numpy as np
    import uproot

    if isinstance(step_size, (int, np.integer)) and not isinstance(step_size, bool):
        return int(step_size)
    try:
        target = uproot._util.memory_size(step_size)
        path = tree.file.file_path
        n_entries = int(tree.num_entries)
        names = list(dict.fromkeys(branches))
        if not isinstance(tree, uproot.behaviors.TTree.TTree) or not os.path.isfile(path) \
                or any(c in n for n in names for c in "*?[/"):
            return None
        seeks, keep = [], []
        for name in names:
            branch = tree[name]
            n_baskets = branch.num_baskets
            if branch.branches or n_baskets != branch._num_normal_baskets:
                return None
            offsets = np.asarray(branch.entry_offsets, dtype=np.int64)
            start, stop = offsets[:-1], offsets[1:]
            # uproot's rule for the baskets of entries [0, n_entries)
            keep.append((0 < stop) & ((start < n_entries) | ((start == 0) & (n_entries == 0))))
            seeks.append(np.asarray(branch.member("fBasketSeek"), dtype=np.int64)[:n_baskets])
    except Exception:  # noqa: BLE001 - anything unusual: uproot's own computation
        return None
    seeks = np.concatenate(seeks)[np.concatenate(keep)] if seeks else np.zeros(0, np.int64)
    if len(seeks):
        raw = np.memmap(path, dtype=np.uint8, mode="r")
        if int(seeks.max()) + 16 > len(raw):
            return None
        header = raw[seeks[:, None] + np.arange(16)].astype(np.int64)  # the TKey header of each basket
        objlen = (header[:, 6] << 24) | (header[:, 7] << 16) | (header[:, 8] << 8) | header[:, 9]
        keylen = (header[:, 14] << 8) | header[:, 15]
        total_bytes = float(sum(int(v) for v in objlen + keylen))
    else:
        total_bytes = 0.0
    n = 0 if total_bytes == 0 else round(target * n_entries / total_bytes)
    return n if n > 0 else 1


def cluster_ranges(clusters: Iterable[tuple[int, int]], step: int) -> list[tuple[int, int]]:
    """Entry ranges made of whole clusters, each at most ``step`` entries (or one larger cluster).

    ``clusters``: ``(first entry, entries)`` of each cluster, in order.

    Examples
    --------
    >>> cluster_ranges([(0, 100), (100, 100), (200, 100), (300, 50)], 250)
    [(0, 200), (200, 350)]
    >>> cluster_ranges([(0, 100), (100, 100)], 40)
    [(0, 100), (100, 200)]
    """
    ranges: list[tuple[int, int]] = []
    start = stop = None
    for first, n in clusters:
        first, n = int(first), int(n)
        if start is not None and first + n - start > step:
            ranges.append((start, stop))
            start = None
        if start is None:
            start = first
        stop = first + n
    if start is not None:
        ranges.append((start, stop))
    return ranges


def _rntuple_clusters(tree: Any) -> list[tuple[int, int]] | None:
    """``(first entry, entries)`` of the clusters of an RNTuple; None for a TTree or when unknown."""
    import uproot

    if not isinstance(tree, uproot.behaviors.RNTuple.RNTuple):
        return None
    try:
        clusters = [(int(c.num_first_entry), int(c.num_entries)) for c in tree.cluster_summaries]
    except (AttributeError, TypeError, ValueError):
        return None
    if not clusters or sum(n for _, n in clusters) != int(tree.num_entries):
        return None
    return clusters


class BoundaryClusterCache(MutableMapping):
    """uproot ``array_cache`` for reading an RNTuple range by range: every cluster decompressed once.

    uproot (5.7) decompresses every cluster a range ``[entry_start, entry_stop)`` touches, and a
    range that ends exactly where a cluster begins touches that cluster too (it looks the last
    cluster up with ``searchsorted(..., side="right")``). So with ranges of whole clusters, and
    with ranges that cut clusters, the cluster at each boundary is decompressed by both ranges:
    with ~100 MB clusters read in ~100 MB steps, that doubled the reading time of every cluster
    but the last (9.4-10 against 5.0 µs per jet on a 1M-jet file).

    Before each range, :meth:`expect` names the first cluster it reads and the cluster the next
    range starts with; the cache keeps the decompressed columns of that one cluster only (and
    drops those of clusters before the range), so the next range takes them from here. Memory:
    the columns read of at most two clusters. Keys are uproot's ``"{file}:{cluster}:{column}"``;
    any other key is not kept.

    Examples
    --------
    >>> cache = BoundaryClusterCache()
    >>> cache.expect(0, 2)                     # this range reads clusters 0-2, the next starts in 2
    >>> for key in ("f:0:1", "f:1:1", "f:2:1", "other"):
    ...     cache[key] = 1
    >>> sorted(cache)
    ['f:2:1']
    >>> cache.expect(2, None)                  # the last range
    >>> cache["f:3:1"] = 1
    >>> sorted(cache)
    ['f:2:1']
    """

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._keep: int | None = None

    def expect(self, first: int, shared: int | None) -> None:
        """The next range reads from cluster ``first`` on; the range after it starts in ``shared`` (None: none)."""
        for key in [k for k in self._data if self._cluster(k) < first]:
            del self._data[key]
        self._keep = shared

    @staticmethod
    def _cluster(key: Any) -> int | None:
        try:
            return int(str(key).rsplit(":", 2)[-2])
        except (IndexError, ValueError):
            return None

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if self._keep is not None and self._cluster(key) == self._keep:
            self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def _flat_fields(arrays: Any, branches: Iterable[str], source: SourceFile) -> Any:
    """``arrays`` with every name of ``branches`` as a top-level field, as a TTree gives them.

    uproot lists an RNTuple's subfields as ``Jet.pt``, but reads them inside their record
    (``arrays["Jet"]["pt"]``); a name that is not a top-level field is looked up there. Nothing is
    copied: the arrays of a TTree (every name a field) come back as they are.
    """
    fields = set(arrays.fields)
    branches = list(branches)
    if all(b in fields for b in branches):
        return arrays
    import awkward as ak

    columns = {}
    for name in branches:
        column = arrays
        try:
            if name in fields:
                column = arrays[name]
            else:
                for part in name.split("."):
                    column = column[part]
        except Exception:  # noqa: BLE001 - awkward raises several kinds for a missing field
            msg = (f"{source.path}: cannot find {name!r} in what uproot read from {source.tree!r} "
                   f"(fields: {', '.join(arrays.fields)}); name a field or subfield (Jet.pt) the tree lists")
            raise InputDataError(msg) from None
        columns[name] = column
    return ak.zip(columns, depth_limit=1)


#: mean compressed bytes per basket of the branches read below which a TTree's baskets are inflated in
#: the reading thread: the pool's hand-offs (futures, the GIL going back and forth) cost more than
#: inflating a small basket (the per-event file of ``bench/read.py``: 29 kB per basket, ``load`` 25 %
#: slower with two threads than with one; its per-jet files: 205-254 kB, 1.6x faster with two)
_MIN_THREADED_BASKET = 100_000


def _decompression_options(tree: Any, branches: list[str]) -> dict:
    """uproot's ``decompression_executor`` for reading ``branches`` of a TTree: none (the file's pool)
    unless their baskets are small on average, then inflation in the calling thread."""
    import uproot

    try:
        n_baskets = sum(int(tree[b].num_baskets) for b in branches)
        size = sum(int(tree[b].compressed_bytes) for b in branches)
    except Exception:  # noqa: BLE001 - a name uproot resolves only through filter_name: the file's pool
        return {}
    if n_baskets and size < _MIN_THREADED_BASKET * n_baskets:
        return {"decompression_executor": uproot.source.futures.TrivialExecutor()}
    return {}


def iterate_tree(source: SourceFile, tree: Any, branches: list[str], step_size: Any, *,
                 align_clusters: bool = False) -> Iterator[tuple[Any, int]]:
    """Yield ``(awkward record array, first entry)`` chunks of ``branches``.

    An RNTuple is read range by range through a :class:`BoundaryClusterCache`, so no cluster
    is decompressed twice, whether the ranges cut clusters or not.

    ``align_clusters``: for an RNTuple, chunks of whole clusters (about ``step_size`` each),
    so no chunk's arrays are built for entries another chunk holds. For callers whose results
    do not depend on the chunking (the Tagger's file scoring); ``load`` keeps uproot's chunks,
    to which its standardisation fit is bit for bit tied.
    """
    try:
        step = entries_per_step(tree, branches, step_size)
        clusters = _rntuple_clusters(tree)
        if clusters is not None:
            if step is None:  # uproot's own rule for an RNTuple's iterate
                step = tree.num_entries_for(step_size, filter_name=list(branches))
            if step:
                n = int(tree.num_entries)
                ranges = (cluster_ranges(clusters, max(int(step), 1)) if align_clusters else
                          [(start, min(start + int(step), n)) for start in range(0, n, int(step))])
                cache = BoundaryClusterCache()  # each cluster decompressed once (see the class)
                firsts = [first for first, _ in clusters]
                # fields read in threads: uproot decompresses an RNTuple's pages one by one
                parallel = ParallelFields.for_branches(tree, list(branches), reader_threads())
                try:
                    for start, stop in ranges:
                        cache.expect(bisect.bisect_right(firsts, start) - 1,
                                     bisect.bisect_right(firsts, stop) - 1 if stop < n else None)
                        if parallel is not None and parallel.worth_it(start, stop):
                            arrays = parallel.arrays(start, stop, array_cache=cache)
                        else:
                            arrays = tree.arrays(filter_name=list(branches), entry_start=start, entry_stop=stop,
                                                 library="ak", array_cache=cache)
                        yield _flat_fields(arrays, branches, source), start
                finally:
                    if parallel is not None:
                        parallel.close()
                return
        iterator = tree.iterate(filter_name=list(branches), step_size=step_size if step is None else step,
                                report=True, library="ak", **_decompression_options(tree, branches))
        for arrays, report in iterator:
            yield _flat_fields(arrays, branches, source), int(report.tree_entry_start)
    except InputDataError:
        raise
    except Exception as err:  # noqa: BLE001 - truncated or corrupt baskets
        if is_url(source.path):
            msg = (f"{redact(source.path)}: cannot read tree {source.tree!r} ({type(err).__name__}: {redact(str(err))}); "
                   "the file may be truncated, or the connection to the server failed (try again, or copy it locally)")
        else:
            msg = f"{source.path}: cannot read tree {source.tree!r} ({type(err).__name__}: {err}); the file may be truncated"
        raise InputDataError(msg) from err


def skip_or_raise(err: InputDataError, skip: bool, skipped: list[str], path: str) -> None:
    """With ``skip``, warn and record ``path``; otherwise re-raise ``err``."""
    if not skip:
        raise err
    skipped.append(path)
    warnings.warn(f"skipping bad file: {err}", BadFileWarning, stacklevel=3)
