# %% [markdown] lang="zh"
# # 第 4 章 · 层归一化、GELU 与前馈网络：编码器层的另一半（原文 §4.2.2）
#
# 原文的编码器公式（§4.2.2 多层Transformer编码器）提到了 `LayerNorm`、`MLP` 和 `Dropout`，却没有
# 写出它们是什么。本章把它们逐个写成公式，再写成代码，最后与 PyTorch 对照：
#
# 1. **层归一化**（layer normalization, LayerNorm）：`γ ⊙ (x − μ)/√(σ² + ε) + β`，方差用*有偏*估计，
#    ε 放在根号*里面*；手推它的反向传播，并用 `gradcheck` 验证；
# 2. **GELU**（高斯误差线性单元）：精确形式 `x·Φ(x)`（Hugging Face 的 BERT 实现采用）与 tanh 近似
#    （谷歌原版 BERT 代码和 GPT-2 采用），与 `F.gelu` 对照；
# 3. **前馈网络**（feed-forward network，即原文所说的“MLP”）：`W₂ GELU(W₁ x + b₁) + b₂`，对每个
#    词元单独计算；
# 4. **残差连接与暂退法（dropout）的接法**：这些子层如何拼成一个编码器层（第 6 章会用到）。

# %% [markdown] lang="en"
# # Chapter 4 · LayerNorm, GELU and the feed-forward network — the other half of the block (Article §4.2.2)
#
# The article's encoder formula (§4.2.2) names `LayerNorm`, `MLP` and `Dropout` without writing
# them down. In this chapter each becomes a formula, then code, then a check against PyTorch:
#
# 1. **LayerNorm** — `γ ⊙ (x − μ)/√(σ² + ε) + β`, with the *biased* variance and ε *inside* the
#    square root; its backward pass derived by hand and checked with `gradcheck`;
# 2. **GELU** — exact `x·Φ(x)` (Hugging Face's BERT) and the tanh approximation (Google's original
#    BERT code, GPT-2), against `F.gelu`;
# 3. **the feed-forward network** (the article's "MLP") — `W₂ GELU(W₁ x + b₁) + b₂`, one token at
#    a time;
# 4. **residual + dropout wiring** — how these sublayers are glued into a block (used in ch06).

# %%
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from chapters.book import Chapter, plt
from minitransformer.blocks import sublayer_connection
from minitransformer.layers import gelu_tanh, relu

ch = Chapter("ch04_layernorm_ffn")

# %% [markdown] lang="zh"
# ## 1. 层归一化
#
# 对每个词元单独计算，作用在它自己的 C 个特征上：
#
#     μ  = (1/C) Σ_c x_c
#     σ² = (1/C) Σ_c (x_c − μ)²          ← 除以 C（有偏估计），而不是 C − 1
#     x̂  = (x − μ) / √(σ² + ε)           ← ε 在根号里面
#     y  = γ ⊙ x̂ + β                     （γ、β：C 个可学习的数，初始化为 1 和 0）
#
# 与批量归一化（BatchNorm）不同，层归一化不在词元之间或句子之间求平均：每个词元只用自己的特征
# 归一化，所以批量大小和填充都不会改变一个词元的结果。

# %% [markdown] lang="en"
# ## 1. LayerNorm
#
# For every token separately, over its C features:
#
#     μ  = (1/C) Σ_c x_c
#     σ² = (1/C) Σ_c (x_c − μ)²          ← divide by C (biased), not C − 1
#     x̂  = (x − μ) / √(σ² + ε)           ← ε inside the square root
#     y  = γ ⊙ x̂ + β                     (γ, β: C learned numbers, initialised to 1 and 0)
#
# Unlike BatchNorm, nothing is averaged across tokens or sentences: each token is normalised on
# its own, so batch size and padding never change a token's result.

# %%
B, T, C = 2, 3, 8
x = 3.0 * torch.randn(B, T, C) + 1.5
gamma, beta = torch.randn(C), torch.randn(C)

mu = x.mean(dim=-1, keepdim=True)  # (B, T, 1)
var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)  # (B, T, 1), biased
xhat = (x - mu) / torch.sqrt(var + 1e-5)  # (B, T, C)
y = gamma * xhat + beta
ch.show("mu", mu, ch.tr("(B, T, 1) 每个词元一个均值", "(B, T, 1) one mean per token"))
ch.show("var", var, "(B, T, 1)")
ch.show("y", y, "(B, T, C)")

ref_ln = nn.LayerNorm(C)
with torch.no_grad():
    ref_ln.weight.copy_(gamma)
    ref_ln.bias.copy_(beta)
    ch.check_close(ch.tr("逐步计算的层归一化 == torch.nn.LayerNorm", "step-by-step LayerNorm == torch.nn.LayerNorm"),
                   y, ref_ln(x), atol=1e-5)
ch.check_close(ch.tr("每个词元的 x̂ 均值为 0", "x̂ has mean 0 per token"), xhat.mean(-1), torch.zeros(B, T), atol=1e-5)
ch.check_close(ch.tr("每个词元的 x̂（有偏）方差为 1", "x̂ has (biased) variance 1 per token"),
               xhat.pow(2).mean(-1), torch.ones(B, T), atol=1e-4)

# %% [markdown] lang="zh"
# 有两个容易犯的错误，下面实际测一测。`torch.var` 默认除以 C − 1，除非指定 `unbiased=False`
# （即 `correction=0`）；而把 ε 放在根号外面，写成 `(x − μ)/(σ + ε)`，就成了另一个函数。第二个
# 错误只有在某个词元的方差与 ε 相当时才会显现，例如一个几乎是常数的词元。

