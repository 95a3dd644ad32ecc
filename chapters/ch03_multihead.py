# %% [markdown] lang="zh"
# # 第 3 章 · 多头注意力（原文 §4.2.1–4.2.2）
#
# 原文的编码器公式（§4.2.2）调用了 `MultiHeadAttention`，却从未给出它的定义。定义如下：
#
#     MultiHead(Q, K, V) = Concat(head_1, …, head_H) W^O
#     head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)
#
# 多头注意力（multi-head attention）不是做一次查询宽度为 d_model 的注意力，而是并排做 H 个较小的
# 注意力，每个头只负责自己的 C/H 个通道，最后把结果拼接起来。每个头都可以去寻找词元之间的一种
# 不同关系（前一个词、同一个词、句子的开头……）。
#
# 你将亲手实现：`split_heads` 和 `merge_heads`（仅有的新代码），用它们搭出多头注意力，再在相同
# 权重下与 PyTorch 的 `nn.MultiheadAttention` 对照——覆盖自注意力、交叉注意力（cross-attention）、
# 填充掩码和因果掩码。
#
# **更正原文。** 原文写的是带四个参数的 `MultiHeadAttention(X, X, X, X)`。多头注意力只有三个输入：
# 查询、键和值，即 `MultiHead(Q, K, V)`。自注意力把同一个 X 传三次，写作 `MultiHead(X, X, X)`；
# 交叉注意力（第 7 章的解码器）传入的是 `MultiHead(Y, M, M)`，其中 M 是编码器输出的记忆（memory）。

# %% [markdown] lang="en"
# # Chapter 3 · Multi-head attention (Article §4.2.1–4.2.2)
#
# The article's encoder formula (§4.2.2) calls `MultiHeadAttention` but never defines it. Here it is:
#
#     MultiHead(Q, K, V) = Concat(head_1, …, head_H) W^O
#     head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)
#
# Instead of one attention with d_model-wide queries, we run H smaller attentions side by side,
# each on its own C/H channels, and concatenate the results. Each head can look for a different
# relation between tokens (the previous word, the same word, the sentence start…).
#
# You will build: `split_heads` and `merge_heads` (the only new code), multi-head attention from
# them, and check it against PyTorch's `nn.MultiheadAttention` with the same weights — for
# self-attention, cross-attention, padding and causal masks.
#
# **A correction to the article.** It writes `MultiHeadAttention(X, X, X, X)` with four arguments.
# Multi-head attention takes three: queries, keys and values, `MultiHead(Q, K, V)`.
# Self-attention passes the same X three times, `MultiHead(X, X, X)`; cross-attention (the
# decoder in ch07) passes `MultiHead(Y, M, M)` with the encoder's memory M.

# %%
import torch
import torch.nn as nn
import torch.nn.functional as F

from chapters.book import Chapter, plt
from minitransformer.attention import MultiHeadAttention, causal_mask

ch = Chapter("ch03_multihead")

# %% [markdown] lang="zh"
# ## 1. 把通道拆分成多个头
#
# 设 C = 12 个通道、H = 3 个头，则每个头分到 hs = C/H = 4 个通道。拆分只是一次变形（reshape）加一次
# 转置——不做任何运算，也不复制数据：
#
#     (B, T, C) --view--> (B, T, H, hs) --transpose(1, 2)--> (B, H, T, hs)
#
# 转置之后，头这一维紧挨着批量维，因此一次批量矩阵乘法 `q @ k.transpose(-2, -1)` 就能同时算出全部
# B·H 张注意力图。

# %% [markdown] lang="en"
# ## 1. Splitting the channels into heads
#
# With C = 12 channels and H = 3 heads, each head gets hs = C/H = 4 channels. Splitting is only a
# reshape and a transpose — no arithmetic, no copy:
#
#     (B, T, C) --view--> (B, T, H, hs) --transpose(1, 2)--> (B, H, T, hs)
#
# After the transpose, the head axis sits next to the batch axis, so one batched matrix product
# `q @ k.transpose(-2, -1)` computes all B·H attention maps at once.

