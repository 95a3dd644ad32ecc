# %% [markdown]
# # Chapter 6 · 多层Transformer编码器 — the encoder block and the stack (Article §4.2.2)
#
# The article summarises BERT's encoder as
#
#     Enc(X) = MaxPool(MLP(Dropout(LayerNorm(MultiHeadAttention(X, X, X, X))…)))
#
# **That is not what BERT computes.** 更正：BERT 的编码器没有 MaxPool，每一层都有残差连接。
# Each of BERT's L layers (L = 12 in BERT-base) is a *post-LN* block with two residual sublayers:
#
#     x = LayerNorm(x + Dropout(MultiHead(x, x, x)))      # attention sublayer
#     x = LayerNorm(x + Dropout(FFN(x)))                  # feed-forward sublayer (the "MLP")
#
# * there is **no max-pooling**: the encoder returns one vector per token, shape (B, T, C) — MLM
#   and NER need exactly that;
# * the **residual connections** `x + …` are missing from the article's formula, and they matter;
# * MultiHead takes three inputs (Q, K, V), not four (ch03);
# * a sentence-level vector, when a task needs one (NSP, classification), comes from the separate
#   **pooler**: `tanh(W · h_[CLS] + b)`, the final hidden state of the first token through a dense
#   layer — not from a max over tokens.
#
# In this chapter we assemble the block from the parts of ch02–ch04, check it and the L-layer
# stack against `nn.TransformerEncoderLayer` / `nn.TransformerEncoder`, compare post-LN and pre-LN
# at initialisation, and show the corrections above numerically.

# %%
import torch
import torch.nn as nn
import torch.nn.functional as F

from chapters.book import Chapter, plt
from minitransformer.transformer import Encoder

ch = Chapter(__file__)

# %% [markdown]
# ## 1. One encoder block, by hand (编码器层)
#
# The block owns four parts: `self_attn` (ch03), `norm1`, `ff` (ch04) and `norm2`. BERT's
# settings: GELU, post-LN, LayerNorm ε = 1e-12. We run the two lines above ourselves and compare
# with the library's `EncoderBlock.forward`.

# %% [markdown]
# ### Exercise 6.1 — wire an encoder block (搭建编码器层)
#
# **`encoder_block_ex`** · ★★ · 2 分 points · 约 ~20 分钟 min
#
# **中文：** 用给定的子层搭出一个编码器层，子层都是 (B, T, C) → (B, T, C) 的可调用对象：self_attn
# 、feed_forward、norm1、norm2。后置层归一化（norm_first=False，BERT）：x = norm1(x +
# self_attn(x))，再 x = norm2(x + feed_forward(x))；前置层归一化（norm_first=True）：x = x +
# self_attn(norm1(x))，再 x = x + feed_forward(norm2(x))。
#
# **English:** Wire one encoder block from its sublayers, given as callables (B, T, C) → (B, T,
# C): self_attn, feed_forward, norm1, norm2. Post-LN (norm_first=False, BERT): x = norm1(x +
# self_attn(x)), then x = norm2(x + feed_forward(x)); pre-LN (norm_first=True): x = x +
# self_attn(norm1(x)), then x = x + feed_forward(norm2(x)).
#
# **提示：** 两个残差子层依次相接；两种写法的唯一区别是层归一化作用在“求和之后”还是“子层的输入上”
# 。
#
# **Hint:** Two residual sublayers, one after the other; the variants differ only in whether the
# LayerNorm wraps the sum or the sublayer's input.
#
# **不可调用 Not allowed:** `blocks.sublayer_connection`, `blocks.EncoderBlock`,
# `nn.TransformerEncoderLayer`, `nn.TransformerEncoder`, `transformer.Encoder`
# (`python -m chapters.assign list`)
#
# 自查 Self-check: `python -m chapters.assign check ch06`
#
# Write `encoder_block_ex(x, self_attn, feed_forward, norm1, norm2, norm_first=False)`. The four
# sublayers are given as callables (B, T, C) → (B, T, C) — attention already knows the padding
# mask, dropout is off — so only the wiring is yours: two residual sublayers, post-LN or pre-LN.
# The check hands you the parts of an `nn.TransformerEncoderLayer` and compares with that layer.

