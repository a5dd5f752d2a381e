"""Tutorial 11: jets as point clouds and sets: Deep Sets, EFN, ParticleNet, ParT.

What you will learn
-------------------
* A jet is an unordered **set** of particles, each a point in the (Δη, Δφ) plane with a
  momentum. A recurrent network (tutorial 07) reads them in an arbitrary order; a network
  for sets gives the same answer in every order: **permutation invariance**.
* **Deep Sets / Particle Flow Network (PFN)**: ``F(sum_i Phi(x_i))``, one network Phi
  applied to each particle, a sum, a network F on the sum (arXiv:1810.05165).
* **Energy Flow Network (EFN)**: Phi sees only the angles and the sum is weighted by each
  particle's pT fraction, ``F(sum_i z_i Phi(Δη_i, Δφ_i))``: adding a particle of zero
  energy or splitting one into two collinear halves changes nothing (**infrared and
  collinear safe**). Its filters Phi_l(Δη, Δφ) can be drawn in the plane: an
  intrinsically explainable tagger.
* **ParticleNet**: a jet as a graph. Each EdgeConv block links every particle to its k
  nearest neighbours (first in (Δη, Δφ), then in the learned feature space) and learns
  from the edges (arXiv:1902.08570).
* **Particle Transformer (ParT)**: self-attention between all particles, biased by
  pairwise physics features (ln Δ, ln kT, ln z, ln m² of each pair) (arXiv:2202.03772).
* In hepnn they are model names in the config (``deepsets``, ``pfn``, ``efn``,
  ``particlenet``, ``transformer``) reading the same sequence inputs as the GRU.

Run ``python tutorials/11_point_clouds.py --quick``.
"""

# %% [markdown]
# ## Setup

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

args = tut.parse_args(__doc__, "11_point_clouds")
N_JETS = 300 if args.quick else 5000
EPOCHS = 5 if args.quick else 25
MAX_LENGTH = 16 if args.quick else 40

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import hepnn.io  # noqa: E402
from hepnn import plotting  # noqa: E402
from hepnn.config import load_config  # noqa: E402

tut.section("data: top and QCD jets, their constituents as sets")
base = tut.top_qcd_config(args.out, N_JETS, seed=args.seed, inputs=("highlevel", "particles"), max_length=MAX_LENGTH)
sequence = {"kind": "sequence", "max_length": MAX_LENGTH, "sort_by": {"variable": "log_pt", "descending": True}}
# the EFN needs the angles and the pT fraction z in physical units (not standardised): its
# filters are then drawn in the real (Δη, Δφ) plane and z = 0 really means "no energy"
base["data"]["inputs"]["angles"] = {**sequence, "variables": ["rel_eta", "rel_phi", "pt_frac"], "standardize": False}
# ParT computes its pair features from the four-momenta (px, py, pz, E) in GeV
base["data"]["inputs"]["cloud"] = {**sequence, "variables": ["rel_eta", "rel_phi", "log_pt", "log_e",
                                                             "px", "py", "pz", "energy"],
                                   "standardize": False,
                                   "transforms": {v: {"standardize": True} for v in ("rel_eta", "rel_phi", "log_pt",
                                                                                      "log_e")}}
base["training"].update({"epochs": EPOCHS, "batch_size": 32 if args.quick else 128,
                         "optimizer": {"name": "adam", "learning_rate": 3e-3 if args.quick else 1e-3},
                         "early_stopping": None if args.quick else {"patience": 4}})
config = load_config(base)
data = hepnn.io.load(config)
raw = hepnn.io.load(config, standardize=False)
labels = data["label"]
test = data["split"] == 2
n_constituents = raw["highlevel"][:, config.data.inputs["highlevel"].variables.index("jet_nparticles")]
print(f"  {len(labels)} jets, constituents {data['particles'].shape} (the leading {MAX_LENGTH}; per jet: "
      f"top {n_constituents[labels == 1].mean():.1f}, QCD {n_constituents[labels == 0].mean():.1f})")

# %% [markdown]
# ## 1. A jet is a point cloud
#
# Each constituent is a point at (Δη, Δφ) from the jet axis; the marker area is its pT
# fraction. A top jet has three hard prongs (t → bW → bqq'), a QCD jet one hard core.

