# %% [markdown]
# # Chapter 3 · 多头注意力 — multi-head attention (Article §4.2.1–4.2.2)
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
# 更正：多头注意力只有三个输入（Q、K、V），自注意力时三者都是 X。

# %%
import torch
import torch.nn as nn
import torch.nn.functional as F

from chapters.book import Chapter, plt
from minitransformer.attention import MultiHeadAttention, causal_mask

ch = Chapter(__file__)

# %% [markdown]
# ## 1. Splitting the channels into heads (拆分多头)
#
# With C = 12 channels and H = 3 heads, each head gets hs = C/H = 4 channels. Splitting is only a
# reshape and a transpose — no arithmetic, no copy:
#
#     (B, T, C) --view--> (B, T, H, hs) --transpose(1, 2)--> (B, H, T, hs)
#
# After the transpose, the head axis sits next to the batch axis, so one batched matrix product
# `q @ k.transpose(-2, -1)` computes all B·H attention maps at once.

# %% [markdown]
# Merging goes back: transpose to (B, T, H, hs), then flatten the last two axes. The transposed
# tensor is no longer laid out row by row in memory, so `.view` refuses it; `.contiguous().view`
# or `.reshape` copies it first. Writing `x.view(B, T, C)` on the (B, H, T, hs) tensor *without*
# the transpose runs without error and silently mixes tokens — the exercise check catches that.

# %% [markdown]
# ### Exercise 3.1 — split and merge heads (拆分与合并多头)
#
# **`split_heads_ex`** · ★ · 1 分 point · 约 ~10 分钟 min
#
# **中文：** 把 (B, T, C) 拆成 (B, H, T, C/H)：第 h 个头取第 h·C/H 到 (h+1)·C/H 个通道。
#
# **English:** Split (B, T, C) into (B, H, T, C/H): head h takes channels h·C/H to (h+1)·C/H.
#
# **提示：** 先把每个词元的通道看成 (H, C/H)，再交换 T 轴和 H 轴。
#
# **Hint:** First view the channels as (H, C/H) per token, then swap the T and H axes.
#
# **不可调用 Not allowed:** `attention.split_heads` (`python -m chapters.assign list`)
#
# **`merge_heads_ex`** · ★ · 1 分 point · 约 ~10 分钟 min
#
# **中文：** 把 (B, H, T, C/H) 合并回 (B, T, C)，各头的输出按通道依次拼接。
#
# **English:** Merge (B, H, T, C/H) back into (B, T, C), the heads' outputs side by side.
#
# **提示：** 先把 T 轴换回 H 轴前面，再展平最后两维；转置后的张量要用 reshape（或
# contiguous().view）。
#
# **Hint:** Bring T back before H, then flatten the last two axes; a transposed tensor needs
# reshape (or contiguous().view).
#
# **不可调用 Not allowed:** `attention.merge_heads` (`python -m chapters.assign list`)
#
# 自查 Self-check: `python -m chapters.assign check ch03`
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
            raise AssertionError(f"x {tuple(x.shape)}, n_heads={n_heads}: expected shape (B, H, T, hs) = "
                                 f"{(b, n_heads, t, hs)}, received {shape}")
        for h in range(n_heads):
            if not torch.equal(got[:, h], x[..., h * hs:(h + 1) * hs]):
                raise AssertionError(f"n_heads={n_heads}: head {h} must hold channels {h * hs}..{(h + 1) * hs - 1} "
                                     "of every token (view as (B, T, H, hs), then swap the T and H axes)")
        _, ref = _identity_mha(c, n_heads)(x, x, x, need_weights=True, average_attn_weights=False)  # (B, H, T, T)
        ours = torch.softmax(got @ got.transpose(-2, -1) / hs ** 0.5, dim=-1)
        err = float((ours - ref).abs().max())
        if err > 1e-10:
            raise AssertionError(f"n_heads={n_heads}: per-head attention maps differ from nn.MultiheadAttention by {err:.1e}")
    return "heads hold the right channels; per-head maps equal nn.MultiheadAttention's (H = 3, 4, 1)"


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
            raise AssertionError(f"input {tuple(head_out.shape)} (B, H, T, hs): expected shape (B, T, H*hs) = {(b, t, c)}, received {shape}")
        err = float((got - ref).abs().max())
        if err > 1e-10:
            raise AssertionError(f"n_heads={n_heads}: merged output differs from nn.MultiheadAttention by {err:.1e} — "
                                 "move the head axis next to hs (transpose(1, 2)) before flattening")
    return "merged heads equal nn.MultiheadAttention's output (H = 3, 2)"


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
ch.check("library split_heads == view + transpose", torch.equal(heads, step2))
for h in range(H):
    ch.check(f"head {h} holds channels {h * hs}..{(h + 1) * hs - 1}", torch.equal(heads[:, h], x[..., h * hs:(h + 1) * hs]))