# %%
def encoder_block_ex(x, self_attn, feed_forward, norm1, norm2, norm_first=False):
    """One encoder block from its sublayers: post-LN x = LN(x + f(x)), pre-LN x = x + f(LN(x)), attention then FFN."""
    ### BEGIN SOLUTION
    if norm_first:
        x = x + self_attn(norm1(x))
        return x + feed_forward(norm2(x))
    x = norm1(x + self_attn(x))
    return norm2(x + feed_forward(x))
    ### END SOLUTION


def check_encoder_block_ex(impl):
    """nn.TransformerEncoderLayer (float64, dropout 0, train mode: the plain math), post-LN and pre-LN, with a
    padded sentence and non-trivial LayerNorms: its own sublayers go to impl, its output is the reference."""
    worst = 0.0
    with torch.random.fork_rng():
        torch.manual_seed(0)
        for norm_first, name in [(False, "post-LN (norm_first=False)"), (True, "pre-LN (norm_first=True)")]:
            layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation="gelu", batch_first=True,
                                               norm_first=norm_first, dtype=torch.float64).train()
            with torch.no_grad():
                for norm in (layer.norm1, layer.norm2):
                    norm.weight.add_(0.5 * torch.randn(8, dtype=torch.float64))
                    norm.bias.add_(0.5 * torch.randn(8, dtype=torch.float64))
            x = torch.randn(2, 5, 8, dtype=torch.float64)
            padding = torch.tensor([[False] * 5, [False, False, False, True, True]])  # True = padding (PyTorch)
            calls = []

            def self_attn(h):
                calls.append("self_attn")
                return layer.self_attn(h, h, h, key_padding_mask=padding, need_weights=False)[0]

            def feed_forward(h):
                calls.append("feed_forward")
                return layer.linear2(F.gelu(layer.linear1(h)))

            with torch.no_grad():
                want = layer(x, src_key_padding_mask=padding)
                got = impl(x, self_attn, feed_forward, layer.norm1, layer.norm2, norm_first)
            if not isinstance(got, torch.Tensor) or got.shape != want.shape:
                shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
                raise AssertionError(f"{name}: expected shape {tuple(want.shape)} (B, T, C), received {shape}")
            if calls != ["self_attn", "feed_forward"]:
                raise AssertionError(f"{name}: expected self_attn then feed_forward, each called once, received {calls}")
            err = float((got - want).abs().max())
            if not err <= 1e-10:
                hint = ("pre-LN: x = x + self_attn(norm1(x)), then x = x + feed_forward(norm2(x)) — no norm after the sum"
                        if norm_first else
                        "post-LN: x = norm1(x + self_attn(x)), then x = norm2(x + feed_forward(x)) — norm1 first, norm2 second")
                raise AssertionError(f"{name}: max abs err {err:.1e} vs nn.TransformerEncoderLayer — {hint}")
            worst = max(worst, err)
    return f"post-LN and pre-LN with padding equal nn.TransformerEncoderLayer, max abs err {worst:.1e}"


ch.verify(check_encoder_block_ex, encoder_block_ex)

# %%
from minitransformer.blocks import EncoderBlock  # the library's block (exercise 6.1)

B, T, C, H, D_FF = 2, 6, 32, 4, 128
EPS = 1e-12  # BERT's LayerNorm epsilon
block = EncoderBlock(C, H, D_FF, dropout=0.0, activation="gelu", norm_first=False, eps=EPS).train()
x = torch.randn(B, T, C)
attention_mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])  # sentence 2: 2 padding tokens

