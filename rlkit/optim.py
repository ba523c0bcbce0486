"""Adam and RMSprop over one flat buffer: every parameter and its gradient are views into two tensors.

A small network (an actor-critic MLP has 12 parameter tensors) pays per-tensor overhead on every
optimizer step: torch.optim.Adam(fused=True).step() plus clip_grad_norm_ cost ~100 us on one CPU
thread, of which the arithmetic is ~7 us. With the parameters and gradients laid out in one
contiguous tensor each, clipping is one norm and one multiply and the update is one kernel (Adam:
torch's fused kernel; RMSprop: three in-place ops), the same arithmetic as torch.optim's.

    g <- grad of the loss (autograd writes it straight into the flat gradient buffer)
    g <- g * min(1, max_norm / (||g|| + 1e-6))                       (clip_step; as clip_grad_norm_)
    Adam:    m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;  theta <- theta - lr m_hat / (sqrt(v_hat) + eps)
    RMSprop: v <- alpha v + (1-alpha) g^2;                    theta <- theta - lr g / (sqrt(v) + eps)

state_dict() has torch.optim.Adam's / RMSprop's layout (per-parameter state, one param group), so
checkpoints load either way. Anything that replaces a parameter's `.data` or `.grad` (Module.zero_grad,
an assignment) is noticed at the next step and re-pointed into the buffers, values kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


class FlatOptimizer(torch.optim.Optimizer):
    """Base: lays the parameters out in `self.flat` and their gradients in `self.flat_grad`."""

    STATE_KEYS: tuple[str, ...] = ()

    def __init__(self, params: Iterable[torch.nn.Parameter], defaults: dict[str, Any]):
        params = [p for p in params if p.requires_grad]
        if not params:
            raise ValueError("no parameters to optimize")
        super().__init__(params, defaults)
        dtype, device = params[0].dtype, params[0].device
        if any(p.dtype != dtype or p.device != device for p in params):
            raise ValueError("a flat optimizer needs every parameter in one dtype on one device")
        total = sum(p.numel() for p in params)
        self.params = params
        self.flat = torch.empty(total, dtype=dtype, device=device)
        self.flat_grad = torch.zeros(total, dtype=dtype, device=device)
        self._data_views: list[torch.Tensor] = []
        self._grad_views: list[torch.Tensor] = []
        offset = 0
        with torch.no_grad():
            for p in params:
                n = p.numel()
                dv = self.flat[offset:offset + n].view_as(p)
                dv.copy_(p.detach())
                p.data = dv
                gv = self.flat_grad[offset:offset + n].view_as(p)
                if p.grad is not None:
                    gv.copy_(p.grad)
                p.grad = gv
                self._data_views.append(dv)
                self._grad_views.append(gv)
                offset += n
        self.flat_state = {k: torch.zeros_like(self.flat) for k in self.STATE_KEYS}
        self.steps = torch.zeros((), dtype=torch.float32, device=device)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """torch.optim's, for the one group of leaf tensors this optimizer holds, without its
        `torch._disable_dynamo` wrapper: that imports torch._dynamo at a process's first optimizer, ~1.7 s of
        every `rlkit train`, `eval` or `resume` that nothing here uses."""
        if self.param_groups:
            raise ValueError(f"{type(self).__name__} holds one parameter group; it lays them out in one buffer")
        params = list(param_group["params"])
        if not all(isinstance(p, torch.Tensor) and p.is_leaf for p in params):
            raise TypeError("a flat optimizer optimizes leaf tensors (a module's parameters)")
        self.param_groups.append({**self.defaults, **param_group, "params": params})

    # -- keeping the views honest -----------------------------------------------------------------
    def _sync(self) -> None:
        """Re-point any parameter whose data or gradient was replaced at its slice of the buffers."""
        with torch.no_grad():
            for p, dv, gv in zip(self.params, self._data_views, self._grad_views, strict=True):
                if p.data_ptr() != dv.data_ptr():
                    dv.copy_(p.detach())
                    p.data = dv
                g = p.grad
                if g is not gv:
                    if g is None:
                        gv.zero_()
                    else:
                        gv.copy_(g)
                    p.grad = gv

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero the flat gradient (gradients stay allocated views, whatever `set_to_none` says)."""
        self._sync()
        self.flat_grad.zero_()

    @torch.no_grad()
    def clip_step(self, max_norm: float | None = None) -> torch.Tensor:
        """Clip the gradient's global L2 norm to `max_norm` (None: no clipping), step; the norm before clipping."""
        self._sync()
        norm = torch.linalg.vector_norm(self.flat_grad)
        if max_norm is not None:
            if self.flat_grad.is_cpu:  # no device sync to fear: skip the multiply by 1 (~8 us of small ops)
                coef = max_norm / (float(norm) + 1e-6)
                if coef < 1.0:
                    self.flat_grad.mul_(coef)
            else:
                self.flat_grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))
        self._update()
        return norm

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._sync()
        self._update()
        return loss

    def _update(self) -> None:
        """Apply the optimizer's rule to self.flat from self.flat_grad (abstract: FlatAdam, FlatRMSprop)."""
        raise NotImplementedError(f"{type(self).__name__} must define its update rule (_update)")

    # -- torch.optim's checkpoint layout ----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        group["params"] = list(range(len(self.params)))
        state: dict[int, dict[str, torch.Tensor]] = {}
        if float(self.steps) > 0:
            offset = 0
            for i, p in enumerate(self.params):
                n = p.numel()
                state[i] = {"step": self.steps.clone(),
                            **{k: buf[offset:offset + n].view_as(p).clone() for k, buf in self.flat_state.items()}}
                offset += n
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError(f"optimizer state for {sum(len(g['params']) for g in groups)} parameters in "
                             f"{len(groups)} group(s); this optimizer has {len(self.params)} in one")
        for k, v in groups[0].items():
            if k != "params":
                self.param_groups[0][k] = v
        saved = state_dict["state"]
        with torch.no_grad():
            for buf in self.flat_state.values():
                buf.zero_()
            self.steps.zero_()
            offset = 0
            for i, (pid, p) in enumerate(zip(groups[0]["params"], self.params, strict=True)):
                n = p.numel()
                entry = saved.get(pid, saved.get(i))
                if entry:
                    for k, buf in self.flat_state.items():
                        buf[offset:offset + n].copy_(torch.as_tensor(entry[k]).reshape(-1))
                    self.steps.fill_(max(float(self.steps), float(entry["step"])))
                offset += n


