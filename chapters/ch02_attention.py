# %% [markdown] lang="zh"
# # 第 2 章 · 自注意力机制：缩放点积注意力（原文 §4.2.1）
#
# 原文给出了公式
#
#     Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V
#
# 便戛然而止。本章从零开始实现这个缩放点积注意力（scaled dot-product attention），即自注意力
# （self-attention）的核心计算，并逐步验证：
#
# 1. 先用 Python 循环一次算一个查询（query），再把同样的计算写成一次矩阵乘法；
# 2. 各个形状：**d_k 是查询和键（key）的维度，值（value）有自己的维度 d_v**；
# 3. 为什么要把分数除以 √d_k（用实验测量，而不是直接断言）；
# 4. 掩码（mask）：填充掩码、因果掩码、两者组合，以及什么也看不到的那一行；
# 5. 手推反向传播（backpropagation）：dV、dP、dS、dQ、dK，并与自动求导和 `gradcheck` 对照；
# 6. 一张注意力热力图。
#
# 每个结果都与 `torch.nn.functional.scaled_dot_product_attention`（不是本书编写的）以及本书的库
# `minitransformer.attention` 进行比较。
#
# **更正原文。** §4.2.1 说 d_k 是“键和值矩阵的维度”。其实 d_k 是**查询和键**的维度——被缩放的
# 正是二者的点积。值向量的维度 d_v 可以与 d_k 不同，输出的列数是 d_v。

# %% [markdown] lang="en"
# # Chapter 2 · Self-attention — scaled dot-product attention (Article §4.2.1)
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

# %%
import math

import torch
import torch.nn.functional as F

from chapters.book import Chapter, plt
from minitransformer.attention import causal_mask, padding_mask

ch = Chapter("ch02_attention")

# %% [markdown] lang="zh"
# ## 1. 一次算一个查询
#
# 取 T = 4 个词元。每个词元 i 有一个查询 q_i、一个键 k_i（各含 d_k 个数）和一个值 v_i（含 d_v 个
# 数）。词元 i 要问的是：*我的查询与每个键有多匹配？*
#
#     s_ij = q_i · k_j / √d_k          （对每个键 j 打一个分）
#     a_ij = exp(s_ij) / Σ_j' exp(s_ij')   （softmax：和为 1 的正权重）
#     o_i  = Σ_j a_ij v_j               （对值的加权平均）
#
# 下面用普通的 Python 浮点数和两重循环来算。

# %% [markdown] lang="en"
# ## 1. One query at a time
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

# %% [markdown] lang="zh"
# 对 i 的循环、对 j 和 c 的求和，合起来恰好就是矩阵乘法：Q Kᵀ 的第 i 行装着所有 j 的 q_i · k_j。
# 因此整个注意力层只需三步矩阵运算：

# %% [markdown] lang="en"
# The loop over i and the sums over j and c are exactly a matrix product: row i of Q Kᵀ holds
# q_i · k_j for every j. So the whole layer is three matrix operations:

# %%
S = q @ k.T / math.sqrt(D_K)  # (T, T)
P = torch.softmax(S, dim=-1)  # (T, T), each row sums to 1
out_matrix = P @ v  # (T, d_v)
ch.show("S", S)
ch.show("P", P)
ch.check_close(ch.tr("循环写法 == 矩阵写法 softmax(QKᵀ/√d_k)V", "loop == matrix form softmax(QKᵀ/√d_k)V"),
               out_loop, out_matrix, atol=1e-6)
ch.check_close(ch.tr("P 的每一行之和为 1", "rows of P sum to 1"), P.sum(-1), torch.ones(T), atol=1e-6)
ref = F.scaled_dot_product_attention(q[None], k[None], v[None])[0]
ch.check_close(ch.tr("矩阵写法 == F.scaled_dot_product_attention", "matrix form == F.scaled_dot_product_attention"),
               out_matrix, ref, atol=1e-6)

# %% [markdown] lang="zh"
# ## 2. d_k 与 d_v 是两回事
#
# 查询和键必须有相同的宽度 d_k（因为要做点积）。值只需要与键有相同的*行数*（每个键对应一个值），
# d_v 与 d_k 之间没有任何约束：

# %% [markdown] lang="en"
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
ch.check(ch.tr("输出有 d_v 列，而不是 d_k 列", "output has d_v columns, not d_k"), out.shape == (B, T_Q, D_V),
         ch.tr(f"形状 {tuple(out.shape)}", f"shape {tuple(out.shape)}"))
