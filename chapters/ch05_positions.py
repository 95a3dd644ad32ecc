# %% [markdown] lang="zh"
# # 第 5 章 · 位置编码：词序从何而来（对应文章 §4.2.1–4.2.2）
#
# 文章给出的公式里没有任何位置信息，这是一个实实在在的缺口：注意力本身**看不到词序**。
# 把输入的词元（token）打乱，输出只会按同样的方式被打乱——“dog bites man”（狗咬人）和
# “man bites dog”（人咬狗）得到的是同一组向量。我们先用数值验证这一点，再实现三种标准的
# 补救办法，并逐一检验：
#
# 1. **正弦位置编码**（sinusoidal positional encoding，原始 Transformer）：一张固定的表，
#    直接加到词嵌入上；
# 2. **可学习的位置编码**（learned positional embedding，BERT、GPT-2）：一张训练出来的表，
#    每个位置一行（BERT 有 512 行）；
# 3. **旋转位置编码**（rotary position embedding，RoPE；LLaMA 和近年的大多数大语言模型）：
#    旋转查询和键，使 q_m · k_n 只取决于距离 m − n。
#
# 不带因果掩码的自注意力对词序不敏感（置换等变，permutation-equivariant），所以编码器里的
# 词序信息完全来自位置编码。

# %% [markdown] lang="en"
# # Chapter 5 · Positional encoding — where word order comes from (accompanies Article §4.2.1–4.2.2)
#
# The article's formulas have no positions in them, and that is a real gap: attention by itself
# **cannot see word order**. Shuffle the tokens and the outputs are shuffled the same way — "dog
# bites man" and "man bites dog" give the same set of vectors. We show that numerically, then
# build the three standard fixes and check each:
#
# 1. **sinusoidal** positions (original Transformer): a fixed table added to the embeddings;
# 2. **learned** positions (BERT, GPT-2): a trained table, one row per position (BERT: 512 rows);
# 3. **rotary** positions, RoPE (LLaMA and most recent LLMs): rotate queries and keys so that
#    q_m · k_n depends only on the distance m − n.
#
# Self-attention without a causal mask is blind to word order (permutation-equivariant), so in
# an encoder all word-order information comes from the positional encoding.

# %%
import math

import numpy as np
import torch
import torch.nn as nn

from chapters.book import Chapter, plt
from minitransformer.attention import MultiHeadAttention
from minitransformer.positions import LearnedPositionalEmbedding

ch = Chapter("ch05_positions")

# %% [markdown] lang="zh"
# ## 1. 不含位置信息的注意力是置换等变的
#
# 用一个置换 π 重新排列输入词元。每个注意力分数只是换了个位置：新分数矩阵的第 (i, j) 个元素
# 是 q_{π(i)} · k_{π(j)}，也就是原矩阵的第 (π(i), π(j)) 个元素；softmax 和加权求和随之一起
# 换位，于是 MHA(x[π]) = MHA(x)[π]。

# %% [markdown] lang="en"
# ## 1. Attention without positions is permutation-equivariant
#
# Reorder the input tokens with a permutation π. Every score just moves: entry (i, j) of the new
# score matrix is q_{π(i)} · k_{π(j)}, entry (π(i), π(j)) of the old one; the softmax and the
# weighted sum follow, so MHA(x[π]) = MHA(x)[π].

# %%
B, T, C, H = 1, 6, 16, 4
mha = MultiHeadAttention(C, H).eval()
x = torch.randn(B, T, C)
perm = torch.randperm(T)
with torch.no_grad():
    out, _ = mha(x)
    out_perm, _ = mha(x[:, perm])
ch.show("perm", perm)
ch.check_close(ch.tr("没有位置信息：MHA(x[π]) == MHA(x)[π]", "no positions: MHA(x[π]) == MHA(x)[π]"),
               out_perm, out[:, perm], atol=1e-5)

words = ["dog", "bites", "man"]
emb = {w: torch.randn(C) for w in words}
s1 = torch.stack([emb[w] for w in ["dog", "bites", "man"]])[None]  # (1, 3, C)
s2 = torch.stack([emb[w] for w in ["man", "bites", "dog"]])[None]
with torch.no_grad():
    pooled1, pooled2 = mha(s1)[0].mean(1), mha(s2)[0].mean(1)
ch.check_close(ch.tr("“dog bites man”和“man bites dog”平均池化后是同一个向量",
                        '"dog bites man" and "man bites dog" pool to the same vector'), pooled1, pooled2, atol=1e-5)

