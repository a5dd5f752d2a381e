"""Tutorial 01: a neuron and a multilayer perceptron, by hand and with Keras.

What you will learn
-------------------
* A neuron is a weighted sum plus a bias, ``z = w . x + b``, passed through an activation
  ``a = sigma(z)``. With a sigmoid output it is logistic regression: a linear cut in
  feature space, turned into a probability.
* A multilayer perceptron (MLP) stacks neurons: ``h = tanh(W1 x + b1)``, ``p = sigmoid(w2 . h + b2)``.
  The hidden layer lets the network bend the decision boundary.
* Training minimises the binary cross-entropy ``L = -mean(y log p + (1 - y) log(1 - p))`` by
  gradient descent, ``theta <- theta - eta dL/dtheta``. Backpropagation is the chain rule,
  applied layer by layer from the loss back to the inputs; we write it out in numpy.
* Keras does exactly the same computation: with the same initial weights, the same
  learning rate and full-batch gradient descent it reproduces our numbers to float precision.
* hepnn's ``dense`` model is the same MLP, built from a config.

The physics: top-quark jets (three prongs, mass near 173 GeV) against QCD jets (one prong,
lighter), described by five jet-level features: mass, soft-drop mass, the N-subjettiness
ratios tau21 and tau32, and the number of constituents.

Run ``python tutorials/01_neuron_and_mlp.py --quick`` (seconds) or without ``--quick``
(a hackathon session: more jets, more steps).
"""

# %% [markdown]
# ## Setup: arguments, data
# The samples are generated with Pythia 8 + FastJet the first time (cached in ``--out``).

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

args = tut.parse_args(__doc__, "01_neuron_and_mlp")
N_JETS = 300 if args.quick else 3000
N_STEPS = 60 if args.quick else 600
HIDDEN = 8
LEARNING_RATE = 0.5

import numpy as np  # noqa: E402

import hepnn.io  # noqa: E402
from hepnn import metrics, plotting  # noqa: E402
from hepnn.config import load_config  # noqa: E402

tut.section("data: five jet-level features of top and QCD jets")
config = load_config(tut.top_qcd_config(args.out, N_JETS, seed=args.seed, inputs=("highlevel",)))
data = hepnn.io.load(config)  # standardised features (mean 0, std 1 on the training split)
train, test = data.split("train"), data.split("test")
x_train, y_train = train["highlevel"].astype(np.float64), train["label"].astype(np.float64)
x_test, y_test = test["highlevel"].astype(np.float64), test["label"]
print(f"  features: {data.feature_names['highlevel']}")
print(f"  train: {len(y_train)} jets ({y_train.mean():.0%} top), test: {len(y_test)} jets")

# %% [markdown]
# ## 1. One neuron
# ``z = w . x + b`` then ``sigmoid(z) = 1 / (1 + exp(-z))``. With a weight on the mass and one on
# tau32 it already separates top from QCD: heavy jets with small tau32 get a high score.


# %%
def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


tut.section("one neuron: z = w.x + b, a = sigmoid(z)")
names = data.feature_names["highlevel"]
w = np.zeros(x_train.shape[1])
w[names.index("jet_mass")] = 2.0    # heavier -> more top-like
w[names.index("jet_tau32")] = -2.0  # three prongs (small tau32) -> more top-like
b = 0.0
neuron = sigmoid(x_test @ w + b)
auc_neuron = metrics.roc_auc(y_test, neuron)
print(f"  a hand-set neuron (w_mass=+2, w_tau32=-2): AUC = {auc_neuron:.3f}")

# %% [markdown]
# ## 2. A two-layer MLP with backpropagation written out
# Forward: ``z1 = x W1 + b1``, ``h = tanh(z1)``, ``z2 = h w2 + b2``, ``p = sigmoid(z2)``.
#
# Backward (chain rule), for the mean cross-entropy over ``n`` jets:
# ``dL/dz2 = (p - y) / n`` (sigmoid and cross-entropy combine neatly),
# ``dL/dw2 = h^T dL/dz2``, ``dL/db2 = sum dL/dz2``,
# ``dL/dh = dL/dz2 w2^T``, ``dL/dz1 = dL/dh * (1 - h^2)`` (the tanh derivative),
# ``dL/dW1 = x^T dL/dz1``, ``dL/db1 = sum dL/dz1``.

# %%
tut.section(f"MLP by hand: {x_train.shape[1]} -> {HIDDEN} tanh -> 1 sigmoid, {N_STEPS} full-batch steps")
rng = np.random.default_rng(args.seed)
limit1 = np.sqrt(6 / (x_train.shape[1] + HIDDEN))  # Glorot uniform, as Keras does
init = {
    "W1": rng.uniform(-limit1, limit1, (x_train.shape[1], HIDDEN)),
    "b1": np.zeros(HIDDEN),
    "w2": rng.uniform(-np.sqrt(6 / (HIDDEN + 1)), np.sqrt(6 / (HIDDEN + 1)), (HIDDEN, 1)),
    "b2": np.zeros(1),
}


def forward(params, x):
    h = np.tanh(x @ params["W1"] + params["b1"])
    p = sigmoid(h @ params["w2"] + params["b2"])
    return h, p[:, 0]


