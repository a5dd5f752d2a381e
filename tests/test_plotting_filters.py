"""EFN filters, convolution kernels and feature maps: what is drawn is what was given."""

from __future__ import annotations

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")

from hepnn.plotting import PLOTS, plot_conv_filters, plot_efn_filters, plot_feature_maps  # noqa: E402


def test_efn_filters_draws_the_most_structured_filters_in_the_plane():
    axis = np.linspace(-0.8, 0.8, 9)
    eta, phi = np.meshgrid(axis, axis)
    filters = np.stack([np.zeros_like(eta), eta, 3 * phi, np.exp(-(eta**2 + phi**2) / 0.1)])
    res = plot_efn_filters(filters, axis, axis, n_filters=2)
    assert res.indices == [2, 1]  # largest spread first: 3 phi (4.8), then eta (1.6)
    assert len(res.images) == 2 and len(res.axes) == 2
    np.testing.assert_array_equal(res.images[0].get_array(), filters[2])
    assert res.images[0].get_extent() == [-0.8, 0.8, -0.8, 0.8]
    assert res.axes[0].get_xlabel() == r"$\Delta\eta$" and res.axes[0].get_ylabel() == r"$\Delta\phi$"
    assert res.axes[0].get_title() == "filter 2"
    # the picture is oriented: row index is phi, column index is eta
    img = np.asarray(res.images[1].get_array())
    assert img[0, -1] > img[0, 0] and np.allclose(img[:, 0], img[0, 0])
    by_index = plot_efn_filters(filters, axis, axis, n_filters=3, order="index")
    assert by_index.indices == [0, 1, 2]
    with pytest.raises(ValueError, match=r"expected shape \(n_filters, len\(phi\), len\(eta\)\)"):
        plot_efn_filters(filters[:, :, :5], axis, axis)
    assert PLOTS.get("efn_filters") is plot_efn_filters


def test_conv_filters_sums_input_channels():
    kernels = np.random.default_rng(0).normal(size=(3, 3, 2, 5))
    res = plot_conv_filters(kernels, n_filters=3)
    assert res.indices == [0, 1, 2] and len(res.images) == 3
    for i in range(3):
        np.testing.assert_allclose(res.values[i], kernels[..., i].sum(axis=-1))
        np.testing.assert_allclose(res.images[i].get_array(), kernels[..., i].sum(axis=-1).T)  # eta along x
        lo, hi = res.images[i].get_clim()
        assert lo == -hi  # symmetric colour scale: white is zero
    with pytest.raises(ValueError, match="kernel_h, kernel_w, in_channels, out_channels"):
        plot_conv_filters(kernels[..., 0])


def test_feature_maps_rows_and_channels():
    rng = np.random.default_rng(1)
    maps = {"mean qcd": rng.random((6, 6, 4)), "mean top": rng.random((6, 6, 4))}
    res = plot_feature_maps(maps, channels=[3, 1])
    assert res.indices == [3, 1, 3, 1] and len(res.images) == 4
    # drawn transposed: eta (the first image axis) along x, as every jet image
    np.testing.assert_allclose(res.images[1].get_array(), maps["mean qcd"][..., 1].T)
    np.testing.assert_allclose(res.images[2].get_array(), maps["mean top"][..., 3].T)
    assert res.axes[0].get_ylabel().splitlines()[0] == "mean qcd"
    assert res.axes[2].get_ylabel().splitlines()[0] == "mean top"
    assert res.axes[0].get_title() == "channel 3"
    with pytest.raises(ValueError, match="out of range"):
        plot_feature_maps(maps, channels=[7])
    with pytest.raises(ValueError, match="empty mapping"):
        plot_feature_maps({})
