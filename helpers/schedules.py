"""Learning-rate warmup for Transformers: Noam, Ma & Yarats' untuned warmups, and RAdam's rectification.

* :func:`noam_lr` is the schedule of Vaswani et al. (2017),
  ``d^-0.5 * min(t^-0.5, t * warmup^-1.5)``, and (``form="printed"``) the variant with
  ``warmup^-0.5`` that the theses print; :func:`noam_peak` says where each one peaks.
* :func:`linear_warmup`, :func:`exponential_warmup` and their untuned forms (Ma & Yarats 2021):
  linear over ``2 / (1 - beta2)`` steps, exponential with ``tau = 1 / (1 - beta2)``.
* :func:`radam_rectification` is RAdam's analytic rectification term ``r_t`` (Liu et al. 2020),
  and :func:`measure_effective_warmup` reads the factor an optimiser *actually* applied at every
  step, by running ``torch.optim.Adam`` (with a warmup) or ``torch.optim.RAdam`` on a tiny problem
  and dividing each update by the plain Adam update computed from the optimiser's own state.

Warmup factors are multipliers ``omega_t`` in ``[0, 1]`` of the base rate: ``alpha_t = alpha * omega_t``;
steps count from 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

import numpy as np
import torch

__all__ = [
    "noam_lr",
    "noam_peak",
    "linear_warmup",
    "exponential_warmup",
    "untuned_linear_warmup",
    "untuned_exponential_warmup",
    "radam_rho",
    "radam_rectification",
    "measure_effective_warmup",
]

NoamForm = Literal["original", "printed"]


def _steps(step: int | np.ndarray) -> np.ndarray:
    t = np.asarray(step, dtype=np.float64)
    if np.any(t < 1):
        raise ValueError("steps count from 1")
    return t


def noam_lr(step: int | np.ndarray, d_model: int = 512, warmup: int = 4000, form: NoamForm = "original") -> np.ndarray:
    """The Noam learning rate at ``step`` (scalar or array).

    * ``"original"`` (Vaswani et al. 2017): ``d_model^-0.5 * min(t^-0.5, t * warmup^-1.5)``, linear
      growth for ``warmup`` steps, then decay as ``t^-0.5``; the peak is at ``t = warmup``.
    * ``"printed"`` (the theses' equation): ``d_model^-0.5 * min(t^-0.5, t * warmup^-0.5)``; the two
      branches cross at ``t = warmup^(1/3)`` (about 16 for 4000), so the warmup is almost gone.
    """
    t = _steps(step)
    if form == "original":
        ramp = t * warmup**-1.5
    elif form == "printed":
        ramp = t * warmup**-0.5
    else:
        raise ValueError(f"form must be 'original' or 'printed', got {form!r}")
    return d_model**-0.5 * np.minimum(t**-0.5, ramp)


def noam_peak(d_model: int = 512, warmup: int = 4000, form: NoamForm = "original") -> tuple[int, float]:
    """``(step, lr)`` of the highest learning rate over integer steps.

    The continuous crossing point is ``warmup`` (original) or ``warmup^(1/3)`` (printed); the
    integer peak is the better of the two integers around it.
    """
    cross = warmup if form == "original" else warmup ** (1.0 / 3.0)
    candidates = np.unique(np.clip([np.floor(cross), np.ceil(cross)], 1, None)).astype(int)
    lrs = noam_lr(candidates, d_model, warmup, form)
    best = int(np.argmax(lrs))
    return int(candidates[best]), float(lrs[best])


def linear_warmup(step: int | np.ndarray, tau: float) -> np.ndarray:
    """``omega_t = min(1, t / tau)``."""
    return np.minimum(1.0, _steps(step) / tau)


def exponential_warmup(step: int | np.ndarray, tau: float) -> np.ndarray:
    """``omega_t = 1 - exp(-t / tau)``."""
    return 1.0 - np.exp(-_steps(step) / tau)


def untuned_linear_warmup(step: int | np.ndarray, beta2: float = 0.999) -> np.ndarray:
    """Ma & Yarats' rule of thumb: linear warmup over ``tau = 2 / (1 - beta2)`` steps (2000 for 0.999)."""
    return linear_warmup(step, 2.0 / (1.0 - beta2))


def untuned_exponential_warmup(step: int | np.ndarray, beta2: float = 0.999) -> np.ndarray:
    """Ma & Yarats' rule of thumb: ``omega_t = 1 - exp(-(1 - beta2) t)``, i.e. ``tau = 1 / (1 - beta2)``."""
    return exponential_warmup(step, 1.0 / (1.0 - beta2))


def radam_rho(step: int | np.ndarray, beta2: float = 0.999) -> np.ndarray:
    """Length of RAdam's approximated simple moving average,
    ``rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)`` with ``rho_inf = 2 / (1 - beta2) - 1``."""
    t = _steps(step)
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    return rho_inf - 2.0 * t * beta2**t / (1.0 - beta2**t)


def radam_rectification(step: int | np.ndarray, beta2: float = 0.999, threshold: float = 5.0) -> np.ndarray:
    """RAdam's rectification ``r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))``.

    While ``rho_t <= threshold`` RAdam takes an un-adapted momentum-SGD step instead of an Adam
    step; those steps are NaN here. ``threshold=5`` is what ``torch.optim.RAdam`` uses (the paper
    says 4).
    """
    rho = radam_rho(step, beta2)
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    with np.errstate(invalid="ignore"):
        r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
    return np.where(rho > threshold, r, np.nan)


def measure_effective_warmup(
    optimizer: Literal["adam", "radam"] = "radam",
    steps: int = 18000,
    schedules: Mapping[str, Callable[[np.ndarray], np.ndarray] | None] | None = None,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    dim: int = 4,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """The warmup factor an optimiser really applied at each of ``steps`` steps.

    ``schedules`` maps a name to a warmup function of the step (called once on the array of all
    steps, like the functions of this module) or to ``None`` for a constant rate; the default is
    ``{optimizer: None}``. Each schedule gets its own parameter group, a ``dim``-vector (float64)
    fed noisy gradients ``g_t = mu + noise`` (a stochastic linear objective), and one
    ``torch.optim.Adam`` or ``torch.optim.RAdam`` steps all groups at the rates
    ``lr * schedule(t)``. After the run each step's actual parameter change is divided (least
    squares over the coordinates) by the step plain Adam would take at the base ``lr``, with the
    moment estimates ``m_t``, ``v_t`` of the same gradients written as PyTorch writes each optimiser:

    * Adam: ``lr * m_hat / (sqrt(v_t / (1 - beta2^t)) + eps)``; the factor is the schedule's;
    * RAdam: ``lr * m_hat * sqrt(1 - beta2^t) / (sqrt(v_t) + eps)``; the factor is the schedule's
      times ``r_t``. Steps where RAdam does not adapt (``rho_t <= 5``, a plain momentum step) are NaN.

    (``m_hat = m_t / (1 - beta1^t)``.) Returns ``{name: array of length steps}`` (index 0 is step 1).
    """
    from scipy.signal import lfilter

    if steps < 1:
        raise ValueError(f"steps must be positive, got {steps}")
    if optimizer not in ("adam", "radam"):
        raise ValueError(f"optimizer must be 'adam' or 'radam', got {optimizer!r}")
    schedules = dict(schedules) if schedules else {optimizer: None}
    names = list(schedules)
    gen = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.zeros(dim, dtype=torch.float64)) for _ in names]
    mean = torch.randn(dim, generator=gen, dtype=torch.float64)
    grads = mean + torch.randn(steps, len(names), dim, generator=gen, dtype=torch.float64)
    cls = torch.optim.Adam if optimizer == "adam" else torch.optim.RAdam
    opt = cls([{"params": [p]} for p in params], lr=lr, betas=betas, eps=eps, foreach=False)
    all_steps = np.arange(1, steps + 1)
    rates = np.ones((steps, len(names)))
    for g, name in enumerate(names):
        if schedules[name] is not None:
            rates[:, g] = np.broadcast_to(np.asarray(schedules[name](all_steps), dtype=np.float64), (steps,))
    rates = (lr * rates).tolist()
    history = torch.zeros(steps + 1, len(names), dim, dtype=torch.float64)  # parameters after each step
    groups = opt.param_groups
    for t in range(steps):
        for g, p in enumerate(params):
            groups[g]["lr"] = rates[t][g]
            p.grad = grads[t, g]
        opt.step()
        for g, p in enumerate(params):
            history[t + 1, g] = p.detach()
    beta1, beta2 = betas
    g_np = grads.numpy()
    m = lfilter([1 - beta1], [1, -beta1], g_np, axis=0)  # m_t = beta1 m_{t-1} + (1 - beta1) g_t
    v = lfilter([1 - beta2], [1, -beta2], g_np**2, axis=0)  # v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
    t_col = all_steps[:, None, None].astype(np.float64)
    bc1, bc2 = 1.0 - beta1**t_col, 1.0 - beta2**t_col
    m_hat = m / bc1
    if optimizer == "adam":
        reference = lr * m_hat / (np.sqrt(v / bc2) + eps)
    else:
        reference = lr * m_hat * np.sqrt(bc2) / (np.sqrt(v) + eps)
    delta = (history[:-1] - history[1:]).numpy()
    factor = (delta * reference).sum(-1) / (reference * reference).sum(-1)
    if optimizer == "radam":
        factor[radam_rho(all_steps, beta2) <= 5.0] = np.nan
    return {name: factor[:, g].copy() for g, name in enumerate(names)}