ch.check("splitting is a view: it shares memory with x, no copy", heads.data_ptr() == x.data_ptr())
merged = merge_heads(heads)
ch.show("merge_heads(heads)", merged, "(B, T, C)")
ch.check("merge_heads(split_heads(x)) == x", torch.equal(merged, x))

# %% [markdown]
# ## 2. Multi-head attention from the pieces (从零搭建多头注意力)
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
ch.check_close("by hand == minitransformer MultiHeadAttention", ours_hand, ours_lib, atol=1e-6)

# %% [markdown]
# ## 3. Against `nn.MultiheadAttention` (与 PyTorch 对照)
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
        ("self-attention", mha(x, need_weights=True), ref(x, x, x, average_attn_weights=False)),
        ("cross-attention (T_q=5, T_k=7)", mha(x, memory, need_weights=True),
         ref(x, memory, memory, average_attn_weights=False)),
        ("key padding mask", mha(x, attention_mask=attention_mask, need_weights=True),
         ref(x, x, x, key_padding_mask=attention_mask == 0, average_attn_weights=False)),
        ("causal mask", mha(x, is_causal=True, need_weights=True),
         ref(x, x, x, attn_mask=~causal, average_attn_weights=False)),
    ]
for name, (out, w), (out_ref, w_ref) in cases:
    ch.check_close(f"{name}: output == nn.MultiheadAttention", out, out_ref, atol=1e-5)
    ch.check_close(f"{name}: per-head weights (B, H, T_q, T_k) == nn.MultiheadAttention", w, w_ref, atol=1e-6)
with torch.no_grad():
    _, w_avg = ref(x, x, x)  # PyTorch's default: weights averaged over the heads
    _, w_ours = mha(x, need_weights=True)
ch.check_close("nn.MultiheadAttention's default weights are the mean over heads", w_ours.mean(1), w_avg, atol=1e-6)

# %% [markdown]
# ## 4. More heads cost no more parameters (参数量与头数无关)
#
# W^Q, W^K, W^V, W^O are C × C whatever H is: 4C² + 4C parameters. More heads means narrower heads
# (hs = C/H), not more weights. BERT-base: C = 768, H = 12, hs = 64.

# %%
for n_heads in [1, 2, 3, 4, 6, 12]:
    ours_n = sum(p.numel() for p in MultiHeadAttention(C, n_heads).parameters())
    ref_n = sum(p.numel() for p in nn.MultiheadAttention(C, n_heads).parameters())
    ch.check(f"H={n_heads:2d}: parameters = 4C² + 4C = {4 * C * C + 4 * C}",
             ours_n == ref_n == 4 * C * C + 4 * C, f"ours {ours_n}, nn.MultiheadAttention {ref_n}")

# %% [markdown]
# ## 5. What different heads can do (不同的头关注不同的关系)
#
# Random weights give blurry maps, so let us *set* the weights to show three behaviours that
# trained models really learn. The input is a one-hot position vector (T = 6 channels) padded
# to C = 18; each head has hs = 6 channels.
#
# * head 0, **previous token**: q_i = s·e_i, k_j = e_{j+1}, so q_i · k_j is large only when j = i − 1;
# * head 1, **same token**: q_i = s·e_i, k_j = e_j;
# * head 2, **first token** (like BERT heads that park on [CLS]): q_i = s·e_0 for every i, k_j = e_j.
#
# W^V and W^O are identities, so each head's output is the one-hot position it looked at.

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
ch.check_close("designed heads: weights == nn.MultiheadAttention", w, w_ref[0], atol=1e-6)
ch.check_close("designed heads: output == nn.MultiheadAttention", out, out_ref, atol=1e-5)
ch.check("head 0 looks at the previous token", torch.equal(w[0, 1:].argmax(-1), torch.arange(T6 - 1)))
ch.check("head 1 looks at the token itself", torch.equal(w[1].argmax(-1), torch.arange(T6)))
ch.check("head 2 looks at the first token", bool((w[2].argmax(-1) == 0).all()))
ch.check_close("head 0's output is the previous token's one-hot position", out[0, 1:, :T6], eye[:-1], atol=1e-3)
ch.check_close("head 0, token 0 has no previous token: uniform weights", w[0, 0], torch.full((T6,), 1 / T6), atol=1e-6)

fig, axes = plt.subplots(1, 4, figsize=(15, 3.8))
titles = ["head 0: previous token", "head 1: same token", "head 2: first token", "mean over heads (nn default)"]
for ax, m, title in zip(axes, [w[0], w[1], w[2], w.mean(0)], titles):
    im = ax.imshow(m.numpy(), cmap="magma", vmin=0, vmax=1)
    ax.set(title=title, xlabel="key position")
axes[0].set_ylabel("query position")
fig.colorbar(im, ax=axes, shrink=0.8, label="attention weight")
ch.savefig(fig, "per_head_attention")

# %% [markdown]
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
