"""Scaled dot-product and multi-head attention against F.scaled_dot_product_attention and
nn.MultiheadAttention, gradcheck in float64, and the causal / padding / permutation properties.

Tolerances: float32 forward and gradients 1e-5 absolute; float64 1e-10.
"""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from minitransformer import KVCache, MultiHeadAttention, causal_mask, scaled_dot_product_attention, sdpa_fast
from tests.reference import copy_mha, max_err

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def qkv(b=2, h=3, tq=5, tk=5, d=8, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, h, t, d, generator=g, dtype=dtype, requires_grad=True) for t in (tq, tk, tk)]


def random_bool_mask(b, h, tq, tk, seed=1):
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(b, h, tq, tk, generator=g) > 0.3
    m[..., 0] = True  # keep at least one key per row, so the reference has no 0/0 rows
    return m


def grads(out, inputs):
    return torch.autograd.grad(out.square().sum(), inputs)


MASK_CASES = ["none", "bool", "float", "causal", "causal+bool", "causal+float"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", MASK_CASES)
def test_sdpa_matches_pytorch(case, dtype):
    q, k, v = qkv(dtype=dtype)
    b, h, t, _ = q.shape
    mask, causal = None, "causal" in case
    if "bool" in case:
        mask = random_bool_mask(b, h, t, t)
    if "float" in case:
        mask = torch.zeros(b, h, t, t, dtype=dtype).masked_fill(~random_bool_mask(b, h, t, t), float("-inf"))
        mask = mask + torch.randn(b, h, t, t, dtype=dtype) * 0.1  # a real additive bias, not only 0/-inf
    ours = scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    if causal and mask is not None:  # PyTorch refuses is_causal with a mask: build its combined mask by hand
        c = torch.ones(t, t, dtype=torch.bool).tril()
        ref_mask = (mask & c) if mask.dtype == torch.bool else mask.masked_fill(~c, float("-inf"))
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=ref_mask)
    else:
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    assert max_err(ours, ref) < TOL[dtype]
    for go, gr in zip(grads(ours, (q, k, v)), grads(ref, (q, k, v))):
        assert max_err(go, gr) < TOL[dtype]


@pytest.mark.parametrize("case", MASK_CASES)
def test_fast_path_equals_explicit_path(case):
    q, k, v = qkv(dtype=torch.float64)
    b, h, t, _ = q.shape
    mask = random_bool_mask(b, h, t, t) if "bool" in case else None
    if "float" in case:
        mask = torch.randn(b, 1, t, t, dtype=torch.float64)
    explicit = scaled_dot_product_attention(q, k, v, mask, "causal" in case)
    fast = sdpa_fast(q, k, v, mask, "causal" in case)
    assert max_err(explicit, fast) < 1e-10


def test_kv_cache_causal_alignment_bottom_right():
    # 2 new queries after 3 cached keys: query i sees keys 0 .. 3 + i
    m = causal_mask(2, 5)
    assert m.tolist() == [[True, True, True, True, False], [True, True, True, True, True]]
    q, k, v = qkv(tq=2, tk=5)
    assert max_err(scaled_dot_product_attention(q, k, v, is_causal=True), sdpa_fast(q, k, v, is_causal=True)) < 1e-10


@pytest.mark.parametrize("max_len", [None, 40])
def test_kv_cache_holds_what_torch_cat_would(max_len):
    # reference: concatenating every update along time; the cache preallocates (fixed or doubling)
    g = torch.Generator().manual_seed(0)
    cache, ref_k, ref_v = KVCache(max_len=max_len), None, None
    for t_new in (5, 1, 1, 12, 1, 20):  # 40 tokens: crosses the doubling buffer's 16 and 32
        k, v = torch.randn(2, 3, t_new, 4, generator=g), torch.randn(2, 3, t_new, 4, generator=g)
        ref_k = k if ref_k is None else torch.cat([ref_k, k], dim=2)
        ref_v = v if ref_v is None else torch.cat([ref_v, v], dim=2)
        out_k, out_v = cache.update(k, v)
        assert torch.equal(out_k, ref_k) and torch.equal(out_v, ref_v)
        assert len(cache) == ref_k.size(2)


def test_kv_cache_bad_input():
    with pytest.raises(ValueError, match="max_len"):
        KVCache(max_len=0)
    cache = KVCache(max_len=4)
    cache.update(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4))
    with pytest.raises(ValueError, match="at most max_len=4"):
        cache.update(torch.zeros(1, 2, 2, 4), torch.zeros(1, 2, 2, 4))
    with pytest.raises(ValueError, match=r"expected keys of shape \(B, H, T, hs\) = \(1, 2, T, 4\)"):
        cache.update(torch.zeros(1, 3, 1, 4), torch.zeros(1, 3, 1, 4))


