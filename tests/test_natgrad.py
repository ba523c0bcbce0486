"""Conjugate gradient, Fisher-vector products and the KL-constrained line search (rlkit/natgrad.py)."""

import torch

from rlkit.natgrad import (
    backtracking_line_search,
    conjugate_gradient,
    fisher_vector_product,
    flat_params,
    set_flat_params,
)


def _categorical_kl(old_logits: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    p_old = torch.softmax(old_logits, -1)
    return (p_old * (torch.log_softmax(old_logits, -1) - torch.log_softmax(logits, -1))).sum(-1).mean()


def test_conjugate_gradient_solves_spd_system():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(6, 6, generator=g, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, max_steps=6)   # exact in n steps for n x n
    torch.testing.assert_close(x, torch.linalg.solve(a, b), atol=1e-8, rtol=1e-8)
    x2 = conjugate_gradient(lambda v: a @ v, b, max_steps=2)  # fewer steps: a worse but descending answer
    assert torch.linalg.norm(a @ x2 - b) < torch.linalg.norm(b)


def test_fisher_vector_product_equals_softmax_fisher():
    # For logits themselves as parameters, the Hessian of KL(old || new) at new = old is diag(p) - p p^T.
    old = torch.tensor([[0.3, -1.2, 0.8, 0.1]], dtype=torch.float64)
    logits = torch.nn.Parameter(old.clone())
    damping = 0.1
    fvp = fisher_vector_product(lambda: _categorical_kl(old, logits), [logits], damping)
    p = torch.softmax(old[0], -1)
    fisher = torch.diag(p) - torch.outer(p, p)
    v = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    torch.testing.assert_close(fvp(v), fisher @ v + damping * v)
    torch.testing.assert_close(fvp(2 * v), 2 * (fisher @ v + damping * v))  # reusable, linear


def test_line_search_shrinks_into_the_trust_region_and_improves():
    old = torch.zeros(1, 3)
    logits = torch.nn.Parameter(old.clone())
    adv = torch.tensor([1.0, 0.0, -1.0])

    def surrogate():
        return (torch.softmax(logits, -1)[0] * adv).sum()

    def kl():
        return _categorical_kl(old, logits)

    full_step = torch.tensor([5.0, 0.0, -5.0])  # far outside KL 0.01
    res = backtracking_line_search([logits], full_step, surrogate, kl, max_kl=0.01, shrink=0.5, max_iter=15)
    assert res.accepted and 0 < res.step_fraction < 1 and res.tries > 1
    assert res.kl <= 0.01 and res.improvement > 0
    assert float(kl().detach()) <= 0.01  # the parameters hold the accepted point
    torch.testing.assert_close(flat_params([logits]), res.step_fraction * full_step)


def test_line_search_restores_parameters_when_nothing_improves():
    old = torch.zeros(1, 3)
    logits = torch.nn.Parameter(old.clone())
    adv = torch.tensor([1.0, 0.0, -1.0])
    res = backtracking_line_search([logits], torch.tensor([-1.0, 0.0, 1.0]),  # the wrong way
                                   lambda: (torch.softmax(logits, -1)[0] * adv).sum(),
                                   lambda: _categorical_kl(old, logits), max_kl=0.01, max_iter=5)
    assert not res.accepted and res.step_fraction == 0.0
    torch.testing.assert_close(flat_params([logits]), torch.zeros(3))


def test_set_flat_params_roundtrip():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    params = list(net.parameters())
    flat = flat_params(params)
    set_flat_params(params, flat * 0 + torch.arange(flat.numel(), dtype=flat.dtype))
    assert flat_params(params)[5] == 5 and net[1].bias[1] == flat.numel() - 1
