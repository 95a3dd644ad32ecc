# %% [markdown]
# # Chapter 2 · 自注意力机制 — scaled dot-product attention (Article §4.2.1)
#
# The article gives the formula
#
#     Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V
#
# and stops there. In this chapter we build it from nothing and check every step:
#
# 1. one query at a time, with a Python loop — then the same thing as one matrix product;
# 2. the shapes: **d_k is the dimension of the queries and keys; the values have their own d_v**;
# 3. why the scores are divided by √d_k (measured, not asserted);
# 4. masks: padding, causal, both, and the row that can see nothing;
# 5. the backward pass by hand: dV, dP, dS, dQ, dK — checked against autograd and `gradcheck`;
# 6. an attention heat map.
#
# Every result is compared with `torch.nn.functional.scaled_dot_product_attention`, which nobody
# here wrote, and with our library `minitransformer.attention`.
#
# **A correction to the article.** §4.2.1 says d_k is "键和值矩阵的维度" (the dimension of the key
# *and value* matrices). It is the dimension of the **queries and keys** — their dot product is what
# gets scaled. The values may have a different width d_v, and the output has d_v columns.
# 更正：d_k 是查询和键的维度；值向量的维度 d_v 可以不同。

# %%
import math

import torch
import torch.nn.functional as F

from chapters.book import Chapter, plt
from minitransformer.attention import causal_mask, padding_mask

ch = Chapter(__file__)

# %% [markdown]
# ## 1. One query at a time (逐个位置计算)
#
# Take T = 4 tokens. Each token i has a query q_i and a key k_i (d_k numbers each) and a value v_i
# (d_v numbers). Token i asks: *how well does my query match each key?*
#
#     s_ij = q_i · k_j / √d_k          (a score for every key j)
#     a_ij = exp(s_ij) / Σ_j' exp(s_ij')   (softmax: positive weights that sum to 1)
#     o_i  = Σ_j a_ij v_j               (a weighted average of the values)
#
# Here it is with plain Python floats and a double loop.

# %%
T, D_K, D_V = 4, 3, 2
q = torch.randn(T, D_K)
k = torch.randn(T, D_K)
v = torch.randn(T, D_V)

out_loop = []
for i in range(T):
    scores = [sum(q[i, c].item() * k[j, c].item() for c in range(D_K)) / math.sqrt(D_K) for j in range(T)]
    m = max(scores)  # subtract the max before exp: same result, no overflow
    e = [math.exp(s - m) for s in scores]
    weights = [x / sum(e) for x in e]
    out_loop.append([sum(weights[j] * v[j, c].item() for j in range(T)) for c in range(D_V)])
out_loop = torch.tensor(out_loop)
ch.show("out_loop", out_loop, "(T, d_v)")

# %% [markdown]
# The loop over i and the sums over j and c are exactly a matrix product: row i of Q Kᵀ holds
# q_i · k_j for every j. So the whole layer is three matrix operations:

# %%
S = q @ k.T / math.sqrt(D_K)  # (T, T)
P = torch.softmax(S, dim=-1)  # (T, T), each row sums to 1
out_matrix = P @ v  # (T, d_v)
ch.show("S", S)
ch.show("P", P)
ch.check_close("loop == matrix form softmax(QKᵀ/√d_k)V", out_loop, out_matrix, atol=1e-6)
ch.check_close("rows of P sum to 1", P.sum(-1), torch.ones(T), atol=1e-6)
ref = F.scaled_dot_product_attention(q[None], k[None], v[None])[0]
ch.check_close("matrix form == F.scaled_dot_product_attention", out_matrix, ref, atol=1e-6)

# %% [markdown]
# ## 2. d_k and d_v are different things
#
# Queries and keys must have the same width d_k (we take their dot product). Values only need the
# same *number of rows* as the keys (one value per key). Nothing ties d_v to d_k:

# %%
B, T_Q, T_K, D_K, D_V = 2, 3, 5, 8, 3  # a cross-attention shape: 3 queries look at 5 keys
q = torch.randn(B, T_Q, D_K)
k = torch.randn(B, T_K, D_K)
v = torch.randn(B, T_K, D_V)
out = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(D_K), dim=-1) @ v  # the matrix form of §1, batched
ch.show("q", q, "(B, T_q, d_k)")
ch.show("k", k, "(B, T_k, d_k)")
ch.show("v", v, "(B, T_k, d_v)  d_v ≠ d_k")
ch.show("out", out, "(B, T_q, d_v)")
ch.check("output has d_v columns, not d_k", out.shape == (B, T_Q, D_V), f"shape {tuple(out.shape)}")
ch.check_close("matrix form == F.scaled_dot_product_attention (d_v ≠ d_k)", out,
               F.scaled_dot_product_attention(q, k, v), atol=1e-6)

