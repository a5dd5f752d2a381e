"""Custom Keras layers of the point-cloud taggers: ParticleNet, ParT, EFN.

Like :mod:`hepnn.models.layers`, this module imports Keras at module level and is
imported only by the builders and by :func:`hepnn.models.load_model`. Every layer has
``get_config`` and is registered under the ``hepnn`` package, so a saved model reloads
in safe mode. Masks are float ``(batch, max_length)`` tensors with 1.0 for real slots
(:class:`~hepnn.models.layers.PaddingMask`); a padded slot is never a neighbour, never
attended to and never pooled.
"""

from __future__ import annotations

import math

import keras
from keras import ops

__all__ = [
    "SelectFeatures",
    "KNNEdges",
    "EdgeAggregate",
    "WeightedSum",
    "PairFeatures",
    "pair_features_reference",
    "ClassToken",
    "MaskedAttention",
    "gelu_tanh",
]

# additive attention bias of a padded key: exp(-1e9 + x) is exactly 0 in float32, and a
# row of padded keys only stays finite (unlike -inf)
_NEG = -1e9


@keras.saving.register_keras_serializable(package="hepnn")
def gelu_tanh(x):
    """GELU in its tanh approximation (ONNX-exportable: the exact GELU needs ``Erfc``, which tf2onnx lacks)."""
    return keras.activations.gelu(x, approximate=True)


@keras.saving.register_keras_serializable(package="hepnn")
class SelectFeatures(keras.layers.Layer):
    """The columns ``indices`` of the last axis: ``(..., n) -> (..., len(indices))``.

    Examples
    --------
    >>> import numpy as np
    >>> np.asarray(SelectFeatures([2, 0])(np.array([[1.0, 2.0, 3.0]]))).tolist()
    [[3.0, 1.0]]
    """

    def __init__(self, indices=(0,), **kwargs):
        super().__init__(**kwargs)
        self.indices = [int(i) for i in indices]

    def call(self, inputs):
        return ops.take(inputs, self.indices, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], len(self.indices))

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "indices": list(self.indices)}


def _gather_points(values, index):
    """``values[b, index[b, i, j]]`` for ``values (B, P, F)`` and ``index (B, P, k)`` -> ``(B, P, k, F)``."""
    n_points, n_features = values.shape[1], values.shape[2]
    k = index.shape[2]
    batch = ops.shape(values)[0]
    offsets = ops.reshape(ops.arange(batch, dtype="int32") * n_points, (-1, 1, 1))
    flat_index = ops.reshape(ops.cast(index, "int32") + offsets, (-1,))
    flat_values = ops.reshape(values, (-1, n_features))
    return ops.reshape(ops.take(flat_values, flat_index, axis=0), (-1, n_points, k, n_features))


def _squared_distances(coords, mask):
    """Squared distances ``(B, P, P)`` between the points of each jet, in a frame centred on its real points.

    ``|a - b|² = |a|² + |b|² - 2 a·b`` cancels when the points lie far from the origin
    compared with their spread (later EdgeConv blocks: non-negative learned features);
    centring on the mean of the jet's real points first removes that offset, and padded
    points (set to the centre) cannot overflow.
    """
    real = ops.expand_dims(mask, -1) > 0
    coords = ops.where(real, coords, ops.zeros_like(coords))
    count = ops.maximum(ops.sum(ops.cast(real, coords.dtype), axis=1, keepdims=True), 1.0)
    coords = ops.where(real, coords - ops.sum(coords, axis=1, keepdims=True) / count, ops.zeros_like(coords))
    sq = ops.sum(coords * coords, axis=-1)
    dist = ops.expand_dims(sq, 2) + ops.expand_dims(sq, 1) - 2.0 * ops.matmul(coords, ops.transpose(coords, (0, 2, 1)))
    return ops.maximum(dist, 0.0)