# %% [markdown] lang="zh"
# 合并则反过来：先转置回 (B, T, H, hs)，再把最后两维展平。转置后的张量在内存中不再是逐行连续
# 存放的，所以 `.view` 会拒绝它；`.contiguous().view` 或 `.reshape` 会先复制一份。如果在
# (B, H, T, hs) 的张量上*不做*转置就直接写 `x.view(B, T, C)`，程序不会报错，却会悄悄地把不同
# 词元的数据混在一起——练习的检查程序能发现这个错误。

# %% [markdown] lang="en"
# Merging goes back: transpose to (B, T, H, hs), then flatten the last two axes. The transposed
# tensor is no longer laid out row by row in memory, so `.view` refuses it; `.contiguous().view`
# or `.reshape` copies it first. Writing `x.view(B, T, C)` on the (B, H, T, hs) tensor *without*
# the transpose runs without error and silently mixes tokens — the exercise check catches that.

# %% [markdown] lang="zh"
# ### 练习 3.1 — 拆分与合并多头
#
# **`split_heads_ex`** · ★ · 1 分 · 约 10 分钟
#
# **题目：** 把 (B, T, C) 拆成 (B, H, T, C/H)：第 h 个头取第 h·C/H 到 (h+1)·C/H 个通道。
#
# **提示：** 先把每个词元的通道看成 (H, C/H)，再交换 T 轴和 H 轴。
#
# **不可调用：** `attention.split_heads`（`python -m chapters.assign list`）
#
# **`merge_heads_ex`** · ★ · 1 分 · 约 10 分钟
#
# **题目：** 把 (B, H, T, C/H) 合并回 (B, T, C)，各头的输出按通道依次拼接。
#
# **提示：** 先把 T 轴换回 H 轴前面，再展平最后两维；转置后的张量要用 reshape（或
# contiguous().view）。
#
# **不可调用：** `attention.merge_heads`（`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch03`
#
# 编写 `split_heads_ex(x, n_heads)`：(B, T, C) → (B, H, T, C/H)，第 h 个头存放第 h·hs 到
# (h+1)·hs − 1 个通道；以及它的逆操作 `merge_heads_ex(x)`：(B, H, T, hs) → (B, T, H·hs)。
# 检查程序用投影全为单位矩阵的 `nn.MultiheadAttention` 作参照：它每个头的注意力图和输出，
# 恰好取决于这里的拆分与合并方式。

# %% [markdown] lang="en"
# ### Exercise 3.1 — split and merge heads
#
# **`split_heads_ex`** · ★ · 1 point · ~10 min
#
# **Task:** Split (B, T, C) into (B, H, T, C/H): head h takes channels h·C/H to (h+1)·C/H.
#
# **Hint:** First view the channels as (H, C/H) per token, then swap the T and H axes.
#
# **Not allowed:** `attention.split_heads` (`python -m chapters.assign list`)
#
# **`merge_heads_ex`** · ★ · 1 point · ~10 min
#
# **Task:** Merge (B, H, T, C/H) back into (B, T, C), the heads' outputs side by side.
#
# **Hint:** Bring T back before H, then flatten the last two axes; a transposed tensor needs
# reshape (or contiguous().view).
#
# **Not allowed:** `attention.merge_heads` (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch03`
#
# Write `split_heads_ex(x, n_heads)`: (B, T, C) → (B, H, T, C/H), head h holding channels
# h·hs … (h+1)·hs − 1; and `merge_heads_ex(x)`: (B, H, T, hs) → (B, T, H·hs), the inverse.
# The checks compare against `nn.MultiheadAttention` with identity projections, whose per-head
# attention maps and outputs depend on exactly this split and merge.

