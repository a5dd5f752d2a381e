"""Derived per-element variables: registered functions named in the config.

A sequence input may list, besides branch names, the names of functions registered
in :data:`DERIVED`. Each function receives a :class:`Momenta` view of the input's
elements (constituents or tracks) and returns one value per element. The element
four-momentum comes from ``data.constituents``: (px, py, pz, energy), (pt, eta, phi[,
energy or mass]: the energy only for ``energy``, ``log_e`` and ``log_e_frac``) or, for tracks, (theta, qoverp, phi); the jet axis from
``data.jet_axis``. A branch of the same name always wins over a derived variable.

Examples
--------
>>> import numpy as np
>>> from hepnn.io.derived import DERIVED, Momenta
>>> m = Momenta({"pt": np.array([10.0]), "eta": np.array([0.1]), "phi": np.array([3.1]),
...              "mass": np.array([0.0])},
...             {"pt": np.array([100.0]), "eta": np.array([0.0]), "phi": np.array([-3.1])})
>>> round(float(DERIVED.get("rel_phi")(m)[0]), 4)   # wrapped into [-pi, pi)
-0.0832
>>> sorted(DERIVED)[:3]
['delta_r', 'energy', 'eta']
"""

from __future__ import annotations

from functools import cached_property
from typing import Callable, Mapping

import numpy as np

from ..exceptions import ConfigError, HepnnError, PluginError
from ..registry import Registry
from . import libm
from .hypot import hypot

__all__ = ["DERIVED", "ELEMENTWISE", "register_derived", "compute_derived", "Momenta", "wrap_phi"]

#: registry of derived per-element variables: name -> ``f(Momenta) -> ndarray``
DERIVED = Registry("derived variable")


def register_derived(name: str) -> Callable:
    """Register ``f(momenta) -> ndarray`` as the derived variable ``name``.

    Examples
    --------
    >>> @register_derived("example_pt_squared")
    ... def pt_squared(m):
    ...     return m.pt**2
    >>> _ = DERIVED.unregister("example_pt_squared")  # leave the registry as it was
    """
    return DERIVED.register(name)


def compute_derived(name: str, momenta: Momenta, n: int, where: str) -> np.ndarray:
    """``DERIVED[name](momenta)``, checked to be ``n`` numbers (one per element).

    A function that raises, or returns another shape or a non-numeric dtype (a scalar
    would be broadcast to every element), raises :class:`~hepnn.exceptions.PluginError`
    naming the variable and the function.
    """
    func = DERIVED.get(name)
    what = f"{where}: derived variable {name!r} ({getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', func)})"
    try:
        values = func(momenta)
    except HepnnError:
        raise
    except Exception as err:
        msg = f"{what} raised {type(err).__name__}: {err}"
        raise PluginError(msg) from err
    values = np.asarray(values)
    if values.shape != (n,) or values.dtype.kind not in "biuf":
        msg = (f"{what} must return {n} numbers, one per element (shape ({n},)); "
               f"received dtype {values.dtype} and shape {values.shape}")
        raise PluginError(msg)
    return values


def wrap_phi(dphi: np.ndarray) -> np.ndarray:
    """Wrap angle differences into ``[-pi, pi)``: ``(dphi + pi) % (2 pi) - pi``.

    The remainder is computed only where ``dphi + pi`` lies outside ``(0, 2 pi)``; inside,
    it is ``dphi + pi`` itself, so the result is the same to the last bit, at a fraction
    of the cost (angles within a jet are nearly always inside).

    Examples
    --------
    >>> float(wrap_phi(np.array([2 * np.pi - 0.1]))[0]).__round__(3)
    -0.1
    """
    shifted = np.asarray(dphi) + np.pi
    if np.ndim(shifted) == 0:
        return shifted % (2 * np.pi) - np.pi
    outside = ~((shifted > 0) & (shifted < 2 * np.pi))  # NaN too
    if outside.any():
        shifted[outside] = shifted[outside] % (2 * np.pi)
    shifted -= np.pi
    return shifted