# %% [markdown]
# ## 3. Why divide by √d_k? (为什么要除以 √d_k)
#
# Suppose the entries of q and k are independent, mean 0, variance 1. Then q · k = Σ_c q_c k_c is a
# sum of d_k independent terms, each of variance 1, so **Var(q · k) = d_k**. With d_k = 64 the raw
# scores have a standard deviation of 8; softmax of numbers that far apart is almost one-hot.
# Dividing by √d_k brings the variance back to 1 whatever d_k is.
#
# Why is a nearly one-hot softmax bad? Its Jacobian ∂p/∂s = diag(p) − p pᵀ is nearly zero when one
# p_i ≈ 1: the gradient that reaches the queries and keys vanishes and learning stalls.
# 点积的方差随 d_k 线性增长；不缩放时 softmax 饱和，梯度消失。

# %%
dims = [1, 4, 16, 64, 256, 1024]
n_pairs = ch.steps(20000, 4000)
n_rows, n_keys = ch.steps(2000, 300), 16


def entropy(p):
    """Mean entropy of the rows of p, in nats (log n_keys for uniform, 0 for one-hot)."""
    return float(-(p * torch.log(p.clamp_min(1e-30))).sum(-1).mean())


def jacobian_norm(p):
    """Mean Frobenius norm of the softmax Jacobian diag(p) - p pᵀ over the rows of p."""
    jac = torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)  # (rows, n, n)
    return float(jac.flatten(1).norm(dim=-1).mean())


variances, ent_raw, ent_scaled, jac_raw, jac_scaled = [], [], [], [], []
for d in dims:
    dots = (torch.randn(n_pairs, d) * torch.randn(n_pairs, d)).sum(-1)  # q·k for n_pairs random pairs
    variances.append(float(dots.var()))
    qs, ks = torch.randn(n_rows, 1, d), torch.randn(n_rows, n_keys, d)
    raw = (qs * ks).sum(-1)  # (rows, n_keys) unscaled scores
    p_raw, p_scaled = torch.softmax(raw, -1), torch.softmax(raw / math.sqrt(d), -1)
    ent_raw.append(entropy(p_raw))
    ent_scaled.append(entropy(p_scaled))
    jac_raw.append(jacobian_norm(p_raw))
    jac_scaled.append(jacobian_norm(p_scaled))
    print(f"  d_k={d:5d}  Var(q·k)={variances[-1]:8.1f}  entropy raw {ent_raw[-1]:.2f} / scaled {ent_scaled[-1]:.2f} nats"
          f"  |Jacobian| raw {jac_raw[-1]:.3f} / scaled {jac_scaled[-1]:.3f}")

ratios = [var / d for var, d in zip(variances, dims)]
ratio_text = "Var/d_k = " + ", ".join(f"{r:.2f}" for r in ratios)
ch.check_value("Var(q·k) ≈ d_k for every d_k: smallest Var/d_k", min(ratios), low=0.85, detail=ratio_text)
ch.check_value("Var(q·k) ≈ d_k for every d_k: largest Var/d_k", max(ratios), high=1.15)
ch.check_value("unscaled softmax saturates as d_k grows (entropy at d_k=1024 / at d_k=1)", ent_raw[-1] / ent_raw[0], high=0.25,
               detail=f"entropy {ent_raw[0]:.2f} nats at d_k=1, {ent_raw[-1]:.2f} at d_k=1024; uniform = {math.log(n_keys):.2f}")
ch.check_value("scaled softmax keeps the same spread for every d_k (entropy range, nats)", max(ent_scaled) - min(ent_scaled),
               high=0.25, detail=f"entropy between {min(ent_scaled):.2f} and {max(ent_scaled):.2f} nats")
ch.check_value("saturated softmax passes back a much smaller gradient (|∂p/∂s| unscaled / scaled at d_k=1024)",
               jac_raw[-1] / jac_scaled[-1], high=0.3,
               detail=f"|∂p/∂s| {jac_raw[-1]:.3f} unscaled vs {jac_scaled[-1]:.3f} scaled")

fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
axes[0].loglog(dims, variances, "o-", label="measured Var(q·k)")
axes[0].loglog(dims, dims, "k--", lw=1, label="d_k")
axes[0].loglog(dims, [var / d for var, d in zip(variances, dims)], "s-", label="Var(q·k/√d_k)")
axes[0].set(xlabel="d_k", title="score variance grows like d_k")
axes[1].semilogx(dims, ent_raw, "o-", label="softmax(q·k)")
axes[1].semilogx(dims, ent_scaled, "s-", label="softmax(q·k/√d_k)")
axes[1].axhline(math.log(n_keys), color="k", ls="--", lw=1, label=f"uniform (log {n_keys})")
axes[1].set(xlabel="d_k", ylabel="entropy (nats)", title=f"attention entropy, {n_keys} keys")
axes[2].semilogx(dims, jac_raw, "o-", label="unscaled")
axes[2].semilogx(dims, jac_scaled, "s-", label="scaled")
axes[2].set(xlabel="d_k", title="softmax Jacobian size, mean ‖diag(p) − ppᵀ‖")
for ax in axes:
    ax.legend(fontsize=8)
ch.savefig(fig, "scaling_by_sqrt_dk")

# %% [markdown]
# ## 4. Masks (掩码)
#
# A mask says which keys a query may look at. We use the convention of PyTorch's
# `F.scaled_dot_product_attention`: a **boolean mask is True where attending is allowed**. Masked
# scores are set to −∞ before the softmax, so their weights are exactly 0.
#
# * **padding mask** — a batch pads short sentences to a common length; real tokens must not attend
#   to the padding. From a (B, T) `attention_mask` (1 = real token, the Hugging Face convention)
#   we build a (B, 1, 1, T) mask that broadcasts over heads and queries.
# * **causal mask** — a language model (GPT) predicting token i may only see tokens ≤ i:
#   the lower triangle.
# * **both** — combine with AND.
#
# A row that may see *nothing* (say, a padding query in a left-padded causal batch) would be
# softmax of all −∞ = 0/0 = NaN. We define its output as zero, and so does PyTorch's
# `F.scaled_dot_product_attention` (recent versions; `nn.MultiheadAttention` still gives NaN).

# %% [markdown]
# ### Exercise 2.1 — masked attention (带掩码的注意力)
#
# **`masked_attention`** · ★★ · 3 分 points · 约 ~30 分钟 min
#
# **中文：** 实现缩放点积注意力 softmax(QKᵀ/√d_k)V，支持布尔掩码（True 表示可以关注）和因果掩码；
# 若某个查询的所有键都被遮住，输出应为零向量而不是 NaN。
#
# **English:** Write scaled dot-product attention softmax(QKᵀ/√d_k)V with a boolean mask (True =
# may attend) and an optional causal mask. A query whose every key is masked must output zeros,
# not NaN.
#
# **提示：** 先合成一个布尔矩阵 allowed（因果下三角 与 掩码 取“与”），False 处填 −∞；对一个键都看
# 不到的行，在 softmax 之前和之后都置零。
#
# **Hint:** Build one boolean 'allowed' matrix (the causal triangle AND the mask), put −∞ where it
# is False, and zero the rows where nothing is allowed both before and after the softmax.
#
# **不可调用 Not allowed:** `attention.scaled_dot_product_attention`, `attention.sdpa_fast`,
# `attention.masked_softmax`, `F.scaled_dot_product_attention`,
# `torch.ops.aten.scaled_dot_product_attention` and 4 more / 等共 9 个
# (`python -m chapters.assign list`)
#
# 自查 Self-check: `python -m chapters.assign check ch02`
#
# Write `masked_attention(q, k, v, mask=None, is_causal=False)`:
#
# * q: (..., T_q, d_k), k: (..., T_k, d_k), v: (..., T_k, d_v) → (..., T_q, d_v);
# * `mask`: boolean, True = may attend, broadcastable to (..., T_q, T_k), or None;
# * `is_causal`: also forbid key j > query i (take T_q = T_k);
# * a query row with nothing to attend to returns zeros (not NaN).
#
# Scale by 1/√d_k with d_k = q.size(-1). The check compares with `F.scaled_dot_product_attention`.