# %% [markdown] lang="en"
# Two easy mistakes, measured. `torch.var` divides by C − 1 unless told `unbiased=False`
# (`correction=0`); and ε outside the square root, `(x − μ)/(σ + ε)`, is a different function.
# The second only shows when a token's variance is comparable to ε — for instance a nearly
# constant token.

# %%
wrong_var = (x - mu) / torch.sqrt(x.var(dim=-1, keepdim=True) + 1e-5)  # unbiased variance
err_var = float((wrong_var - xhat).abs().max())
ch.check_value(ch.tr("无偏方差（torch.var 的默认值）得到的是另一个层归一化（最大差值）",
                     "unbiased variance (torch.var's default) gives a different LayerNorm (max diff)"), err_var, low=1e-2,
               detail=ch.tr(f"C = {C} 时相差一个因子 √((C−1)/C) = {math.sqrt((C - 1) / C):.3f}",
                            f"a factor √((C−1)/C) = {math.sqrt((C - 1) / C):.3f} with C = {C}"))
flat = 1e-3 * torch.randn(4, C)  # tokens with σ² ≈ 1e-6, smaller than ε = 1e-5
m_, v_ = flat.mean(-1, keepdim=True), flat.var(-1, unbiased=False, keepdim=True)
inside = (flat - m_) / torch.sqrt(v_ + 1e-5)
outside = (flat - m_) / (torch.sqrt(v_) + 1e-5)
ch.check_close(ch.tr("ε 在根号内：在几乎为常数的词元上与 F.layer_norm 一致",
                     "ε inside √ matches F.layer_norm on a nearly constant token"), inside,
               F.layer_norm(flat, (C,), eps=1e-5), atol=1e-6)
ch.check_value(ch.tr("ε 在根号外：不一致（最大差值）", "ε outside √ does not (max diff)"),
               float((outside - inside).abs().max()), low=0.1)
x2 = x.clone()
x2[1] = 100 * torch.randn(T, C)  # change the whole second sentence
ch.check(ch.tr("一个词元的层归一化与其他词元和句子无关（这一点不同于 BatchNorm）",
               "a token's LayerNorm ignores the other tokens and sentences (unlike BatchNorm)"),
         torch.allclose(F.layer_norm(x2, (C,))[0], F.layer_norm(x, (C,))[0]))

# %% [markdown] lang="zh"
# ### 练习 4.1 — 层归一化的前向计算
#
# **`layer_norm_forward_ex`** · ★ · 2 分 · 约 15 分钟
#
# **题目：** 在最后一维上做层归一化：γ ⊙ (x − μ)/√(σ² + ε) + β，方差用有偏估计（除以 C），ε 放在根
# 号内。
#
# **提示：** 均值和方差都在 dim=-1 上求，并设 keepdim=True 以便广播；torch.var 默认除以 C − 1。
#
# **不可调用：** `layers.layer_norm`, `layers.LayerNorm`,
# `backward.layer_norm_forward`, `backward.LayerNormFunction`, `F.layer_norm` 等共
# 15 个（`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch04`
#
# 编写 `layer_norm_forward_ex(x, gamma, beta, eps)`：在 x 的最后一维上做层归一化（前面可以有任意
# 多个维度），方差用有偏估计，ε 放在根号里面。检查程序会在 float64 下与 `F.layer_norm` 比较。

# %% [markdown] lang="en"
# ### Exercise 4.1 — LayerNorm forward
#
# **`layer_norm_forward_ex`** · ★ · 2 points · ~15 min
#
# **Task:** LayerNorm over the last axis: γ ⊙ (x − μ)/√(σ² + ε) + β with the biased variance
# (divide by C) and ε inside the square root.
#
# **Hint:** Take the mean and the variance over dim=-1 with keepdim=True so they broadcast back;
# torch.var divides by C − 1 unless told otherwise.
#
# **Not allowed:** `layers.layer_norm`, `layers.LayerNorm`,
# `backward.layer_norm_forward`, `backward.LayerNormFunction`, `F.layer_norm` and 10 more
# (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch04`
#
# Write `layer_norm_forward_ex(x, gamma, beta, eps)`: LayerNorm over the last axis of x (any
# number of leading axes), biased variance, ε inside the square root. Checked against
# `F.layer_norm` in float64.

# %%
def layer_norm_forward_ex(x, gamma, beta, eps=1e-5):
    """y = γ ⊙ (x − μ)/√(σ² + ε) + β over the last axis; σ² is the biased variance."""
    ### BEGIN SOLUTION
    mu = x.mean(dim=-1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)
    return gamma * (x - mu) / torch.sqrt(var + eps) + beta
    ### END SOLUTION