def bce(p, y, eps=1e-7):
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def backward(params, x, y):
    h, p = forward(params, x)
    n = len(y)
    dz2 = ((p - y) / n)[:, None]                 # (n, 1)
    grads = {"w2": h.T @ dz2, "b2": dz2.sum(axis=0)}
    dz1 = (dz2 @ params["w2"].T) * (1 - h**2)    # (n, hidden)
    grads["W1"] = x.T @ dz1
    grads["b1"] = dz1.sum(axis=0)
    return grads, bce(p, y)


params = {k: v.copy() for k, v in init.items()}
hand_losses = []
for _step in range(N_STEPS):
    grads, loss = backward(params, x_train, y_train)
    hand_losses.append(loss)  # the loss before this step's update (what Keras reports per epoch)
    for key in params:
        params[key] -= LEARNING_RATE * grads[key]

# a numerical check of the backpropagation: finite differences on a few weights
check = {k: v.copy() for k, v in init.items()}
grads, _ = backward(check, x_train, y_train)
numeric = []
for i, j in [(0, 0), (2, 3), (4, 7)]:
    for sign in (+1, -1):
        check["W1"][i, j] += sign * 1e-5
        numeric.append(bce(forward(check, x_train)[1], y_train))
        check["W1"][i, j] -= sign * 1e-5
numeric = (np.array(numeric[0::2]) - np.array(numeric[1::2])) / 2e-5
analytic = np.array([grads["W1"][0, 0], grads["W1"][2, 3], grads["W1"][4, 7]])
grad_check = float(np.max(np.abs(numeric - analytic)))
print(f"  gradient check (backprop vs finite differences): max |diff| = {grad_check:.2e}")
print(f"  loss: {hand_losses[0]:.4f} -> {hand_losses[-1]:.4f}")

# %% [markdown]
# ## 3. The same network in Keras
# Same architecture, same initial weights, plain SGD with the same learning rate, one batch
# holding every training jet and no shuffling: Keras must reproduce the hand-made numbers.

# %%
tut.section("the same MLP in Keras")
import keras  # noqa: E402

keras.utils.set_random_seed(args.seed)
model = keras.Sequential([
    keras.Input(shape=(x_train.shape[1],)),
    keras.layers.Dense(HIDDEN, activation="tanh"),
    keras.layers.Dense(1, activation="sigmoid"),
])
model.set_weights([init["W1"], init["b1"], init["w2"], init["b2"]])
model.compile(optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE), loss="binary_crossentropy")
history = model.fit(x_train.astype(np.float32), y_train.astype(np.float32), batch_size=len(y_train),
                    epochs=N_STEPS, shuffle=False, verbose=0)
keras_losses = np.array(history.history["loss"])
keras_weights = model.get_weights()
max_loss_diff = float(np.max(np.abs(keras_losses - np.array(hand_losses))))
max_weight_diff = float(max(np.max(np.abs(kw - params[k])) for kw, k in zip(keras_weights, ["W1", "b1", "w2", "b2"])))
print(f"  max |loss_keras - loss_hand| over {N_STEPS} steps: {max_loss_diff:.2e}")
print(f"  max |weight_keras - weight_hand| at the end:     {max_weight_diff:.2e}")

_, p_hand = forward(params, x_test)
p_keras = model.predict(x_test.astype(np.float32), verbose=0)[:, 0]
auc_hand = metrics.roc_auc(y_test, p_hand)
auc_keras = metrics.roc_auc(y_test, p_keras)
print(f"  test AUC: by hand {auc_hand:.3f}, Keras {auc_keras:.3f}")

# %% [markdown]
# ## 4. The same idea as a hepnn config
# ``model: {name: dense, units: [8], activation: tanh}`` builds this MLP (with an Adam optimiser,
# mini-batches and early stopping from the ``training`` section).

# %%
tut.section("hepnn dense model from a config")
cfg = tut.top_qcd_config(args.out, N_JETS, seed=args.seed, inputs=("highlevel",),
                         model={"name": "dense", "units": [HIDDEN], "activation": "tanh", "dropout": 0.0},
                         training={"epochs": 4 if args.quick else 30, "batch_size": 32,
                                   "optimizer": {"learning_rate": 0.02}})
trainer = tut.train(cfg, args.out / "run_dense", data=data)
auc_hepnn = trainer.metrics_["auc"]
print(f"  hepnn dense: {len(trainer.history_)} epochs, test AUC {auc_hepnn:.3f}")

# %% [markdown]
# ## Plots: the loss curves must lie on top of each other

# %%
import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots()
ax.plot(hand_losses, label="numpy, backprop by hand")
ax.plot(keras_losses, "--", label="Keras")
ax.set_xlabel("gradient-descent step")
ax.set_ylabel("binary cross-entropy")
ax.legend()
tut.save(fig, args.out, "loss_hand_vs_keras")
roc = plotting.plot_roc({"neuron (hand-set)": neuron, "MLP by hand": p_hand, "MLP Keras": p_keras,
                         "hepnn dense": trainer.test_scores_}, np.asarray(y_test))
tut.save(roc.figure, args.out, "roc")

tut.result(auc_neuron=auc_neuron, auc_hand=auc_hand, auc_keras=auc_keras, auc_hepnn=auc_hepnn,
           max_loss_diff=max_loss_diff, max_weight_diff=max_weight_diff, grad_check=grad_check,
           loss_start=hand_losses[0], loss_end=hand_losses[-1])
