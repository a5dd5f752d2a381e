"""The ``generate`` step of ``hepnn run``: make the samples an analysis declares.

Examples
--------
>>> generate_step(analysis, out_dir)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from ..exceptions import ConfigError
from .generator import generate
from .samples import resolve_options

__all__ = ["generate_step"]


def generate_step(analysis, out_dir: str | os.PathLike, log=print) -> list[Path]:
    """Generate ``out_dir/data/<name>`` for each entry of ``analysis.config.generate.samples``.

    Existing files are kept (resume). Seeds: ``sample.seed`` or ``generate.seed + index``;
    worker processes: ``generate.jobs``. Unknown ``options`` raise :class:`ConfigError`
    naming ``generate.samples.<name>.options.<key>``.

    Returns
    -------
    list of pathlib.Path
        The files of all samples (generated now or before).
    """
    config = analysis.config.generate
    if config is None:
        return []
    data_dir = Path(out_dir) / "data"
    # check every sample's options before generating anything
    resolved = {name: resolve_options(s.sample, s.options, where=f"generate.samples.{name}.options")
                for name, s in config.samples.items()}
    paths = []
    for index, (name, sample) in enumerate(config.samples.items()):
        path = data_dir / name
        paths.append(path)
        if path.exists():
            log(f"  {name}: exists, skipped")
            continue
        seed = sample.seed if sample.seed is not None else config.seed + index
        if seed < 0:
            msg = f"generate.samples.{name}.seed: expected a non-negative int, received {seed}"
            raise ConfigError(msg)
        log(f"  {name}: {sample.n_jets} {sample.sample} jets, seed {seed}, {config.jobs} job(s)")
        generate(resolved[name], n_jets=sample.n_jets, seed=seed, out=path, jobs=config.jobs,
                 layout=sample.layout)
    return paths