def check_layer_norm_forward_ex(impl):
    """Compare with F.layer_norm (float64, atol 1e-10) on shapes, scales and eps values that expose
    the usual mistakes (unbiased variance, ε outside the root, ignoring eps, γ/β swapped)."""
    g = torch.Generator().manual_seed(0)
    cases = [("(2, 3, 8), eps=1e-5", (2, 3, 8), 1.0, 1e-5),
             (ch.tr("(5, 4)：C = 4，此时除以 C 还是 C−1 差别最大", "(5, 4): C = 4, where C vs C−1 matters most"), (5, 4), 2.0, 1e-5),
             (ch.tr("几乎为常数的词元（σ² < ε）", "nearly constant tokens (σ² < ε)"), (3, 6), 1e-3, 1e-5),
             (ch.tr("eps = 0.1（是否用到了 eps？）", "eps = 0.1 (is eps used?)"), (2, 7), 0.5, 0.1)]
    worst = 0.0
    for case, shape, scale, eps in cases:
        x = scale * torch.randn(*shape, generator=g, dtype=torch.float64) + 0.7
        c = shape[-1]
        gamma = torch.randn(c, generator=g, dtype=torch.float64)
        beta = torch.randn(c, generator=g, dtype=torch.float64)
        want = F.layer_norm(x, (c,), gamma, beta, eps)
        got = impl(x, gamma, beta, eps)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            shape_got = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise AssertionError(ch.tr(f"{case}：期望形状 {tuple(want.shape)}，实际得到 {shape_got}",
                                       f"{case}: expected shape {tuple(want.shape)}, received {shape_got}"))
        err = float((got - want).abs().max())
        if not err <= 1e-10:
            raise AssertionError(ch.tr(f"{case}：与 F.layer_norm 的最大绝对误差为 {err:.2e}——在最后一维上归一化，"
                                       "用有偏方差（除以 C），ε 放在平方根里面，最后算 γ·x̂ + β",
                                       f"{case}: max abs err {err:.2e} vs F.layer_norm — normalise over the last axis, "
                                       "biased variance (divide by C), ε inside the square root, then γ·x̂ + β"))
        worst = max(worst, err)
    return ch.tr(f"4 种情形（含 C=4、σ² < ε 和 eps=0.1）；与 F.layer_norm 的最大绝对误差 {worst:.1e}",
                 f"4 cases incl. C=4, σ² < ε and eps=0.1; max abs err {worst:.1e} vs F.layer_norm")


ch.verify(check_layer_norm_forward_ex, layer_norm_forward_ex)

# %%
from minitransformer.layers import LayerNorm, layer_norm  # the library's versions (exercise 4.1)

with torch.no_grad():
    ch.check_close(ch.tr("库的 layer_norm == torch.nn.LayerNorm", "library layer_norm == torch.nn.LayerNorm"),
                   layer_norm(x, gamma, beta), ref_ln(x), atol=1e-5)
    ours_mod = LayerNorm(C)
    ours_mod.weight.copy_(gamma)
    ours_mod.bias.copy_(beta)
    ch.check_close(ch.tr("库的 LayerNorm 模块 == torch.nn.LayerNorm", "library LayerNorm module == torch.nn.LayerNorm"),
                   ours_mod(x), ref_ln(x), atol=1e-5)
    ch.check_close(ch.tr("练习 4.1 == torch.nn.LayerNorm", "exercise 4.1 == torch.nn.LayerNorm"),
                   layer_norm_forward_ex(x, gamma, beta), ref_ln(x), atol=1e-5)

# %% [markdown] lang="zh"
# ## 2. 手推层归一化的反向传播
#
# 记 r = 1/√(σ² + ε)，于是 x̂ = (x − μ)·r。参数的梯度很简单：
#
#     dβ = Σ_tokens dy          dγ = Σ_tokens dy ⊙ x̂
#
# 对 x 求梯度时要注意，通过 μ 和 σ²，每个 x̂_i 都依赖于同一词元的所有 x_j：
#
#     ∂μ/∂x_j = 1/C      ∂σ²/∂x_j = 2(x_j − μ)/C      ∂r/∂x_j = −r³ (x_j − μ)/C
#     ∂x̂_i/∂x_j = r (δ_ij − 1/C − x̂_i x̂_j / C)
#
# 记 g = dy ⊙ γ（传到 x̂ 的梯度），把 g_i ∂x̂_i/∂x_j 对 i 求和，得到
#
#     dx = r · (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂))
#
# 两个均值项分别来自 μ 和 σ²；漏掉任何一项，下面的检查都会失败。

# %% [markdown] lang="en"
# ## 2. LayerNorm backward by hand
#
# Write r = 1/√(σ² + ε), so x̂ = (x − μ)·r. The parameters are easy:
#
#     dβ = Σ_tokens dy          dγ = Σ_tokens dy ⊙ x̂
#
# For x, every x̂_i depends on every x_j of its token through μ and σ²:
#
#     ∂μ/∂x_j = 1/C      ∂σ²/∂x_j = 2(x_j − μ)/C      ∂r/∂x_j = −r³ (x_j − μ)/C
#     ∂x̂_i/∂x_j = r (δ_ij − 1/C − x̂_i x̂_j / C)
#
# With g = dy ⊙ γ (the gradient reaching x̂), summing g_i ∂x̂_i/∂x_j over i gives
#
#     dx = r · (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂))
#
# The two mean terms are what μ and σ² contribute; drop either and the check below fails.

# %% [markdown] lang="zh"
# ### 练习 4.2 — 层归一化的反向传播
#
# **`layer_norm_backward_ex`** · ★★★ · 3 分 · 约 40 分钟
#
# **题目：** 实现层归一化的反向传播：已知 dy，返回 dx、dγ、dβ。注意 μ 和 σ² 都依赖于每个 x_j。
#
# **提示：** 记 r = 1/√(σ² + ε)，x̂ = (x − μ)·r，g = dy·γ：dx = r·(g − mean(g) − x̂·mean(g·x̂))；
# dγ 与 dβ 在除最后一维外的所有维度上求和。
#
# **不可调用：** `backward.layer_norm_backward`, `backward.LayerNormFunction`,
# `torch.autograd.grad`, `torch.autograd.backward`, `torch.Tensor.backward` 等共 15
# 个（`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch04`
#
# 编写 `layer_norm_backward_ex(dy, x, gamma, eps)`，在不使用自动求导的前提下返回 (dx, dgamma, dbeta)。
# dgamma 和 dbeta 要在前面的所有维度（例如批量维和序列维）上求和，因此形状都是 (C,)。检查程序会在 float64
# 精度下，与通过 `F.layer_norm` 自动求导得到的梯度逐一比较。

