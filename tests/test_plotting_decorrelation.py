"""The rejection against 1/JSD plot."""

from __future__ import annotations

import pytest

from hepnn.plotting import PLOTS, plot_rejection_vs_sculpting


def test_one_point_per_tagger_on_log_axes():
    res = plot_rejection_vs_sculpting({
        "plain": {"rejection_50": 20.0, "inv_jsd_50": 4.0},
        "disco": {"rejection_50": 9.0, "inv_jsd_50": 80.0},
        "no_mass": None,
        "infinite": {"rejection_50": None, "inv_jsd_50": 3.0},
    })
    assert res.points == {"plain": (4.0, 20.0), "disco": (80.0, 9.0)}
    assert [a.get_offsets().tolist() for a in res.artists.values()] == [[[4.0, 20.0]], [[80.0, 9.0]]]
    assert res.ax.get_xscale() == "log" and res.ax.get_yscale() == "log"
    assert "1/JSD" in res.ax.get_xlabel() and "rejection" in res.ax.get_ylabel()
    assert [t.get_text() for t in res.ax.get_legend().get_texts()] == ["plain", "disco"]
    assert PLOTS.get("rejection_vs_sculpting") is plot_rejection_vs_sculpting


def test_nothing_to_draw_is_a_clear_error():
    with pytest.raises(ValueError, match="mass spectator"):
        plot_rejection_vs_sculpting({"a": {}})


def test_many_taggers_get_distinct_colour_and_marker():
    from matplotlib.colors import to_hex

    sculpting = {f"t{i}": {"rejection_50": 10.0 + i, "inv_jsd_50": 5.0 + i} for i in range(13)}
    res = plot_rejection_vs_sculpting(sculpting)
    drawn = {(to_hex(a.get_facecolor()[0]), a.get_paths()[0].vertices.tobytes()) for a in res.artists.values()}
    assert len(drawn) == 13


def test_working_point_picks_its_own_keys_and_skips_non_finite():
    entries = {
        "a": {"rejection_30": 40.0, "inv_jsd_30": 7.0, "rejection_50": 20.0, "inv_jsd_50": 5.0},
        "b": {"rejection_30": float("nan"), "inv_jsd_30": 3.0},
        "c": {"rejection_30": 15.0, "inv_jsd_30": float("inf")},
    }
    res = plot_rejection_vs_sculpting(entries, working_point=0.3)  # 100 * 0.3 = 30.000000000000004
    assert res.points == {"a": (7.0, 40.0)}