# %%
def masked_attention(q, k, v, mask=None, is_causal=False):
    """softmax(q kᵀ/√d_k, masked) v. Bool mask: True = may attend. Fully masked rows -> 0."""
    ### BEGIN SOLUTION
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (..., T_q, T_k)
    allowed = torch.ones(scores.shape[-2:], dtype=torch.bool, device=q.device)
    if is_causal:
        allowed = allowed.tril()
    if mask is not None:
        allowed = allowed & mask
    scores = scores.masked_fill(~allowed, float("-inf"))
    dead = ~allowed.any(dim=-1, keepdim=True)  # rows with nothing to see
    weights = torch.softmax(scores.masked_fill(dead, 0.0), dim=-1).masked_fill(dead, 0.0)
    return weights @ v  # (..., T_q, d_v)
    ### END SOLUTION


def check_masked_attention(impl):
    """Compare impl with F.scaled_dot_product_attention on masks of every kind (float64, atol 1e-10)."""
    g = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    def compare(case, got, want, hint):
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise AssertionError(f"{case}: expected output shape {tuple(want.shape)}, received {shape}")
        if bool(got.isnan().any()):
            raise AssertionError(f"{case}: the output has NaN — {hint}")
        err = float((got - want).abs().max())
        if err > 1e-10:
            raise AssertionError(f"{case}: max abs err {err:.2e} vs F.scaled_dot_product_attention — {hint}")
        return err

    sdpa = F.scaled_dot_product_attention
    q, k, v = rand(2, 3, 4, 8), rand(2, 3, 6, 8), rand(2, 3, 6, 5)  # T_q=4, T_k=6, d_k=8, d_v=5
    errs = [compare("no mask", impl(q, k, v), sdpa(q, k, v),
                    "divide the scores by √d_k with d_k = q.size(-1), softmax over the keys (last axis)")]
    pad = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)[:, None, None, :]  # (B,1,1,T_k)
    errs.append(compare("padding mask", impl(q, k, v, mask=pad), sdpa(q, k, v, attn_mask=pad),
                        "True means 'may attend'; masked scores must get -inf before the softmax"))
    q2, k2, v2 = rand(2, 2, 5, 4), rand(2, 2, 5, 4), rand(2, 2, 5, 3)
    errs.append(compare("is_causal=True", impl(q2, k2, v2, is_causal=True), sdpa(q2, k2, v2, is_causal=True),
                        "query i may see keys j <= i (the diagonal included): a lower-triangular mask"))
    pad2 = torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1]], dtype=torch.bool)[:, None, None, :]
    both = pad2 & torch.ones(5, 5, dtype=torch.bool).tril()
    got = impl(q2, k2, v2, mask=pad2, is_causal=True)
    errs.append(compare("padding mask + is_causal", got, sdpa(q2, k2, v2, attn_mask=both),
                        "combine the two masks with AND"))
    if float(got[0, :, 0].abs().max()) != 0.0:
        raise AssertionError("a query that may attend to no key must output zeros (sentence 1, query 0)")
    return f"no mask, padding, causal, both, fully masked row; max abs err {max(errs):.1e} vs F.scaled_dot_product_attention"


ch.verify(check_masked_attention, masked_attention)

# %%
from minitransformer.attention import masked_softmax, scaled_dot_product_attention  # the library's versions (exercise 2.1)

B, H, T, D = 2, 1, 5, 4
q, k, v = torch.randn(B, H, T, D), torch.randn(B, H, T, D), torch.randn(B, H, T, D)
attention_mask = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])  # sentence 2 is left-padded by 2
pad = padding_mask(attention_mask)  # (B, 1, 1, T)
causal = causal_mask(T)  # (T, T)
both = pad & causal  # (B, 1, T, T)
ch.show("padding mask", pad, "(B, 1, 1, T_k)")
ch.show("causal mask", causal, "(T_q, T_k)")
ch.show("padding & causal", both, "(B, 1, T_q, T_k)")
print("  causal mask (1 = may attend):\n" + "\n".join("    " + " ".join(str(int(b)) for b in row) for row in causal))
print("  sentence 2, padding & causal:\n" + "\n".join("    " + " ".join(str(int(b)) for b in row) for row in both[1, 0]))