# %% [markdown] lang="en"
# ### Exercise 4.2 — LayerNorm backward
#
# **`layer_norm_backward_ex`** · ★★★ · 3 points · ~40 min
#
# **Task:** Write LayerNorm's backward pass: return dx, dγ, dβ given dy. Remember that μ and σ²
# depend on every x_j.
#
# **Hint:** With r = 1/√(σ² + ε), x̂ = (x − μ)·r and g = dy·γ: dx = r·(g − mean(g) −
# x̂·mean(g·x̂)); dγ and dβ sum over every axis but the last.
#
# **Not allowed:** `backward.layer_norm_backward`, `backward.LayerNormFunction`,
# `torch.autograd.grad`, `torch.autograd.backward`, `torch.Tensor.backward` and 10 more
# (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch04`
#
# Write `layer_norm_backward_ex(dy, x, gamma, eps)` returning (dx, dgamma, dbeta) without
# autograd. dgamma and dbeta sum over every leading axis, so they have shape (C,). The check
# compares with autograd through `F.layer_norm` in float64.

# %%
def layer_norm_backward_ex(dy, x, gamma, eps=1e-5):
    """(dx, dγ, dβ) for y = γ ⊙ x̂ + β, x̂ = (x − μ)/√(σ² + ε) over the last axis."""
    ### BEGIN SOLUTION
    mu = x.mean(dim=-1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)
    r = 1.0 / torch.sqrt(var + eps)
    xhat = (x - mu) * r
    g = dy * gamma
    dx = r * (g - g.mean(dim=-1, keepdim=True) - xhat * (g * xhat).mean(dim=-1, keepdim=True))
    dims = tuple(range(dy.dim() - 1))
    return dx, (dy * xhat).sum(dim=dims), dy.sum(dim=dims)
    ### END SOLUTION


def check_layer_norm_backward_ex(impl):
    """Compare (dx, dγ, dβ) with autograd through F.layer_norm (float64, atol 1e-10)."""
    g = torch.Generator().manual_seed(2)
    worst = 0.0
    for case, shape, eps in [("(2, 3, 6)", (2, 3, 6), 1e-5), ("(5, 4), eps=0.1", (5, 4), 0.1)]:
        c = shape[-1]
        x = (1.5 * torch.randn(*shape, generator=g, dtype=torch.float64) + 0.3).requires_grad_()
        gamma = torch.randn(c, generator=g, dtype=torch.float64, requires_grad=True)
        beta = torch.randn(c, generator=g, dtype=torch.float64, requires_grad=True)
        dy = torch.randn(*shape, generator=g, dtype=torch.float64)
        y = F.layer_norm(x, (c,), gamma, beta, eps)
        want = torch.autograd.grad((y * dy).sum(), (x, gamma, beta))
        with torch.no_grad():
            got = impl(dy, x.detach(), gamma.detach(), eps)
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            raise AssertionError(ch.tr(f"{case}：期望一个元组 (dx, dgamma, dbeta)，实际得到 {type(got).__name__}",
                                       f"{case}: expected a tuple (dx, dgamma, dbeta), received {type(got).__name__}"))
        hints = {"dx": ch.tr("dx = r·(g − mean(g) − x̂·mean(g·x̂))，其中 g = dy·γ，r = 1/√(σ²+ε)",
                             "dx = r·(g − mean(g) − x̂·mean(g·x̂)), g = dy·γ, r = 1/√(σ²+ε)"),
                 "dgamma": ch.tr("dγ = dy·x̂ 在最后一维之前的所有维上求和", "dγ = Σ over every leading axis of dy·x̂"),
                 "dbeta": ch.tr("dβ = dy 在最后一维之前的所有维上求和", "dβ = Σ over every leading axis of dy")}
        for name, a, b in zip(("dx", "dgamma", "dbeta"), got, want):
            if not isinstance(a, torch.Tensor) or a.shape != b.shape:
                shape_got = tuple(a.shape) if isinstance(a, torch.Tensor) else type(a).__name__
                raise AssertionError(ch.tr(f"{case}：{name} 期望形状 {tuple(b.shape)}，实际得到 {shape_got}——{hints[name]}",
                                           f"{case}: {name} expected shape {tuple(b.shape)}, received {shape_got} — {hints[name]}"))
            err = float((a - b).abs().max())
            if not err <= 1e-10:
                raise AssertionError(ch.tr(f"{case}：{name} 与经 F.layer_norm 自动求导的结果最大绝对误差为 {err:.2e}——{hints[name]}",
                                           f"{case}: {name} max abs err {err:.2e} vs autograd through F.layer_norm — {hints[name]}"))
            worst = max(worst, err)
    return ch.tr(f"dx、dγ、dβ 与经 F.layer_norm 自动求导的结果一致，最大绝对误差 {worst:.1e}",
                 f"dx, dγ, dβ match autograd through F.layer_norm, max abs err {worst:.1e}")


ch.verify(check_layer_norm_backward_ex, layer_norm_backward_ex)


# %%
from minitransformer.backward import LayerNormFunction, layer_norm_backward, layer_norm_forward  # (exercises 4.1, 4.2)


class HandLayerNorm(torch.autograd.Function):
    """LayerNorm forward (exercise 4.1) with the hand-written backward (exercise 4.2), for gradcheck."""

    @staticmethod
    def forward(ctx, x, gamma, beta):
        ctx.save_for_backward(x, gamma)
        return layer_norm_forward_ex(x, gamma, beta, 1e-5)

    @staticmethod
    def backward(ctx, dy):
        x, gamma = ctx.saved_tensors
        return layer_norm_backward_ex(dy, x, gamma, 1e-5)