# %% [markdown] lang="zh"
# ## 2. 正弦位置编码
#
#     PE[pos, 2i]   = sin(pos · ω_i)
#     PE[pos, 2i+1] = cos(pos · ω_i),      ω_i = 10000^(−2i/d)
#
# 每一对列都像一根以自己的角速度 ω_i 转动的时钟指针：从每个位置转 1 弧度（i = 0），一直慢到
# 接近每个位置 1/10000 弧度（i = d/2 − 1 时为 10000^(−(d−2)/d)）。它之所以好用，靠的是下面
# 两条性质，下文都会验证：
#
# * **平移就是旋转**：PE[pos + k] = R_k · PE[pos]，其中 R_k 是只取决于 k 的分块对角旋转矩阵，
#   因此一个线性层就能学会“往回看 k 个位置”；
# * **点积只取决于距离**：PE[m] · PE[n] = Σ_i cos((m − n) ω_i)。

# %% [markdown] lang="en"
# ## 2. Sinusoidal positions
#
#     PE[pos, 2i]   = sin(pos · ω_i)
#     PE[pos, 2i+1] = cos(pos · ω_i),      ω_i = 10000^(−2i/d)
#
# Each pair of columns is a clock hand turning at its own speed ω_i, from one radian per position
# (i = 0) down to nearly 1/10000 (10000^(−(d−2)/d) at i = d/2 − 1). Two properties make it work,
# both checked below:
#
# * **shifts are rotations**: PE[pos + k] = R_k · PE[pos], with R_k a block-diagonal rotation that
#   depends on k only — a linear layer can learn "k positions back";
# * **dot products depend only on distance**: PE[m] · PE[n] = Σ_i cos((m − n) ω_i).

# %% [markdown] lang="zh"
# ### 练习 5.1 — 正弦位置编码表
#
# **`sinusoidal_table_ex`** · ★ · 1 分 · 约 15 分钟
#
# **题目：** 构造形状为 (max_len, d_model) 的正弦位置编码表 PE（float64）：PE[pos, 2i] =
# sin(pos·ω_i)，PE[pos, 2i+1] = cos(pos·ω_i)，其中 ω_i = 10000^(−2i/d_model)；d_model 为奇数时抛出
# ValueError。
#
# **提示：** 位置做成 (max_len, 1) 的列、频率做成 (1, d/2) 的行，相乘即得全部角度；偶数列填 sin，
# 奇数列填 cos（pe[:, 0::2] = ...）。
#
# **不可调用：** `positions.sinusoidal_table`, `positions.SinusoidalPositionalEncoding`
# （`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch05`
#
# 按上面的公式实现 `sinusoidal_table_ex(max_len, d_model)`，返回形状为 (max_len, d_model) 的
# float64 张量。第 2i 列和第 2i + 1 列共用同一个频率 ω_i：sin 与 cos 是**交错**排列的，而不是
# 前后各占一半。检查函数会把结果与复指数 e^{i·pos·ω_i} 的辐角（`torch.polar`）比较，并验证
# 点积性质。

# %% [markdown] lang="en"
# ### Exercise 5.1 — the sinusoidal table
#
# **`sinusoidal_table_ex`** · ★ · 1 point · ~15 min
#
# **Task:** Build the sinusoidal position table PE of shape (max_len, d_model) in float64:
# PE[pos, 2i] = sin(pos·ω_i), PE[pos, 2i+1] = cos(pos·ω_i) with ω_i = 10000^(−2i/d_model); refuse
# an odd d_model with a ValueError.
#
# **Hint:** A (max_len, 1) column of positions times a (1, d/2) row of frequencies gives every
# angle at once; fill the even columns with sin and the odd ones with cos (pe[:, 0::2] = ...).
#
# **Not allowed:** `positions.sinusoidal_table`, `positions.SinusoidalPositionalEncoding`
# (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch05`
#
# Write `sinusoidal_table_ex(max_len, d_model)` → a float64 tensor (max_len, d_model) following
# the formula above. Columns 2i and 2i + 1 share the frequency ω_i: sin and cos **interleaved**,
# not two halves. The check compares with the angles of complex exponentials e^{i·pos·ω_i}
# (`torch.polar`) and with the dot-product property.

# %%
def sinusoidal_table_ex(max_len, d_model):
    """PE[pos, 2i] = sin(pos·ω_i), PE[pos, 2i+1] = cos(pos·ω_i), ω_i = 10000^(−2i/d). -> (max_len, d) float64."""
    ### BEGIN SOLUTION
    if d_model % 2 != 0:
        raise ValueError(f"d_model: expected an even number, received {d_model}")
    pos = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)  # (L, 1)
    omega = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (d/2,)
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * omega)  # (L, d/2) into the even columns
    pe[:, 1::2] = torch.cos(pos * omega)
    return pe
    ### END SOLUTION