ch.check_close(ch.tr("矩阵写法 == F.scaled_dot_product_attention（d_v ≠ d_k）",
                     "matrix form == F.scaled_dot_product_attention (d_v ≠ d_k)"), out,
               F.scaled_dot_product_attention(q, k, v), atol=1e-6)

# %% [markdown] lang="zh"
# ## 3. 为什么要除以 √d_k
#
# 假设 q 和 k 的各分量相互独立，均值为 0、方差为 1。那么 q · k = Σ_c q_c k_c 是 d_k 个独立项之和，
# 每项方差为 1，所以 **Var(q · k) = d_k**。当 d_k = 64 时，原始分数的标准差是 8；对相差这么大的
# 一组数做 softmax，结果几乎就是独热向量。除以 √d_k 之后，无论 d_k 多大，方差都回到 1。
#
# 为什么近乎独热的 softmax 不好？它的雅可比矩阵 ∂p/∂s = diag(p) − p pᵀ 在某个 p_i ≈ 1 时几乎为零：
# 传回查询和键的梯度随之消失，学习就停滞了。一句话：点积的方差随 d_k 线性增长；不缩放时 softmax
# 饱和，梯度消失。

# %% [markdown] lang="en"
# ## 3. Why divide by √d_k?
#
# Suppose the entries of q and k are independent, mean 0, variance 1. Then q · k = Σ_c q_c k_c is a
# sum of d_k independent terms, each of variance 1, so **Var(q · k) = d_k**. With d_k = 64 the raw
# scores have a standard deviation of 8; softmax of numbers that far apart is almost one-hot.
# Dividing by √d_k brings the variance back to 1 whatever d_k is.
#
# Why is a nearly one-hot softmax bad? Its Jacobian ∂p/∂s = diag(p) − p pᵀ is nearly zero when one
# p_i ≈ 1: the gradient that reaches the queries and keys vanishes and learning stalls.

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
    print(ch.tr(f"  d_k={d:5d}  Var(q·k)={variances[-1]:8.1f}  熵：不缩放 {ent_raw[-1]:.2f} / 缩放 {ent_scaled[-1]:.2f} nats"
                f"  |雅可比|：不缩放 {jac_raw[-1]:.3f} / 缩放 {jac_scaled[-1]:.3f}",
                f"  d_k={d:5d}  Var(q·k)={variances[-1]:8.1f}  entropy raw {ent_raw[-1]:.2f} / scaled {ent_scaled[-1]:.2f} nats"
                f"  |Jacobian| raw {jac_raw[-1]:.3f} / scaled {jac_scaled[-1]:.3f}"))

ratios = [var / d for var, d in zip(variances, dims)]
ratio_text = "Var/d_k = " + ", ".join(f"{r:.2f}" for r in ratios)
ch.check_value(ch.tr("对每个 d_k 都有 Var(q·k) ≈ d_k：Var/d_k 的最小值", "Var(q·k) ≈ d_k for every d_k: smallest Var/d_k"),
               min(ratios), low=0.85, detail=ratio_text)
ch.check_value(ch.tr("对每个 d_k 都有 Var(q·k) ≈ d_k：Var/d_k 的最大值", "Var(q·k) ≈ d_k for every d_k: largest Var/d_k"),
               max(ratios), high=1.15)
ch.check_value(ch.tr("不缩放时 softmax 随 d_k 增大而饱和（d_k=1024 与 d_k=1 时的熵之比）",
                     "unscaled softmax saturates as d_k grows (entropy at d_k=1024 / at d_k=1)"), ent_raw[-1] / ent_raw[0], high=0.25,
               detail=ch.tr(f"d_k=1 时熵为 {ent_raw[0]:.2f} nats，d_k=1024 时为 {ent_raw[-1]:.2f}；均匀分布 = {math.log(n_keys):.2f}",
                            f"entropy {ent_raw[0]:.2f} nats at d_k=1, {ent_raw[-1]:.2f} at d_k=1024; uniform = {math.log(n_keys):.2f}"))
ch.check_value(ch.tr("缩放后的 softmax 对每个 d_k 都保持相同的分散程度（熵的变化范围，nats）",
                     "scaled softmax keeps the same spread for every d_k (entropy range, nats)"), max(ent_scaled) - min(ent_scaled),
               high=0.25, detail=ch.tr(f"熵介于 {min(ent_scaled):.2f} 与 {max(ent_scaled):.2f} nats 之间",
                                       f"entropy between {min(ent_scaled):.2f} and {max(ent_scaled):.2f} nats"))