xg = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
gg = torch.randn(5, dtype=torch.float64, requires_grad=True)
bg = torch.randn(5, dtype=torch.float64, requires_grad=True)
ch.check(ch.tr("gradcheck（手写的层归一化反向传播），float64", "gradcheck(hand-written LayerNorm backward), float64"),
         torch.autograd.gradcheck(HandLayerNorm.apply, (xg, gg, bg), eps=1e-6, atol=1e-7),
         ch.tr("有限差分，eps 1e-6", "finite differences, eps 1e-6"))
ch.check(ch.tr("gradcheck（库的 LayerNormFunction），float64", "gradcheck(library LayerNormFunction), float64"),
         torch.autograd.gradcheck(lambda a, w, b: LayerNormFunction.apply(a, w, b, 1e-5), (xg, gg, bg), eps=1e-6, atol=1e-7))
dy = torch.randn(3, 5, dtype=torch.float64)
_, xh, rs = layer_norm_forward(xg.detach(), gg.detach(), bg.detach())
lib = layer_norm_backward(dy, xh, rs, gg.detach())
mine = layer_norm_backward_ex(dy, xg.detach(), gg.detach())
for name, a, b in zip(("dx", "dγ", "dβ"), mine, lib):
    ch.check_close(ch.tr(f"{name}：练习 == minitransformer.backward.layer_norm_backward",
                         f"{name}: exercise == minitransformer.backward.layer_norm_backward"), a, b, atol=1e-12)
ch.check_close(ch.tr("每个词元的 dx 之和为 0（把一个词元的输入整体平移，结果不变）",
                     "dx sums to 0 per token (shifting a token's inputs changes nothing)"), mine[0].sum(-1),
               torch.zeros(3, dtype=torch.float64), atol=1e-12)

# %% [markdown] lang="zh"
# ## 3. GELU（高斯误差线性单元）
#
# BERT 和 GPT-2 的激活函数（activation function）都是 GELU(x) = x·Φ(x)，其中 Φ 是标准正态分布的
# 累积分布函数：Φ(x) = ½(1 + erf(x/√2))。可以把它看成一个平滑的 ReLU，只放过一点点负信号：它在
# x = −0.75 附近下探到 −0.17，然后回到 0。
# 它还有一个 tanh 近似：½x(1 + tanh(√(2/π)(x + 0.044715x³)))，与精确形式相差最多约 5·10⁻⁴。
#
# **更正：BERT 用的是哪一种？** “BERT 使用精确的 GELU”这种说法只对了一半。谷歌（Google）原版
# BERT 代码（`modeling.py` 中的 `gelu`）计算的是 **tanh 近似**；Hugging Face 的 `BertModel`
# （`hidden_act="gelu"`）用的则是**精确的 erf 形式**。OpenAI 的 GPT-2 代码用 tanh 近似，Hugging Face
# 的 GPT-2 也是（`"gelu_new"`）。用“另一种” GELU 加载权重，得到的 logits 会略有偏差。

# %% [markdown] lang="en"
# ## 3. GELU (Gaussian error linear unit)
#
# BERT's and GPT-2's activation is GELU(x) = x·Φ(x), where Φ is the standard normal CDF:
# Φ(x) = ½(1 + erf(x/√2)). Think of it as a smooth ReLU that lets a little negative signal
# through: it dips to −0.17 near x = −0.75 before returning to 0.
# Its tanh approximation, ½x(1 + tanh(√(2/π)(x + 0.044715x³))), differs from the exact form by at
# most ~5·10⁻⁴.
#
# **A correction: which one does BERT use?** Saying "BERT uses the exact GELU" is only half
# true. Google's original BERT code (`gelu` in `modeling.py`) computes the **tanh
# approximation**; Hugging Face's `BertModel` (`hidden_act="gelu"`) uses the **exact erf form**.
# OpenAI's GPT-2 code uses the tanh approximation, and so does Hugging Face's GPT-2
# (`"gelu_new"`). Loading weights with the other GELU gives slightly wrong logits.

# %% [markdown] lang="zh"
# ### 练习 4.3 — 精确的 GELU
#
# **`gelu_ex`** · ★ · 1 分 · 约 10 分钟
#
# **题目：** 实现 GELU(x) = x·Φ(x) = ½x(1 + erf(x/√2))，即 Hugging Face 的 BERT 使用的精确（erf）形式（谷歌原版 BERT 代码用的是 tanh 近似）。
#
# **提示：** torch.erf 就是误差函数；√2 写作 math.sqrt(2.0)。
#
# **不可调用：** `layers.gelu`, `F.gelu`, `torch.ops.aten.gelu`, `nn.GELU`
# （`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch04`
#
# 编写 `gelu_ex(x)`，对任意形状的张量逐元素计算。检查程序会在区间 [−30, 30] 上以 float64 精度与
# `F.gelu` 逐点比较；即使 |x| 很大，输出中也不能出现 NaN。

# %% [markdown] lang="en"
# ### Exercise 4.3 — exact GELU
#
# **`gelu_ex`** · ★ · 1 point · ~10 min
#
# **Task:** GELU(x) = x·Φ(x) = ½x(1 + erf(x/√2)), the exact (erf) form Hugging Face's BERT uses (Google's original BERT code uses the tanh approximation).
#
# **Hint:** torch.erf is the error function; √2 is math.sqrt(2.0).
#
# **Not allowed:** `layers.gelu`, `F.gelu`, `torch.ops.aten.gelu`, `nn.GELU`
# (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch04`
#
# Write `gelu_ex(x)`, elementwise on a tensor of any shape. The check compares with `F.gelu` on
# [−30, 30] in float64; large |x| must not give NaN.

