"""Tutorial 05: from ROOT ntuples to tensors.

What you will learn
-------------------
* How a ROOT ntuple of jets looks from Python: ``uproot`` reads branches into numpy (one value
  per jet) or ``awkward`` arrays (a variable-length list of constituents per jet).
* Networks want rectangular tensors. Three representations of the same jet:

  - **flat** ``(n_jets, n_features)``: jet-level variables (mass, N-subjettiness, ...);
  - **sequence** ``(n_jets, max_length, n_features)`` plus a boolean **mask**: the leading
    constituents or tracks, sorted, truncated and **padded** to a fixed length;
  - **image** ``(n_jets, pixels, pixels, channels)``: the pT deposited in an (eta, phi) grid.
* Per-event files (CMS NanoAOD-like): jets and constituents are separate collections per event,
  tied together by an index branch (``PFCand_jetIdx``); the reader groups them per jet.
* **Standardisation**: ``(x - mean) / std`` with mean and std fitted on the training split only,
  saved with the model so that inference uses the same numbers.

We do each step by hand with uproot/awkward/numpy, then with ``hepnn.io.load`` (which does it
in bounded memory for files of any size), and check they agree.

Run ``python tutorials/05_root_to_tensors.py --quick``.
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

args = tut.parse_args(__doc__, "05_root_to_tensors")
N_JETS = 300 if args.quick else 3000
MAX_LENGTH = 20
PAD_LENGTH = 80  # longer than most jets: shows the padding

import awkward as ak  # noqa: E402
import numpy as np  # noqa: E402
import uproot  # noqa: E402

import hepnn.io  # noqa: E402
from hepnn import plotting  # noqa: E402
from hepnn.config import load_config  # noqa: E402

top_path = tut.sample("top", N_JETS, args.seed, args.out)
qcd_path = tut.sample("qcd", N_JETS, args.seed + 1000, args.out)

# %% [markdown]
# ## 1. Looking inside the file with uproot

# %%
tut.section("the per-jet ntuple")
tree = uproot.open(top_path)["jets"]
print(f"  {top_path.name}: tree 'jets' with {tree.num_entries} jets")
print(f"  branches: {', '.join(tree.keys()[:12])}, ...")
jets = tree.arrays(["jet_pt", "jet_mass", "jet_tau32", "part_pt", "part_eta", "part_phi"])
print(f"  jet_pt is flat: {ak.type(jets.jet_pt)}")
print(f"  part_pt is jagged: {ak.type(jets.part_pt)}")
n_constituents = ak.num(jets.part_pt)
print(f"  constituents per jet: min {ak.min(n_constituents)}, mean {ak.mean(n_constituents):.1f}, "
      f"max {ak.max(n_constituents)}")

# %% [markdown]
# ## 2. Padding by hand
# Keep the ``PAD_LENGTH`` leading constituents (the file is pT-ordered), fill the missing slots
# with 0, and remember which slots are real (the mask).

# %%
tut.section(f"padding to {PAD_LENGTH} constituents by hand")
padded = ak.pad_none(jets.part_pt, PAD_LENGTH, clip=True)
mask_hand = ak.to_numpy(~ak.is_none(padded, axis=1))
pt_hand = ak.to_numpy(ak.fill_none(padded, 0.0)).astype(np.float32)
print(f"  tensor {pt_hand.shape}, mask {mask_hand.shape}; first jet: {pt_hand[0, :5].round(1)} ...")
print(f"  fraction of real slots: {mask_hand.mean():.2f}")

# %% [markdown]
# ## 3. The same with hepnn
# A config says which branches become which tensor. ``standardize=False`` keeps raw values so
# we can compare with the hand-made tensor.

# %%
tut.section("hepnn.io.load: flat, sequence and image inputs")
config = load_config({
    "data": {
        "files": [{"path": str(top_path), "tree": "jets", "label": 1},
                  {"path": str(qcd_path), "tree": "jets", "label": 0}],
        "jet_axis": {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi", "energy": "jet_energy"},
        "constituents": {"px": "part_px", "py": "part_py", "pz": "part_pz", "energy": "part_energy"},
        "inputs": {
            "highlevel": {"kind": "flat", "variables": ["jet_mass", "jet_tau21", "jet_tau32"]},
            "raw_pt": {"kind": "sequence", "variables": ["part_pt"], "max_length": PAD_LENGTH,
                       "sort_by": {"variable": "part_pt"}, "standardize": False},
            "particles": {"kind": "sequence", "variables": ["rel_eta", "rel_phi", "log_pt_frac", "delta_r"],
                          "max_length": MAX_LENGTH, "sort_by": {"variable": "log_pt"}},
            "image": {"kind": "image", "pixels": 25, "extent": 1.6, "channels": ["pt"]},
        },
    }
})
raw = hepnn.io.load(config, standardize=False)
data = hepnn.io.load(config)
for key in ["highlevel", "raw_pt", "raw_pt_mask", "particles", "image", "label", "split"]:
    print(f"  {key:12s} {str(data[key].shape):18s} {data[key].dtype}")

n_top = tree.num_entries
library_pt = raw["raw_pt"][:n_top, :, 0]  # files are read in config order: the top jets first
padding_matches = bool(np.allclose(library_pt, pt_hand, rtol=1e-5) and
                       np.array_equal(raw["raw_pt_mask"][:n_top], mask_hand))
print(f"  hand-made padding == hepnn sequence: {padding_matches}")

# %% [markdown]
# ## 4. Standardisation, fitted on the training split only

# %%
tut.section("standardisation")
train_raw = raw["highlevel"][raw["split"] == 0]
train_std = data["highlevel"][data["split"] == 0]
names = data.feature_names["highlevel"]
for i, name in enumerate(names):
    print(f"  {name:10s} raw mean {train_raw[:, i].mean():8.3f} std {train_raw[:, i].std():7.3f}  ->  "
          f"mean {train_std[:, i].mean():+.3f} std {train_std[:, i].std():.3f}")
standardised_ok = bool(np.allclose(train_std.mean(axis=0), 0, atol=1e-3) and np.allclose(train_std.std(axis=0), 1, atol=1e-2))
prep_path = data.preprocessing.save(args.out / "preprocessing.json") or args.out / "preprocessing.json"
print(f"  the fitted preprocessing is saved as JSON: {prep_path}")

# %% [markdown]
# ## 5. A jet image by hand: pT in an (eta, phi) grid around the jet axis

# %%
tut.section("a jet image by hand")
jet0 = tree.arrays(["jet_eta", "jet_phi", "part_pt", "part_eta", "part_phi"], entry_stop=1)[0]
deta = ak.to_numpy(jet0.part_eta) - jet0.jet_eta
dphi = (ak.to_numpy(jet0.part_phi) - jet0.jet_phi + np.pi) % (2 * np.pi) - np.pi
image_hand, _, _ = np.histogram2d(deta, dphi, bins=25, range=[[-1.6, 1.6], [-1.6, 1.6]],
                                  weights=ak.to_numpy(jet0.part_pt))
print(f"  hand-made image: {image_hand.shape}, pT inside: {image_hand.sum():.1f} of {ak.sum(jet0.part_pt):.1f} GeV")
import matplotlib.pyplot as plt  # noqa: E402

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
plotting.plot_heatmap(image_hand.T, extent=(-1.6, 1.6, -1.6, 1.6), symmetric=False, log=True, ax=ax1,
                      colorbar_label="pT [GeV]")
ax1.set_title("by hand (jet axis at the centre)")
plotting.plot_heatmap(raw["image"][0, :, :, 0], extent=(-1.6, 1.6, -1.6, 1.6), symmetric=False, log=True, ax=ax2,
                      colorbar_label="pT fraction")
ax2.set_title("hepnn (centred, rotated, flipped, normalised)")
tut.save(fig, args.out, "jet_image_by_hand_vs_hepnn")
avg = plotting.plot_average_images(data["image"][..., 0], data["label"], class_names=["QCD", "top"],
                                   extent=(-1.6, 1.6, -1.6, 1.6))
tut.save(avg.figure, args.out, "average_images")

# %% [markdown]
# ## 6. Per-event files: collections tied together by an index branch
# NanoAOD-style: one entry per event, ``Jet_*`` and ``PFCand_*`` / ``Track_*`` collections, and
# ``Track_jetIdx`` saying which jet a track belongs to (-1: none).

# %%
tut.section("per-event (NanoAOD-like) file")
ttbar = tut.sample("ttbar", 200 if args.quick else 2000, args.seed, args.out, layout="per_event")
events = uproot.open(ttbar)["Events"].arrays(["nJet", "Jet_pt", "Track_pt", "Track_jetIdx"])
print(f"  {len(events)} events, jets per event {ak.to_list(events.nJet[:8])} ...")
e0 = events[0]
for j in range(min(2, e0.nJet)):
    tracks = e0.Track_pt[e0.Track_jetIdx == j]
    print(f"  event 0, jet {j} (pT {e0.Jet_pt[j]:.0f} GeV): {len(tracks)} tracks, pT {np.round(ak.to_numpy(tracks), 1)[:5]}")
ev_config = load_config(tut.ttbar_config(args.out, 200 if args.quick else 2000, seed=args.seed, layout="per_event"))
ev_data = hepnn.io.load(ev_config)
print(f"  hepnn.io.load per_event: {len(ev_data['label'])} b/light jets, jet {ev_data['jet'].shape}, "
      f"tracks {ev_data['tracks'].shape}, classes {ev_data.class_names}")

# %% [markdown]
# The same tensors can be written once to ``.npz`` files with ``hepnn convert CONFIG --out DIR``
# (train/val/test, no pickles), which is what you want for repeated training on big samples.

# %%
tut.result(padding_matches=padding_matches, standardised_ok=standardised_ok, n_jets=int(len(data["label"])),
           shapes={k: list(data[k].shape) for k in ["highlevel", "raw_pt", "particles", "image"]},
           per_event_jets=int(len(ev_data["label"])), tracks_shape=list(ev_data["tracks"].shape))