# %%
def split_heads_ex(x, n_heads):
    """(B, T, C) -> (B, H, T, C/H): head h gets channels h*hs .. (h+1)*hs - 1."""
    ### BEGIN SOLUTION
    b, t, c = x.shape
    return x.view(b, t, n_heads, c // n_heads).transpose(1, 2)  # (B, H, T, hs)
    ### END SOLUTION


def merge_heads_ex(x):
    """(B, H, T, hs) -> (B, T, H*hs): the heads' outputs side by side."""
    ### BEGIN SOLUTION
    b, h, t, hs = x.shape
    return x.transpose(1, 2).reshape(b, t, h * hs)  # (B, T, C)
    ### END SOLUTION


def _identity_mha(c, n_heads):
    """nn.MultiheadAttention (float64, no biases) whose Q, K, V and output projections are identities."""
    with torch.random.fork_rng():  # its random initialisation is overwritten: keep the chapter's random numbers
        mha = nn.MultiheadAttention(c, n_heads, bias=False, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([torch.eye(c, dtype=torch.float64)] * 3))
        mha.out_proj.weight.copy_(torch.eye(c, dtype=torch.float64))
    return mha.eval().requires_grad_(False)


def check_split_heads_ex(impl):
    """Per-head attention maps built from impl's heads must equal nn.MultiheadAttention's (identity projections)."""
    g = torch.Generator().manual_seed(0)
    for b, t, c, n_heads in [(2, 5, 12, 3), (1, 4, 12, 4), (3, 2, 8, 1)]:
        hs = c // n_heads
        x = torch.randn(b, t, c, generator=g, dtype=torch.float64)
        got = impl(x, n_heads)
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != (b, n_heads, t, hs):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise AssertionError(ch.tr(f"x {tuple(x.shape)}，n_heads={n_heads}：期望形状 (B, H, T, hs) = "
                                       f"{(b, n_heads, t, hs)}，实际得到 {shape}",
                                       f"x {tuple(x.shape)}, n_heads={n_heads}: expected shape (B, H, T, hs) = "
                                       f"{(b, n_heads, t, hs)}, received {shape}"))
        for h in range(n_heads):
            if not torch.equal(got[:, h], x[..., h * hs:(h + 1) * hs]):
                raise AssertionError(ch.tr(f"n_heads={n_heads}：头 {h} 应存放每个词元的通道 {h * hs}..{(h + 1) * hs - 1}"
                                           "（先 view 成 (B, T, H, hs)，再交换 T 轴和 H 轴）",
                                           f"n_heads={n_heads}: head {h} must hold channels {h * hs}..{(h + 1) * hs - 1} "
                                           "of every token (view as (B, T, H, hs), then swap the T and H axes)"))
        _, ref = _identity_mha(c, n_heads)(x, x, x, need_weights=True, average_attn_weights=False)  # (B, H, T, T)
        ours = torch.softmax(got @ got.transpose(-2, -1) / hs ** 0.5, dim=-1)
        err = float((ours - ref).abs().max())
        if err > 1e-10:
            raise AssertionError(ch.tr(f"n_heads={n_heads}：各头的注意力图与 nn.MultiheadAttention 相差 {err:.1e}",
                                       f"n_heads={n_heads}: per-head attention maps differ from nn.MultiheadAttention by {err:.1e}"))
    return ch.tr("每个头存放的通道正确；各头的注意力图与 nn.MultiheadAttention 的一致（H = 3, 4, 1）",
                 "heads hold the right channels; per-head maps equal nn.MultiheadAttention's (H = 3, 4, 1)")


def check_merge_heads_ex(impl):
    """impl must turn per-head outputs into nn.MultiheadAttention's output (identity projections)."""
    g = torch.Generator().manual_seed(1)
    for b, t, c, n_heads in [(2, 5, 12, 3), (1, 3, 8, 2)]:
        hs = c // n_heads
        x = torch.randn(b, t, c, generator=g, dtype=torch.float64)
        ref, _ = _identity_mha(c, n_heads)(x, x, x, need_weights=False)  # (B, T, C)
        per_head = torch.stack(x.split(hs, dim=-1), dim=1)  # (B, H, T, hs) built without split_heads
        head_out = F.scaled_dot_product_attention(per_head, per_head, per_head)  # (B, H, T, hs)
        got = impl(head_out)
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != (b, t, c):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise AssertionError(ch.tr(f"输入 {tuple(head_out.shape)} (B, H, T, hs)：期望形状 (B, T, H*hs) = {(b, t, c)}，实际得到 {shape}",
                                       f"input {tuple(head_out.shape)} (B, H, T, hs): expected shape (B, T, H*hs) = {(b, t, c)}, received {shape}"))
        err = float((got - ref).abs().max())
        if err > 1e-10:
            raise AssertionError(ch.tr(f"n_heads={n_heads}：合并后的输出与 nn.MultiheadAttention 相差 {err:.1e}——"
                                       "展平之前，先把头这一维移到 hs 旁边（transpose(1, 2)）",
                                       f"n_heads={n_heads}: merged output differs from nn.MultiheadAttention by {err:.1e} — "
                                       "move the head axis next to hs (transpose(1, 2)) before flattening"))
    return ch.tr("合并各头后与 nn.MultiheadAttention 的输出一致（H = 3, 2）",
                 "merged heads equal nn.MultiheadAttention's output (H = 3, 2)")


ch.verify(check_split_heads_ex, split_heads_ex)
ch.verify(check_merge_heads_ex, merge_heads_ex)

# %%
from minitransformer.attention import merge_heads, split_heads  # the library's versions (exercise 3.1)

B, T, C, H = 2, 5, 12, 3
hs = C // H
x = torch.randn(B, T, C)
ch.show("x", x, "(B, T, C)")
step1 = ch.show("x.view(B, T, H, hs)", x.view(B, T, H, hs))
step2 = ch.show("….transpose(1, 2)", step1.transpose(1, 2), "(B, H, T, hs)")
heads = split_heads(x, H)
ch.check(ch.tr("库的 split_heads == view + transpose", "library split_heads == view + transpose"), torch.equal(heads, step2))
for h in range(H):
    ch.check(ch.tr(f"头 {h} 存放通道 {h * hs}..{(h + 1) * hs - 1}", f"head {h} holds channels {h * hs}..{(h + 1) * hs - 1}"),
             torch.equal(heads[:, h], x[..., h * hs:(h + 1) * hs]))
ch.check(ch.tr("拆分只是一个视图：与 x 共享内存，没有复制", "splitting is a view: it shares memory with x, no copy"),
         heads.data_ptr() == x.data_ptr())
merged = merge_heads(heads)
ch.show("merge_heads(heads)", merged, "(B, T, C)")
ch.check(ch.tr("merge_heads(split_heads(x)) 还原出 x", "merge_heads(split_heads(x)) == x"), torch.equal(merged, x))

# %% [markdown] lang="zh"
# ## 2. 用这些零件搭出多头注意力
#
# 在拆分与合并的外面包上四个线性层（W^Q、W^K、W^V，都是 C → C，以及输出层 W^O）：
#
#     q, k, v = x W^Q, x W^K, x W^V             各为 (B, T, C)
#     拆分成多个头                               (B, H, T, hs)
#     每个头内计算 softmax(q kᵀ / √hs) v        (B, H, T, hs)   注意：d_k = hs，即*每个头*的维度
#     合并多个头，再乘 W^O                       (B, T, C)
#
# 先投影到 C 维再拆成 H 份，与做 H 个独立的 C → hs 投影完全等价：W^Q 的各行只是按头分了组。

# %% [markdown] lang="en"
# ## 2. Multi-head attention from the pieces
#
# Four linear layers (W^Q, W^K, W^V, each C → C, and the output W^O) around the split/merge:
#
#     q, k, v = x W^Q, x W^K, x W^V             (B, T, C) each
#     split into heads                           (B, H, T, hs)
#     softmax(q kᵀ / √hs) v in every head        (B, H, T, hs)   note: d_k = hs, the *head* size
#     merge heads, then W^O                      (B, T, C)
#
# Projecting to C and then splitting into H pieces is the same as H separate projections
# C → hs: the rows of W^Q are simply grouped by head.

# %%
mha = MultiHeadAttention(C, H).eval()  # the library module


def multi_head_by_hand(x_q, x_kv, wq, wk, wv, wo, mask=None):
    """MultiHead(X_q, X_kv, X_kv) with nn.Linear modules wq, wk, wv, wo, built from the exercise."""
    q = split_heads_ex(wq(x_q), H)  # (B, H, T_q, hs)
    k = split_heads_ex(wk(x_kv), H)  # (B, H, T_k, hs)
    v = split_heads_ex(wv(x_kv), H)  # (B, H, T_k, hs)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, T_q, hs)
    return wo(merge_heads_ex(out))  # (B, T_q, C)


with torch.no_grad():
    ours_hand = multi_head_by_hand(x, x, mha.q_proj, mha.k_proj, mha.v_proj, mha.out_proj)
    ours_lib, _ = mha(x)
ch.show("MultiHead(x, x, x)", ours_lib, "(B, T, C)")
ch.check_close(ch.tr("手工搭建 == minitransformer 的 MultiHeadAttention", "by hand == minitransformer MultiHeadAttention"),
               ours_hand, ours_lib, atol=1e-6)

# %% [markdown] lang="zh"
# ## 3. 与 `nn.MultiheadAttention` 对照
#
# PyTorch 把 W^Q、W^K、W^V 叠成一个 (3C, C) 的矩阵 `in_proj_weight`，我们把自己的权重复制进去。
# 有两个约定上的陷阱：
#
# * PyTorch 的 `key_padding_mask` 在**填充位置为 True**（表示忽略），与我们的模块所接受的
#   Hugging Face 式 `attention_mask`（1 表示真实词元）正好相反；
# * `nn.MultiheadAttention` 的布尔 `attn_mask` 在**不允许关注的位置为 True**——与
#   `F.scaled_dot_product_attention` 以及我们的约定相反。所以我们传入的是 `~mask`。

# %% [markdown] lang="en"
# ## 3. Against `nn.MultiheadAttention`
#
# PyTorch stores W^Q, W^K, W^V stacked in one (3C, C) matrix `in_proj_weight`; we copy ours in.
# Two convention traps:
#
# * `key_padding_mask` in PyTorch is **True for padding** (ignore), the opposite of the Hugging Face
#   `attention_mask` (1 = real token) our module takes;
# * a boolean `attn_mask` in `nn.MultiheadAttention` is **True where attending is NOT allowed** — the
#   opposite of `F.scaled_dot_product_attention`'s and ours. So we pass `~mask`.

# %%
def to_torch_mha(ours: MultiHeadAttention) -> nn.MultiheadAttention:
    """An nn.MultiheadAttention with our weights copied in (W^Q, W^K, W^V stacked row-wise)."""
    ref = nn.MultiheadAttention(ours.d_model, ours.n_heads, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        ref.out_proj.bias.copy_(ours.out_proj.bias)
    return ref.eval()


ref = to_torch_mha(mha)
memory = torch.randn(B, 7, C)  # a 7-token "encoder output" for cross-attention
attention_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])  # sentence 2 has 2 padding tokens
causal = causal_mask(T)
with torch.no_grad():
    cases = [
        (ch.tr("自注意力", "self-attention"), mha(x, need_weights=True), ref(x, x, x, average_attn_weights=False)),
        (ch.tr("交叉注意力（T_q=5，T_k=7）", "cross-attention (T_q=5, T_k=7)"), mha(x, memory, need_weights=True),
         ref(x, memory, memory, average_attn_weights=False)),
        (ch.tr("键的填充掩码", "key padding mask"), mha(x, attention_mask=attention_mask, need_weights=True),
         ref(x, x, x, key_padding_mask=attention_mask == 0, average_attn_weights=False)),
        (ch.tr("因果掩码", "causal mask"), mha(x, is_causal=True, need_weights=True),
         ref(x, x, x, attn_mask=~causal, average_attn_weights=False)),
    ]