with torch.no_grad():
    a, _ = block.self_attn(x, attention_mask=attention_mask)  # MultiHead(x, x, x)
    h = block.norm1(x + a)  # x = LN(x + Dropout(MHA(x))), dropout 0 here
    y_hand = block.norm2(h + block.ff(h))  # x = LN(x + Dropout(FFN(x)))
    y_lib, _ = block(x, attention_mask=attention_mask)
    y_ex = encoder_block_ex(x, lambda h: block.self_attn(h, attention_mask=attention_mask)[0], block.ff,
                            block.norm1, block.norm2)
ch.show("x", x, "(B, T, C)")
ch.show("block(x)", y_lib, "(B, T, C): one vector per token")
ch.check_close("post-LN block by hand == library EncoderBlock", y_hand, y_lib, atol=1e-5)
ch.check_close("exercise 6.1 with the block's sublayers == library EncoderBlock", y_ex, y_lib, atol=1e-5)

# %% [markdown]
# ## 2. Against `nn.TransformerEncoderLayer` (与 PyTorch 对照)
#
# PyTorch's layer has the same parts under other names: `self_attn` (with W^Q, W^K, W^V stacked
# in `in_proj_weight`), `linear1`/`linear2` for the FFN, `norm1`/`norm2`; `norm_first` chooses
# pre-LN. Two practical notes:
#
# * its `src_key_padding_mask` is True at **padding** (the opposite of our `attention_mask`);
# * in `eval()` mode PyTorch may take a fused "fast path" (and turn padded batches into nested
#   tensors). We compare in `train()` mode with dropout = 0, which runs the plain math.

# %%
@torch.no_grad()
def copy_block(ours: EncoderBlock, ref: nn.TransformerEncoderLayer) -> None:
    """Copy our block's weights into PyTorch's encoder layer."""
    at = ours.self_attn
    ref.self_attn.in_proj_weight.copy_(torch.cat([at.q_proj.weight, at.k_proj.weight, at.v_proj.weight]))
    ref.self_attn.in_proj_bias.copy_(torch.cat([at.q_proj.bias, at.k_proj.bias, at.v_proj.bias]))
    ref.self_attn.out_proj.weight.copy_(at.out_proj.weight)
    ref.self_attn.out_proj.bias.copy_(at.out_proj.bias)
    ref.linear1.load_state_dict(ours.ff.fc1.state_dict())
    ref.linear2.load_state_dict(ours.ff.fc2.state_dict())
    ref.norm1.load_state_dict(ours.norm1.state_dict())
    ref.norm2.load_state_dict(ours.norm2.state_dict())


def torch_layer(norm_first: bool) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(C, H, D_FF, dropout=0.0, activation="gelu", layer_norm_eps=EPS,
                                      batch_first=True, norm_first=norm_first).train()


for norm_first, name in [(False, "post-LN (BERT)"), (True, "pre-LN (GPT-2 style)")]:
    ours = EncoderBlock(C, H, D_FF, dropout=0.0, activation="gelu", norm_first=norm_first, eps=EPS).train()
    with torch.no_grad():  # non-trivial LayerNorm parameters, so a swapped norm1/norm2 would show
        for norm in (ours.norm1, ours.norm2):
            norm.weight.add_(0.1 * torch.randn(C))
            norm.bias.add_(0.1 * torch.randn(C))
    ref = torch_layer(norm_first)
    copy_block(ours, ref)
    with torch.no_grad():
        ch.check_close(f"{name} block == nn.TransformerEncoderLayer", ours(x)[0], ref(x), atol=1e-5)
        ch.check_close(f"{name} block with padding == nn.TransformerEncoderLayer(src_key_padding_mask)",
                       ours(x, attention_mask=attention_mask)[0], ref(x, src_key_padding_mask=attention_mask == 0), atol=1e-5)

