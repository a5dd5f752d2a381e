"""The ``generate`` step of ``hepnn run``: make the samples an analysis declares.

Examples
--------
>>> generate_step(analysis, out_dir)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError, OutputDirError
from .generator import generate
from .samples import OPTIONS, SampleDefinition, resolve_options
from .writer import read_provenance

__all__ = ["generate_step"]


def generate_step(analysis, out_dir: str | os.PathLike, log=print) -> list[Path]:
    """Generate ``out_dir/data/<name>`` for each entry of ``analysis.config.generate.samples``.

    Existing files are kept (resume) when they hold what the config asks for: a file hepnn
    generated with another sample, ``n_jets``, ``seed``, ``layout`` or generator option (the
    performance options ``chunk_jets`` and ``events_per_batch`` aside) raises
    :class:`ConfigError` naming ``generate.samples.<name>`` and the difference, before anything
    is generated; delete the file to regenerate it. A file without hepnn's provenance record
    (one you put there) is kept as it is; a folder of that name raises :class:`OutputDirError`.
    Seeds: ``sample.seed`` or ``generate.seed + index`` (two samples of the same process with the
    same seed draw the same events: a warning is logged); worker processes: ``generate.jobs``
    (another number of workers draws other events with the same settings, so a change of
    ``jobs`` alone keeps the files). Unknown ``options`` raise :class:`ConfigError` naming
    ``generate.samples.<name>.options.<key>``.

    Returns
    -------
    list of pathlib.Path
        The files of all samples (generated now or before).
    """
    config = analysis.config.generate
    if config is None:
        return []
    data_dir = Path(out_dir) / "data"
    # check every sample's options, seed and existing file before generating anything
    resolved = {name: resolve_options(s.sample, s.options, where=f"generate.samples.{name}.options")
                for name, s in config.samples.items()}
    seeds = {}
    for index, (name, sample) in enumerate(config.samples.items()):
        seeds[name] = sample.seed if sample.seed is not None else config.seed + index
        if seeds[name] < 0:
            msg = f"generate.samples.{name}.seed: expected a non-negative int, received {seeds[name]}"
            raise ConfigError(msg)
        path = data_dir / name
        if path.exists():
            _check_existing(path, name, resolved[name], sample.n_jets, seeds[name], sample.layout)
    _warn_shared_seeds(config.samples, seeds, log)
    paths = []
    for name, sample in config.samples.items():
        path = data_dir / name
        paths.append(path)
        if path.exists():
            log(f"  {name}: exists, skipped")
            continue
        log(f"  {name}: {sample.n_jets} {sample.sample} jets, seed {seeds[name]}, {config.jobs} job(s)")
        generate(resolved[name], n_jets=sample.n_jets, seed=seeds[name], out=path, jobs=config.jobs,
                 layout=sample.layout)
    return paths


def _warn_shared_seeds(samples: dict, seeds: dict[str, int], log) -> None:
    """Log a warning for two samples of the same process with the same seed: they draw the same events."""
    first: dict[tuple[str, int], str] = {}
    for name, sample in samples.items():
        key = (sample.sample, seeds[name])
        if key in first:
            log(f"  warning: generate.samples.{name} and generate.samples.{first[key]} are both {sample.sample} "
                f"with seed {seeds[name]}: they draw the same events (not independent samples); give one of them "
                "another seed unless that is what you want")
        else:
            first[key] = name


#: options that change speed and memory only, never the jets written
_PERFORMANCE_OPTIONS = ("chunk_jets", "events_per_batch")


def _check_existing(path: Path, name: str, defn: SampleDefinition, n_jets: int, seed: int, layout: str) -> None:
    """Raise :class:`ConfigError` when ``path`` is a sample hepnn generated with other settings
    (:class:`OutputDirError` when it is a folder)."""
    if path.is_dir():
        msg = (f"generate.samples.{name}: {path} is a directory, expected a sample file; move it away or "
               "give the sample another name")
        raise OutputDirError(msg)
    try:
        record = read_provenance(path)
    except Exception:  # noqa: BLE001 - no provenance (not ROOT, not hepnn's): the user's own file, kept
        return
    if not isinstance(record, dict) or not str(record.get("format", "")).startswith("hepnn.datasets provenance"):
        return
    wanted: dict[str, Any] = {"sample": defn.name, "n_jets": n_jets, "seed": seed, "layout": layout}
    had: dict[str, Any] = {key: record.get(key) for key in wanted}
    recorded_options = record.get("options") or {}
    for key in OPTIONS:
        if key not in _PERFORMANCE_OPTIONS and key in recorded_options:  # older files may lack newer options
            wanted[f"options.{key}"] = getattr(defn, key)
            had[f"options.{key}"] = recorded_options.get(key)
    changed = [f"{key}={had[key]!r} (config: {wanted[key]!r})" for key in wanted if had[key] != wanted[key]]
    if changed:
        msg = (f"generate.samples.{name}: {path} exists but was generated with {', '.join(changed)}; "
               "the generate step keeps existing samples, so it would not follow the config. Delete the file to "
               "regenerate it, give the new sample another name, or use another --out")
        raise ConfigError(msg)
