"""Natural-gradient machinery for trust-region policy updates (TRPO, Schulman et al. 2015).

    g  = grad_theta L(theta)                               surrogate gradient
    F v = grad_theta ( (grad_theta KL(theta_old || theta)) . v ) + damping v     Fisher-vector product
    x  ~= F^-1 g                                            conjugate gradient, a few steps
    step = sqrt(2 max_kl / x.F x) x                         largest step inside the quadratic KL model
    theta <- theta_old + shrink^k step, the first k with KL <= max_kl and L improved   line search

Everything works on one flat vector of the policy's parameters, so any nets/ policy fits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


def flat_params(params: Sequence[torch.nn.Parameter]) -> torch.Tensor:
    """All parameters concatenated into one detached vector."""
    return torch.cat([p.detach().reshape(-1) for p in params])


def set_flat_params(params: Sequence[torch.nn.Parameter], flat: torch.Tensor) -> None:
    """Write a flat vector back into the parameters (in the order of `params`)."""
    i = 0
    with torch.no_grad():
        for p in params:
            n = p.numel()
            p.copy_(flat[i:i + n].view_as(p))
            i += n


def flat_grad(y: torch.Tensor, params: Sequence[torch.nn.Parameter], create_graph: bool = False,
              retain_graph: bool | None = None) -> torch.Tensor:
    """d y / d params as one flat vector (zeros for parameters y does not depend on)."""
    grads = torch.autograd.grad(y, list(params), create_graph=create_graph, retain_graph=retain_graph,
                                allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)])


def fisher_vector_product(kl_fn: Callable[[], torch.Tensor], params: Sequence[torch.nn.Parameter],
                          damping: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """v -> (F + damping I) v, with F the Hessian of the mean KL(old || new) at new = old.

    The KL's gradient is built once (with its graph) and each product is one more backward pass."""
    grad_kl = flat_grad(kl_fn(), params, create_graph=True)

    def fvp(v: torch.Tensor) -> torch.Tensor:
        return flat_grad(grad_kl @ v, params, retain_graph=True) + damping * v

    return fvp


def conjugate_gradient(avp: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, max_steps: int = 10,
                       residual_tol: float = 1e-10) -> torch.Tensor:
    """Approximately solve A x = b for symmetric positive-definite A given only x -> A x."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r @ r
    for _ in range(max_steps):
        if rr <= residual_tol:
            break
        ap = avp(p)
        alpha = rr / (p @ ap)
        x += alpha * p
        r -= alpha * ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


@dataclass
class LineSearchResult:
    """What the backtracking line search did: accepted or not, the fraction of the full step taken,
    the surrogate improvement and the KL at the accepted point (at the last try when rejected)."""

    accepted: bool
    step_fraction: float
    improvement: float
    kl: float
    tries: int


def backtracking_line_search(params: Sequence[torch.nn.Parameter], full_step: torch.Tensor,
                             surrogate_fn: Callable[[], torch.Tensor], kl_fn: Callable[[], torch.Tensor],
                             max_kl: float, shrink: float = 0.8, max_iter: int = 10) -> LineSearchResult:
    """Try theta_old + shrink^k full_step for k = 0, 1, ...; keep the first point whose mean KL is at
    most max_kl and whose surrogate improves; restore theta_old when none does."""
    old = flat_params(params)
    with torch.no_grad():
        surr_old = float(surrogate_fn())
    frac, kl, improvement = 1.0, float("nan"), 0.0
    for k in range(max_iter):
        set_flat_params(params, old + frac * full_step)
        with torch.no_grad():
            improvement = float(surrogate_fn()) - surr_old
            kl = float(kl_fn())
        if kl <= max_kl and improvement > 0:
            return LineSearchResult(True, frac, improvement, kl, k + 1)
        frac *= shrink
    set_flat_params(params, old)
    return LineSearchResult(False, 0.0, 0.0, kl, max_iter)