# %% [markdown]
# ## 3. The L-layer encoder (多层编码器)
#
# The encoder is L identical blocks applied in turn (each with its own weights). A pre-LN stack
# needs one final LayerNorm after the last block, since its residual stream is never normalised
# otherwise; a post-LN stack (BERT) already ends with one.

# %%
N_LAYERS = 4
for norm_first, name in [(False, "post-LN, no final norm (BERT)"), (True, "pre-LN + final LayerNorm")]:
    enc = Encoder(N_LAYERS, C, H, D_FF, dropout=0.0, activation="gelu", norm_first=norm_first,
                  final_norm=norm_first, eps=EPS).train()
    ref = nn.TransformerEncoder(torch_layer(norm_first), N_LAYERS, norm=nn.LayerNorm(C, eps=EPS) if norm_first else None,
                                enable_nested_tensor=False).train()
    for ours_layer, ref_layer in zip(enc.layers, ref.layers):
        copy_block(ours_layer, ref_layer)
    if norm_first:
        with torch.no_grad():
            enc.norm.weight.add_(0.1 * torch.randn(C))
        ref.norm.load_state_dict(enc.norm.state_dict())
    with torch.no_grad():
        out, _ = enc(x, attention_mask=attention_mask)
        out_ref = ref(x, src_key_padding_mask=attention_mask == 0)
    ch.check_close(f"{N_LAYERS}-layer {name} == nn.TransformerEncoder", out, out_ref, atol=1e-5)
ch.show("Encoder(x)", out, "(B, T, C)")

# %% [markdown]
# ## 4. The article's formula, corrected numerically (文章公式的更正)
#
# **(a) One vector per token, not a pooled vector.** The encoder's output has shape (B, T, C).
# Each token's vector depends on the whole sentence (both directions — the "B" in BERT): change
# the last token and the first token's output changes.

# %%
bert = Encoder(N_LAYERS, C, H, D_FF, dropout=0.0, activation="gelu", norm_first=False, eps=EPS).eval()
with torch.no_grad():
    hidden, _ = bert(x, attention_mask=attention_mask)
    x_changed = x.clone()
    x_changed[0, -1] += 1.0  # change only the last token of sentence 1
    hidden_changed, _ = bert(x_changed, attention_mask=attention_mask)
ch.check("the encoder returns one vector per token: (B, T, C), nothing pooled", hidden.shape == (B, T, C),
         f"shape {tuple(hidden.shape)}")
ch.check_value("bidirectional: changing the last token changes the first token's vector (max change)",
               float((hidden_changed[0, 0] - hidden[0, 0]).abs().max()), low=1e-3)

# %% [markdown]
# **(b) Padding is ignored; a max over tokens is not.** With the padding mask, real tokens never
# attend to padding, so whatever sits in the padded positions cannot change them. A MaxPool over
# all T positions, as the formula writes, would happily pick values from the padding.

# %%
with torch.no_grad():
    x_pad = x.clone()
    x_pad[1, 4:] = 10 * torch.randn(2, C)  # new garbage in sentence 2's two padding positions
    hidden_pad, _ = bert(x_pad, attention_mask=attention_mask)
ch.check_close("real tokens' outputs ignore what is in the padding", hidden_pad[1, :4], hidden[1, :4], atol=1e-5)
maxpool, maxpool_pad = hidden.amax(dim=1), hidden_pad.amax(dim=1)  # the article's MaxPool over tokens, (B, C)
ch.check_value("a MaxPool over all positions is changed by the padding (max change)",
               float((maxpool_pad[1] - maxpool[1]).abs().max()), low=1e-2)

# %% [markdown]
# **(c) The sentence vector is the pooler, tanh(W·h_[CLS] + b).** BERT prepends a [CLS] token; its
# final hidden state goes through one dense layer with tanh. It is used by NSP pretraining and
# by sentence classification — and it depends only on position 0 of the encoder output.

