"""Tutorial 03: optimisers and learning-rate schedules on the same top tagger.

What you will learn
-------------------
* **SGD**: ``theta <- theta - eta g`` with ``g`` the gradient of the loss on a mini-batch.
  Cheap and noisy; the learning rate ``eta`` must be tuned by hand.
* **Momentum**: ``v <- mu v - eta g``, ``theta <- theta + v``. The velocity averages
  successive gradients: it speeds up along consistent directions and damps oscillations
  (``training.optimizer.momentum``, ``nesterov`` for the look-ahead variant).
* **Adaptive methods** scale each parameter's step by its gradient history:
  *Adagrad* divides by the root of the summed squared gradients (steps only shrink),
  *RMSProp* by a running average instead (steps can recover), *Adam* adds momentum to
  RMSProp and corrects the bias of both averages at the start.
* **Schedules** lower the learning rate during training: ``step`` (halve every N epochs),
  ``exponential``, ``cosine`` (smoothly to a floor) and ``plateau`` (halve when the
  validation loss stops improving).
* **The loss** is what the optimiser minimises (``training.loss``): binary cross-entropy
  ``-[y log p + (1 - y) log(1 - p)]`` for a tagger by default; the *focal* cross-entropy
  ``binary_focal_crossentropy`` multiplies it by ``(1 - p_t)^gamma``, so jets already classified
  well weigh less and the hard ones more.

Every one of these is a key of the ``training`` section, e.g.::

    training:
      optimizer: {name: sgd, learning_rate: 0.05, momentum: 0.9, nesterov: true}
      schedule: {name: cosine, decay_epochs: 20}

Run ``python tutorials/03_optimizers_and_schedules.py --quick``.
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

args = tut.parse_args(__doc__, "03_optimizers_and_schedules")
N_JETS = 300 if args.quick else 4000
EPOCHS = 3 if args.quick else 25

import hepnn.io  # noqa: E402
from hepnn.config import load_config  # noqa: E402
from hepnn.config.schema import ScheduleConfig  # noqa: E402
from hepnn.training.optimizers import learning_rate_at  # noqa: E402

tut.section("data")
base = tut.top_qcd_config(args.out, N_JETS, seed=args.seed, inputs=("highlevel",))
data = hepnn.io.load(load_config(base))
print(f"  {int((data['split'] == 0).sum())} training jets")

# %% [markdown]
# ## 1. Five optimisers, same network, same data, same seed
# Early stopping is off so that every run gets the same number of epochs.

# %%
OPTIMIZERS = {
    "SGD": {"name": "sgd", "learning_rate": 0.05},
    "SGD + momentum": {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
    "Adagrad": {"name": "adagrad", "learning_rate": 0.05},
    "RMSProp": {"name": "rmsprop", "learning_rate": 0.003},
    "Adam": {"name": "adam", "learning_rate": 0.003},
}
tut.section(f"optimisers, {EPOCHS} epochs each")
histories, aucs, final_val_loss = {}, {}, {}
for label, optimizer in OPTIMIZERS.items():
    cfg = dict(base, training={**base["training"], "epochs": EPOCHS, "batch_size": 32, "early_stopping": None,
                               "optimizer": optimizer})
    slug = "".join(c if c.isalnum() else "_" for c in label)
    trainer = tut.train(cfg, args.out / f"run_{slug}", data=data)
    histories[label] = trainer.history_
    aucs[label] = trainer.metrics_["auc"]
    final_val_loss[label] = trainer.history_[-1]["val_loss"]
    print(f"  {label:15s} val loss per epoch {[round(r['val_loss'], 3) for r in trainer.history_][:8]} "
          f"test AUC {aucs[label]:.3f}")

# %%
import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots()
for label, history in histories.items():
    ax.plot([r["epoch"] for r in history], [r["val_loss"] for r in history], marker="o", label=label)
ax.set(xlabel="epoch", ylabel="validation loss")
ax.legend()
tut.save(fig, args.out, "optimizers_val_loss")

# %% [markdown]
# ## 2. Learning-rate schedules
# ``hepnn.training.optimizers.learning_rate_at`` is the function the trainer calls at the start
# of each epoch; here it is tabulated. (``plateau`` depends on the validation loss, so the
# trainer handles it itself.)

# %%
tut.section("learning-rate schedules")
n_epochs = 30
schedules = {
    "step": ScheduleConfig(name="step", decay_rate=0.5, decay_epochs=10),
    "exponential": ScheduleConfig(name="exponential", decay_rate=0.5, decay_epochs=10),
    "cosine": ScheduleConfig(name="cosine", decay_epochs=n_epochs, min_learning_rate=1e-5),
}
fig, ax = plt.subplots()
for name, schedule in schedules.items():
    rates = [learning_rate_at(e, 0.01, schedule) for e in range(n_epochs)]
    ax.plot(range(1, n_epochs + 1), rates, label=name)
    print(f"  {name:12s} epoch 1: {rates[0]:.4f}  epoch 15: {rates[14]:.5f}  epoch 30: {rates[29]:.5f}")
ax.set(xlabel="epoch", ylabel="learning rate", yscale="log")
ax.legend()
tut.save(fig, args.out, "schedules")

# %% [markdown]
# Training with a schedule: SGD + momentum with a cosine decay (and, in full mode, each schedule).

# %%
SCHEDULED = {"cosine": {"name": "cosine", "decay_epochs": EPOCHS}}
if not args.quick:
    SCHEDULED.update({"step": {"name": "step", "decay_epochs": 8}, "plateau": {"name": "plateau", "patience": 2}})
schedule_aucs = {}
for name, schedule in SCHEDULED.items():
    cfg = dict(base, training={**base["training"], "epochs": EPOCHS, "batch_size": 32, "early_stopping": None,
                               "optimizer": OPTIMIZERS["SGD + momentum"], "schedule": schedule})
    trainer = tut.train(cfg, args.out / f"run_sgd_momentum_{name}", data=data)
    schedule_aucs[name] = trainer.metrics_["auc"]
    rates = [r["learning_rate"] for r in trainer.history_]
    print(f"  SGD + momentum, {name}: learning rates {[f'{r:.3g}' for r in rates][:6]}, test AUC {schedule_aucs[name]:.3f}")

# %% [markdown]
# ## 3. The loss: cross-entropy and focal cross-entropy
# ``training.loss`` names the function the optimiser minimises; every task has a default and a
# few alternatives (``hepnn.models.heads.LOSSES``). Same network and optimiser (Adam), two losses.
# The focal loss is smaller for the same predictions (well-classified jets are down-weighted), so
# compare the test AUCs, not the loss values.

# %%
tut.section("losses")
LOSSES = ["binary_crossentropy", "binary_focal_crossentropy"]
loss_aucs, loss_first = {}, {}
for loss in LOSSES:
    cfg = dict(base, training={**base["training"], "epochs": EPOCHS, "batch_size": 32, "early_stopping": None,
                               "optimizer": OPTIMIZERS["Adam"], "loss": loss})
    trainer = tut.train(cfg, args.out / f"run_loss_{loss}", data=data)
    loss_aucs[loss], loss_first[loss] = trainer.metrics_["auc"], trainer.history_[0]["loss"]
    print(f"  {loss:26s} training loss epoch 1 {loss_first[loss]:.4f}, test AUC {loss_aucs[loss]:.3f}")

tut.result(auc=aucs, final_val_loss=final_val_loss, schedule_auc=schedule_aucs,
           lr_cosine_last=learning_rate_at(n_epochs - 1, 0.01, schedules["cosine"]),
           loss_auc=loss_aucs, loss_first_epoch=loss_first)