# %%
def gelu_ex(x):
    """Exact GELU: x · Φ(x) = ½ x (1 + erf(x / √2))."""
    ### BEGIN SOLUTION
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    ### END SOLUTION


def check_gelu_ex(impl):
    """Compare with F.gelu(approximate='none') on [-30, 30] (float64, atol 1e-12)."""
    x = torch.cat([torch.linspace(-30.0, 30.0, 2001, dtype=torch.float64), torch.tensor([0.0, -0.7518], dtype=torch.float64)])
    got = impl(x)
    want = F.gelu(x)
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        shape_got = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        raise AssertionError(ch.tr(f"期望形状为 {tuple(want.shape)} 的张量，实际得到 {shape_got}",
                                   f"expected a tensor of shape {tuple(want.shape)}, received {shape_got}"))
    if bool(got.isnan().any()):
        raise AssertionError(ch.tr("|x| 较大时输出中出现了 NaN", "the output has NaN for large |x|"))
    err = float((got - want).abs().max())
    if not err <= 1e-12:
        raise AssertionError(ch.tr(f"与 F.gelu 的最大绝对误差为 {err:.2e}——精确的 GELU 是 x·Φ(x) = ½x(1 + erf(x/√2))，"
                                   "而不是 tanh 近似",
                                   f"max abs err {err:.2e} vs F.gelu — the exact GELU is x·Φ(x) = ½x(1 + erf(x/√2)), "
                                   "not the tanh approximation"))
    return ch.tr(f"在 [-30, 30] 上是精确的 GELU，与 F.gelu 的最大绝对误差 {err:.1e}",
                 f"exact GELU on [-30, 30], max abs err {err:.1e} vs F.gelu")


ch.verify(check_gelu_ex, gelu_ex)

# %%
from minitransformer.layers import gelu  # the library's version (exercise 4.3)

grid = torch.linspace(-4, 4, ch.steps(4001, 801), dtype=torch.float64)
ch.check_close(ch.tr("库的 gelu == F.gelu", "library gelu == F.gelu"), gelu(grid), F.gelu(grid), atol=1e-12)
ch.check_close(ch.tr("库的 gelu_tanh == F.gelu(approximate='tanh')", "library gelu_tanh == F.gelu(approximate='tanh')"),
               gelu_tanh(grid), F.gelu(grid, approximate="tanh"), atol=1e-12)
gap = float((gelu(grid) - gelu_tanh(grid)).abs().max())
ch.check(ch.tr("精确 GELU 与 tanh 近似有差别，但小于 1e-3", "exact and tanh GELU differ, but by less than 1e-3"),
         1e-5 < gap < 1e-3, ch.tr(f"在 [-4, 4] 上最大差值 {gap:.1e}", f"max gap {gap:.1e} on [-4, 4]"))
g_min = float(gelu(grid).min())
ch.check(ch.tr("GELU 的最小值约为 −0.17，位于 x = −0.75 附近", "GELU's minimum is about −0.17 near x = −0.75"),
         abs(g_min + 0.170) < 1e-3,
         ch.tr(f"最小值 {g_min:.4f}，位于 x = {float(grid[gelu(grid).argmin()]):.3f}",
               f"min {g_min:.4f} at x = {float(grid[gelu(grid).argmin()]):.3f}"))

xs = grid.clone().requires_grad_()
curves = {"ReLU": relu(xs), ch.tr("GELU（精确）", "GELU (exact)"): gelu(xs),
          ch.tr("GELU（tanh 近似）", "GELU (tanh approx.)"): gelu_tanh(xs)}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for name, ys in curves.items():
    (dys,) = torch.autograd.grad(ys.sum(), xs)
    style = "--" if "tanh" in name else "-"
    axes[0].plot(grid, ys.detach(), style, label=name)
    axes[1].plot(grid, dys, style, label=name)
axes[0].set(title=ch.tr("激活函数", "activation"), xlabel="x")
axes[1].set(title=ch.tr("导数", "derivative"), xlabel="x")
for ax in axes:
    ax.axhline(0, color="k", lw=0.5)
    ax.legend()
ch.savefig(fig, "gelu_vs_relu")

# %% [markdown] lang="zh"
# ## 4. 前馈网络（原文中的“MLP”）
#
#     FFN(x) = W₂ · GELU(W₁ x + b₁) + b₂        W₁: (d_ff, C), W₂: (C, d_ff), BERT 中 d_ff = 4C
#
# 它对每个词元**分别**计算（即“逐位置”，position-wise）：注意力在词元之间交换信息，前馈网络随后
# 对每个词元单独加工。它的 2·C·d_ff 个权重约占 BERT 一层参数量的三分之二。
#
# ### 练习 4.4 — 前馈层
#
# **`feed_forward_ex`** · ★ · 1 分 · 约 10 分钟
#
# **题目：** 实现逐位置前馈层 FFN(x) = W₂·GELU(W₁x + b₁) + b₂（权重按 nn.Linear 的存储方式）。
#
# **提示：** nn.Linear 的权重形状是 (out_features, in_features)，所以一层是 x @ W.T + b；激活函数
# 用练习 4.3 的精确 GELU。
#
# **不可调用：** `layers.FeedForward`, `F.linear`, `nn.Linear`
# （`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch04`
#
# 编写 `feed_forward_ex(x, w1, b1, w2, b2)`，权重的布局与 `nn.Linear.weight` 相同
# （(out_features, in_features)），激活函数用精确的 GELU。