def check_sinusoidal_table_ex(impl):
    """sin and cos from the angles of torch.polar(1, pos·ω_i) (atol 1e-6) for three sizes; the dot products
    PE[m]·PE[n] = Σ_i cos((m − n)ω_i); an odd d_model refused with ValueError."""
    worst = 0.0
    for max_len, d in [(50, 16), (7, 2), (129, 64)]:
        omega = torch.pow(torch.tensor(10000.0, dtype=torch.float64), -2.0 * torch.arange(d // 2, dtype=torch.float64) / d)
        angles = torch.arange(max_len, dtype=torch.float64)[:, None] * omega  # (L, d/2)
        z = torch.polar(torch.ones_like(angles), angles)  # cos + i·sin
        want = torch.stack([z.imag, z.real], dim=-1).reshape(max_len, d)  # sin, cos, sin, cos, …
        got = impl(max_len, d)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise AssertionError(ch.tr(f"max_len={max_len}，d_model={d}：期望形状 {tuple(want.shape)}，实际得到 {shape}",
                                       f"max_len={max_len}, d_model={d}: expected shape {tuple(want.shape)}, received {shape}"))
        if got.dtype != torch.float64:
            raise AssertionError(ch.tr(f"max_len={max_len}，d_model={d}：期望 dtype 为 torch.float64，实际得到 {got.dtype}",
                                       f"max_len={max_len}, d_model={d}: expected dtype torch.float64, received {got.dtype}"))
        err = float((got - want).abs().max())
        if not err <= 1e-6:
            if float((got - torch.stack([z.real, z.imag], dim=-1).reshape(max_len, d)).abs().max()) <= 1e-6:
                hint = ch.tr("sin 和 cos 放反了：第 2i 列是 sin，第 2i + 1 列是 cos",
                             "sin and cos are swapped: column 2i holds sin, column 2i + 1 cos")
            elif float((got - torch.cat([z.imag, z.real], dim=-1)).abs().max()) <= 1e-6:
                hint = ch.tr("这是前后两半（先全是 sin，再全是 cos）；应交错排列：pe[:, 0::2] 和 pe[:, 1::2]",
                             "these are two halves (all sin, then all cos); interleave them: pe[:, 0::2] and pe[:, 1::2]")
            else:
                hint = ch.tr("ω_i = 10000^(−2i/d_model)，其中 i = 0 … d/2 − 1，角度为 pos·ω_i",
                             "ω_i = 10000^(−2i/d_model) with i = 0 … d/2 − 1, and the angle is pos·ω_i")
            raise AssertionError(ch.tr(f"max_len={max_len}，d_model={d}：与 pos·ω_i 的 sin/cos 的最大绝对误差为 {err:.1e}——{hint}",
                                       f"max_len={max_len}, d_model={d}: max abs err {err:.1e} vs sin/cos of pos·ω_i — {hint}"))
        worst = max(worst, err)
        dots = got @ got.T
        m = torch.arange(max_len, dtype=torch.float64)
        closed = torch.cos((m[:, None, None] - m[None, :, None]) * omega).sum(-1)
        if not float((dots - closed).abs().max()) <= 1e-4:
            raise AssertionError(ch.tr(f"max_len={max_len}，d_model={d}：PE[m]·PE[n] 应等于 Σ_i cos((m − n)ω_i)",
                                       f"max_len={max_len}, d_model={d}: PE[m]·PE[n] must equal Σ_i cos((m − n)ω_i)"))
    try:
        impl(10, 7)
    except ValueError:
        pass
    else:
        raise AssertionError(ch.tr("d_model = 7：期望引发 ValueError（sin 和 cos 成对出现，所以 d_model 必须是偶数）",
                                   "d_model = 7: expected a ValueError (sin and cos come in pairs, so d_model must be even)"))
    return ch.tr(f"3 种尺寸都等于 pos·ω_i 的 sin/cos（最大绝对误差 {worst:.1e}）；PE[m]·PE[n] 只取决于 m − n；奇数 d 被拒绝",
                 f"3 sizes equal sin/cos of pos·ω_i (max abs err {worst:.1e}); PE[m]·PE[n] depends only on m − n; odd d refused")


ch.verify(check_sinusoidal_table_ex, sinusoidal_table_ex)

# %%
from minitransformer.positions import sinusoidal_table  # the library's version (exercise 5.1)

L, D = ch.steps(128, 64), 64
pe = sinusoidal_table(L, D).double()  # (L, D); the library stores it in float32
# the same table from the formula, element by element, in numpy
ref = np.zeros((L, D))
for pos in range(L):
    for i in range(D // 2):
        w = 10000.0 ** (-2 * i / D)
        ref[pos, 2 * i], ref[pos, 2 * i + 1] = math.sin(pos * w), math.cos(pos * w)
ch.show(ch.tr("正弦位置编码表", "sinusoidal table"), pe, "(max_len, d)")
ch.check_close(ch.tr("库函数 sinusoidal_table == 公式（numpy 逐元素循环）", "library sinusoidal_table == the formula (numpy loop)"),
               pe, ref, atol=1e-6)
ch.check_close(ch.tr("练习 5.1 == 公式（numpy 逐元素循环）", "exercise 5.1 == the formula (numpy loop)"),
               sinusoidal_table_ex(L, D), ref, atol=1e-12)

omega = 10000.0 ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)  # (D/2,)


def rotation(k):
    """Block-diagonal R_k with 2×2 blocks [[cos kω, sin kω], [−sin kω, cos kω]] acting on (sin, cos) pairs."""
    r = torch.zeros(D, D, dtype=torch.float64)
    c, s = torch.cos(k * omega), torch.sin(k * omega)
    idx = torch.arange(0, D, 2)
    r[idx, idx], r[idx, idx + 1], r[idx + 1, idx], r[idx + 1, idx + 1] = c, s, -s, c
    return r


for k in [1, 5, 17]:
    shifted = pe[: L - k] @ rotation(k).T  # R_k applied to every row
    ch.check_close(ch.tr(f"对每个 pos 都有 PE[pos + {k}] = R_{k} · PE[pos]", f"PE[pos + {k}] = R_{k} · PE[pos] for every pos"),
                   shifted, pe[k:], atol=1e-6)
dots = pe @ pe.T  # (L, L)
m, n = torch.meshgrid(torch.arange(L), torch.arange(L), indexing="ij")
closed = torch.cos((m - n).unsqueeze(-1).double() * omega).sum(-1)
ch.check_close(ch.tr("PE[m]·PE[n] = Σ_i cos((m − n) ω_i)：只取决于 m − n", "PE[m]·PE[n] = Σ_i cos((m − n) ω_i): depends only on m − n"),
               dots, closed, atol=1e-5)

with torch.no_grad():
    xp = x + sinusoidal_table(T, C)  # add the positions to the "embeddings"
    out_p, _ = mha(xp)
    out_pp, _ = mha(x[:, perm] + sinusoidal_table(T, C))
diff = float((out_pp - out_p[:, perm]).abs().max())
ch.check_value(ch.tr("加上正弦位置编码后，输出不再是置换等变的（max |MHA(x[π] + PE) − MHA(x + PE)[π]|）",
                     "with sinusoidal positions the output is no longer permutation-equivariant (max |MHA(x[π] + PE) − MHA(x + PE)[π]|)"),
               diff, low=1e-2)

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
im = axes[0].imshow(pe.T.numpy(), aspect="auto", cmap="RdBu", vmin=-1, vmax=1, origin="lower")
axes[0].set(title=ch.tr("正弦位置编码表 PE[pos, dim]", "sinusoidal table PE[pos, dim]"), xlabel=ch.tr("位置", "position"),
            ylabel=ch.tr("维度", "dimension"))
fig.colorbar(im, ax=axes[0])
im = axes[1].imshow(dots.numpy(), cmap="viridis", origin="lower")
axes[1].set(title=ch.tr("PE[m] · PE[n]：沿每条对角线为常数", "PE[m] · PE[n]: constant along diagonals"), xlabel="n", ylabel="m")
fig.colorbar(im, ax=axes[1])
ch.savefig(fig, "sinusoidal_table")

# %% [markdown] lang="zh"
# ## 3. 可学习的位置编码（BERT 与 GPT-2）
#
# BERT 的做法很简单：学一张 (512, C) 的表 `position_embeddings`，把第 t 行加到位置 t 的词元上。
# 它就是一个以位置为索引的 `nn.Embedding`。它的局限在于：表里没有第 512 行，所以 BERT 无法
# 接受更长的输入；而正弦公式对任意位置都适用。

# %% [markdown] lang="en"
# ## 3. Learned positions (BERT and GPT-2)
#
# BERT simply learns a (512, C) table — `position_embeddings` — and adds row t to the token at
# position t. It is an `nn.Embedding` indexed by position. Its limit: there is no row 512, so
# BERT cannot take longer inputs, while the sinusoidal formula works for any position.

# %%
MAX_LEN = 16
learned = LearnedPositionalEmbedding(MAX_LEN, C)
table = nn.Embedding(MAX_LEN, C)
table.weight.data.copy_(learned.weight.data)
with torch.no_grad():
    ch.check_close(ch.tr("可学习的位置编码 == nn.Embedding(arange(T))", "learned positions == nn.Embedding(arange(T))"),
                   learned(T), table(torch.arange(T)), atol=0)
    ch.check_close(ch.tr("offset（供 KV 缓存使用）选中第 offset … offset+T−1 行", "offset (for a KV cache) selects rows offset … offset+T−1"),
                   learned(4, offset=3), table(torch.arange(3, 7)), atol=0)
try:
    learned(MAX_LEN + 1)
    too_long = False
except ValueError as e:
    too_long = True
    print(f"  ValueError: {e}")
ch.check(ch.tr(f"可学习的位置表不能超出 max_len = {MAX_LEN}", f"a learned table cannot go past max_len = {MAX_LEN}"), too_long)

# %% [markdown] lang="zh"
# ## 4. 旋转位置编码（RoPE）
#
# RoPE 不往嵌入上加任何东西，而是在注意力内部把每个查询和键**旋转**一个与其位置成正比的角度。
# 把一个头的 d 个通道分成 d/2 对（通道 i 与通道 i + d/2 配成一对），位于位置 m 的向量的第 i 对
# 旋转 m·θ_i，其中 θ_i = 10000^(−2i/d)：
#
#     (x_i, x_{i+d/2}) → (x_i cos mθ_i − x_{i+d/2} sin mθ_i,  x_i sin mθ_i + x_{i+d/2} cos mθ_i)
#
# 把每一对看成一个复数 z = x_i + i·x_{i+d/2}，旋转就是 z → z·e^{i m θ_i}。于是
# q_m · k_n = Re Σ_i q_i k̄_i e^{i(m−n)θ_i} 只取决于 m − n：两个词元之间的分数看到的是它们的
# **相对**位置，所有位置整体平移并不改变分数。频率很多时，方向一致的查询和键相距越远，分数
# 也越低（RoFormer 论文所说的“远程衰减”，long-term decay），下图可以看到这一点。我们把库里的
# `apply_rope` 与 PyTorch 完成的复数乘法相比较。

# %% [markdown] lang="en"
# ## 4. Rotary positions, RoPE
#
# RoPE adds nothing to the embeddings. Inside attention it **rotates** each query and key by an
# angle proportional to its position. Split a head's d channels into d/2 pairs (channel i with
# channel i + d/2) and rotate pair i of the vector at position m by m·θ_i, θ_i = 10000^(−2i/d):
#
#     (x_i, x_{i+d/2}) → (x_i cos mθ_i − x_{i+d/2} sin mθ_i,  x_i sin mθ_i + x_{i+d/2} cos mθ_i)
#
# Read each pair as a complex number z = x_i + i·x_{i+d/2}; the rotation is z → z·e^{i m θ_i}.
# Then q_m · k_n = Re Σ_i q_i k̄_i e^{i(m−n)θ_i} depends only on m − n: the score between two
# tokens sees their **relative** position, and a common shift of all positions changes nothing.
# With many frequencies, aligned queries and keys also score lower the farther apart they are
# (the "long-term decay" of the RoFormer paper), which the figure shows.
# We check the library's `apply_rope` against that complex multiplication, done by PyTorch.

# %% [markdown] lang="zh"
# ### 练习 5.2 — 旋转位置编码
#
# **`rope_ex`** · ★★ · 2 分 · 约 25 分钟
#
# **题目：** 对 x (..., T, d) 施加旋转位置编码：位于位置 m = positions[t] 的向量，把每一对通道 (i,
# i + d/2) 旋转角度 m·θ_i，θ_i = 10000^(−2i/d)：(a, b) → (a·cos − b·sin, a·sin + b·cos)。返回与 x
# 形状相同的新张量。
#
# **提示：** 把最后一维拆成两半 a = x[..., :d/2]、b = x[..., d/2:]；角度是一张 (T, d/2) 的表，可在
# 前面的维度上广播；最后用 torch.cat 拼回两半。
#
# **不可调用：** `positions.apply_rope`, `positions.rope_angles`,
# `positions.rotate_half`, `positions.RotaryEmbedding`（`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch05`
#
# 实现 `rope_ex(x, positions)`：x 的形状为 (..., T, d)，d 为偶数，positions 是 (T,) 的 int64
# 张量；返回旋转后的张量，形状和 dtype 与 x 相同（角度用 float64 计算）。第 i 对是
# (x_i, x_{i+d/2})，即 GPT-NeoX 以及 Hugging Face 中 LLaMA 所用的“对半拆分”约定（RoFormer 论文
# 配对的是相邻通道 (x_{2i}, x_{2i+1})，两种约定只差一个固定的通道置换）。检查函数会与复数乘法
# 比较，并验证相对位置性质。

# %% [markdown] lang="en"
# ### Exercise 5.2 — rotary position embedding
#
# **`rope_ex`** · ★★ · 2 points · ~25 min
#
# **Task:** Apply rotary position embedding to x (..., T, d): the vector at position m =
# positions[t] has each channel pair (i, i + d/2) rotated by the angle m·θ_i, θ_i = 10000^(−2i/d):
# (a, b) → (a·cos − b·sin, a·sin + b·cos). Return a new tensor of x's shape.
#
# **Hint:** Split the last axis into halves a = x[..., :d/2] and b = x[..., d/2:]; the angles form
# a (T, d/2) table that broadcasts over the leading axes; torch.cat the two rotated halves.
#
# **Not allowed:** `positions.apply_rope`, `positions.rope_angles`,
# `positions.rotate_half`, `positions.RotaryEmbedding` (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch05`
#
# Write `rope_ex(x, positions)`: x (..., T, d) with d even, positions (T,) int64 → the rotated
# tensor, same shape and dtype (compute the angles in float64). Pair i is (x_i, x_{i+d/2}), the
# half-split convention of GPT-NeoX and LLaMA in Hugging Face (the RoFormer paper pairs neighbours
# (x_{2i}, x_{2i+1}) instead; the two differ by a fixed permutation of the channels). The check
# compares with complex multiplication and with the relative-position property.

# %%
def rope_ex(x, positions):
    """Rotate channel pairs (i, i + d/2) of x (..., T, d) by positions[t]·θ_i, θ_i = 10000^(−2i/d)."""
    ### BEGIN SOLUTION
    d = x.size(-1)
    theta = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (d/2,)
    angles = positions.to(torch.float64)[:, None] * theta  # (T, d/2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    a, b = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)
    ### END SOLUTION


def check_rope_ex(impl):
    """Compare with z·e^{i·m·θ} (torch.polar, float64, atol 1e-12), z = x_i + i·x_{i+d/2}, for ordered,
    shuffled and repeated positions; x unchanged; q_m·k_n depends only on m − n."""
    g = torch.Generator().manual_seed(0)
    worst = 0.0
    cases = [(ch.tr("(2, 3, 5, 8)，位置 0..4", "(2, 3, 5, 8), positions 0..4"), (2, 3, 5, 8), torch.arange(5)),
             (ch.tr("(6, 4)，位置 [3, 0, 7, 7, 100, 1]", "(6, 4), positions [3, 0, 7, 7, 100, 1]"), (6, 4),
              torch.tensor([3, 0, 7, 7, 100, 1])),
             ("(1, 3, 2): d = 2", (1, 3, 2), torch.tensor([5, 9, 2]))]
    for case, shape, positions in cases:
        d = shape[-1]
        x = torch.randn(*shape, generator=g, dtype=torch.float64)
        before = x.clone()
        theta = torch.pow(torch.tensor(10000.0, dtype=torch.float64), -2.0 * torch.arange(d // 2, dtype=torch.float64) / d)
        z = torch.complex(x[..., : d // 2], x[..., d // 2:])
        z = z * torch.polar(torch.ones(len(positions), d // 2, dtype=torch.float64), positions[:, None].double() * theta)
        want = torch.cat([z.real, z.imag], dim=-1)
        got = impl(x, positions)
        if not torch.equal(x, before):
            raise AssertionError(ch.tr(f"{case}：x 被原地修改了；应返回一个新张量",
                                       f"{case}: x was modified in place; return a new tensor"))
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            shape_got = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise AssertionError(ch.tr(f"{case}：期望形状 {tuple(want.shape)}，实际得到 {shape_got}",
                                       f"{case}: expected shape {tuple(want.shape)}, received {shape_got}"))
        err = float((got - want).abs().max())
        if not err <= 1e-12:
            raise AssertionError(ch.tr(f"{case}：与复数乘法的最大绝对误差为 {err:.1e}——第 i 对是 (x_i, x_{{i+d/2}})，"
                                       "旋转角为 positions[t]·θ_i，其中 θ_i = 10000^(−2i/d)：(a, b) → (a·cos − b·sin, a·sin + b·cos)",
                                       f"{case}: max abs err {err:.1e} vs complex multiplication — pair i is (x_i, x_{{i+d/2}}), "
                                       "rotated by positions[t]·θ_i with θ_i = 10000^(−2i/d): (a, b) → (a·cos − b·sin, a·sin + b·cos)"))
        worst = max(worst, err)
    q, k = (torch.randn(1, 8, generator=g, dtype=torch.float64).expand(12, 8) for _ in range(2))
    pos = torch.arange(12)
    scores = impl(q, pos) @ impl(k, pos).T  # scores[m, n] = q_m · k_n
    dev = max(float((scores.diagonal(o) - scores.diagonal(o)[0]).abs().max()) for o in range(-11, 12))
    if not dev <= 1e-10:
        raise AssertionError(ch.tr(f"q_m · k_n 应只取决于 m − n（沿每条对角线为常数），偏差为 {dev:.1e}",
                                   f"q_m · k_n should depend only on m − n (constant along diagonals), deviation {dev:.1e}"))
    return ch.tr(f"3 种情形都等于 z·e^(imθ)（最大绝对误差 {worst:.1e}）；x 未被修改；q_m·k_n 只取决于 m − n",
                 f"3 cases equal z·e^(imθ) (max abs err {worst:.1e}); x untouched; q_m·k_n depends only on m − n")


ch.verify(check_rope_ex, rope_ex)

# %%
from minitransformer.positions import RotaryEmbedding, apply_rope, rope_angles  # the library's versions (exercise 5.2)

HD = 8  # head dimension
L_R = ch.steps(64, 32)
pos = torch.arange(L_R)
cos, sin = rope_angles(pos, HD)  # (L, HD) each, float64
q = torch.randn(1, 1, 1, HD, dtype=torch.float64).expand(1, 1, L_R, HD)  # the same q at every position
k = torch.randn(1, 1, 1, HD, dtype=torch.float64).expand(1, 1, L_R, HD)
q_rot, k_rot = apply_rope(q, cos, sin), apply_rope(k, cos, sin)  # (1, 1, L, HD)
ch.show(ch.tr("旋转后的查询", "rotated queries"), q_rot, "(B, H, T, head_dim)")

theta = 10000.0 ** (-torch.arange(0, HD, 2, dtype=torch.float64) / HD)  # (HD/2,)
z = torch.complex(q[..., : HD // 2], q[..., HD // 2:])  # pair i = (x_i, x_{i+d/2})
z_rot = z * torch.polar(torch.ones(L_R, HD // 2, dtype=torch.float64), pos[:, None].double() * theta)
ref_rot = torch.cat([z_rot.real, z_rot.imag], dim=-1)
ch.check_close(ch.tr("apply_rope == 复数乘法 z·e^{imθ}（torch.polar）", "apply_rope == complex multiplication z·e^{imθ} (torch.polar)"),
               q_rot, ref_rot, atol=1e-12)
ch.check_close(ch.tr("练习 5.2 == 复数乘法 z·e^{imθ}", "exercise 5.2 == complex multiplication z·e^{imθ}"),
               rope_ex(q, pos), ref_rot, atol=1e-12)
ch.check_close(ch.tr("旋转不改变长度 ‖q_m‖", "rotation keeps the length ‖q_m‖"), q_rot.norm(dim=-1), q.norm(dim=-1), atol=1e-12)

scores = (q_rot[0, 0] @ k_rot[0, 0].T)  # (L, L): scores[m, n] = q_m · k_n
diag_dev = max(float((scores.diagonal(off) - scores.diagonal(off)[0]).abs().max()) for off in range(-L_R + 1, L_R))
ch.check(ch.tr("q_m · k_n 只取决于 m − n（沿每条对角线为常数）", "q_m · k_n depends only on m − n (constant along every diagonal)"),
         diag_dev < 1e-10, ch.tr(f"沿对角线的最大偏差 {diag_dev:.1e}", f"max deviation along a diagonal {diag_dev:.1e}"))
rel = torch.tensor([float(scores[d, 0]) for d in range(L_R)])  # score at distance d
ch.check_value(ch.tr("……而且确实随 m − n 变化（不是常数）：分数在不同 m − n 上的极差",
                     "…and it does depend on m − n (not constant): range of the score over m − n"), float(rel.max() - rel.min()),
               low=0.1, detail=f"{float(rel.min()):.2f} … {float(rel.max()):.2f}")

# RoPE inside multi-head attention: order matters, a common shift does not
rope_mha = MultiHeadAttention(C, H, rotary=RotaryEmbedding(C // H, max_len=64)).eval()
with torch.no_grad():
    q4 = rope_mha.q_proj(x).view(B, T, H, C // H).transpose(1, 2)  # (B, H, T, hs)
    k4 = rope_mha.k_proj(x).view(B, T, H, C // H).transpose(1, 2)
    s_at_0 = rope_mha.rotary(q4) @ rope_mha.rotary(k4).transpose(-2, -1)
    s_at_9 = rope_mha.rotary(q4, offset=9) @ rope_mha.rotary(k4, offset=9).transpose(-2, -1)
    out_r, _ = rope_mha(x)
    out_rp, _ = rope_mha(x[:, perm])
ch.check_close(ch.tr("RoPE：所有位置整体平移 9，分数全都不变", "RoPE: shifting every position by 9 leaves all scores unchanged"),
               s_at_9, s_at_0, atol=1e-5)
diff = float((out_rp - out_r[:, perm]).abs().max())
ch.check_value(ch.tr("使用 RoPE 的注意力不再是置换等变的（max |MHA(x[π]) − MHA(x)[π]|）",
                     "RoPE attention is no longer permutation-equivariant (max |MHA(x[π]) − MHA(x)[π]|)"), diff, low=1e-3)

# RoFormer's "long-term decay": with many frequencies, aligned q and k score lower far apart
HD_BIG, L_BIG = 64, ch.steps(256, 128)
cos_b, sin_b = rope_angles(torch.arange(L_BIG), HD_BIG)
o_rot = apply_rope(torch.ones(1, 1, L_BIG, HD_BIG, dtype=torch.float64), cos_b, sin_b)[0, 0]
decay = o_rot[0] @ o_rot.T  # q = k = all ones: score at distance 0 … L_BIG − 1
far = float(decay[L_BIG // 2:].abs().mean())
ch.check_value(ch.tr("q = k = 全 1（d = 64）：分数随距离衰减（远处的平均 |分数| / 距离 0 处的分数）",
                     "q = k = all ones (d = 64): the score decays with distance (mean |score| far / score at 0)"), far / float(decay[0]),
               high=0.5, detail=ch.tr(f"距离 0 处为 {float(decay[0]):.0f}，距离 {L_BIG // 2}…{L_BIG - 1} 处的平均 |分数| 为 {far:.1f}",
                                      f"{float(decay[0]):.0f} at distance 0, mean |score| {far:.1f} at distances {L_BIG // 2}…{L_BIG - 1}"))

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
im = axes[0].imshow(scores.numpy(), cmap="RdBu", origin="lower")
axes[0].set(title=ch.tr("RoPE：固定 q、k 时的 q_m · k_n（Toeplitz 矩阵）", "RoPE: q_m · k_n for a fixed q, k (Toeplitz)"),
            xlabel=ch.tr("键的位置 n", "key position n"), ylabel=ch.tr("查询的位置 m", "query position m"))
fig.colorbar(im, ax=axes[0])
axes[1].plot(range(L_R), rel.numpy(), "o-", ms=3, label=ch.tr(f"随机的 q、k（d = {HD}）", f"random q, k (d = {HD})"))
axes[1].plot(range(L_BIG), decay.numpy(), "-", lw=1, label=ch.tr(f"q = k = 全 1（d = {HD_BIG}）", f"q = k = all ones (d = {HD_BIG})"))
axes[1].set(title=ch.tr("分数随距离 m − n 的变化", "score as a function of distance m − n"), xlabel="m − n")
axes[1].legend()
ch.savefig(fig, "rope")

# %% [markdown] lang="zh"
# ## 小结
#
# | | 作用位置 | 参数量 | 能否超出训练长度？ | 是否相对位置？ |
# |---|---|---|---|---|
# | 正弦位置编码 | 加到嵌入上 | 无 | 能（有公式） | 平移即旋转 |
# | 可学习的位置编码（BERT、GPT-2） | 加到嵌入上 | max_len × C | 不能 | 否 |
# | RoPE | 在每个头里旋转 q 和 k | 无 | 部分可以 | 是：q_m·k_n 取决于 m − n |
#
# 三者都没有的话，Transformer 编码器就只是一个词袋模型（bag-of-words model）。文章的主角
# BERT 用的是可学习的位置编码（外加区分句子 A/B 的片段嵌入，token-type embedding），它与
# 词元嵌入相加，再经过层归一化（LayerNorm），然后送入第 6 章的编码器。

# %% [markdown] lang="en"
# ## Summary
#
# | | where | parameters | longer than training? | relative? |
# |---|---|---|---|---|
# | sinusoidal | added to embeddings | none | yes (formula) | shifts are rotations |
# | learned (BERT, GPT-2) | added to embeddings | max_len × C | no | no |
# | RoPE | rotates q and k in each head | none | partly | yes: q_m·k_n depends on m − n |
#
# Without any of them a Transformer encoder is a bag-of-words model. BERT, the subject of the
# article, uses learned positions (plus token-type embeddings for sentence A/B), summed with the
# token embeddings and passed through LayerNorm before the encoder of ch06.

# %%
ch.done()
