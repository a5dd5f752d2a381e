"""Tutorial 02: activations, initialisation and the vanishing gradient (and two fixes).

What you will learn
-------------------
* The activation functions of the lecture (sigmoid, tanh, ReLU, leaky ReLU, ELU, SELU, GELU,
  swish) and their derivatives. The sigmoid's derivative is at most 1/4: every sigmoid layer
  a gradient passes through multiplies it by at most 1/4 (times the weights).
* Backpropagation multiplies one such factor per layer, so in a deep sigmoid network the
  gradient reaching the first layers is tiny: the **vanishing gradient**. Those layers hardly
  learn.
* Initialisation matters as much: weights drawn with variance ``2 / fan_in`` (He) keep the
  signal size constant through ReLU layers; ``1 / fan_in`` (LeCun) halves the variance at
  every ReLU layer and the gradient shrinks geometrically again.
* Two architectural fixes, both hepnn ``dense`` options:
  ``batch_norm: true`` (re-centre and re-scale each layer's inputs, so sigmoids work in their
  steep region) and ``residual: true`` (``x + f(x)``: the identity path carries the gradient
  past every layer unchanged).

We measure the gradient norm of every layer's weights at initialisation in a 12-layer network,
for each variant, then train them briefly on top-vs-QCD jet features.

Run ``python tutorials/02_activations_and_vanishing_gradients.py --quick``.
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

args = tut.parse_args(__doc__, "02_activations_and_vanishing_gradients")
N_JETS = 300 if args.quick else 3000
DEPTH, WIDTH = 12, 32
EPOCHS = 2 if args.quick else 20

import numpy as np  # noqa: E402

import hepnn.io  # noqa: E402
from hepnn.config import load_config  # noqa: E402
from hepnn.models import build_model  # noqa: E402

tut.section("data")
config = load_config(tut.top_qcd_config(args.out, N_JETS, seed=args.seed, inputs=("highlevel",)))
data = hepnn.io.load(config)
train = data.split("train")
print(f"  {len(train['label'])} training jets, features {data.feature_names['highlevel']}")

# %% [markdown]
# ## 1. Activation functions and their derivatives
# The derivative is what backpropagation multiplies by. Sigmoid: at most 0.25, and almost 0
# for |z| > 5 (saturation). ReLU: exactly 1 for z > 0, so it passes gradients unchanged.

# %%
tut.section("activations and their derivatives")
import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import tensorflow as tf  # noqa: E402

# a grid plus points just either side of 0, where ELU and SELU have their steepest slope (SELU:
# scale * alpha = 1.758 for z -> 0 from below, against scale = 1.051 above)
z = tf.constant(np.sort(np.concatenate([np.linspace(-6, 6, 241), [-1e-4, 1e-4]])), dtype=tf.float32)
fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(10, 4))
max_derivative = {}
for name in ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "swish"]:
    with tf.GradientTape() as tape:
        tape.watch(z)
        a = keras.activations.get(name)(z)
    d = tape.gradient(a, z).numpy()
    max_derivative[name] = float(d.max())
    ax_f.plot(z.numpy(), a.numpy(), label=name)
    ax_d.plot(z.numpy(), d, label=name)
    print(f"  {name:10s} max derivative {d.max():.3f}, derivative at z=4: {d[np.argmin(np.abs(z.numpy() - 4))]:.3f}")
ax_f.set(xlabel="z", ylabel="activation(z)", ylim=(-2, 6))
ax_d.set(xlabel="z", ylabel="d activation / dz")
ax_f.legend(fontsize="small")
tut.save(fig, args.out, "activations")

# %% [markdown]
# ## 2. Gradient norm per layer at initialisation
# Each variant is the hepnn ``dense`` builder with different options. We compute the gradient
# of the loss on one batch with respect to each hidden layer's kernel (``mlp_dense{i}``).

# %%
VARIANTS = {
    "sigmoid, Glorot": {"activation": "sigmoid", "initializer": "glorot_uniform"},
    "relu, LeCun (too small)": {"activation": "relu", "initializer": "lecun_normal"},
    "relu, He": {"activation": "relu", "initializer": "he_normal"},
    "sigmoid + batch norm": {"activation": "sigmoid", "initializer": "glorot_uniform", "batch_norm": True},
    "sigmoid + residual": {"activation": "sigmoid", "initializer": "glorot_uniform", "residual": True},
}

tut.section(f"gradient norms per layer, {DEPTH} hidden layers of {WIDTH}")
x = {"highlevel": train["highlevel"][:256]}
y = train["label"][:256].astype(np.float32)[:, None]
loss_fn = keras.losses.BinaryCrossentropy()
norms = {}
for name, options in VARIANTS.items():
    keras.utils.set_random_seed(args.seed)
    model = build_model("dense", {"highlevel": (x["highlevel"].shape[1],)}, units=[WIDTH] * DEPTH, dropout=0.0,
                        **options)
    kernels = [model.get_layer(f"mlp_dense{i}").kernel for i in range(DEPTH)]
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, kernels)
    norms[name] = np.array([float(tf.norm(g)) for g in grads])
ratios = {name: float(n[0] / n[-1]) for name, n in norms.items()}
print(f"  {'variant':26s} |grad| layer 1   |grad| layer {DEPTH}   ratio first/last")
for name, n in norms.items():
    print(f"  {name:26s} {n[0]:12.2e} {n[-1]:14.2e} {ratios[name]:14.2e}")

fig, ax = plt.subplots()
for name, n in norms.items():
    ax.plot(np.arange(1, DEPTH + 1), n, marker="o", label=name)
ax.set(yscale="log", xlabel="hidden layer (1 = closest to the input)", ylabel="|dL/dW| at initialisation")
ax.legend(fontsize="small")
tut.save(fig, args.out, "gradient_norms")

# %% [markdown]
# ## 3. Does it matter for training?
# A few epochs of each variant with the same data, optimiser and seed. The deep sigmoid net
# learns slowly (its first layers barely move); batch norm and residual connections fix it.

# %%
tut.section(f"training each variant for {EPOCHS} epochs")
aucs = {}
# quick mode: the two sigmoid nets only (each training pays a few seconds of graph tracing)
TRAINED = ["sigmoid, Glorot", "sigmoid + batch norm"] if args.quick else [
    "sigmoid, Glorot", "relu, He", "sigmoid + batch norm", "sigmoid + residual"]
for name in TRAINED:
    options = VARIANTS[name]
    cfg = tut.top_qcd_config(args.out, N_JETS, seed=args.seed, inputs=("highlevel",),
                             model={"name": "dense", "units": [WIDTH] * DEPTH, "dropout": 0.0, **options},
                             training={"epochs": EPOCHS, "early_stopping": None})
    slug = "".join(c if c.isalnum() else "_" for c in name)
    trainer = tut.train(cfg, args.out / f"run_{slug}", data=data)
    aucs[name] = trainer.metrics_["auc"]
    print(f"  {name:26s} final loss {trainer.history_[-1]['loss']:.3f}, test AUC {aucs[name]:.3f}")

tut.result(gradient_ratio=ratios, first_layer_norm={k: v[0] for k, v in norms.items()}, auc=aucs,
           max_derivative=max_derivative, depth=DEPTH)