for name, (out, w), (out_ref, w_ref) in cases:
    ch.check_close(ch.tr(f"{name}：输出 == nn.MultiheadAttention", f"{name}: output == nn.MultiheadAttention"),
                   out, out_ref, atol=1e-5)
    ch.check_close(ch.tr(f"{name}：每个头的权重 (B, H, T_q, T_k) == nn.MultiheadAttention",
                         f"{name}: per-head weights (B, H, T_q, T_k) == nn.MultiheadAttention"), w, w_ref, atol=1e-6)
with torch.no_grad():
    _, w_avg = ref(x, x, x)  # PyTorch's default: weights averaged over the heads
    _, w_ours = mha(x, need_weights=True)
ch.check_close(ch.tr("nn.MultiheadAttention 默认返回的权重是各头的平均",
                     "nn.MultiheadAttention's default weights are the mean over heads"), w_ours.mean(1), w_avg, atol=1e-6)

# %% [markdown] lang="zh"
# ## 4. 头数增加，参数量不变
#
# 无论 H 取多少，W^Q、W^K、W^V、W^O 都是 C × C 的矩阵：参数共 4C² + 4C 个。头越多，每个头就越窄
# （hs = C/H），权重却不会变多。BERT-base：C = 768，H = 12，hs = 64。

# %% [markdown] lang="en"
# ## 4. More heads cost no more parameters
#
# W^Q, W^K, W^V, W^O are C × C whatever H is: 4C² + 4C parameters. More heads means narrower heads
# (hs = C/H), not more weights. BERT-base: C = 768, H = 12, hs = 64.