# %%
angles = raw["angles"]
fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
for ax, (cls, name) in zip(axes, ((1, "top"), (0, "QCD"))):
    i = int(np.flatnonzero(labels == cls)[0])
    real = raw["angles_mask"][i]
    eta, phi, z = angles[i, real, 0], angles[i, real, 1], angles[i, real, 2]
    ax.scatter(eta, phi, s=2000 * z, alpha=0.6, color="C1" if cls else "C0")
    ax.set(xlim=(-1, 1), ylim=(-1, 1), xlabel=r"$\Delta\eta$", ylabel=r"$\Delta\phi$",
           title=f"a {name} jet: {real.sum()} constituents (leading {MAX_LENGTH} kept)")
    ax.set_aspect("equal")
tut.save(fig, args.out, "point_clouds")


def predict(model, inputs):
    return np.asarray(model.predict(inputs, batch_size=1024, verbose=0)).reshape(-1)


def shuffled(x, mask, seed=0):
    """The same jets with their real particles in a random order (padding stays at the end)."""
    rng = np.random.default_rng(seed)
    out = x.copy()
    for i, n in enumerate(mask.sum(axis=1)):
        out[i, :n] = x[i, rng.permutation(n)]
    return out


# %% [markdown]
# ## 2. Deep Sets, PFN, EFN, ParticleNet, ParT on the same jets
#
# Five models, one config each. The dense network on the jet-level features (mass, τ21,
# τ32, ...) is the physicist's reference.

# %%
small = args.quick
MODELS = {
    "dense (jet features)": {"name": "dense", "inputs": ["highlevel"], "units": [32, 32]},
    "Deep Sets": {"name": "deepsets", "inputs": ["particles"], "phi_units": [16, 16] if small else [64, 64, 128],
                  "dense_units": [16] if small else [64, 64]},
    "EFN": {"name": "efn", "inputs": ["angles"], "phi_units": [16, 16] if small else [64, 64, 128],
            "dense_units": [16] if small else [64, 64]},
    "ParticleNet": ({"name": "particlenet", "inputs": ["particles"], "k": 4, "channels": [[16, 16]],
                     "dense_units": [16]} if small else
                    {"name": "particlenet", "preset": "lite", "inputs": ["particles"]}),
    "ParT": {"name": "transformer", "inputs": ["cloud"], "embed_units": [16] if small else [64, 64],
             "num_heads": 2 if small else 4, "num_layers": 1 if small else 2, "num_class_layers": 1,
             "pair_units": [8] if small else [32, 32], "ffn_ratio": 2},
}
tut.section(f"training {', '.join(MODELS)} (at most {EPOCHS} epochs)")
trainers, scores, aucs = {}, {}, {}
for name, model in MODELS.items():
    slug = "".join(c if c.isalnum() else "_" for c in name)
    trainer = tut.train(dict(base, model=model), args.out / f"run_{slug}", data=data)
    trainers[name], scores[name] = trainer, trainer.test_scores_
    aucs[name] = trainer.metrics_["auc"]
    print(f"  {name:22s} {trainer.model_.count_params():7d} weights, {trainer.seconds_:5.1f} s: "
          f"test AUC {aucs[name]:.4f}, 1/eB at 50% {trainer.metrics_['rejection']['0.5']}")

rej = plotting.plot_rejection(scores, labels[test], reference="dense (jet features)")
tut.save(rej.figure, args.out, "rejection")

# %% [markdown]
# ## 3. Permutation invariance
#
# Shuffle the real particles of every test jet: the set networks give the same score (up
# to float rounding), whatever the order.

# %%
tut.section("permutation invariance: shuffle the particles of each jet")
perm_diff = {}
for name in ("Deep Sets", "EFN", "ParticleNet", "ParT"):
    key = MODELS[name]["inputs"][0]
    x, mask = data[key][test], data[f"{key}_mask"][test]
    model = trainers[name].model_
    perm_diff[name] = float(np.max(np.abs(predict(model, {key: x}) - predict(model, {key: shuffled(x, mask)}))))
    print(f"  {name:12s} max |score change| {perm_diff[name]:.2e}")

# %% [markdown]
# ## 4. The EFN is infrared and collinear safe, and shows its filters
#
# Drop the softest particle of each jet, then (infrared) put back a particle of zero pT at
# a random angle, or (collinear) split the hardest particle into two halves at the same
# angle: the EFN's score does not move. The filters Phi_l(Δη, Δφ) are the "pixels" the EFN
# learned to weigh the energy flow with.

