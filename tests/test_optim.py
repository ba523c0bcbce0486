"""rlkit.optim: the flat Adam / RMSprop take the same steps as torch.optim's, and keep its checkpoint layout."""

import copy

import pytest
import torch
from torch import nn

from rlkit.optim import FlatAdam, FlatRMSprop


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))


def _loss(net: nn.Module, i: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(i)
    x, y = torch.randn(8, 4, generator=g), torch.randn(8, 3, generator=g)
    return ((net(x) - y) ** 2).mean() * 50  # large enough that clipping at 0.5 bites


PAIRS = [
    (lambda p: FlatAdam(p, lr=1e-2, eps=1e-5), lambda p: torch.optim.Adam(p, lr=1e-2, eps=1e-5)),
    (lambda p: FlatRMSprop(p, lr=1e-2, alpha=0.99, eps=1e-5),
     lambda p: torch.optim.RMSprop(p, lr=1e-2, alpha=0.99, eps=1e-5)),
]


@pytest.mark.parametrize("make_flat,make_ref", PAIRS)
@pytest.mark.parametrize("max_norm", [None, 0.5])
def test_same_steps_as_torch_optim(make_flat, make_ref, max_norm):
    a, b = _net(), _net()
    opt_a, opt_b = make_flat(a.parameters()), make_ref(b.parameters())
    for i in range(20):
        opt_a.zero_grad()
        _loss(a, i).backward()
        norm_a = opt_a.clip_step(max_norm)
        opt_b.zero_grad()
        _loss(b, i).backward()
        norm_b = nn.utils.clip_grad_norm_(b.parameters(), max_norm if max_norm else float("inf"))
        opt_b.step()
        assert float(norm_a) == pytest.approx(float(norm_b), rel=1e-5)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make_flat,make_ref", PAIRS)
def test_state_dict_round_trips_with_torch_optim(make_flat, make_ref):
    a = _net()
    opt = make_flat(a.parameters())
    for i in range(3):
        opt.zero_grad()
        _loss(a, i).backward()
        opt.clip_step(0.5)
    # our checkpoint loads into torch's optimizer and back, and the next steps agree
    b = copy.deepcopy(a)
    ref = make_ref(b.parameters())
    ref.load_state_dict(opt.state_dict())
    c = copy.deepcopy(a)
    again = make_flat(c.parameters())
    again.load_state_dict(ref.state_dict())
    for i in range(3, 6):
        for net, o in ((a, opt), (c, again)):
            o.zero_grad()
            _loss(net, i).backward()
            o.clip_step(0.5)
        ref.zero_grad()
        _loss(b, i).backward()
        nn.utils.clip_grad_norm_(b.parameters(), 0.5)
        ref.step()
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(pa, pc, rtol=1e-5, atol=1e-6)


def test_replaced_grads_and_data_are_taken_back():
    net = _net()
    opt = FlatAdam(net.parameters(), lr=1e-2)
    ref_net = _net()
    ref = torch.optim.Adam(ref_net.parameters(), lr=1e-2)
    for i in range(4):
        net.zero_grad()  # nn.Module.zero_grad sets .grad to None: the optimizer must not lose the next gradient
        _loss(net, i).backward()
        opt.step()
        ref.zero_grad()
        _loss(ref_net, i).backward()
        ref.step()
    with torch.no_grad():
        w = net[0].weight
        w.data = w.detach().clone() * 0  # a replaced tensor: adopted into the buffer at the next step
        ref_net[0].weight.mul_(0)
    for n_, o in ((net, opt), (ref_net, ref)):
        o.zero_grad()
        _loss(n_, 9).backward()
        o.step()
    for pa, pb in zip(net.parameters(), ref_net.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)
    assert net[0].weight.data_ptr() == opt.flat.data_ptr()


def test_parameters_in_several_dtypes_are_refused():
    net = _net()
    net[2].double()
    with pytest.raises(ValueError, match="one dtype"):
        FlatAdam(net.parameters())


def test_one_leaf_group_and_no_torch_dynamo_import():
    """The flat optimizers hold one group of leaf tensors, with torch.optim's defaults filled in, and building one
    does not import torch._dynamo (torch.optim's add_param_group does: ~1.7 s and ~70 MB at every CLI start)."""
    import subprocess
    import sys

    opt = FlatAdam(_net().parameters(), lr=1e-2)
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["lr"] == 1e-2
    assert opt.param_groups[0]["betas"] == torch.optim.Adam(_net().parameters()).defaults["betas"]
    with pytest.raises(ValueError, match="one parameter group"):
        opt.add_param_group({"params": [nn.Parameter(torch.zeros(2))]})
    with pytest.raises(TypeError, match="leaf tensors"):
        FlatRMSprop([nn.Parameter(torch.zeros(2)) * 2])
    code = ("import sys, torch; from rlkit.optim import FlatAdam, FlatRMSprop; "
            "FlatAdam(torch.nn.Linear(2, 2).parameters()); FlatRMSprop(torch.nn.Linear(2, 2).parameters()); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