# %%
for n_heads in [1, 2, 3, 4, 6, 12]:
    ours_n = sum(p.numel() for p in MultiHeadAttention(C, n_heads).parameters())
    ref_n = sum(p.numel() for p in nn.MultiheadAttention(C, n_heads).parameters())
    ch.check(ch.tr(f"H={n_heads:2d}：参数量 = 4C² + 4C = {4 * C * C + 4 * C}",
                   f"H={n_heads:2d}: parameters = 4C² + 4C = {4 * C * C + 4 * C}"),
             ours_n == ref_n == 4 * C * C + 4 * C,
             ch.tr(f"本书实现 {ours_n}，nn.MultiheadAttention {ref_n}", f"ours {ours_n}, nn.MultiheadAttention {ref_n}"))

# %% [markdown] lang="zh"
# ## 5. 不同的头关注不同的关系
#
# 随机权重得到的注意力图一片模糊，所以我们*手工设定*权重，演示训练好的模型确实会学到的三种行为。
# 输入是独热的位置向量（T = 6 个通道），补零到 C = 18；每个头有 hs = 6 个通道。
#
# * 头 0，**看前一个词元**：q_i = s·e_i，k_j = e_{j+1}，所以只有当 j = i − 1 时 q_i · k_j 才大；
# * 头 1，**看自己**：q_i = s·e_i，k_j = e_j；
# * 头 2，**看第一个词元**（就像 BERT 中那些停靠在 [CLS] 上的头）：对每个 i 都有 q_i = s·e_0，k_j = e_j。
#
# W^V 把独热的位置向量原样复制到每个头的通道里，W^O 是单位矩阵，因此每个头的输出就是它所关注
# 位置的独热向量。