@keras.saving.register_keras_serializable(package="hepnn")
class KNNEdges(keras.layers.Layer):
    """EdgeConv inputs on the dynamic k-nearest-neighbour graph (ParticleNet, arXiv:1902.08570).

    Called on ``[coordinates (B, P, C), features (B, P, F), mask (B, P)]``; finds for
    each point its ``k`` nearest *real* neighbours in the coordinates (itself and
    padded slots excluded) and returns ``[edges (B, P, k, 2F), edge_mask (B, P, k)]``
    with edge features ``(x_i, x_j - x_i)``. An edge is valid (mask 1.0) when both
    ends are real and ``j != i``; jets with at most ``k`` real particles get fewer
    valid edges (the rest are masked, never used). Padded points and the point itself
    are infinitely far, so the neighbours are the brute-force nearest real points at
    any scale of the coordinates (e.g. momenta in MeV), and distances are taken in a
    frame centred on the jet's real points (no float32 cancellation far from the origin).
    """

    def __init__(self, k: int = 16, **kwargs):
        kwargs.setdefault("dtype", "float32")  # distances in float32, also under mixed precision
        super().__init__(**kwargs)
        self.k = int(k)

    def _k(self, n_points):
        return max(1, min(self.k, int(n_points) - 1)) if n_points and n_points > 1 else 1

    def call(self, inputs):
        coords, features, mask = inputs
        mask = ops.cast(mask, coords.dtype)
        n_points = coords.shape[1]
        k = self._k(n_points)
        dist = _squared_distances(coords, mask)
        # only real points other than the point itself are candidates; the others are
        # infinitely far, whatever the scale of the coordinates (masked below)
        real_pair = ops.expand_dims(mask, 1) * ops.expand_dims(1.0 - ops.eye(n_points, dtype=coords.dtype), 0)
        dist = ops.where(real_pair > 0, dist, ops.cast(float("inf"), coords.dtype))
        _, index = ops.top_k(-dist, k=k, sorted=False)
        neighbours = _gather_points(features, index)
        centre = ops.repeat(ops.expand_dims(features, 2), k, axis=2)
        edges = ops.concatenate([centre, neighbours - centre], axis=-1)
        neighbour_real = _gather_points(ops.expand_dims(mask, -1), index)[..., 0]
        not_self = ops.cast(ops.not_equal(index, ops.reshape(ops.arange(n_points, dtype=index.dtype), (1, -1, 1))), coords.dtype)
        edge_mask = neighbour_real * not_self * ops.expand_dims(mask, -1)
        return [edges, edge_mask]

    def compute_output_shape(self, input_shape):
        _, features_shape, _ = input_shape
        k = self._k(features_shape[1])
        return [(features_shape[0], features_shape[1], k, 2 * features_shape[2]), (features_shape[0], features_shape[1], k)]

    def compute_mask(self, inputs, mask=None):
        return [None, None]

    def get_config(self):
        return {**super().get_config(), "k": self.k}


@keras.saving.register_keras_serializable(package="hepnn")
class EdgeAggregate(keras.layers.Layer):
    """Mean of edge features over the valid edges: ``[(B, P, k, C), (B, P, k)] -> (B, P, C)``."""

    def call(self, inputs):
        edges, edge_mask = inputs
        weights = ops.expand_dims(ops.cast(edge_mask, edges.dtype), -1)
        total = ops.sum(edges * weights, axis=2)
        count = ops.maximum(ops.sum(weights, axis=2), ops.cast(1.0, edges.dtype))
        return total / count

    def compute_output_shape(self, input_shape):
        shape = input_shape[0]
        return (shape[0], shape[1], shape[3])

    def compute_mask(self, inputs, mask=None):
        return None


@keras.saving.register_keras_serializable(package="hepnn")
class WeightedSum(keras.layers.Layer):
    """Energy-weighted sum over the real slots (EFN): ``sum_i mask_i z_i Phi_i``.

    Called on ``[phi (B, P, L), z (B, P, 1), mask (B, P)]``; returns ``(B, L)``. Linear
    in ``z``: a particle with ``z = 0`` contributes nothing (infrared safety) and two
    particles at the same point contribute as one with the summed ``z`` (collinear safety).
    """

    def call(self, inputs):
        phi, z, mask = inputs
        weights = ops.cast(z, phi.dtype) * ops.expand_dims(ops.cast(mask, phi.dtype), -1)
        return ops.sum(phi * weights, axis=1)

    def compute_output_shape(self, input_shape):
        shape = input_shape[0]
        return (shape[0], shape[2])

    def compute_mask(self, inputs, mask=None):
        return None


#: a particle's own m² below this fraction of E² counts as 0 in :class:`PairFeatures` (float32 noise)
_OWN_MASS_RESOLVED = 1e-4