# %% [markdown] lang="en"
# ## 4. The feed-forward network (the article's "MLP")
#
#     FFN(x) = W₂ · GELU(W₁ x + b₁) + b₂        W₁: (d_ff, C), W₂: (C, d_ff), d_ff = 4C in BERT
#
# It acts on every token **separately** ("position-wise"): attention mixes information across
# tokens, the FFN then processes each token on its own. Its 2·C·d_ff weights are about two
# thirds of a BERT layer's parameters.
#
# ### Exercise 4.4 — the feed-forward layer
#
# **`feed_forward_ex`** · ★ · 1 point · ~10 min
#
# **Task:** The position-wise feed-forward layer FFN(x) = W₂·GELU(W₁x + b₁) + b₂ (weights as
# nn.Linear stores them).
#
# **Hint:** nn.Linear stores W as (out_features, in_features), so a layer is x @ W.T + b; the GELU
# is the exact one of exercise 4.3.
#
# **Not allowed:** `layers.FeedForward`, `F.linear`, `nn.Linear`
# (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch04`
#
# Write `feed_forward_ex(x, w1, b1, w2, b2)` with weights laid out like `nn.Linear.weight`
# (out_features, in_features) and the exact GELU.

# %%
def feed_forward_ex(x, w1, b1, w2, b2):
    """FFN(x) = W₂ GELU(W₁ x + b₁) + b₂ on the last axis. w1: (d_ff, C), w2: (C, d_ff)."""
    ### BEGIN SOLUTION
    h = x @ w1.T + b1  # (..., d_ff)
    h = 0.5 * h * (1.0 + torch.erf(h / math.sqrt(2.0)))
    return h @ w2.T + b2  # (..., C)
    ### END SOLUTION


def check_feed_forward_ex(impl):
    """Compare with F.linear → F.gelu → F.linear (float64, atol 1e-10), d_ff ≠ C."""
    g = torch.Generator().manual_seed(3)
    c, d_ff = 6, 10
    x = torch.randn(2, 4, c, generator=g, dtype=torch.float64)
    w1, b1 = torch.randn(d_ff, c, generator=g, dtype=torch.float64), torch.randn(d_ff, generator=g, dtype=torch.float64)
    w2, b2 = torch.randn(c, d_ff, generator=g, dtype=torch.float64), torch.randn(c, generator=g, dtype=torch.float64)
    want = F.linear(F.gelu(F.linear(x, w1, b1)), w2, b2)
    got = impl(x, w1, b1, w2, b2)
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        shape_got = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        raise AssertionError(ch.tr(f"期望形状 {tuple(want.shape)} (B, T, C)，实际得到 {shape_got}",
                                   f"expected shape {tuple(want.shape)} (B, T, C), received {shape_got}"))
    err = float((got - want).abs().max())
    if not err <= 1e-10:
        raise AssertionError(ch.tr(f"与 F.linear/F.gelu 的最大绝对误差为 {err:.2e}——权重与 nn.Linear 一样是 (out, in) 排列"
                                   "（应写 x @ w1.T + b1），激活函数是精确的 GELU",
                                   f"max abs err {err:.2e} vs F.linear/F.gelu — weights are (out, in) like nn.Linear "
                                   "(use x @ w1.T + b1), and the activation is the exact GELU"))
    one = impl(x[:1, :1], w1, b1, w2, b2)
    if float((one - want[:1, :1]).abs().max()) > 1e-10:
        raise AssertionError(ch.tr("单独输入一个词元时结果不同：前馈网络必须独立地作用于每个位置",
                                   "a single token gives a different result alone: the FFN must act on each position independently"))
    return ch.tr(f"与 F.linear → F.gelu → F.linear 一致（C=6，d_ff=10），最大绝对误差 {err:.1e}",
                 f"matches F.linear → F.gelu → F.linear (C=6, d_ff=10), max abs err {err:.1e}")


ch.verify(check_feed_forward_ex, feed_forward_ex)

# %%
from minitransformer.layers import FeedForward  # the library's version (exercise 4.4)

C, D_FF = 16, 64
ffn = FeedForward(C, D_FF)  # library module: fc1, fc2
x = torch.randn(2, 5, C)
with torch.no_grad():
    y_lib = ffn(x)
    y_ex = feed_forward_ex(x, ffn.fc1.weight, ffn.fc1.bias, ffn.fc2.weight, ffn.fc2.bias)
    # PyTorch's own layers, nothing of ours: Linear -> GELU -> Linear with the same weights
    torch_ffn = nn.Sequential(nn.Linear(C, D_FF), nn.GELU(), nn.Linear(D_FF, C))
    torch_ffn[0].load_state_dict(ffn.fc1.state_dict())
    torch_ffn[2].load_state_dict(ffn.fc2.state_dict())
    y_ref = torch_ffn(x)
    per_token = torch.stack([torch.stack([ffn(x[b, t]) for t in range(5)]) for b in range(2)])
ch.show("FFN(x)", y_lib, "(B, T, C)")
ch.check_close(ch.tr("库的 FeedForward == nn.Sequential(Linear, GELU, Linear)",
                     "library FeedForward == nn.Sequential(Linear, GELU, Linear)"), y_lib, y_ref, atol=1e-5)
ch.check_close(ch.tr("练习 == 库的 FeedForward", "exercise == library FeedForward"), y_ex, y_lib, atol=1e-5)
ch.check_close(ch.tr("逐位置：逐个词元计算 == 一次全部计算", "position-wise: token by token == all at once"),
               per_token, y_lib, atol=1e-5)
n_params = sum(p.numel() for p in ffn.parameters())
ch.check(ch.tr("前馈网络的参数量 = 2·C·d_ff + d_ff + C", "FFN parameters = 2·C·d_ff + d_ff + C"),
         n_params == 2 * C * D_FF + D_FF + C, f"{n_params}")