# %% [markdown] lang="en"
# ## 5. What different heads can do
#
# Random weights give blurry maps, so let us *set* the weights to show three behaviours that
# trained models really learn. The input is a one-hot position vector (T = 6 channels) padded
# to C = 18; each head has hs = 6 channels.
#
# * head 0, **previous token**: q_i = s·e_i, k_j = e_{j+1}, so q_i · k_j is large only when j = i − 1;
# * head 1, **same token**: q_i = s·e_i, k_j = e_j;
# * head 2, **first token** (like BERT heads that park on [CLS]): q_i = s·e_0 for every i, k_j = e_j.
#
# W^V copies the one-hot position into every head's channels and W^O is the identity, so each
# head's output is the one-hot position it looked at.

# %%
T6, HS6, H3 = 6, 6, 3
C18 = HS6 * H3
eye = torch.eye(T6)
shift = torch.diag(torch.ones(T6 - 1), -1)  # shift @ e_j = e_{j+1}
first = torch.zeros(T6, T6)
first[0] = torch.ones(T6)  # first @ e_i = e_0
s = 12.0 * HS6 ** 0.5  # after the 1/√hs scaling the winning score is 12
queries, keys = [s * eye, s * eye, s * first], [shift, eye, eye]
demo = MultiHeadAttention(C18, H3).eval()
with torch.no_grad():
    for lin in (demo.q_proj, demo.k_proj, demo.v_proj, demo.out_proj):
        lin.weight.zero_()
        lin.bias.zero_()
    for h in range(H3):
        rows = slice(h * HS6, (h + 1) * HS6)
        demo.q_proj.weight[rows, :T6] = queries[h]
        demo.k_proj.weight[rows, :T6] = keys[h]
        demo.v_proj.weight[rows, :T6] = eye
    demo.out_proj.weight.copy_(torch.eye(C18))
    positions = torch.zeros(1, T6, C18)
    positions[0, :, :T6] = eye
    out, w = demo(positions, need_weights=True)  # w: (1, H, T, T)
    out_ref, w_ref = to_torch_mha(demo)(positions, positions, positions, average_attn_weights=False)