@keras.saving.register_keras_serializable(package="hepnn")
class PairFeatures(keras.layers.Layer):
    """ParT's pairwise interaction features from constituent four-momenta (arXiv:2202.03772).

    Called on ``[p4 (B, P, 4), mask (B, P)]`` with ``p4 = (px, py, pz, E)`` in physical
    units (not standardised); returns ``(B, P, P, 4)`` holding, for each pair ``(a, b)``,
    ``ln Δ, ln kT, ln z, ln m²`` with ``Δ = sqrt(Δy² + Δφ²)`` (rapidity y),
    ``kT = min(pT_a, pT_b) Δ``, ``z = min(pT_a, pT_b) / (pT_a + pT_b)``,
    ``m² = (E_a + E_b)² - |p_a + p_b|²``; every argument is floored at ``eps`` before
    the logarithm. Pairs with a padded slot are 0, and nothing is computed from the
    padded slots' values (any pad value, however large, gives the same, finite features).

    The features are computed in forms without cancellation, so that float32 resolves
    them for nearly collinear pairs and for a particle paired with itself (``Δ = 0``
    exactly): ``Δφ = φ_a - φ_b`` wrapped into ``[-π, π)``, and

    ``m² = m_a² + m_b² + 2 (pT_a² m_b² + m_a² pT_b² + m_a² m_b²) / (mT_a mT_b + pT_a pT_b)
    + 4 mT_a mT_b sinh²(Δy/2) + 4 pT_a pT_b sin²(Δφ/2)``,

    algebraically equal to the definition but a sum of non-negative terms (the direct
    ``E² - |p|²`` of two 100 GeV constituents 10 mrad apart loses half its digits in
    float32, and a fused multiply-add, as XLA or ONNX Runtime use, changed ``ln m²`` of
    such pairs by up to 15). A particle's own mass ``m² = (E + pz)(E - pz) - pT²``, which
    float32 resolves only above about ``1e-6 E²``, counts as 0 below ``1e-4 E²`` (m/E < 1 %).
    """

    def __init__(self, eps: float = 1e-8, **kwargs):
        kwargs.setdefault("dtype", "float32")  # logarithms of 1e-8 and m² in GeV²: float32 even under mixed precision
        super().__init__(**kwargs)
        self.eps = float(eps)

    def call(self, inputs):
        p4, mask = inputs
        mask = ops.cast(mask, p4.dtype)
        # padded slots hold the pad value (any number): zero them, so nothing computed from them can overflow
        p4 = ops.where(ops.expand_dims(mask, -1) > 0, p4, ops.zeros_like(p4))
        eps = ops.cast(self.eps, p4.dtype)
        px, py, pz, energy = (p4[..., i] for i in range(4))
        pt2 = px * px + py * py
        pt = ops.sqrt(pt2)
        rapidity = 0.5 * ops.log(ops.maximum(energy + pz, eps) / ops.maximum(energy - pz, eps))
        own_m2 = (energy + pz) * (energy - pz) - pt2
        own_m2 = ops.where(own_m2 > _OWN_MASS_RESOLVED * energy * energy, own_m2, ops.zeros_like(own_m2))
        mt = ops.sqrt(pt2 + own_m2)
        a = lambda t: ops.expand_dims(t, 2)  # noqa: E731  (particle a along axis 1)
        b = lambda t: ops.expand_dims(t, 1)  # noqa: E731  (particle b along axis 2)
        phi = ops.arctan2(py, px)
        dphi = a(phi) - b(phi)  # exactly 0 for a particle with itself
        two_pi = ops.cast(2 * math.pi, p4.dtype)
        dphi = ops.where(dphi >= math.pi, dphi - two_pi, ops.where(dphi < -math.pi, dphi + two_pi, dphi))
        dy = a(rapidity) - b(rapidity)
        delta = ops.sqrt(dy * dy + dphi * dphi)
        pt_min = ops.minimum(a(pt), b(pt))
        ln_delta = ops.log(ops.maximum(delta, eps))
        ln_kt = ops.log(ops.maximum(pt_min * delta, eps))
        ln_z = ops.log(ops.maximum(pt_min / ops.maximum(a(pt) + b(pt), eps), eps))
        mt_ab, pt_ab, ma2, mb2 = a(mt) * b(mt), a(pt) * b(pt), a(own_m2), b(own_m2)
        masses = (a(pt2) * mb2 + ma2 * b(pt2) + ma2 * mb2) / ops.maximum(mt_ab + pt_ab, eps)
        sinh_dy, sin_dphi = ops.sinh(0.5 * dy), ops.sin(0.5 * dphi)
        m2 = ma2 + mb2 + 2.0 * masses + 4.0 * mt_ab * sinh_dy * sinh_dy + 4.0 * pt_ab * sin_dphi * sin_dphi
        ln_m2 = ops.log(ops.maximum(m2, eps))
        out = ops.stack([ln_delta, ln_kt, ln_z, ln_m2], axis=-1)
        pair_mask = ops.expand_dims(a(mask) * b(mask), -1)
        return ops.where(pair_mask > 0, out, ops.zeros_like(out))

    def compute_output_shape(self, input_shape):
        shape = input_shape[0]
        return (shape[0], shape[1], shape[1], 4)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "eps": self.eps}