ch.check("causal mask is the lower triangle", torch.equal(causal, torch.ones(T, T, dtype=torch.bool).tril()))
for name, mask in [("padding", pad), ("causal", causal), ("padding & causal", both)]:
    ours, w = scaled_dot_product_attention(q, k, v, attn_mask=mask, return_weights=True)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    ch.check_close(f"{name} mask: library == F.scaled_dot_product_attention", ours, ref, atol=1e-6)
    ch.check(f"{name} mask: masked weights are exactly 0", (w.masked_select(~mask.expand_as(w)) == 0).all())
ours_causal = scaled_dot_product_attention(q, k, v, is_causal=True)
ch.check_close("is_causal=True == explicit causal mask", ours_causal,
               scaled_dot_product_attention(q, k, v, attn_mask=causal), atol=0)

# an additive mask (0 to keep, −∞ to drop) is the same thing written differently
additive = torch.zeros(T, T).masked_fill(~causal, float("-inf"))
ch.check_close("additive −∞ mask == boolean mask", scaled_dot_product_attention(q, k, v, attn_mask=additive),
               ours_causal, atol=0)

# the dead rows: sentence 2, queries 0 and 1 are padding and (causally) can only see padding
out, w = scaled_dot_product_attention(q, k, v, attn_mask=both, return_weights=True)
dead = ~both.any(-1)  # (B, 1, T) rows with nothing to see
ch.check("fully masked rows exist in this batch", int(dead.sum()) == 2, f"{int(dead.sum())} rows (sentence 2, queries 0 and 1)")
ch.check("fully masked rows → zero weights and zero output, no NaN",
         bool((out[dead] == 0).all()) and bool((w[dead] == 0).all()) and not bool(out.isnan().any()))
ch.check("naive softmax(−∞ row) would give NaN (what we avoid)",
         bool(torch.softmax(torch.full((3,), float("-inf")), -1).isnan().all()))

# %% [markdown]
# ## 5. The backward pass by hand (手推反向传播)
#
# Write the forward pass as four steps, with scale c = 1/√d_k:
#
#     S = c · Q Kᵀ        P = softmax(S) (row-wise)        O = P V
#
# Given dO = ∂L/∂O, walk backwards:
#
#     dV = Pᵀ dO                     (O = P V is linear in V)
#     dP = dO Vᵀ                     (… and in P)
#     dS = P ⊙ (dP − rowsum(dP ⊙ P)) (softmax's Jacobian diag(p) − p pᵀ, applied row by row)
#     dQ = c · dS K
#     dK = c · dSᵀ Q
#
# A masked score has P = 0, so dS = 0 there: no gradient flows through a masked position.

# %% [markdown]
# ### Exercise 2.2 — attention backward by hand
#
# **`attention_backward_by_hand`** · ★★★ · 3 分 points · 约 ~45 分钟 min
#
# **中文：** 推导并实现注意力的反向传播：已知 dO，求 dQ、dK、dV（dV = PᵀdO，dP = dO Vᵀ，dS = P ⊙
# (dP − rowsum(dP ⊙ P))，dQ 与 dK 乘以 1/√d_k）。
#
# **English:** Derive and write the backward pass of attention: given dO, return dQ, dK, dV (dV =
# PᵀdO, dP = dO Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ and dK scaled by 1/√d_k).
#
# **提示：** 先按前向公式重新算出 P，再依次套用五个公式；dS 里的行和是对键（最后一维）求和，要
# keepdim=True。
#
# **Hint:** Recompute P with the forward formulas first, then apply the five formulas in order;
# the row sum in dS is over the keys (the last axis), with keepdim=True.
#
# **不可调用 Not allowed:** `backward.attention_backward`, `backward.AttentionFunction`,
# `backward.softmax_backward`, `torch.autograd.grad`, `torch.autograd.backward` and 10 more / 等共
# 15 个 (`python -m chapters.assign list`)
#
# 自查 Self-check: `python -m chapters.assign check ch02`
#
# Write `attention_backward_by_hand(q, k, v, do, mask=None)` returning (dq, dk, dv) for
# O = softmax(q kᵀ/√d_k, masked) v, without autograd (every query may see at least one key).
# The check compares with autograd through `F.scaled_dot_product_attention` in float64.

