"""LayerNorm, GELU, softmax, feed-forward and positions against PyTorch and closed forms.
Tolerances: float32 1e-5 absolute (1e-6 where the op is elementwise), float64 1e-10."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from minitransformer import (
    FeedForward,
    LayerNorm,
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    gelu,
    gelu_tanh,
    get_activation,
    softmax,
    sinusoidal_table,
)
from tests.reference import max_err


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_layernorm_matches_nn_forward_and_gradients(dtype, tol):
    torch.manual_seed(0)
    ours, ref = LayerNorm(12, eps=1e-6).to(dtype), nn.LayerNorm(12, eps=1e-6).to(dtype)
    with torch.no_grad():
        ours.weight.normal_(), ours.bias.normal_()
        ref.weight.copy_(ours.weight), ref.bias.copy_(ours.bias)
    x = (torch.randn(3, 5, 12, dtype=dtype) * 3 + 1).requires_grad_()
    y, y_ref = ours(x), ref(x)
    assert max_err(y, y_ref) < tol
    g = torch.autograd.grad((y * y.detach().cos()).sum(), [x, ours.weight, ours.bias])
    g_ref = torch.autograd.grad((y_ref * y_ref.detach().cos()).sum(), [x, ref.weight, ref.bias])
    assert all(max_err(a, b) < tol for a, b in zip(g, g_ref))


def test_layernorm_uses_biased_variance_closed_form():
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
    # mean 2.5, biased variance 1.25 (unbiased would be 5/3)
    expect = (x - 2.5) / math.sqrt(1.25 + 1e-5)
    assert max_err(LayerNorm(4).double()(x), expect) < 1e-12


def test_gradcheck_layernorm_gelu_feedforward():
    torch.manual_seed(0)
    ln = LayerNorm(6).double()
    with torch.no_grad():
        ln.weight.normal_(), ln.bias.normal_()
    x = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ln, (x,))
    assert torch.autograd.gradcheck(gelu, (x,))
    assert torch.autograd.gradcheck(gelu_tanh, (x,))
    ff = FeedForward(6, 10, "gelu").double()
    assert torch.autograd.gradcheck(ff, (x,))


@pytest.mark.parametrize("ours,approx", [(gelu, "none"), (gelu_tanh, "tanh")])
def test_gelu_matches_torch(ours, approx):
    x = torch.linspace(-6, 6, 1001, dtype=torch.float64, requires_grad=True)
    assert max_err(ours(x), F.gelu(x, approximate=approx)) < 1e-12
    (g,) = torch.autograd.grad(ours(x).sum(), x)
    (g_ref,) = torch.autograd.grad(F.gelu(x, approximate=approx).sum(), x)
    assert max_err(g, g_ref) < 1e-12
    x32 = x.detach().float()
    assert max_err(ours(x32), F.gelu(x32, approximate=approx)) < 1e-6


def test_softmax_matches_torch_and_survives_large_inputs():
    x = torch.randn(4, 7, dtype=torch.float64) * 50 + 1000  # exp(1000) overflows without the max shift
    assert max_err(softmax(x), torch.softmax(x, -1)) < 1e-12
    assert torch.isfinite(softmax(x.float())).all()


def test_feedforward_closed_form():
    torch.manual_seed(0)
    ff = FeedForward(4, 8, "relu").double()
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    expect = F.linear(F.relu(F.linear(x, ff.fc1.weight, ff.fc1.bias)), ff.fc2.weight, ff.fc2.bias)
    assert max_err(ff(x), expect) < 1e-12


def test_sinusoidal_table_closed_form():
    pe = sinusoidal_table(50, 16).double().numpy()
    pos, i = np.arange(50)[:, None], np.arange(8)[None, :]
    angle = pos / np.power(10000.0, 2 * i / 16)
    assert np.abs(pe[:, 0::2] - np.sin(angle)).max() < 1e-6
    assert np.abs(pe[:, 1::2] - np.cos(angle)).max() < 1e-6


def test_rope_equals_complex_rotation_and_depends_on_relative_position():
    torch.manual_seed(0)
    d, t = 8, 12
    rope = RotaryEmbedding(d, 64)
    x = torch.randn(1, 1, t, d, dtype=torch.float64)
    # reference: pair channel i with i + d/2 as a complex number and multiply by e^{i m θ_i}
    z = torch.complex(x[..., : d // 2], x[..., d // 2 :])
    theta = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    rot = torch.polar(torch.ones(t, d // 2, dtype=torch.float64), torch.arange(t, dtype=torch.float64)[:, None] * theta)
    zr = z * rot
    assert max_err(rope(x), torch.cat([zr.real, zr.imag], dim=-1)) < 1e-12
    # norms are preserved, and q_m·k_n depends only on m - n
    assert max_err(rope(x).norm(dim=-1), x.norm(dim=-1)) < 1e-12
    q, k = torch.randn(d, dtype=torch.float64), torch.randn(d, dtype=torch.float64)
    qs, ks = q.expand(1, 1, t, d), k.expand(1, 1, t, d)
    rq, rk = rope(qs)[0, 0], rope(ks)[0, 0]
    assert abs(rq[5] @ rk[2] - rq[9] @ rk[6]) < 1e-10  # both have m - n = 3
    assert max_err(rope(x[:, :, 4:6], offset=4), rope(x)[:, :, 4:6]) < 1e-12


def test_positions_longer_than_table_raise():
    with pytest.raises(ValueError, match=r"expected length <= 16 \(the positional table\), received length 17"):
        LearnedPositionalEmbedding(16, 8)(17)
    with pytest.raises(ValueError, match=r"length <= 16"):
        SinusoidalPositionalEncoding(16, 8)(10, offset=7)
    with pytest.raises(ValueError, match=r"length <= 8"):
        RotaryEmbedding(4, 8)(torch.randn(1, 1, 9, 4))


def test_layer_bad_input():
    with pytest.raises(ValueError, match=r"expected last dimension 8, received shape \(2, 6\)"):
        LayerNorm(8)(torch.randn(2, 6))
    with pytest.raises(ValueError, match=r"activation: expected one of .*received 'swish'"):
        get_activation("swish")
    with pytest.raises(ValueError, match=r"even d_model, received 7"):
        sinusoidal_table(4, 7)
