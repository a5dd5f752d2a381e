"""Tutorial 09: explaining what a tagger learned.

What you will learn
-------------------
* **Permutation importance**: shuffle one feature across jets and see how much the AUC
  drops. Model-agnostic, but blind to correlated features (shuffling breaks them apart).
* **SHAP values**: per jet, how much each feature moved the score away from the average
  score (Shapley values from cooperative game theory: fair shares that add up exactly).
* **Occlusion**: cover a patch of the jet image and watch the score change: a map of where
  the network looks.
* **Grad-CAM**: the gradient of the score with respect to the last convolution layer's
  feature maps, averaged into weights for those maps: a coarse "where" map, no occlusion loop.
* **Activation maximisation**: gradient *ascent* in input space: the input that makes a
  chosen neuron (or the output) fire most, i.e. the network's idea of the perfect top jet.
* **Surrogate tree**: a shallow decision tree trained to mimic the network's scores; its
  rules are readable cuts, and its fidelity (R^2) says how much of the network they capture.

All through one function, ``hepnn.explain.explain(model, inputs, method=...)``, returning an
``Explanation`` (``values`` shaped like the inputs, ``extra`` with method-specific numbers).

Run ``python tutorials/09_explaining_taggers.py --quick``.
"""

# %% [markdown]
# ## Setup: a dense tagger on jet features and a CNN on jet images

# %%
from __future__ import annotations

import sys
from pathlib import Path

import hepnn  # noqa: E402

# tutorials/_common.py from any working directory, as a script or as a notebook: beside the
# hepnn checkout (editable install), else in or above the current folder
TUTORIALS = next(p for p in (Path(hepnn.__file__).resolve().parents[1] / "tutorials",
                             *(q / d for q in (Path.cwd(), *Path.cwd().parents) for d in ("", "tutorials")))
                 if (p / "_common.py").is_file())
sys.path.insert(0, str(TUTORIALS))
import _common as tut  # noqa: E402

args = tut.parse_args(__doc__, "09_explaining_taggers")
N_JETS = 300 if args.quick else 4000
PIXELS = 16 if args.quick else 33
EPOCHS = 3 if args.quick else 25
N_EXPLAIN = 60 if args.quick else 1000

import numpy as np  # noqa: E402

import hepnn.io  # noqa: E402
from hepnn import plotting  # noqa: E402
from hepnn.config import load_config  # noqa: E402
from hepnn.explain import explain  # noqa: E402

tut.section("training the two taggers")
base = tut.top_qcd_config(args.out, N_JETS, seed=args.seed, inputs=("highlevel", "image"), pixels=PIXELS)
data = hepnn.io.load(load_config(base))
dense = tut.train(dict(base, model={"name": "dense", "inputs": ["highlevel"], "units": [32, 32], "dropout": 0.0},
                       training={**base["training"], "epochs": EPOCHS, "batch_size": 32}), args.out / "run_dense",
                  data=data)
cnn = tut.train(dict(base, model={"name": "cnn", "inputs": ["image"], "filters": [8, 16], "convs_per_block": 1,
                                  "dense_units": [32]},
                     training={**base["training"], "epochs": EPOCHS, "batch_size": 32}), args.out / "run_cnn",
                data=data)
print(f"  dense AUC {dense.metrics_['auc']:.3f}, CNN AUC {cnn.metrics_['auc']:.3f}")
test = data.split("test")
jets = {k: test[k][:N_EXPLAIN] for k in ("highlevel", "image")}
labels = test["label"][:N_EXPLAIN]
names = {"highlevel": data.feature_names["highlevel"]}

# %% [markdown]
# ## 1. Jet features: permutation importance, SHAP, surrogate tree

# %%
tut.section("permutation importance (dense tagger)")
perm = explain(dense.model_, {"highlevel": test["highlevel"]}, method="permutation", labels=test["label"],
               feature_names=names, n_repeats=3)
perm_importance = dict(zip(names["highlevel"], perm.mean_abs()["highlevel"]))
for name, value in sorted(perm_importance.items(), key=lambda kv: -kv[1]):
    print(f"  {name:15s} {value:.4f}")