ch.check_value(ch.tr("饱和的 softmax 传回的梯度小得多（d_k=1024 时不缩放与缩放的 |∂p/∂s| 之比）",
                     "saturated softmax passes back a much smaller gradient (|∂p/∂s| unscaled / scaled at d_k=1024)"),
               jac_raw[-1] / jac_scaled[-1], high=0.3,
               detail=ch.tr(f"|∂p/∂s|：不缩放 {jac_raw[-1]:.3f}，缩放 {jac_scaled[-1]:.3f}",
                            f"|∂p/∂s| {jac_raw[-1]:.3f} unscaled vs {jac_scaled[-1]:.3f} scaled"))

fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
axes[0].loglog(dims, variances, "o-", label=ch.tr("实测 Var(q·k)", "measured Var(q·k)"))
axes[0].loglog(dims, dims, "k--", lw=1, label="d_k")
axes[0].loglog(dims, [var / d for var, d in zip(variances, dims)], "s-", label="Var(q·k/√d_k)")
axes[0].set(xlabel="d_k", title=ch.tr("分数的方差随 d_k 线性增长", "score variance grows like d_k"))
axes[1].semilogx(dims, ent_raw, "o-", label="softmax(q·k)")
axes[1].semilogx(dims, ent_scaled, "s-", label="softmax(q·k/√d_k)")
axes[1].axhline(math.log(n_keys), color="k", ls="--", lw=1, label=ch.tr(f"均匀分布 (log {n_keys})", f"uniform (log {n_keys})"))
axes[1].set(xlabel="d_k", ylabel=ch.tr("熵 (nats)", "entropy (nats)"),
            title=ch.tr(f"注意力的熵，{n_keys} 个键", f"attention entropy, {n_keys} keys"))
axes[2].semilogx(dims, jac_raw, "o-", label=ch.tr("不缩放", "unscaled"))
axes[2].semilogx(dims, jac_scaled, "s-", label=ch.tr("缩放", "scaled"))
axes[2].set(xlabel="d_k", title=ch.tr("softmax 雅可比矩阵的大小，‖diag(p) − ppᵀ‖ 的均值",
                                      "softmax Jacobian size, mean ‖diag(p) − ppᵀ‖"))
for ax in axes:
    ax.legend(fontsize=8)
ch.savefig(fig, "scaling_by_sqrt_dk")

# %% [markdown] lang="zh"
# ## 4. 掩码
#
# 掩码规定了一个查询可以看哪些键。我们沿用 PyTorch `F.scaled_dot_product_attention` 的约定：
# **布尔掩码为 True 的位置表示允许关注**。被遮住的分数在 softmax 之前置为 −∞，因此它们的权重
# 恰好为 0。
#
# * **填充掩码**：一个批次里较短的句子会被填充（padding）到相同长度，真实词元不能去关注填充位置。
#   我们从 (B, T) 的 `attention_mask`（1 表示真实词元，沿用 Hugging Face 的约定）构造一个
#   (B, 1, 1, T) 的掩码，它可以在注意力头和查询两个维度上广播。
# * **因果掩码**：语言模型（GPT）预测第 i 个词元时只能看到位置 ≤ i 的词元，即下三角部分。
# * **两者组合**：用逻辑“与”（AND）合并。
#
# 如果某一行*什么都不能看*（例如左填充的因果批次中，位于填充位置的查询），它的 softmax 就是全
# −∞ 的 softmax = 0/0 = NaN。我们规定这样的行输出为零，PyTorch 的 `F.scaled_dot_product_attention`
# 也是如此（较新的版本；`nn.MultiheadAttention` 仍然给出 NaN）。

# %% [markdown] lang="en"
# ## 4. Masks
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

