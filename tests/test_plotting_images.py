import numpy as np
import pytest

from hepnn.plotting import plot_average_images, plot_heatmap


def test_average_images_and_difference():
    rng = np.random.default_rng(0)
    images = rng.random((20, 8, 6, 1))
    y = np.arange(20) % 2
    res = plot_average_images(images, y, class_names=["QCD", "top"], extent=(-1, 1, -1, 1))
    assert len(res.axes) == 3
    np.testing.assert_allclose(res.means["top"], images[y == 1, ..., 0].mean(axis=0))
    np.testing.assert_allclose(res.difference, res.means["top"] - res.means["QCD"])
    assert res.axes[2].get_title() == "top $-$ QCD"
    assert res.panels["top"].image.get_array().shape == (6, 8)  # phi rows, eta columns
    assert res.panels["top"].image.get_extent() == [-1, 1, -1, 1]


def test_heatmap_symmetric_and_shape_check():
    values = np.array([[1.0, -3.0], [0.5, 0.0]])
    res = plot_heatmap(values, colorbar_label="relevance")
    assert res.image.get_clim() == (-3.0, 3.0)
    assert res.ax.get_xlabel() == "$\\Delta\\eta$"
    assert res.colorbar.ax.get_ylabel() == "relevance"
    with pytest.raises(ValueError, match="2-D map"):
        plot_heatmap(np.zeros((2, 2, 2)))