w = w[0]
ch.check_close(ch.tr("手工设定的头：权重 == nn.MultiheadAttention", "designed heads: weights == nn.MultiheadAttention"),
               w, w_ref[0], atol=1e-6)
ch.check_close(ch.tr("手工设定的头：输出 == nn.MultiheadAttention", "designed heads: output == nn.MultiheadAttention"),
               out, out_ref, atol=1e-5)
ch.check(ch.tr("头 0 关注前一个词元", "head 0 looks at the previous token"), torch.equal(w[0, 1:].argmax(-1), torch.arange(T6 - 1)))
ch.check(ch.tr("头 1 关注词元自己", "head 1 looks at the token itself"), torch.equal(w[1].argmax(-1), torch.arange(T6)))
ch.check(ch.tr("头 2 关注第一个词元", "head 2 looks at the first token"), bool((w[2].argmax(-1) == 0).all()))
ch.check_close(ch.tr("头 0 的输出是前一个词元的独热位置向量", "head 0's output is the previous token's one-hot position"),
               out[0, 1:, :T6], eye[:-1], atol=1e-3)
ch.check_close(ch.tr("头 0 中的词元 0 没有前一个词元：权重均匀分布", "head 0, token 0 has no previous token: uniform weights"),
               w[0, 0], torch.full((T6,), 1 / T6), atol=1e-6)

fig, axes = plt.subplots(1, 4, figsize=(15, 3.8))
titles = [ch.tr("头 0：前一个词元", "head 0: previous token"), ch.tr("头 1：同一个词元", "head 1: same token"),
          ch.tr("头 2：第一个词元", "head 2: first token"), ch.tr("各头的平均（nn 的默认输出）", "mean over heads (nn default)")]
for ax, m, title in zip(axes, [w[0], w[1], w[2], w.mean(0)], titles):
    im = ax.imshow(m.numpy(), cmap="magma", vmin=0, vmax=1)
    ax.set(title=title, xlabel=ch.tr("键的位置", "key position"))
axes[0].set_ylabel(ch.tr("查询的位置", "query position"))
fig.colorbar(im, ax=axes, shrink=0.8, label=ch.tr("注意力权重", "attention weight"))
ch.savefig(fig, "per_head_attention")

# %% [markdown] lang="zh"
# 平均后的注意力图（`nn.MultiheadAttention` 默认返回的就是它）把三种清晰而各不相同的行为糊成了
# 一张图：解读注意力时，要看每个头各自的权重。
#
# ## 小结
#
# * 用视图加转置实现多头的拆分与合并（练习 3.1），并通过 `nn.MultiheadAttention` 验证；
# * 多头注意力在自注意力、交叉注意力、填充掩码和因果掩码下都与 PyTorch 的实现一致，并讲清了
#   各自的掩码约定；
# * 多头注意力只有三个输入（Q、K、V），而不是原文所写的四个。
#
# 下一章（ch04）讲编码器层中的另外两个子层：层归一化（layer normalization）和前馈网络。

# %% [markdown] lang="en"
# The averaged map (what `nn.MultiheadAttention` returns by default) blurs three crisp,
# different behaviours into one: look at per-head weights when interpreting attention.
#
# ## What we built
#
# * split/merge heads as a view + transpose (exercise 3.1), checked through `nn.MultiheadAttention`;
# * multi-head attention equal to PyTorch's for self-attention, cross-attention, padding and causal
#   masks — with the mask conventions spelled out;
# * MultiHead takes three inputs (Q, K, V), not the article's four.
#
# Next: ch04, the other sublayers of the block — LayerNorm and the feed-forward network.

# %%
ch.done()