# %% [markdown] lang="zh"
# ### 练习 2.1 — 带掩码的注意力
#
# **`masked_attention`** · ★★ · 3 分 · 约 30 分钟
#
# **题目：** 实现缩放点积注意力 softmax(QKᵀ/√d_k)V，支持布尔掩码（True 表示可以关注）和因果掩码；
# 若某个查询的所有键都被遮住，输出应为零向量而不是 NaN。
#
# **提示：** 先合成一个布尔矩阵 allowed（因果下三角 与 掩码 取“与”），False 处填 −∞；对一个键都看
# 不到的行，在 softmax 之前和之后都置零。
#
# **不可调用：** `attention.scaled_dot_product_attention`, `attention.sdpa_fast`,
# `attention.masked_softmax`, `F.scaled_dot_product_attention`,
# `torch.ops.aten.scaled_dot_product_attention` 等共 9 个
# （`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch02`
#
# 编写 `masked_attention(q, k, v, mask=None, is_causal=False)`：
#
# * q: (..., T_q, d_k)，k: (..., T_k, d_k)，v: (..., T_k, d_v) → (..., T_q, d_v)；
# * `mask`：布尔张量，True 表示可以关注，可广播到 (..., T_q, T_k)，也可以是 None；
# * `is_causal`：另外禁止查询 i 看到 j > i 的键（此时取 T_q = T_k）；
# * 没有任何键可看的查询行返回零（而不是 NaN）。
#
# 缩放因子为 1/√d_k，其中 d_k = q.size(-1)。检查程序会与 `F.scaled_dot_product_attention` 比较。

# %% [markdown] lang="en"
# ### Exercise 2.1 — masked attention
#
# **`masked_attention`** · ★★ · 3 points · ~30 min
#
# **Task:** Write scaled dot-product attention softmax(QKᵀ/√d_k)V with a boolean mask (True =
# may attend) and an optional causal mask. A query whose every key is masked must output zeros,
# not NaN.
#
# **Hint:** Build one boolean 'allowed' matrix (the causal triangle AND the mask), put −∞ where it
# is False, and zero the rows where nothing is allowed both before and after the softmax.
#
# **Not allowed:** `attention.scaled_dot_product_attention`, `attention.sdpa_fast`,
# `attention.masked_softmax`, `F.scaled_dot_product_attention`,
# `torch.ops.aten.scaled_dot_product_attention` and 4 more
# (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch02`
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
ch.show(ch.tr("填充掩码", "padding mask"), pad, "(B, 1, 1, T_k)")
ch.show(ch.tr("因果掩码", "causal mask"), causal, "(T_q, T_k)")
ch.show(ch.tr("填充 & 因果", "padding & causal"), both, "(B, 1, T_q, T_k)")
print(ch.tr("  因果掩码（1 表示可以关注）：\n", "  causal mask (1 = may attend):\n")
      + "\n".join("    " + " ".join(str(int(b)) for b in row) for row in causal))
print(ch.tr("  第 2 句，填充 & 因果：\n", "  sentence 2, padding & causal:\n")
      + "\n".join("    " + " ".join(str(int(b)) for b in row) for row in both[1, 0]))

ch.check(ch.tr("因果掩码是下三角矩阵", "causal mask is the lower triangle"),
         torch.equal(causal, torch.ones(T, T, dtype=torch.bool).tril()))
for name, mask in [(ch.tr("填充", "padding"), pad), (ch.tr("因果", "causal"), causal),
                   (ch.tr("填充 & 因果", "padding & causal"), both)]:
    ours, w = scaled_dot_product_attention(q, k, v, attn_mask=mask, return_weights=True)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    ch.check_close(ch.tr(f"{name}掩码：库实现 == F.scaled_dot_product_attention",
                         f"{name} mask: library == F.scaled_dot_product_attention"), ours, ref, atol=1e-6)
    ch.check(ch.tr(f"{name}掩码：被遮住位置的权重恰好为 0", f"{name} mask: masked weights are exactly 0"),
             (w.masked_select(~mask.expand_as(w)) == 0).all())
ours_causal = scaled_dot_product_attention(q, k, v, is_causal=True)
ch.check_close(ch.tr("is_causal=True 等同于显式给出的因果掩码", "is_causal=True == explicit causal mask"), ours_causal,
               scaled_dot_product_attention(q, k, v, attn_mask=causal), atol=0)

# an additive mask (0 to keep, −∞ to drop) is the same thing written differently
additive = torch.zeros(T, T).masked_fill(~causal, float("-inf"))
ch.check_close(ch.tr("加性 −∞ 掩码 == 布尔掩码", "additive −∞ mask == boolean mask"),
               scaled_dot_product_attention(q, k, v, attn_mask=additive), ours_causal, atol=0)