# %% [markdown] lang="zh"
# ## 5. 残差连接与暂退法
#
# 每个子层 f（注意力或前馈网络）都用同样的方式包起来。BERT 和原始 Transformer 把层归一化放在
# 残差求和**之后**（后置层归一化，post-LN）；GPT-2 则放在子层**之前**（前置层归一化，pre-LN）：
#
#     post-LN:  x ← LN(x + Dropout(f(x)))
#     pre-LN:   x ← x + Dropout(f(LN(x)))
#
# 训练时，暂退法（dropout）以概率 p 把每个值置零，并把保留下来的值乘以 1/(1 − p)，因此期望不变；
# 评估时它什么也不做。第 6 章会在一个很深的堆叠上比较这两种放置方式。

# %% [markdown] lang="en"
# ## 5. Residual connections and dropout
#
# Each sublayer f (attention or FFN) is wrapped the same way. BERT and the original Transformer
# put the LayerNorm **after** the residual sum (post-LN); GPT-2 puts it **before** the sublayer
# (pre-LN):
#
#     post-LN:  x ← LN(x + Dropout(f(x)))
#     pre-LN:   x ← x + Dropout(f(LN(x)))
#
# Dropout in training zeroes each value with probability p and multiplies the survivors by
# 1/(1 − p), so the expected value is unchanged; in evaluation it does nothing. ch06 compares
# the two placements through a deep stack.

# %%
p = 0.1
drop = nn.Dropout(p)
norm = LayerNorm(C)
with torch.no_grad():
    norm.weight.copy_(1 + 0.1 * torch.randn(C))
    norm.bias.copy_(0.1 * torch.randn(C))


def f(h):
    return ffn(h), None  # a sublayer returns (output, attention weights or None)


with torch.no_grad():
    drop.eval()
    post, _ = sublayer_connection(x, norm, f, drop, norm_first=False)
    pre, _ = sublayer_connection(x, norm, f, drop, norm_first=True)
    ch.check_close(ch.tr("后置层归一化：LN(x + Dropout(FFN(x)))（评估模式）", "post-LN: LN(x + Dropout(FFN(x))) (eval)"), post, F.layer_norm(x + y_ref, (C,), norm.weight, norm.bias), atol=1e-5)
    pre_ref = x + torch_ffn(F.layer_norm(x, (C,), norm.weight, norm.bias))
    ch.check_close(ch.tr("前置层归一化：x + Dropout(FFN(LN(x)))（评估模式）", "pre-LN: x + Dropout(FFN(LN(x))) (eval)"),
                   pre, pre_ref, atol=1e-5)

    drop.train()
    ch.manual_seed(7)
    post_train, _ = sublayer_connection(x, norm, f, drop, norm_first=False)
    ch.manual_seed(7)
    manual = F.layer_norm(x + F.dropout(y_ref, p, training=True), (C,), norm.weight, norm.bias)
    ch.check_close(ch.tr("训练模式下的后置层归一化 == 用 F.dropout 写出的公式（相同种子）",
                         "post-LN in training == the formula with F.dropout (same seed)"), post_train, manual, atol=1e-5)

    big = torch.ones(ch.steps(1_000_000, 200_000))
    dropped = drop(big)
    frac = float((dropped == 0).float().mean())
    ch.check_value(ch.tr(f"暂退法把比例为 p = {p} 的值置零（实测比例）", f"dropout zeroes a fraction p = {p} of the values (measured fraction)"),
                   frac, low=p - 0.005, high=p + 0.005)
    ch.check(ch.tr("保留下来的值乘以 1/(1 − p)", "survivors are scaled by 1/(1 − p)"),
             bool(torch.isclose(dropped.max(), torch.tensor(1 / (1 - p)))),
             ch.tr(f"保留值 = {float(dropped.max()):.4f}", f"survivors = {float(dropped.max()):.4f}"))
    ch.check_value(ch.tr("……所以均值仍为 1", "… so the mean stays 1"), float(dropped.mean()), low=0.99, high=1.01)
    drop.eval()
    ch.check(ch.tr("评估模式下暂退法是恒等映射", "in eval mode dropout is the identity"), torch.equal(drop(big), big))

# %% [markdown] lang="zh"
# 为什么要有残差连接（residual connection）？x + f(x) 对 x 的梯度是 I + ∂f/∂x：即使 f 的初始化很差，
# 恒等路径也能把信号（以及梯度）穿过任意多层传下去。第 6 章会测量层归一化的位置对这条路径有什么
# 影响。
#
# ## 小结
#
# * 层归一化：方差用有偏估计，ε 放在根号内；手推了它的反向传播（gradcheck ✓）；
# * 精确的 GELU 与 tanh 近似，都与 `F.gelu` 对照过；并说明了 BERT 的两种实现各用哪一种；
# * 逐位置前馈网络，与 PyTorch 的 Linear–GELU–Linear 一致；
# * 后置与前置层归一化两种写法中的残差连接与暂退法。

# %% [markdown] lang="en"
# Why the residual? The gradient of x + f(x) with respect to x is I + ∂f/∂x: the identity path
# carries the signal (and the gradient) through any number of layers even when f is poorly
# initialised. ch06 measures what LayerNorm placement does to that path.
#
# ## What we built
#
# * LayerNorm with biased variance and ε inside the root, its hand-derived backward (gradcheck ✓);
# * exact and tanh GELU against `F.gelu`, and which of the two each BERT implementation uses;
# * the position-wise feed-forward network against PyTorch's Linear–GELU–Linear;
# * the residual + dropout wiring for post-LN and pre-LN.

# %%
ch.done()