# %%
def attention_backward_by_hand(q, k, v, do, mask=None):
    """Gradients (dq, dk, dv) of O = softmax(q kᵀ/√d_k + mask) v given do = ∂L/∂O.
    q: (..., T_q, d_k), k: (..., T_k, d_k), v: (..., T_k, d_v), do: (..., T_q, d_v)."""
    ### BEGIN SOLUTION
    c = 1.0 / math.sqrt(q.size(-1))
    s = c * (q @ k.transpose(-2, -1))  # (..., T_q, T_k)
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    p = torch.softmax(s, dim=-1)
    dv = p.transpose(-2, -1) @ do  # (..., T_k, d_v)
    dp = do @ v.transpose(-2, -1)  # (..., T_q, T_k)
    ds = p * (dp - (dp * p).sum(dim=-1, keepdim=True))  # softmax backward
    dq = c * (ds @ k)  # (..., T_q, d_k)
    dk = c * (ds.transpose(-2, -1) @ q)  # (..., T_k, d_k)
    return dq, dk, dv
    ### END SOLUTION


def check_attention_backward_by_hand(impl):
    """Compare (dq, dk, dv) with autograd through F.scaled_dot_product_attention (float64, atol 1e-10)."""
    g = torch.Generator().manual_seed(1)
    worst = 0.0
    cases = [("no mask", (2, 2, 4, 6), (2, 2, 5, 6), 3, None),
             ("causal mask", (1, 2, 5, 4), (1, 2, 5, 4), 4, torch.ones(5, 5, dtype=torch.bool).tril())]
    for case, q_shape, k_shape, d_v, mask in cases:
        q = torch.randn(*q_shape, generator=g, dtype=torch.float64, requires_grad=True)
        k = torch.randn(*k_shape, generator=g, dtype=torch.float64, requires_grad=True)
        v = torch.randn(*k_shape[:-1], d_v, generator=g, dtype=torch.float64, requires_grad=True)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        do = torch.randn(out.shape, generator=g, dtype=torch.float64)
        want = torch.autograd.grad((out * do).sum(), (q, k, v))  # = vector-Jacobian product with do
        with torch.no_grad():
            got = impl(q.detach(), k.detach(), v.detach(), do, mask)
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            raise AssertionError(f"{case}: expected a tuple (dq, dk, dv), received {type(got).__name__}")
        hints = {"dq": "dQ = c · dS K with c = 1/√d_k", "dk": "dK = c · dSᵀ Q", "dv": "dV = Pᵀ dO"}
        for name, a, b in zip(("dq", "dk", "dv"), got, want):
            if a.shape != b.shape:
                raise AssertionError(f"{case}: {name} expected shape {tuple(b.shape)}, received {tuple(a.shape)}")
            err = float((a - b).abs().max())
            if not err <= 1e-10:
                extra = "; dS = P ⊙ (dP − rowsum(dP ⊙ P))" if name != "dv" else ""
                raise AssertionError(f"{case}: {name} max abs err {err:.2e} vs autograd — {hints[name]}{extra}")
            worst = max(worst, err)
    return f"dQ, dK, dV (no mask, causal) match autograd through F.scaled_dot_product_attention, max abs err {worst:.1e}"


ch.verify(check_attention_backward_by_hand, attention_backward_by_hand)

# %% [markdown]
# Three more ways to trust the hand-written gradients:
# the library's `attention_backward` (the same formulas), autograd through our own forward pass,
# and `torch.autograd.gradcheck`, which compares the backward pass with finite differences
# (f(x + ε) − f(x − ε)) / 2ε in float64 — a reference that involves no calculus at all.

# %%
from minitransformer.backward import AttentionFunction, attention_backward  # the library's versions (exercise 2.2)


class HandAttention(torch.autograd.Function):
    """Our forward (masked softmax) with the hand-written backward above, for gradcheck."""

    @staticmethod
    def forward(ctx, q, k, v, mask):
        ctx.save_for_backward(q, k, v)
        ctx.mask = mask
        return masked_attention(q, k, v, mask)

    @staticmethod
    def backward(ctx, do):
        q, k, v = ctx.saved_tensors
        return (*attention_backward_by_hand(q, k, v, do, ctx.mask), None)


q = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
k = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
v = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)  # d_v = 3 ≠ d_k = 4
mask = torch.tensor([1, 1, 1, 0, 0], dtype=torch.bool)  # the last two keys are padding
do = torch.randn(2, 3, 3, dtype=torch.float64)