class Momenta:
    """Lazily computed element and jet kinematics, one entry per element.

    Parameters
    ----------
    elements : mapping
        Element arrays keyed by component: a subset of ``px, py, pz, energy, pt, eta, phi,
        mass, theta, qoverp, charge``.
    jet : mapping
        Jet-axis arrays broadcast to the elements, keyed ``pt, eta, phi`` and optionally ``energy``.
    where : str
        Description used in error messages (e.g. ``"data.inputs.particles"``).
    """

    def __init__(self, elements: Mapping[str, np.ndarray], jet: Mapping[str, np.ndarray] | None = None, where: str = "input"):
        # the components as read (often float32): each is turned into float64 on first use
        # (:meth:`_get`), so a :meth:`take` before that gathers the narrower arrays
        self._raw = {k: np.asarray(v) for k, v in elements.items() if v is not None}
        self._e: dict[str, np.ndarray] = {}
        self._j = {k: np.asarray(v, dtype=np.float64) for k, v in (jet or {}).items() if v is not None}
        self.where = where
        self._axis: dict = {}  # per-jet axis arrays, broadcast to the elements on first use
        self._jet_index: np.ndarray | None = None
        self._memo: dict = {}  # element-wise values computed once (see :meth:`memo`)

    def set_jet_axis(self, axis: Mapping[str, np.ndarray], jet_index: np.ndarray) -> None:
        """Per-jet axis arrays and each element's jet: :meth:`jet` broadcasts them when asked."""
        self._axis = {k: np.asarray(v, dtype=np.float64) for k, v in axis.items()}
        self._jet_index = np.asarray(jet_index)
        self._j = {}
        self._memo = {}

    def _missing(self, what: str, needs: str) -> ConfigError:
        return ConfigError(f"{self.where}: {what} needs {needs}; set it in data.constituents or data.jet_axis")

    def _has(self, *keys: str) -> bool:
        return all(k in self._raw for k in keys)

    def _get(self, key: str) -> np.ndarray:
        """Component ``key`` in float64 (converted once; float32 -> float64 is exact)."""
        value = self._e.get(key)
        if value is None:
            value = self._e[key] = np.asarray(self._raw[key], dtype=np.float64)
        return value

    @cached_property
    def pt(self) -> np.ndarray:
        if self._has("pt"):
            return self._get("pt")
        if self._has("px", "py"):
            # float64 hypot of the components as read: the same values as of their float64
            # copies (the cast is exact), without making them (:func:`hepnn.io.hypot.hypot`:
            # glibc's algorithm, the same bits on every machine, 10x faster)
            return hypot(self._raw["px"], self._raw["py"])
        if self._has("theta", "qoverp"):
            return track_pt(self)
        raise self._missing("pt", "pt, (px, py) or (theta, qoverp)")

    @cached_property
    def eta(self) -> np.ndarray:
        if self._has("eta"):
            return self._get("eta")
        if self._has("pz"):
            with np.errstate(divide="ignore", invalid="ignore"):
                # float32 pz promotes exactly: the quotient of its float64 copy, without the copy
                ratio = np.true_divide(self._raw["pz"], self.pt, dtype=np.float64)
                # hepnn's asinh (:mod:`hepnn.io.libm`): the same bits on every machine, 4x faster
                # than the C library's; in place: one array fewer to allocate
                return libm.asinh(ratio, out=ratio)
        if self._has("theta"):
            return track_eta(self)
        raise self._missing("eta", "eta, (px, py, pz) or theta")

    @cached_property
    def phi(self) -> np.ndarray:
        if self._has("phi"):
            return self._get("phi")
        if self._has("px", "py"):
            # the components as read (the compiled loop converts float32 exactly, value by value)
            return libm.atan2(self._raw["py"], self._raw["px"])
        raise self._missing("phi", "phi or (px, py)")

    @cached_property
    def energy(self) -> np.ndarray:
        if self._has("energy"):
            return self._get("energy")
        if self._has("mass"):
            p = self.pt * libm.cosh(self.eta)  # the same bits on every CPU (numpy's cosh: SVML on AVX-512)
            return np.sqrt(p**2 + self._get("mass") ** 2)
        raise self._missing("energy", "an energy or mass branch")

    @cached_property
    def px(self) -> np.ndarray:
        return self._get("px") if self._has("px") else self.pt * libm.cos(self.phi)

    @cached_property
    def py(self) -> np.ndarray:
        return self._get("py") if self._has("py") else self.pt * libm.sin(self.phi)

    @cached_property
    def pz(self) -> np.ndarray:
        return self._get("pz") if self._has("pz") else self.pt * libm.sinh(self.eta)

    def take(self, index: np.ndarray) -> "Momenta":
        """The elements at ``index`` (quantities already computed are carried over, not recomputed)."""
        out = Momenta.__new__(Momenta)
        out._raw = {k: v[index] for k, v in self._raw.items()}
        out._e = {}  # converted again on use: gathering the float32 components moves half the bytes
        out._j = {k: v[index] for k, v in self._j.items()}
        out._axis = self._axis
        out._jet_index = None if self._jet_index is None else self._jet_index[index]
        out.where = self.where
        for name in ("pt", "eta", "phi", "energy", "px", "py", "pz"):
            if name in self.__dict__:
                out.__dict__[name] = self.__dict__[name][index]
        out._memo = {k: v[index] for k, v in self._memo.items()}
        return out

    def memo(self, name: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """``compute()`` the first time ``name`` is asked for, the same array afterwards.

        For element-wise quantities shared by several derived variables (``delta_r`` uses
        ``rel_eta`` and ``rel_phi``); :meth:`take` carries them over.
        """
        if name not in self._memo:
            self._memo[name] = compute()
        return self._memo[name]

    def component(self, key: str) -> np.ndarray:
        """A raw element component (``theta``, ``qoverp``, ``charge``)."""
        if key not in self._raw:
            raise self._missing(key, f"the {key} branch")
        return self._get(key)

    def jet(self, key: str) -> np.ndarray:
        """The jet-axis quantity ``key`` (pt, eta, phi, energy) of each element's jet."""
        if key not in self._j:
            if key not in self._axis or self._jet_index is None:
                raise self._missing(f"jet {key}", f"data.jet_axis.{key}")
            self._j[key] = self._axis[key][self._jet_index]
        return self._j[key]


# --- the registered variables ----------------------------------------------------


@register_derived("pt")
def pt(m: Momenta) -> np.ndarray:
    """Element transverse momentum."""
    return m.pt


@register_derived("eta")
def eta(m: Momenta) -> np.ndarray:
    """Element pseudorapidity."""
    return m.eta


@register_derived("phi")
def phi(m: Momenta) -> np.ndarray:
    """Element azimuth."""
    return m.phi


@register_derived("energy")
def energy(m: Momenta) -> np.ndarray:
    """Element energy (from the energy branch or from pt, eta and mass)."""
    return m.energy


@register_derived("px")
def px(m: Momenta) -> np.ndarray:
    """Element px."""
    return m.px


@register_derived("py")
def py(m: Momenta) -> np.ndarray:
    """Element py."""
    return m.py


@register_derived("pz")
def pz(m: Momenta) -> np.ndarray:
    """Element pz."""
    return m.pz


@register_derived("rel_eta")
def rel_eta(m: Momenta) -> np.ndarray:
    """eta(element) - eta(jet)."""
    return m.memo("rel_eta", lambda: m.eta - m.jet("eta"))


@register_derived("rel_phi")
def rel_phi(m: Momenta) -> np.ndarray:
    """phi(element) - phi(jet), wrapped into [-pi, pi)."""
    return m.memo("rel_phi", lambda: wrap_phi(m.phi - m.jet("phi")))


@register_derived("delta_r")
def delta_r(m: Momenta) -> np.ndarray:
    """Distance to the jet axis in (eta, phi)."""
    return hypot(rel_eta(m), rel_phi(m))


@register_derived("log_pt")
def log_pt(m: Momenta) -> np.ndarray:
    """log(pt)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return libm.log(m.pt)


@register_derived("log_pt_frac")
def log_pt_frac(m: Momenta) -> np.ndarray:
    """log(pt / jet pt)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = m.pt / m.jet("pt")
        return libm.log(ratio, out=ratio)


@register_derived("pt_frac")
def pt_frac(m: Momenta) -> np.ndarray:
    """pt / jet pt (the EFN's energy weight z; keep it unstandardised)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return m.pt / m.jet("pt")


@register_derived("log_e")
def log_e(m: Momenta) -> np.ndarray:
    """log(energy)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return libm.log(m.energy)


@register_derived("log_e_frac")
def log_e_frac(m: Momenta) -> np.ndarray:
    """log(energy / jet energy); the jet energy is data.jet_axis.energy or the sum over elements."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = m.energy / m.jet("energy")
        return libm.log(ratio, out=ratio)


@register_derived("track_eta")
def track_eta(m: Momenta) -> np.ndarray:
    """Track pseudorapidity from the polar angle: -log(tan(theta / 2)) (tan as sin / cos: hepnn's
    functions, the same bits on every CPU)."""
    half = m.component("theta") / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        tangent = libm.sin(half)
        tangent /= libm.cos(half)
        return -libm.log(tangent, out=tangent)


@register_derived("track_pt")
def track_pt(m: Momenta) -> np.ndarray:
    """Track transverse momentum from theta and q/p: sin(theta) / |q/p| (units of 1/qoverp)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(libm.sin(m.component("theta")) / m.component("qoverp"))


#: the built-in derived variables: each element's value depends only on that element and its
#: jet's axis, so values computed before a selection of elements carry over to it
ELEMENTWISE = frozenset(DERIVED.names())