def pair_features_reference(p4, eps: float = 1e-8):
    """Slow pure-Python ParT pair features of one jet, ``p4`` a list of ``(px, py, pz, E)``.

    Returns a nested list ``[a][b] -> [ln Δ, ln kT, ln z, ln m²]`` (the test reference of
    :class:`PairFeatures`).
    """
    out = []
    for pa in p4:
        row = []
        for pb in p4:
            pta, ptb = math.hypot(pa[0], pa[1]), math.hypot(pb[0], pb[1])
            ya = 0.5 * math.log(max(pa[3] + pa[2], eps) / max(pa[3] - pa[2], eps))
            yb = 0.5 * math.log(max(pb[3] + pb[2], eps) / max(pb[3] - pb[2], eps))
            dphi = math.atan2(pa[1], pa[0]) - math.atan2(pb[1], pb[0])
            dphi = (dphi + math.pi) % (2 * math.pi) - math.pi
            delta = math.sqrt((ya - yb) ** 2 + dphi**2)
            ptmin = min(pta, ptb)
            m2 = (pa[3] + pb[3]) ** 2 - sum((pa[i] + pb[i]) ** 2 for i in range(3))
            row.append([
                math.log(max(delta, eps)),
                math.log(max(ptmin * delta, eps)),
                math.log(max(ptmin / max(pta + ptb, eps), eps)),
                math.log(max(m2, eps)),
            ])
        out.append(row)
    return out


@keras.saving.register_keras_serializable(package="hepnn")
class ClassToken(keras.layers.Layer):
    """A learned class token ``(B, 1, dim)`` (ParT's class-attention query), broadcast over the batch of its input."""

    def __init__(self, dim: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.dim = int(dim)

    def build(self, input_shape):
        self.token = self.add_weight(shape=(1, 1, self.dim), initializer=keras.initializers.TruncatedNormal(stddev=0.02), name="token")

    def call(self, inputs):
        batch = ops.shape(inputs)[0]
        return ops.broadcast_to(ops.cast(self.token, inputs.dtype), (batch, 1, self.dim))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1, self.dim)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "dim": self.dim}


@keras.saving.register_keras_serializable(package="hepnn")
class MaskedAttention(keras.layers.Layer):
    """Multi-head attention with a key mask and an optional additive bias per head.

    Called on ``[query (B, Q, D), keys (B, K, D), key_mask (B, K)]`` or, with
    ``use_bias_input``, ``[query, keys, key_mask, bias (B, heads, Q, K)]``. Padded keys
    get a bias of -1e9 (zero weight after the softmax). With ``prepend_query`` the query
    is also a key (with mask 1): ParT's class attention over ``[cls, particles]``.
    Output ``(B, Q, D)``.
    """

    def __init__(self, num_heads: int = 8, dropout: float = 0.0, use_bias_input: bool = False,
                 prepend_query: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.dropout = float(dropout)
        self.use_bias_input = bool(use_bias_input)
        self.prepend_query = bool(prepend_query)

    def build(self, input_shape):
        dim = int(input_shape[0][-1])
        if dim % self.num_heads:
            msg = f"MaskedAttention: the embedding width {dim} is not divisible by num_heads={self.num_heads}"
            raise ValueError(msg)
        self.dim = dim
        self.q_proj = keras.layers.Dense(dim, name="query")
        self.k_proj = keras.layers.Dense(dim, name="key")
        self.v_proj = keras.layers.Dense(dim, name="value")
        self.o_proj = keras.layers.Dense(dim, name="output")
        for layer, shape in ((self.q_proj, input_shape[0]), (self.k_proj, input_shape[1]),
                             (self.v_proj, input_shape[1]), (self.o_proj, input_shape[0])):
            layer.build(shape)
        self.attention_dropout = keras.layers.Dropout(self.dropout)

    def _heads(self, x):
        n = x.shape[1]
        x = ops.reshape(x, (-1, n, self.num_heads, self.dim // self.num_heads))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, inputs, training=None):
        query, keys, key_mask = inputs[:3]
        key_mask = ops.cast(key_mask, query.dtype)
        if self.prepend_query:
            keys = ops.concatenate([query, keys], axis=1)
            key_mask = ops.concatenate([ops.ones_like(key_mask[:, :1]), key_mask], axis=1)
        q, k, v = self._heads(self.q_proj(query)), self._heads(self.k_proj(keys)), self._heads(self.v_proj(keys))
        scale = 1.0 / math.sqrt(self.dim // self.num_heads)
        # logits, bias and softmax in float32 (a -1e9 bias overflows float16 under mixed precision)
        scores = ops.cast(ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))), "float32") * scale
        if self.use_bias_input:
            scores = scores + ops.cast(inputs[3], "float32")
        padded = 1.0 - ops.cast(ops.reshape(key_mask, (-1, 1, 1, key_mask.shape[1])), "float32")
        scores = scores + _NEG * padded
        weights = ops.cast(ops.softmax(scores, axis=-1), v.dtype)
        weights = self.attention_dropout(weights, training=training)
        out = ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3))
        out = ops.reshape(out, (-1, query.shape[1], self.dim))
        return self.o_proj(out)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "dropout": self.dropout,
            "use_bias_input": self.use_bias_input,
            "prepend_query": self.prepend_query,
        }