def test_scale_by_sqrt_dk_closed_form():
    # one query, two keys: weights are softmax([q·k1, q·k2]/√d)
    q = torch.tensor([[[1.0, 2.0, 0.0, 0.0]]], dtype=torch.float64)
    k = torch.tensor([[[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]], dtype=torch.float64)
    v = torch.tensor([[[1.0], [0.0]]], dtype=torch.float64)
    out, w = scaled_dot_product_attention(q, k, v, return_weights=True)
    # scores 1/2 and 2/2 -> weight of key 1 = e^0.5 / (e^0.5 + e^1)
    expect = math.exp(0.5) / (math.exp(0.5) + math.exp(1.0))
    assert abs(out.item() - expect) < 1e-12
    assert abs(w.sum().item() - 1.0) < 1e-12


def test_fully_masked_row_gives_zeros_and_finite_grads():
    q, k, v = qkv(dtype=torch.float64)
    mask = torch.ones(2, 3, 5, 5, dtype=torch.bool)
    mask[:, :, 2] = False  # query 2 may see nothing
    for fn in (scaled_dot_product_attention, sdpa_fast):
        out = fn(q, k, v, attn_mask=mask)
        assert torch.isfinite(out).all()
        assert torch.equal(out[:, :, 2], torch.zeros_like(out[:, :, 2]))
        assert all(torch.isfinite(g).all() for g in grads(out, (q, k, v)))
    additive = torch.zeros(5, 5, dtype=torch.float64)
    additive[2] = float("-inf")
    out = scaled_dot_product_attention(q, k, v, attn_mask=additive)
    assert torch.equal(out[:, :, 2], torch.zeros_like(out[:, :, 2]))
    assert all(torch.isfinite(g).all() for g in grads(out, (q, k, v)))


def test_attention_dropout_zeroes_weights_only_in_training():
    q, k, v = qkv(dtype=torch.float64)
    torch.manual_seed(0)
    _, w = scaled_dot_product_attention(q, k, v, dropout_p=0.5, training=True, return_weights=True)
    assert (w == 0).float().mean() > 0.3  # about half the weights dropped, the rest scaled by 2
    _, w_eval = scaled_dot_product_attention(q, k, v, dropout_p=0.5, training=False, return_weights=True)
    assert torch.allclose(w_eval.sum(-1), torch.ones_like(w_eval.sum(-1)))


def test_gradcheck_attention_with_masks():
    q, k, v = qkv(b=1, h=2, tq=4, tk=4, d=3)
    mask = random_bool_mask(1, 2, 4, 4)
    assert torch.autograd.gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask, True), (q, k, v))
    additive = torch.randn(4, 4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, additive), (q, k, v))


# ----------------------------------------------------------------------------- multi-head


def make_pair(d=16, h=4, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    ours = MultiHeadAttention(d, h).to(dtype)
    ref = nn.MultiheadAttention(d, h, batch_first=True).to(dtype)
    copy_mha(ours, ref)
    return ours, ref


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("use_sdpa", [False, True])
def test_mha_self_attention_with_key_padding_matches_nn(dtype, use_sdpa):
    ours, ref = make_pair(dtype=dtype)
    x = torch.randn(3, 7, 16, dtype=dtype, requires_grad=True)
    keep = torch.ones(3, 7, dtype=torch.bool)
    keep[1, 5:] = False
    keep[2, 3:] = False
    y, _ = ours(x, attention_mask=keep, use_sdpa=use_sdpa)
    y_ref, _ = ref(x, x, x, key_padding_mask=~keep, need_weights=False)  # nn: True = ignore
    assert max_err(y, y_ref) < TOL[dtype]
    g = torch.autograd.grad(y.sum(), [x, ours.q_proj.weight])
    g_ref = torch.autograd.grad(y_ref.sum(), [x, ref.in_proj_weight])
    assert max_err(g[0], g_ref[0]) < TOL[dtype]
    assert max_err(g[1], g_ref[1][:16]) < TOL[dtype]


def test_mha_cross_attention_and_causal_match_nn():
    ours, ref = make_pair()
    x, mem = torch.randn(2, 5, 16, dtype=torch.float64), torch.randn(2, 9, 16, dtype=torch.float64)
    y, w = ours(x, mem, need_weights=True)
    y_ref, w_ref = ref(x, mem, mem, average_attn_weights=False)
    assert max_err(y, y_ref) < 1e-10 and max_err(w, w_ref) < 1e-10
    causal_ref = nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
    y, _ = ours(x, is_causal=True)
    y_ref, _ = ref(x, x, x, attn_mask=causal_ref)
    assert max_err(y, y_ref) < 1e-10


def test_mha_fast_path_equals_explicit_per_module_and_per_call():
    torch.manual_seed(0)
    slow = MultiHeadAttention(16, 4, use_sdpa=False).double()
    fast = MultiHeadAttention(16, 4, use_sdpa=True).double()
    fast.load_state_dict(slow.state_dict())
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    keep = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    a = slow(x, attention_mask=keep, is_causal=True)[0]
    assert max_err(a, fast(x, attention_mask=keep, is_causal=True)[0]) < 1e-10
    assert max_err(a, slow(x, attention_mask=keep, is_causal=True, use_sdpa=True)[0]) < 1e-10


def test_gradcheck_multi_head_attention():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2).double()
    x = torch.randn(2, 4, 8, dtype=torch.float64, requires_grad=True)
    keep = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    assert torch.autograd.gradcheck(lambda x: mha(x, attention_mask=keep, is_causal=True)[0], (x,))