dq, dk, dv = attention_backward_by_hand(q.detach(), k.detach(), v.detach(), do, mask)
ch.show("dq", dq, "(B, T_q, d_k)")
ch.show("dk", dk, "(B, T_k, d_k)")
ch.show("dv", dv, "(B, T_k, d_v)")
auto = torch.autograd.grad((scaled_dot_product_attention(q, k, v, attn_mask=mask) * do).sum(), (q, k, v))
for name, ours_g, ref_g in zip(("dQ", "dK", "dV"), (dq, dk, dv), auto):
    ch.check_close(f"{name} by hand == autograd through the library forward", ours_g, ref_g, atol=1e-12)
scale = 1.0 / math.sqrt(q.size(-1))
p = masked_softmax(scale * (q.detach() @ k.detach().transpose(-2, -1)), mask)
lib = attention_backward(q.detach(), k.detach(), v.detach(), p, do, scale)
ch.check_close("dQ by hand == minitransformer.backward.attention_backward", dq, lib[0], atol=1e-12)
ch.check("padded keys get zero gradient (dK, dV rows 3 and 4)", bool((dk[:, 3:] == 0).all() and (dv[:, 3:] == 0).all()))
ok = torch.autograd.gradcheck(lambda a, b, c: HandAttention.apply(a, b, c, mask), (q, k, v), eps=1e-6, atol=1e-7)
ch.check("torch.autograd.gradcheck(hand-written backward), float64", ok, "finite differences, eps 1e-6, atol 1e-7")
ok = torch.autograd.gradcheck(lambda a, b, c: AttentionFunction.apply(a, b, c, mask), (q, k, v), eps=1e-6, atol=1e-7)
ch.check("gradcheck(library AttentionFunction), float64", ok)

# %% [markdown]
# ## 6. An attention heat map (注意力热力图)
#
# Give each word of a short sentence a random vector and use it directly as query, key and value
# (no learned projections yet — that is the next chapter). A query matches itself best, and
# matches the *other copy of the same word* just as well: both "the"s look at both "the"s.
# With a causal mask, the first "the" can no longer see the second.

# %%
words = "the cat sat on the mat".split()
vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
emb = torch.randn(len(vocab), 16)
x = emb[torch.tensor([vocab[w] for w in words])]  # (T, C)
x = x / x.norm(dim=-1, keepdim=True) * 4.0  # a larger norm would give sharper attention
_, w_full = scaled_dot_product_attention(x[None], x[None], x[None], return_weights=True)
_, w_causal = scaled_dot_product_attention(x[None], x[None], x[None], is_causal=True, return_weights=True)
w_full, w_causal = w_full[0], w_causal[0]  # (T, T)
second_the = 4
top2 = set(w_full[second_the].topk(2).indices.tolist())
ch.check('the second "the" attends most to the two "the"s', top2 == {0, 4}, f"top keys {sorted(top2)}")
ch.check('with a causal mask, the first "the" cannot see the second', float(w_causal[0, 4]) == 0.0)

fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
for ax, w, title in [(axes[0], w_full, "no mask (BERT-style, bidirectional)"),
                     (axes[1], w_causal, "causal mask (GPT-style)")]:
    im = ax.imshow(w.numpy(), cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(words)), words, rotation=45)
    ax.set_yticks(range(len(words)), words)
    ax.set(xlabel="key (attended to)", title=title)
    for i in range(len(words)):
        for j in range(len(words)):
            ax.text(j, i, f"{float(w[i, j]):.2f}", ha="center", va="center", fontsize=7,
                    color="white" if float(w[i, j]) < 0.5 else "black")
axes[0].set_ylabel("query")
fig.colorbar(im, ax=axes, shrink=0.8, label="attention weight")
ch.savefig(fig, "attention_heatmap")

# %% [markdown]
# ## What we built
#
# * `softmax(Q Kᵀ/√d_k) V` from a double loop to one matrix product, equal to PyTorch's kernel;
# * d_k (queries, keys) and d_v (values) as separate sizes;
# * the √d_k scaling, measured: Var(q·k) = d_k, and without it the softmax saturates and its
#   gradient vanishes;
# * boolean masks (padding, causal, both) with fully masked rows giving zeros;
# * the backward pass by hand, equal to autograd and to finite differences.
#
# Next: ch03 splits this attention into several heads.

# %%
ch.done()
