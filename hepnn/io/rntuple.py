"""Reading an RNTuple's fields in parallel threads.

uproot (5.7) decompresses an RNTuple's pages one after the other in the calling thread (its
``decompression_executor`` is not implemented for RNTuples, unlike for TTrees), while zlib,
lz4 and zstd release the GIL. :class:`ParallelFields` splits the requested branches into groups
of whole top-level fields, balanced by their compressed bytes, reads each group with uproot's
own ``arrays`` in a thread of its own and joins the groups' records into the record array one
call would return (same fields, same order, same contents).

Examples
--------
>>> ParallelFields.for_branches(None, ["x"], threads=1) is None   # one thread: read as usual
True
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

__all__ = ["ParallelFields", "MIN_PARALLEL_BYTES"]

# below this many compressed bytes per range, a second uproot call costs more than it saves
MIN_PARALLEL_BYTES = 1 << 20


class ParallelFields:
    """The requested branches of an RNTuple as groups of top-level fields, read in threads.

    Build it with :meth:`for_branches` (None when there is nothing to split: one thread, one
    top-level field, a TTree, or names it cannot attribute to a top-level field), then call
    :meth:`arrays` for each entry range and :meth:`close` at the end.
    """

    def __init__(self, tree: Any, groups: list[list[str]], order: list[str], bytes_per_entry: float) -> None:
        self.tree = tree
        self.groups = groups
        self.order = order  # top-level fields in the order the tree lists them
        self.bytes_per_entry = bytes_per_entry
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def for_branches(cls, tree: Any, branches: Sequence[str], threads: int) -> "ParallelFields | None":
        """Groups for reading ``branches`` of ``tree`` in up to ``threads`` threads, or None."""
        if threads < 2 or tree is None or len(branches) < 2:
            return None
        try:
            import uproot

            if not isinstance(tree, uproot.behaviors.RNTuple.RNTuple):
                return None
            ntuple = tree.ntuple
            records = ntuple.field_records
            tops = {r.field_name: i for i, r in enumerate(records) if r.parent_field_id == i}
            by_top: dict[str, list[str]] = {}
            for name in branches:
                top = _top_field(name, tops)
                if top is None:
                    return None
                by_top.setdefault(top, []).append(name)
            if len(by_top) < 2:
                return None
            sizes = _compressed_bytes(ntuple, records, {tops[t] for t in by_top})
            # the lazily filled lookups uproot's readers share, filled here before any thread runs
            for name in ("page_link_list", "_column_records_dict", "_related_ids", "cluster_summaries"):
                getattr(ntuple, name, None)
        except Exception:  # noqa: BLE001 - an unusual RNTuple: read it the usual way
            return None
        n_groups = min(threads, len(by_top))
        groups: list[list[str]] = [[] for _ in range(n_groups)]
        load = [0] * n_groups
        for top in sorted(by_top, key=lambda t: (-sizes.get(tops[t], 0), tops[t])):
            lightest = load.index(min(load))
            groups[lightest].extend(by_top[top])
            load[lightest] += sizes.get(tops[top], 0)
        order = sorted(by_top, key=lambda t: tops[t])
        entries = max(int(tree.num_entries), 1)
        return cls(tree, [g for g in groups if g], order, sum(load) / entries)

    def worth_it(self, start: int, stop: int) -> bool:
        """Whether the range holds enough compressed bytes to be read in threads."""
        return (stop - start) * self.bytes_per_entry >= MIN_PARALLEL_BYTES

    def arrays(self, start: int, stop: int, **options: Any) -> Any:
        """The record array of every requested branch for entries ``[start, stop)``."""
        import awkward as ak

        if self._pool is None:
            self._pool = ThreadPoolExecutor(len(self.groups), thread_name_prefix="hepnn-rntuple")

        def read(group: list[str]) -> Any:
            return self.tree.arrays(filter_name=group, entry_start=start, entry_stop=stop, library="ak", **options)

        parts = list(self._pool.map(read, self.groups))
        fields = {f: part[f] for part in parts for f in part.fields}
        ordered = [f for f in self.order if f in fields] + [f for f in fields if f not in self.order]
        return ak.zip({f: fields[f] for f in ordered}, depth_limit=1)

    def close(self) -> None:
        """Stop the threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _top_field(name: str, tops: dict[str, int]) -> str | None:
    """The top-level field a branch name belongs to (``"Jet.pt"`` -> ``"Jet"``), or None."""
    if name in tops:
        return name
    for i, char in enumerate(name):
        if char in "./" and name[:i] in tops:
            return name[:i]
    return None


def _compressed_bytes(ntuple: Any, records: list, wanted: set[int]) -> dict[int, int]:
    """Compressed bytes of the pages of every column under the top-level fields ``wanted``."""
    def top_of(field_id: int) -> int:
        while records[field_id].parent_field_id != field_id:
            field_id = records[field_id].parent_field_id
        return field_id

    columns = {}
    for index, column in enumerate(ntuple.column_records):
        top = top_of(column.field_id)
        if top in wanted:
            columns[index] = top
    sizes = dict.fromkeys(wanted, 0)
    for cluster in ntuple.page_link_list:
        for index, top in columns.items():
            if index < len(cluster):
                sizes[top] += sum(page.locator.num_bytes for page in cluster[index].pages)
    return sizes
