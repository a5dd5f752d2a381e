"""Tutorial 10: using a trained tagger in analysis code and on a batch system.

What you will learn
-------------------
* A training run directory (``config.yaml``, ``model.keras``, ``preprocessing.json``) is all
  an analysis needs: ``hepnn.Tagger.load(run_dir)`` rebuilds the exact inputs of training
  (same branches, sorting, padding, standardisation) from the arrays ``uproot`` reads.
* ``tagger.predict(events)`` on a per-event (NanoAOD-like) file gives a **jagged** array: one
  score per jet, aligned with ``Jet_pt`` (no cut of the training config is applied, so no
  jet is lost). ``ak.with_field`` attaches it to the events.
* ``tagger.predict_file(path)`` reads a file chunk by chunk (bounded memory).
* Scores are best stored as a **friend tree**: a new file with the same entries as the
  original, holding only the new branches, read side by side with the original.
* On a batch system, each job trains or scores one piece; the tutorial writes example SLURM
  and HTCondor job files. A coffea processor using the tagger is in
  ``tutorials/coffea_tagger_processor.py``.

Run ``python tutorials/10_tagger_in_analysis.py --quick``.
"""

# %% [markdown]
# ## Setup: train a small b-tagger on per-event ttbar files

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

args = tut.parse_args(__doc__, "10_tagger_in_analysis")
N_JETS = 600 if args.quick else 20000
EPOCHS = 5 if args.quick else 20

import awkward as ak  # noqa: E402
import numpy as np  # noqa: E402
import uproot  # noqa: E402

import hepnn  # noqa: E402

tut.section("training a b-tagger (jet variables + tracks, Deep Sets)")
config = tut.ttbar_config(args.out, N_JETS, seed=args.seed, layout="per_event", max_length=8,
                          model={"name": "deepsets", "phi_units": [16, 16], "dense_units": [16]},
                          training={"epochs": EPOCHS, "batch_size": 32,
                                    "optimizer": {"learning_rate": 0.005}})
config["data"]["cuts"] = [{"variable": "Jet_pt", "min": 30.0}]
trainer = tut.train(config, args.out / "run_btag")
run_dir = args.out / "run_btag"
print(f"  run directory {run_dir}: {sorted(p.name for p in run_dir.iterdir())}")
print(f"  test AUC {trainer.metrics_['auc']:.3f}")

# %% [markdown]
# ## 1. Load the tagger and score the jets of new events
# A new file (another seed): the tagger only needs the branches it lists.

# %%
tut.section("Tagger.load + predict on uproot arrays")
tagger = hepnn.Tagger.load(run_dir)
print(f"  {tagger}")
print(f"  required branches: {tagger.required_branches}")
new_file = tut.sample("ttbar", 300 if args.quick else 5000, args.seed + 7, args.out, layout="per_event")
events = uproot.open(new_file)["Events"].arrays()
scores = tagger.predict(events)
print(f"  scores: {ak.type(scores)}")
events = ak.with_field(events, scores, "Jet_hepnnScore")
aligned = bool(ak.all(ak.num(events.Jet_hepnnScore) == events.nJet))
print(f"  one score per jet in every event: {aligned}")

# an analysis selection with the score: events with at least two b-tagged jets
btag = (events.Jet_hepnnScore > 0.5) & (events.Jet_pt > 30)
n_btag = ak.sum(btag, axis=1)
print(f"  events with >= 2 b-tagged jets: {int(ak.sum(n_btag >= 2))} of {len(events)}")
truth_b = events.Jet_hadronFlavour == 5
eff_b = float(ak.sum(btag & truth_b) / max(ak.sum(truth_b & (events.Jet_pt > 30)), 1))
mistag = float(ak.sum(btag & (events.Jet_hadronFlavour == 0)) /
               max(ak.sum((events.Jet_hadronFlavour == 0) & (events.Jet_pt > 30)), 1))
print(f"  at score > 0.5: b efficiency {eff_b:.2f}, light mistag rate {mistag:.2f}")

from hepnn import plotting  # noqa: E402

flat_scores = ak.to_numpy(ak.flatten(events.Jet_hepnnScore))
flat_flavour = ak.to_numpy(ak.flatten(events.Jet_hadronFlavour))
keep = flat_flavour != 4  # b (5) vs light (0)
sc = plotting.plot_scores(flat_scores[keep], (flat_flavour[keep] == 5).astype(int), class_names=["light", "b"])
tut.save(sc.figure, args.out, "btag_scores_new_events")

# %% [markdown]
# ## 2. Whole files, chunk by chunk

# %%
tut.section("predict_file (bounded memory)")
file_scores = tagger.predict_file(new_file, step_size=100)
same = bool(np.allclose(ak.to_numpy(ak.flatten(file_scores)), ak.to_numpy(ak.flatten(scores)), atol=1e-5))
print(f"  {len(file_scores)} events read in chunks of 100; same scores as predict: {same}")