# the dead rows: sentence 2, queries 0 and 1 are padding and (causally) can only see padding
out, w = scaled_dot_product_attention(q, k, v, attn_mask=both, return_weights=True)
dead = ~both.any(-1)  # (B, 1, T) rows with nothing to see
ch.check(ch.tr("这个批次里确实有被完全遮住的行", "fully masked rows exist in this batch"), int(dead.sum()) == 2,
         ch.tr(f"{int(dead.sum())} 行（第 2 句的查询 0 和 1）", f"{int(dead.sum())} rows (sentence 2, queries 0 and 1)"))
ch.check(ch.tr("被完全遮住的行 → 权重为零、输出为零，没有 NaN", "fully masked rows → zero weights and zero output, no NaN"),
         bool((out[dead] == 0).all()) and bool((w[dead] == 0).all()) and not bool(out.isnan().any()))
ch.check(ch.tr("朴素的 softmax(全 −∞ 的行) 会得到 NaN（这正是我们要避免的）", "naive softmax(−∞ row) would give NaN (what we avoid)"),
         bool(torch.softmax(torch.full((3,), float("-inf")), -1).isnan().all()))

# %% [markdown] lang="zh"
# ## 5. 手推反向传播
#
# 把前向计算写成几步，其中缩放因子 c = 1/√d_k：
#
#     S = c · Q Kᵀ        P = softmax(S)（逐行）        O = P V
#
# 已知 dO = ∂L/∂O，沿着计算反向推回去：
#
#     dV = Pᵀ dO                     （O = P V 对 V 是线性的）
#     dP = dO Vᵀ                     （……对 P 也是线性的）
#     dS = P ⊙ (dP − rowsum(dP ⊙ P)) （softmax 的雅可比矩阵 diag(p) − p pᵀ，逐行作用）
#     dQ = c · dS K
#     dK = c · dSᵀ Q
#
# 被遮住的分数对应 P = 0，所以那里 dS = 0：梯度不会流经被遮住的位置。

# %% [markdown] lang="en"
# ## 5. The backward pass by hand
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

# %% [markdown] lang="zh"
# ### 练习 2.2 — 手推注意力的反向传播
#
# **`attention_backward_by_hand`** · ★★★ · 3 分 · 约 45 分钟
#
# **题目：** 推导并实现注意力的反向传播：已知 dO，求 dQ、dK、dV（dV = PᵀdO，dP = dO Vᵀ，dS = P ⊙
# (dP − rowsum(dP ⊙ P))，dQ 与 dK 乘以 1/√d_k）。
#
# **提示：** 先按前向公式重新算出 P，再依次套用五个公式；dS 里的行和是对键（最后一维）求和，要
# keepdim=True。
#
# **不可调用：** `backward.attention_backward`, `backward.AttentionFunction`,
# `backward.softmax_backward`, `torch.autograd.grad`, `torch.autograd.backward` 等共
# 15 个（`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch02`
#
# 编写 `attention_backward_by_hand(q, k, v, do, mask=None)`：对于 O = softmax(q kᵀ/√d_k, 加掩码) v，
# 在不使用自动求导的前提下返回三个梯度 (dq, dk, dv)。可以假定每个查询至少能看到一个键。检查程序
# 会在 float64 精度下，把你的结果与通过 `F.scaled_dot_product_attention` 自动求导得到的梯度逐一比较。

# %% [markdown] lang="en"
# ### Exercise 2.2 — attention backward by hand
#
# **`attention_backward_by_hand`** · ★★★ · 3 points · ~45 min
#
# **Task:** Derive and write the backward pass of attention: given dO, return dQ, dK, dV (dV =
# PᵀdO, dP = dO Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ and dK scaled by 1/√d_k).
#
# **Hint:** Recompute P with the forward formulas first, then apply the five formulas in order;
# the row sum in dS is over the keys (the last axis), with keepdim=True.
#
# **Not allowed:** `backward.attention_backward`, `backward.AttentionFunction`,
# `backward.softmax_backward`, `torch.autograd.grad`, `torch.autograd.backward` and 10 more
# (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch02`
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

# %% [markdown] lang="zh"
# 还有三种办法可以确认手写的梯度是对的：库里的 `attention_backward`（同样的公式）、对我们自己的
# 前向计算做自动求导，以及 `torch.autograd.gradcheck`。后者在 float64 下把反向传播的结果与
# 有限差分 (f(x + ε) − f(x − ε)) / 2ε 比较——这个参照完全不涉及微积分。

