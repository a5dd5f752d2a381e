import numpy as np
import pytest

from hepnn.exceptions import InputDataError, UnknownNameError
from hepnn.plotting import plot_learning_curves, read_history


def test_from_csv(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,val_loss,auc,val_auc\n0,0.7,0.72,0.6,0.58\n1,0.5,0.55,0.8,0.78\n2,0.4,0.5,0.85,0.8\n")
    res = plot_learning_curves(path, logy=["loss"])
    assert list(res.lines) == ["loss", "auc"]
    assert len(res.axes) == 2
    for ax in res.axes:
        assert len(ax.get_lines()) == 2
        assert ax.get_xlabel() == "Epoch"
    assert res.axes[0].get_yscale() == "log" and res.axes[1].get_yscale() == "linear"
    assert list(res.lines["auc"]["validation"].get_ydata()) == [0.58, 0.78, 0.8]
    assert list(res.lines["loss"]["train"].get_xdata()) == [1, 2, 3]  # CSVLogger's epochs 0.. drawn from 1


def test_from_dict_without_validation():
    res = plot_learning_curves({"loss": [1.0, 0.5, 0.2]}, ["loss"])
    assert list(res.lines["loss"]) == ["train"]
    assert list(res.history["epoch"]) == [1, 2, 3]


def test_errors(tmp_path):
    with pytest.raises(UnknownNameError, match="did you mean 'accuracy'"):
        plot_learning_curves({"loss": [1.0], "accuracy": [0.5]}, ["acuracy"])
    with pytest.raises(InputDataError, match="cannot read"):
        read_history(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="differ in length"):
        read_history({"loss": [1.0, 2.0], "val_loss": [1.0]})


def test_plotted_values_are_the_history_values(tmp_path):
    loss, val = [0.693147, 0.5123456789, 0.25], [0.7, float("nan"), 0.3]
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,val_loss\n" + "".join(f"{i},{a!r},{b!r}\n" for i, (a, b) in enumerate(zip(loss, val))))
    res = plot_learning_curves(path)
    x, yv = res.lines["loss"]["train"].get_data()
    assert list(x) == [1, 2, 3] and list(yv) == loss  # exact; CSVLogger's epochs 0.. counted from 1 as in hepnn
    np.testing.assert_array_equal(res.lines["loss"]["validation"].get_data()[1], val)
    assert read_history({"loss": loss})["epoch"].tolist() == [1, 2, 3]