tut.section("SHAP values (dense tagger)")
shap_expl = explain(dense.model_, {"highlevel": jets["highlevel"]}, method="shap", feature_names=names,
                    background_size=30 if args.quick else 200)
shap_importance = dict(zip(names["highlevel"], shap_expl.mean_abs()["highlevel"]))
for name, value in sorted(shap_importance.items(), key=lambda kv: -kv[1]):
    print(f"  {name:15s} mean |SHAP| {value:.4f}")
additivity = float(np.max(np.abs(shap_expl.values["highlevel"].sum(axis=1) + shap_expl.base_values - shap_expl.outputs)))
print(f"  additivity: max |sum(SHAP) + base - output| = {additivity:.2e} ({shap_expl.extra.get('algorithm', '?')})")
bees = plotting.plot_beeswarm(shap_expl.values["highlevel"], jets["highlevel"], names["highlevel"])
tut.save(bees.figure, args.out, "shap_beeswarm")

tut.section("surrogate decision tree (dense tagger)")
sur = explain(dense.model_, {"highlevel": test["highlevel"]}, method="surrogate", feature_names=names, max_depth=3)
fidelity = float(sur.extra["fidelity_r2"])
print(f"  fidelity R^2 of a depth-3 tree: {fidelity:.3f}; its rules:")
print("    " + sur.extra["rules"].replace("\n", "\n    "))

# %% [markdown]
# ## 2. Jet images: occlusion, Grad-CAM, activation maximisation

# %%
tut.section("occlusion and Grad-CAM (CNN)")
occ = explain(cnn.model_, {"image": jets["image"]}, method="occlusion", patch_size=4, stride=2)
cam = explain(cnn.model_, {"image": jets["image"]}, method="gradcam")
top = labels == 1
ext = (-1.6, 1.6, -1.6, 1.6)
import matplotlib.pyplot as plt  # noqa: E402

fig, axes = plt.subplots(1, 3, figsize=(15, 4))
plotting.plot_heatmap(jets["image"][top].mean(axis=0)[..., 0], extent=ext, symmetric=False, log=True, ax=axes[0],
                      colorbar_label="mean pT fraction (top)")
plotting.plot_heatmap(occ.values["image"][top].mean(axis=0)[..., 0], extent=ext, ax=axes[1],
                      colorbar_label="occlusion: score change")
plotting.plot_heatmap(cam.values["image"][top].mean(axis=0)[..., 0], extent=ext, symmetric=False, ax=axes[2],
                      colorbar_label="Grad-CAM")
tut.save(fig, args.out, "occlusion_gradcam_top")
occ_centre = float(np.abs(occ.values["image"]).mean(axis=0)[PIXELS // 2 - 2:PIXELS // 2 + 2,
                                                              PIXELS // 2 - 2:PIXELS // 2 + 2].mean())
occ_corner = float(np.abs(occ.values["image"]).mean(axis=0)[:3, :3].mean())
print(f"  mean |occlusion effect|: centre {occ_centre:.4f}, corner {occ_corner:.4f}")

tut.section("activation maximisation (CNN output)")
am = explain(cnn.model_, {"image": jets["image"]}, method="activation_maximization", n_steps=30 if args.quick else 200)
act_start, act_end = float(np.ravel(am.extra["activation_start"])[0]), float(np.ravel(am.extra["activation_end"])[0])
print(f"  output activation: {act_start:.3f} at the mean jet -> {act_end:.3f} after gradient ascent")
fig, ax = plt.subplots()
plotting.plot_heatmap(np.asarray(am.extra["pattern_image"])[0, ..., 0], extent=ext, symmetric=False, ax=ax,
                      colorbar_label="image maximising the top score")
tut.save(fig, args.out, "activation_maximization")

imp = plotting.plot_importance(perm.values["highlevel"], names["highlevel"])
tut.save(imp.figure, args.out, "permutation_importance")

tut.result(auc={"dense": dense.metrics_["auc"], "cnn": cnn.metrics_["auc"]}, permutation=perm_importance,
           shap=shap_importance, shap_additivity=additivity, surrogate_fidelity=fidelity,
           occlusion_centre=occ_centre, occlusion_corner=occ_corner, activation_start=act_start,
           activation_end=act_end)