# %% [markdown] lang="en"
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
    ch.check_close(ch.tr(f"手推的 {name} == 对库的前向计算自动求导的结果", f"{name} by hand == autograd through the library forward"),
                   ours_g, ref_g, atol=1e-12)
scale = 1.0 / math.sqrt(q.size(-1))
p = masked_softmax(scale * (q.detach() @ k.detach().transpose(-2, -1)), mask)
lib = attention_backward(q.detach(), k.detach(), v.detach(), p, do, scale)
ch.check_close(ch.tr("手推的 dQ == minitransformer.backward.attention_backward", "dQ by hand == minitransformer.backward.attention_backward"),
               dq, lib[0], atol=1e-12)
ch.check(ch.tr("填充的键得到零梯度（dK、dV 的第 3、4 行）", "padded keys get zero gradient (dK, dV rows 3 and 4)"),
         bool((dk[:, 3:] == 0).all() and (dv[:, 3:] == 0).all()))
ok = torch.autograd.gradcheck(lambda a, b, c: HandAttention.apply(a, b, c, mask), (q, k, v), eps=1e-6, atol=1e-7)
ch.check(ch.tr("torch.autograd.gradcheck（手写的反向传播），float64", "torch.autograd.gradcheck(hand-written backward), float64"), ok,
         ch.tr("有限差分，eps 1e-6，atol 1e-7", "finite differences, eps 1e-6, atol 1e-7"))
ok = torch.autograd.gradcheck(lambda a, b, c: AttentionFunction.apply(a, b, c, mask), (q, k, v), eps=1e-6, atol=1e-7)
ch.check(ch.tr("gradcheck（库的 AttentionFunction），float64", "gradcheck(library AttentionFunction), float64"), ok)

# %% [markdown] lang="zh"
# ## 6. 注意力热力图
#
# 给一个短句中的每个词一个随机向量，并直接把它同时用作查询、键和值（还没有可学习的投影——那是
# 下一章的内容）。一个查询与它自己最匹配，而与*同一个词的另一次出现*也同样匹配：两个 "the" 都
# 关注两个 "the"。加上因果掩码后，第一个 "the" 就再也看不到第二个了。

# %% [markdown] lang="en"
# ## 6. An attention heat map
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
ch.check(ch.tr('第二个 "the" 最关注的是两个 "the"', 'the second "the" attends most to the two "the"s'), top2 == {0, 4},
         ch.tr(f"权重最大的键 {sorted(top2)}", f"top keys {sorted(top2)}"))
ch.check(ch.tr('加上因果掩码后，第一个 "the" 看不到第二个', 'with a causal mask, the first "the" cannot see the second'),
         float(w_causal[0, 4]) == 0.0)

fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
for ax, w, title in [(axes[0], w_full, ch.tr("无掩码（BERT 式，双向）", "no mask (BERT-style, bidirectional)")),
                     (axes[1], w_causal, ch.tr("因果掩码（GPT 式）", "causal mask (GPT-style)"))]:
    im = ax.imshow(w.numpy(), cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(words)), words, rotation=45)
    ax.set_yticks(range(len(words)), words)
    ax.set(xlabel=ch.tr("键（被关注的词元）", "key (attended to)"), title=title)
    for i in range(len(words)):
        for j in range(len(words)):
            ax.text(j, i, f"{float(w[i, j]):.2f}", ha="center", va="center", fontsize=7,
                    color="white" if float(w[i, j]) < 0.5 else "black")
axes[0].set_ylabel(ch.tr("查询", "query"))
fig.colorbar(im, ax=axes, shrink=0.8, label=ch.tr("注意力权重", "attention weight"))
ch.savefig(fig, "attention_heatmap")

# %% [markdown] lang="zh"
# ## 小结
#
# * 缩放点积注意力：从两重循环写到一次矩阵乘法，结果与 PyTorch 的内核完全一致；
# * 查询和键的维度 d_k 与值的维度 d_v 是两个互不相关的尺寸；
# * 实测了除以 √d_k 的作用：点积的方差等于 d_k；如果不缩放，softmax 会饱和，梯度随之消失；
# * 布尔掩码（填充、因果、两者组合），被完全遮住的行输出零；
# * 手推的反向传播，与自动求导和有限差分的结果一致。
#
# 下一章（ch03）把这个注意力拆成多个头。

# %% [markdown] lang="en"
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