# %% [markdown]
# ## 3. Write the scores as a friend tree
# Same number of entries as ``Events``; uproot writes the counter ``nJet_hepnnScore`` of the
# jagged branch itself.

# %%
tut.section("friend tree")
friend_path = args.out / "ttbar_hepnn_friend.root"
with uproot.recreate(friend_path) as f:
    f["Friends"] = {"event": events.event, "Jet_hepnnScore": scores}
friend = uproot.open(friend_path)["Friends"]
print(f"  {friend_path.name}: branches {friend.keys()}, {friend.num_entries} entries "
      f"(Events has {len(events)})")
back = friend.arrays()
friend_ok = bool(friend.num_entries == len(events) and ak.all(back.event == events.event)
                 and np.allclose(ak.to_numpy(ak.flatten(back.Jet_hepnnScore)), ak.to_numpy(ak.flatten(scores))))
print(f"  read back and matched event by event: {friend_ok}")
print("  in ROOT:  TTree* t = (TTree*)f->Get(\"Events\"); t->AddFriend(\"Friends\", \"ttbar_hepnn_friend.root\");")

# %% [markdown]
# ## 4. On a batch system
# Training: one job per config (or per fold / variant), writing a run directory on shared
# storage; resubmitting a killed job resumes from its last checkpoint. Scoring: one job per
# input file, each writing its friend tree. The score script is plain Python using the
# ``Tagger`` as above (there is no ``hepnn predict`` command).

# %%
tut.section("batch job files")
batch = args.out / "batch"
batch.mkdir(exist_ok=True)
(batch / "score_file.py").write_text('''"""Score one file: python score_file.py RUN_DIR INPUT.root OUTPUT_friend.root"""
import sys

import awkward as ak
import uproot

import hepnn

run_dir, source, target = sys.argv[1:4]
tagger = hepnn.Tagger.load(run_dir)
scores = tagger.predict_file(source, step_size="200 MB")
with uproot.recreate(target) as f:
    f["Friends"] = {"Jet_hepnnScore": scores}
''')
(batch / "train.slurm").write_text(f'''#!/bin/bash
#SBATCH --job-name=hepnn-train
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=04:00:00
#SBATCH --gres=gpu:1            # remove on CPU-only partitions
#SBATCH --output=logs/%x-%j.out
#SBATCH --requeue               # a preempted job restarts and resumes from its checkpoint
source .venv/bin/activate
hepnn train {run_dir / "config.yaml"} --out runs/btag
hepnn evaluate runs/btag
''')
files = [new_file]  # the files to score: one line of files.txt, one array task each
(batch / "score.slurm").write_text(f'''#!/bin/bash
#SBATCH --job-name=hepnn-score
#SBATCH --array=0-{len(files) - 1}             # one task per line of files.txt; for another list:
#                                 sbatch --array=0-$(( $(wc -l < files.txt) - 1 )) score.slurm
#SBATCH --cpus-per-task=1
#SBATCH --mem=4G
#SBATCH --time=01:00:00
#SBATCH --output=logs/%x-%A_%a.out
source .venv/bin/activate
INPUT=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" files.txt)
[ -n "$INPUT" ] || {{ echo "files.txt has no line $((SLURM_ARRAY_TASK_ID + 1))" >&2; exit 2; }}
python score_file.py runs/btag "$INPUT" "friends/$(basename "$INPUT" .root)_hepnn.root"
''')
(batch / "score.sub").write_text('''# HTCondor: condor_submit score.sub  (one job per line of files.txt)
universe                = vanilla
executable              = score.sh
arguments               = $(input)
transfer_input_files    = score_file.py, runs/btag
should_transfer_files   = YES
when_to_transfer_output = ON_EXIT
request_cpus            = 1
request_memory          = 4 GB
output                  = logs/score.$(ClusterId).$(ProcId).out
error                   = logs/score.$(ClusterId).$(ProcId).err
log                     = logs/score.$(ClusterId).log
queue input from files.txt
''')
(batch / "score.sh").write_text('''#!/bin/bash
# HTCondor executable: score one input file into a friend tree in the job's directory
source /path/to/hepnn/.venv/bin/activate
python score_file.py btag "$1" "$(basename "$1" .root)_hepnn.root"
''')
(batch / "files.txt").write_text("".join(f"{path}\n" for path in files))
for path in sorted(batch.iterdir()):
    print(f"  wrote {path}")
print((batch / "score.slurm").read_text())

array = next(line for line in (batch / "score.slurm").read_text().splitlines() if line.startswith("#SBATCH --array="))
array_tasks = int(array.split("=0-")[1].split()[0]) + 1  # one per line of files.txt

tut.result(auc=trainer.metrics_["auc"], array_tasks=array_tasks,
           files_listed=len((batch / "files.txt").read_text().splitlines()), aligned=aligned, predict_file_matches=same, friend_ok=friend_ok,
           n_events=len(events), n_jets=int(ak.sum(events.nJet)), b_efficiency=eff_b, mistag=mistag,
           batch_files=sorted(p.name for p in batch.iterdir()))