# ----------------------------------------------------------------------------- properties

dims = st.tuples(st.integers(1, 3), st.integers(2, 8), st.sampled_from([1, 2, 4]))


@settings(max_examples=40, deadline=None)
@given(dims, st.integers(0, 2**31 - 1), st.booleans())
def test_causal_output_ignores_the_future(shape, seed, use_sdpa):
    b, t, h = shape
    torch.manual_seed(seed)
    mha = MultiHeadAttention(8, h, use_sdpa=use_sdpa).double()
    x = torch.randn(b, t, 8, dtype=torch.float64)
    cut = int(torch.randint(0, t, (1,)))
    x2 = x.clone()
    x2[:, cut + 1 :] = torch.randn_like(x2[:, cut + 1 :]) * 10
    y1, y2 = mha(x, is_causal=True)[0], mha(x2, is_causal=True)[0]
    assert max_err(y1[:, : cut + 1], y2[:, : cut + 1]) < 1e-10


@settings(max_examples=40, deadline=None)
@given(dims, st.integers(0, 2**31 - 1), st.booleans())
def test_padding_cannot_leak_into_real_positions(shape, seed, causal):
    b, t, h = shape
    torch.manual_seed(seed)
    mha = MultiHeadAttention(8, h).double()
    lengths = torch.randint(1, t + 1, (b,))
    keep = torch.arange(t)[None, :] < lengths[:, None]  # (B, T)
    x = torch.randn(b, t, 8, dtype=torch.float64)
    x2 = torch.where(keep[..., None], x, torch.randn_like(x) * 100)
    y1 = mha(x, attention_mask=keep, is_causal=causal)[0]
    y2 = mha(x2, attention_mask=keep, is_causal=causal)[0]
    assert max_err(y1[keep], y2[keep]) < 1e-9


@settings(max_examples=30, deadline=None)
@given(dims, st.integers(0, 2**31 - 1))
def test_fully_masked_rows_never_nan(shape, seed):
    b, t, h = shape
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, t, 4, generator=g) for _ in range(3))
    mask = torch.rand(b, h, t, t, generator=g) > 0.6  # many rows end up fully masked
    for fn in (scaled_dot_product_attention, sdpa_fast):
        out = fn(q, k, v, attn_mask=mask)
        assert torch.isfinite(out).all()
        dead = ~mask.any(-1)
        assert torch.equal(out[dead], torch.zeros_like(out[dead]))


@settings(max_examples=30, deadline=None)
@given(dims, st.integers(0, 2**31 - 1))
def test_self_attention_without_positions_is_permutation_equivariant(shape, seed):
    b, t, h = shape
    torch.manual_seed(seed)
    mha = MultiHeadAttention(8, h).double()
    x = torch.randn(b, t, 8, dtype=torch.float64)
    perm = torch.randperm(t)
    assert max_err(mha(x[:, perm])[0], mha(x)[0][:, perm]) < 1e-10


# ----------------------------------------------------------------------------- bad input


def test_bad_input_raises_clear_value_errors():
    with pytest.raises(ValueError, match=r"d_model divisible by n_heads.*d_model=10, n_heads=3"):
        MultiHeadAttention(10, 3)
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"broadcasts to the scores .*received \(4, 4\)"):
        scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"expected dtype torch.bool or a floating dtype, received torch.int64"):
        scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(5, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected a tensor of rank 3 or 4, received rank 2"):
        scaled_dot_product_attention(q[0, 0], k[0, 0], v[0, 0])
    mha = MultiHeadAttention(16, 4)
    with pytest.raises(ValueError, match=r"rank 3, received rank 2"):
        mha(torch.randn(5, 16))
    with pytest.raises(ValueError, match=r"last dimension d_model=16, received shape \(2, 5, 8\)"):
        mha(torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match=r"attention_mask: expected shape \(B, T_k\) = \(2, 5\), received \(2, 4\)"):
        mha(torch.randn(2, 5, 16), attention_mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"0/1"):
        mha(torch.randn(2, 5, 16), attention_mask=torch.full((2, 5), 2))
