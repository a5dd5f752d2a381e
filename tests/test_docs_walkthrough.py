"""What ``hepnn <command> --help`` says agrees with the documented behaviour (docs walk-through)."""

from __future__ import annotations

import pytest

from hepnn.cli import main


def _help(capsys, *command: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_run_jobs_help_does_not_promise_the_numbers_of_jobs_1(capsys):
    # README.md, docs/reliability.md and docs/scale-out.md: each worker gets cores // N TensorFlow
    # threads, so --jobs N can differ from --jobs 1 (2 threads on 2 cores) in the last digits
    text = _help(capsys, "run")
    assert "the numbers are the same as with 1" not in text
    assert "cores // N" in text and "last digits" in text


def test_evaluate_data_help_names_the_file_it_writes(capsys):
    # README.md: `hepnn evaluate RUN_DIR --data OTHER.yaml` writes RUN_DIR/metrics_OTHER.json (the
    # file's stem, not the config's `name`), as hepnn.training.evaluate.other_metrics_path does
    text = _help(capsys, "evaluate")
    assert "metrics_<its name>.json" not in text
    assert "metrics_OTHER.json" in text