# %%
pooler = nn.Linear(C, C)  # BERT's pooler.dense
with torch.no_grad():
    pooled = torch.tanh(pooler(hidden[:, 0]))  # (B, C)
    other = hidden.clone()
    other[:, 1:] = torch.randn(B, T - 1, C)  # change every position except [CLS]
    pooled_other = torch.tanh(pooler(other[:, 0]))
ch.show("pooled = tanh(W h_[CLS] + b)", pooled, "(B, C)")
ch.check_close("the pooler reads only the [CLS] position", pooled_other, pooled, atol=0)
ch.check("pooler values lie in (−1, 1) (tanh)", bool((pooled.abs() < 1).all()))
ch.check_value("the pooler is not a MaxPool over tokens (max |pooler − MaxPool|)", float((pooled - maxpool).abs().max()), low=1e-2)

# %% [markdown]
# **(d) The residual path.** Set every sublayer's output projection to zero (attention's W^O and
# the FFN's W₂, with their biases). BERT's layer becomes LN(LN(x)) = LN(x): each token keeps its
# own identity. Without residuals — the article's nested formula — the same layer outputs a
# *constant*, the same vector for every token: the input is gone.

# %%
dead = EncoderBlock(C, H, D_FF, dropout=0.0, norm_first=False, eps=EPS).eval()
with torch.no_grad():
    for lin in (dead.self_attn.out_proj, dead.ff.fc2):
        lin.weight.zero_()
        lin.bias.zero_()
    with_residual, _ = dead(x)
    a, _ = dead.self_attn(x)
    no_residual = dead.norm2(dead.ff(dead.norm1(a)))  # the article's nesting: LN → MLP, no x + …
ch.check_close("with residuals, zeroed sublayers leave LN(x): tokens keep their identity", with_residual,
               F.layer_norm(x, (C,), eps=EPS), atol=1e-5)
spread = float((no_residual - no_residual[:, :1]).abs().max())
ch.check("without residuals, every token gets the same vector", spread < 1e-6, f"max difference between tokens {spread:.1e}")

# %% [markdown]
# ## 5. Post-LN vs pre-LN at initialisation (层归一化的位置)
#
# Where the LayerNorm sits changes what happens through depth. We build 24-layer stacks of both
# kinds with the library's default initialisation, push a batch through, backpropagate a
# regression loss on the final output, and record at every layer:
#
# * the RMS of the residual stream after the layer;
# * the norm of the gradient reaching that layer's attention and FFN weights (LayerNorm γ, β are
#   left out: post-LN's last block holds the output LayerNorm, pre-LN's sits outside the blocks).
#
# What to look for: in **post-LN** every layer ends with a LayerNorm, so the stream's RMS is
# pinned at 1 and every layer's weights get gradients of about the same size. In **pre-LN**
# nothing normalises the stream itself: each block *adds* to it, so its RMS grows with depth,
# and each block's contribution is a shrinking share of it — the gradients reaching later layers
# get smaller, well below post-LN's. Xiong et al. (2020) tie post-LN's larger gradients near the
# output to its need for a learning-rate warm-up (BERT uses one); pre-LN (GPT-2) is more forgiving.
# The exact curves depend on the initialisation (here PyTorch's default for nn.Linear).

# %%
DEPTH, n_seeds = 24, ch.steps(4, 1)
stats = {}
for norm_first in (False, True):
    rms_sum, grad_sum = torch.zeros(DEPTH), torch.zeros(DEPTH)
    for seed in range(n_seeds):
        ch.manual_seed(100 + seed)
        enc = Encoder(DEPTH, 64, 4, 256, dropout=0.0, norm_first=norm_first, final_norm=norm_first).train()
        h = torch.randn(8, 16, 64)
        rms = []
        for layer in enc.layers:
            h, _ = layer(h)
            rms.append(float(h.detach().pow(2).mean().sqrt()))
        if enc.norm is not None:
            h = enc.norm(h)
        loss = F.mse_loss(h, torch.randn_like(h))
        loss.backward()
        grads = [float(torch.sqrt(sum(p.grad.pow(2).sum() for n, p in layer.named_parameters() if "norm" not in n)))
                 for layer in enc.layers]  # attention and FFN weights; LayerNorm γ, β left out
        rms_sum += torch.tensor(rms)
        grad_sum += torch.tensor(grads)
    stats[norm_first] = (rms_sum / n_seeds, grad_sum / n_seeds)