# %%
tut.section("EFN: infrared and collinear safety, learned filters")
efn = trainers["EFN"].model_
x = raw["angles"][test].copy()
last = raw["angles_mask"][test].sum(axis=1) - 1  # the softest real particle of each jet
rows = np.arange(len(x))
x[rows, last] = 0.0  # dropped: a padded slot
reference = predict(efn, {"angles": x})
soft = x.copy()
soft[rows, last] = [0.3, -0.2, 0.0]  # a particle at (0.3, -0.2) with z = 0
collinear = x.copy()
collinear[rows, 0, 2] /= 2  # the hardest particle split in two at the same angle
collinear[rows, last] = collinear[rows, 0]
ir_diff = float(np.max(np.abs(predict(efn, {"angles": soft}) - reference)))
collinear_diff = float(np.max(np.abs(predict(efn, {"angles": collinear}) - reference)))
print(f"  zero-pT particle added: max |score change| {ir_diff:.2e}; collinear split: {collinear_diff:.2e}")
print("  (Deep Sets is not IRC safe by construction: it counts particles, whatever their energy)")

from hepnn.models.efn import efn_filters  # noqa: E402

grid = efn_filters(efn, extent=0.8, n_grid=33 if args.quick else 65)
drawn = plotting.plot_efn_filters(grid["filters"], grid["eta"], grid["phi"], n_filters=8)
tut.save(drawn.figure, args.out, "efn_filters")
print(f"  {grid['filters'].shape[0]} filters on a {grid['filters'].shape[1]}x{grid['filters'].shape[2]} grid; "
      f"drawn: {drawn.indices}")

# %% [markdown]
# ## 5. Mass decorrelation: a tagger that does not sculpt the mass
#
# A tagger that learned the jet mass keeps, among the QCD jets it accepts, those with a mass
# near the top mass: the background passing the cut gets a peak where the signal is, which
# ruins a bump hunt. `training.decorrelate` adds a penalty to the loss, here DisCo:
# `strength * dCorr^2(score, mass)` on the background jets of each batch (arXiv:2001.05310).
# The price is some background rejection; the gain is a background mass spectrum that looks
# the same before and after the cut (1/JSD between passing and failing background large).

# %%
tut.section("mass decorrelation: the jet-feature tagger with and without DisCo")
from hepnn.training.decorrelate import distance_correlation_numpy  # noqa: E402
from hepnn.training.sculpting import sculpting_metrics  # noqa: E402

DISCO = {"method": "disco", "variable": "jet_mass", "strength": 10.0}
disco = tut.train(dict(base, model=MODELS["dense (jet features)"], training={**base["training"], "decorrelate": DISCO}),
                  args.out / "run_dense_disco", data=data)
mass = raw["spec_jet_mass"]
background = labels == 0
dcorr, sculpting = {}, {}
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
for ax, (name, trainer) in zip(axes, (("without DisCo", trainers["dense (jet features)"]), ("with DisCo", disco))):
    inputs = {"highlevel": data["highlevel"]}
    all_scores = predict(trainer.model_, inputs)
    dcorr[name] = distance_correlation_numpy(all_scores[background], mass[background])
    sculpting[name] = sculpting_metrics(mass[test], trainer.test_scores_, labels[test] == 1)
    plotting.plot_mass_sculpting(mass[test], trainer.test_scores_, labels[test], working_points=(0.5,), bins=20, ax=ax)
    ax.set_title(f"{name}: 1/JSD {sculpting[name]['inv_jsd_50']:.3g}")
    print(f"  {name:14s} dCorr^2(score, mass) on background {dcorr[name]:.3f}; at 50% signal efficiency: "
          f"1/eB {sculpting[name]['rejection_50']}, 1/JSD {sculpting[name]['inv_jsd_50']}")
tut.save(fig, args.out, "mass_sculpting")

# %% [markdown]
# ## 6. What next
#
# * The learning curves of all these taggers against the BDT, at 5k to 80k jets per class:
#   `python bench/physics.py` (figures in `bench/README.md`). With a few thousand jets the
#   jet-level features win; the constituent networks need tens of thousands to overtake them.
# * Fusion: list a flat input beside the constituents (`inputs: [particles, highlevel]`)
#   and the jet-level features enter the network's head: usually the best of both.
# * The same models are variants of `analyses/top_tagging`.

# %%
tut.result(auc=aucs, permutation_max_diff=perm_diff, efn_ir_diff=ir_diff, efn_collinear_diff=collinear_diff,
           n_filters=int(grid["filters"].shape[0]), n_drawn=len(drawn.indices), n_jets=int(len(labels)),
           dcorr=dcorr, disco_auc=disco.metrics_["auc"])