class FlatAdam(FlatOptimizer):
    """Adam (Kingma & Ba 2015, torch.optim.Adam's update, no weight decay) on the flat buffers; torch's fused kernel."""

    STATE_KEYS = ("exp_avg", "exp_avg_sq")

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": 0, "amsgrad": False,
                    "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
                    "fused": True, "decoupled_weight_decay": False}
        super().__init__(params, defaults)

    def _update(self) -> None:
        g = self.param_groups[0]
        self.steps.add_(1)
        beta1, beta2 = g["betas"]
        torch._fused_adam_([self.flat], [self.flat_grad], [self.flat_state["exp_avg"]],
                           [self.flat_state["exp_avg_sq"]], [], [self.steps], amsgrad=False, lr=float(g["lr"]),
                           beta1=beta1, beta2=beta2, weight_decay=0.0, eps=g["eps"], maximize=False)


class FlatRMSprop(FlatOptimizer):
    """RMSprop as torch.optim.RMSprop (no momentum, not centred, no weight decay) on the flat buffers."""

    STATE_KEYS = ("square_avg",)

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8):
        defaults = {"lr": lr, "momentum": 0, "alpha": alpha, "eps": eps, "centered": False, "weight_decay": 0,
                    "capturable": False, "foreach": None, "maximize": False, "differentiable": False}
        super().__init__(params, defaults)

    def _update(self) -> None:
        g = self.param_groups[0]
        self.steps.add_(1)
        v = self.flat_state["square_avg"]
        v.mul_(g["alpha"]).addcmul_(self.flat_grad, self.flat_grad, value=1 - g["alpha"])
        self.flat.addcdiv_(self.flat_grad, v.sqrt().add_(g["eps"]), value=-float(g["lr"]))