(post_rms, post_grad), (pre_rms, pre_grad) = stats[False], stats[True]
print("  layer   post-LN rms / grad     pre-LN rms / grad")
for i in range(0, DEPTH, 4):
    print(f"  {i + 1:5d}   {post_rms[i]:6.2f} / {post_grad[i]:.3f}      {pre_rms[i]:6.2f} / {pre_grad[i]:.3f}")
ch.check_close("post-LN: the residual stream has RMS 1 after every layer", post_rms, torch.ones(DEPTH), atol=1e-3)
ch.check_value(f"pre-LN: the residual stream grows with depth (RMS after layer {DEPTH} / after layer 1)",
               float(pre_rms[-1] / pre_rms[0]), low=1.3,
               detail=f"RMS {float(pre_rms[0]):.2f} after layer 1, {float(pre_rms[-1]):.2f} after layer {DEPTH}")
ch.check_value("post-LN: every layer's weights get gradients of about the same size (largest / smallest)",
               float(post_grad.max() / post_grad.min()), high=1.35,  # 1.10 ± 0.04 over seeds 0-4 (pre-LN: 1.57)
               detail=f"{float(post_grad.min()):.3f} … {float(post_grad.max()):.3f}")
ch.check_value(f"pre-LN: later layers get smaller gradients than earlier ones (layer {DEPTH} / layer 1)",
               float(pre_grad[-1] / pre_grad[0]), high=0.85,
               detail=f"{float(pre_grad[0]):.3f} at layer 1, {float(pre_grad[-1]):.3f} at layer {DEPTH}")
ch.check_value("the last layers' gradients are smaller in pre-LN than in post-LN (mean over the last 4, pre / post)",
               float(pre_grad[-4:].mean() / post_grad[-4:].mean()), high=0.8,
               detail=f"pre-LN {float(pre_grad[-4:].mean()):.3f}, post-LN {float(post_grad[-4:].mean()):.3f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
layers = range(1, DEPTH + 1)
axes[0].plot(layers, post_rms, "o-", ms=3, label="post-LN (BERT)")
axes[0].plot(layers, pre_rms, "s-", ms=3, label="pre-LN (GPT-2)")
axes[0].set(title="residual stream RMS after each layer", xlabel="layer", ylim=(0, None))
axes[1].plot(layers, post_grad, "o-", ms=3, label="post-LN (BERT)")
axes[1].plot(layers, pre_grad, "s-", ms=3, label="pre-LN (GPT-2)")
axes[1].set(title="‖∂loss/∂W‖ of each layer's attention + FFN weights", xlabel="layer", ylim=(0, None))
for ax in axes:
    ax.legend()
ch.savefig(fig, "post_ln_vs_pre_ln")

# %% [markdown]
# ## What we built
#
# * BERT's encoder layer, x = LN(x + Dropout(MHA(x))); x = LN(x + Dropout(FFN(x))), equal to
#   `nn.TransformerEncoderLayer` (post-LN and pre-LN, with padding);
# * the L-layer encoder, equal to `nn.TransformerEncoder`;
# * the corrections to the article's Enc(X): per-token output (B, T, C), no MaxPool, residual
#   connections, three-input attention, and the [CLS] pooler tanh(W·h_[CLS] + b) for sentence tasks;
# * post-LN vs pre-LN through depth at initialisation.
#
# The minibert chapters put token, position and segment embeddings in front of this encoder and
# the MLM / NSP heads after it.

# %%
ch.done()
