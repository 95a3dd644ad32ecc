# %% [markdown] lang="zh"
# # 第 6 章 · 多层 Transformer 编码器：编码器层与多层堆叠（对应文章 §4.2.2）
#
# 文章把 BERT 的编码器（encoder）概括为
#
#     Enc(X) = MaxPool(MLP(Dropout(LayerNorm(MultiHeadAttention(X, X, X, X))…)))
#
# **BERT 实际算的并不是这个。** 更正：BERT 的编码器没有 MaxPool，每一层都有残差连接。
# BERT 的 L 层（BERT-base 中 L = 12）每一层都是一个**后置层归一化**（post-LN）的块，包含两个
# 带残差的子层：
#
#     x = LayerNorm(x + Dropout(MultiHead(x, x, x)))      # 注意力子层
#     x = LayerNorm(x + Dropout(FFN(x)))                  # 前馈子层（文中的“MLP”）
#
# * **没有最大池化**（max-pooling）：编码器为每个词元输出一个向量，形状为 (B, T, C)——掩码语言
#   模型（MLM）和命名实体识别（NER）需要的正是这个；
# * 文章的公式漏掉了**残差连接**（residual connection）`x + …`，而它们至关重要；
# * MultiHead 接收三个输入（Q, K, V），而不是四个（第 3 章）；
# * 任务需要句子级向量时（NSP、分类），它来自单独的**池化层**（pooler）：
#   `tanh(W · h_[CLS] + b)`，即第一个词元的最终隐状态经过一个全连接层——而不是在词元上取最大值。
#
# 本章用第 2–4 章的部件搭出编码器层，把它和 L 层的堆叠分别与 `nn.TransformerEncoderLayer` /
# `nn.TransformerEncoder` 对照，比较初始化时的后置与前置层归一化，并用数值演示上面的几处更正。

# %% [markdown] lang="en"
# # Chapter 6 · The multi-layer Transformer encoder — the encoder block and the stack (Article §4.2.2)
#
# The article summarises BERT's encoder as
#
#     Enc(X) = MaxPool(MLP(Dropout(LayerNorm(MultiHeadAttention(X, X, X, X))…)))
#
# **That is not what BERT computes.** Correction: BERT's encoder has no MaxPool, and every layer
# has residual connections. Each of BERT's L layers (L = 12 in BERT-base) is a *post-LN* block
# with two residual sublayers:
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

ch = Chapter("ch06_encoder")

# %% [markdown] lang="zh"
# ## 1. 亲手搭一个编码器层
#
# 一个编码器层由四个部件组成：`self_attn`（第 3 章）、`norm1`、`ff`（第 4 章）和 `norm2`。
# BERT 的设置是：GELU 激活、后置层归一化、LayerNorm 的 ε = 1e-12。我们自己执行上面那两行公式，
# 再与库里的 `EncoderBlock.forward` 比较。

# %% [markdown] lang="en"
# ## 1. One encoder block, by hand
#
# The block owns four parts: `self_attn` (ch03), `norm1`, `ff` (ch04) and `norm2`. BERT's
# settings: GELU, post-LN, LayerNorm ε = 1e-12. We run the two lines above ourselves and compare
# with the library's `EncoderBlock.forward`.

# %% [markdown] lang="zh"
# ### 练习 6.1 — 搭建编码器层
#
# **`encoder_block_ex`** · ★★ · 2 分 · 约 20 分钟
#
# **题目：** 用给定的子层搭出一个编码器层，子层都是 (B, T, C) → (B, T, C) 的可调用对象：self_attn
# 、feed_forward、norm1、norm2。后置层归一化（norm_first=False，BERT）：x = norm1(x +
# self_attn(x))，再 x = norm2(x + feed_forward(x))；前置层归一化（norm_first=True）：x = x +
# self_attn(norm1(x))，再 x = x + feed_forward(norm2(x))。
#
# **提示：** 两个残差子层依次相接；两种写法的唯一区别是层归一化作用在“求和之后”还是“子层的输入上”
# 。
#
# **不可调用：** `blocks.sublayer_connection`, `blocks.EncoderBlock`,
# `nn.TransformerEncoderLayer`, `nn.TransformerEncoder`, `transformer.Encoder`
# （`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch06`
#
# 实现 `encoder_block_ex(x, self_attn, feed_forward, norm1, norm2, norm_first=False)`。四个子层都以
# (B, T, C) → (B, T, C) 的可调用对象给出——注意力已经知道填充掩码（padding mask），dropout 也已
# 关闭——所以你只需要负责把它们连起来：两个残差子层，后置或前置层归一化。检查函数会把一个
# `nn.TransformerEncoderLayer` 的各个部件交给你的函数，再把结果与这一层本身的输出相比较。

# %% [markdown] lang="en"
# ### Exercise 6.1 — wire an encoder block
#
# **`encoder_block_ex`** · ★★ · 2 points · ~20 min
#
# **Task:** Wire one encoder block from its sublayers, given as callables (B, T, C) → (B, T,
# C): self_attn, feed_forward, norm1, norm2. Post-LN (norm_first=False, BERT): x = norm1(x +
# self_attn(x)), then x = norm2(x + feed_forward(x)); pre-LN (norm_first=True): x = x +
# self_attn(norm1(x)), then x = x + feed_forward(norm2(x)).
#
# **Hint:** Two residual sublayers, one after the other; the variants differ only in whether the
# LayerNorm wraps the sum or the sublayer's input.
#
# **Not allowed:** `blocks.sublayer_connection`, `blocks.EncoderBlock`,
# `nn.TransformerEncoderLayer`, `nn.TransformerEncoder`, `transformer.Encoder`
# (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch06`
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
                raise AssertionError(ch.tr(f"{name}：期望形状 {tuple(want.shape)} (B, T, C)，实际得到 {shape}",
                                           f"{name}: expected shape {tuple(want.shape)} (B, T, C), received {shape}"))
            if calls != ["self_attn", "feed_forward"]:
                raise AssertionError(ch.tr(f"{name}：期望先调用 self_attn 再调用 feed_forward，各一次，实际调用为 {calls}",
                                           f"{name}: expected self_attn then feed_forward, each called once, received {calls}"))
            err = float((got - want).abs().max())
            if not err <= 1e-10:
                hint = (ch.tr("pre-LN：x = x + self_attn(norm1(x))，然后 x = x + feed_forward(norm2(x))——相加之后不再做层归一化",
                              "pre-LN: x = x + self_attn(norm1(x)), then x = x + feed_forward(norm2(x)) — no norm after the sum")
                        if norm_first else
                        ch.tr("post-LN：x = norm1(x + self_attn(x))，然后 x = norm2(x + feed_forward(x))——先用 norm1，再用 norm2",
                              "post-LN: x = norm1(x + self_attn(x)), then x = norm2(x + feed_forward(x)) — norm1 first, norm2 second"))
                raise AssertionError(ch.tr(f"{name}：与 nn.TransformerEncoderLayer 的最大绝对误差为 {err:.1e}——{hint}",
                                           f"{name}: max abs err {err:.1e} vs nn.TransformerEncoderLayer — {hint}"))
            worst = max(worst, err)
    return ch.tr(f"post-LN 和 pre-LN（含填充）都与 nn.TransformerEncoderLayer 一致，最大绝对误差 {worst:.1e}",
                 f"post-LN and pre-LN with padding equal nn.TransformerEncoderLayer, max abs err {worst:.1e}")


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
ch.show("block(x)", y_lib, ch.tr("(B, T, C)：每个词元一个向量", "(B, T, C): one vector per token"))
ch.check_close(ch.tr("手写的后置层归一化编码器层 == 库里的 EncoderBlock", "post-LN block by hand == library EncoderBlock"),
               y_hand, y_lib, atol=1e-5)
ch.check_close(ch.tr("练习 6.1（用这一层的子层）== 库里的 EncoderBlock", "exercise 6.1 with the block's sublayers == library EncoderBlock"),
               y_ex, y_lib, atol=1e-5)

# %% [markdown] lang="zh"
# ## 2. 与 PyTorch 的 `nn.TransformerEncoderLayer` 对照
#
# PyTorch 的这一层有同样的部件，只是名字不同：`self_attn`（W^Q、W^K、W^V 堆叠在
# `in_proj_weight` 里）、前馈网络的 `linear1`/`linear2`、`norm1`/`norm2`；`norm_first` 用来选择
# 前置层归一化。有两点实际使用中的注意事项：
#
# * 它的 `src_key_padding_mask` 在**填充位置**为 True（与我们的 `attention_mask` 恰好相反）；
# * 在 `eval()` 模式下，PyTorch 可能走融合的“快速路径”（并把带填充的批次转成嵌套张量，nested
#   tensor）。因此我们在 `train()` 模式下、dropout = 0 时比较，这时执行的是普通的数学运算。

# %% [markdown] lang="en"
# ## 2. Against PyTorch's `nn.TransformerEncoderLayer`
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


for norm_first, name in [(False, ch.tr("后置层归一化（BERT）", "post-LN (BERT)")), (True, ch.tr("前置层归一化（GPT-2 式）", "pre-LN (GPT-2 style)"))]:
    ours = EncoderBlock(C, H, D_FF, dropout=0.0, activation="gelu", norm_first=norm_first, eps=EPS).train()
    with torch.no_grad():  # non-trivial LayerNorm parameters, so a swapped norm1/norm2 would show
        for norm in (ours.norm1, ours.norm2):
            norm.weight.add_(0.1 * torch.randn(C))
            norm.bias.add_(0.1 * torch.randn(C))
    ref = torch_layer(norm_first)
    copy_block(ours, ref)
    with torch.no_grad():
        ch.check_close(ch.tr(f"{name}编码器层 == nn.TransformerEncoderLayer", f"{name} block == nn.TransformerEncoderLayer"),
                       ours(x)[0], ref(x), atol=1e-5)
        ch.check_close(ch.tr(f"带填充的{name}编码器层 == nn.TransformerEncoderLayer(src_key_padding_mask)",
                             f"{name} block with padding == nn.TransformerEncoderLayer(src_key_padding_mask)"),
                       ours(x, attention_mask=attention_mask)[0], ref(x, src_key_padding_mask=attention_mask == 0), atol=1e-5)

# %% [markdown] lang="zh"
# ## 3. L 层编码器
#
# 编码器就是 L 个结构相同的层依次作用（每层有自己的权重）。前置层归一化的堆叠需要在最后一层
# 之后再加一个 LayerNorm，否则它的残差流（residual stream）从头到尾都没有被归一化过；后置
# 层归一化的堆叠（BERT）本来就以一个 LayerNorm 结尾。

# %% [markdown] lang="en"
# ## 3. The L-layer encoder
#
# The encoder is L identical blocks applied in turn (each with its own weights). A pre-LN stack
# needs one final LayerNorm after the last block, since its residual stream is never normalised
# otherwise; a post-LN stack (BERT) already ends with one.

# %%
N_LAYERS = 4
for norm_first, name in [(False, ch.tr("后置层归一化、末尾无额外 LayerNorm（BERT）", "post-LN, no final norm (BERT)")),
                         (True, ch.tr("前置层归一化 + 末尾 LayerNorm", "pre-LN + final LayerNorm"))]:
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
    ch.check_close(ch.tr(f"{N_LAYERS} 层编码器，{name} == nn.TransformerEncoder", f"{N_LAYERS}-layer {name} == nn.TransformerEncoder"),
                   out, out_ref, atol=1e-5)
ch.show("Encoder(x)", out, "(B, T, C)")

# %% [markdown] lang="zh"
# ## 4. 用数值更正文章的公式
#
# **(a) 每个词元一个向量，而不是一个池化后的向量。** 编码器输出的形状是 (B, T, C)。每个词元的
# 向量都取决于整个句子（两个方向都看——这就是 BERT 中的“B”，bidirectional）：只改最后一个词元，
# 第一个词元的输出也会变。

# %% [markdown] lang="en"
# ## 4. The article's formula, corrected numerically
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
ch.check(ch.tr("编码器为每个词元返回一个向量：(B, T, C)，没有任何池化", "the encoder returns one vector per token: (B, T, C), nothing pooled"),
         hidden.shape == (B, T, C), ch.tr(f"形状 {tuple(hidden.shape)}", f"shape {tuple(hidden.shape)}"))
ch.check_value(ch.tr("双向：改动最后一个词元，第一个词元的向量也会变（最大变化量）",
                     "bidirectional: changing the last token changes the first token's vector (max change)"),
               float((hidden_changed[0, 0] - hidden[0, 0]).abs().max()), low=1e-3)

# %% [markdown] lang="zh"
# **(b) 编码器会忽略填充，而在词元上取最大值不会。** 有了填充掩码，真实词元从不关注填充
# 位置，所以填充位置里放什么都改变不了它们。而像公式写的那样对全部 T 个位置做 MaxPool，则会
# 毫无顾忌地从填充位置里取值。

# %% [markdown] lang="en"
# **(b) The encoder ignores padding; a max over tokens does not.** With the padding mask, real
# tokens never attend to padding, so whatever sits in the padded positions cannot change them. A
# MaxPool over all T positions, as the formula writes, would happily pick values from the padding.

# %%
with torch.no_grad():
    x_pad = x.clone()
    x_pad[1, 4:] = 10 * torch.randn(2, C)  # new garbage in sentence 2's two padding positions
    hidden_pad, _ = bert(x_pad, attention_mask=attention_mask)
ch.check_close(ch.tr("真实词元的输出不受填充位置内容的影响", "real tokens' outputs ignore what is in the padding"), hidden_pad[1, :4],
               hidden[1, :4], atol=1e-5)
maxpool, maxpool_pad = hidden.amax(dim=1), hidden_pad.amax(dim=1)  # the article's MaxPool over tokens, (B, C)
ch.check_value(ch.tr("对所有位置做 MaxPool，结果会被填充改变（最大变化量）", "a MaxPool over all positions is changed by the padding (max change)"),
               float((maxpool_pad[1] - maxpool[1]).abs().max()), low=1e-2)

# %% [markdown] lang="zh"
# **(c) 句子向量来自池化层 tanh(W·h_[CLS] + b)。** BERT 在输入前面加一个 [CLS] 词元；它的最终
# 隐状态经过一个带 tanh 的全连接层。NSP 预训练和句子分类用的就是它——而且它只取决于编码器输出的
# 第 0 个位置。

# %% [markdown] lang="en"
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
ch.check_close(ch.tr("池化层只读取 [CLS] 位置", "the pooler reads only the [CLS] position"), pooled_other, pooled, atol=0)
ch.check(ch.tr("池化层的输出位于 (−1, 1) 之间（tanh）", "pooler values lie in (−1, 1) (tanh)"), bool((pooled.abs() < 1).all()))
ch.check_value(ch.tr("池化层不是在词元上做 MaxPool（max |pooler − MaxPool|）", "the pooler is not a MaxPool over tokens (max |pooler − MaxPool|)"),
               float((pooled - maxpool).abs().max()), low=1e-2)

# %% [markdown] lang="zh"
# **(d) 残差通路。** 把每个子层的输出投影（注意力的 W^O 和前馈网络的 W₂，连同偏置）都置为零。
# 这时 BERT 的一层变成 LN(LN(x)) = LN(x)：每个词元仍保有自己的身份。而没有残差时——也就是文章
# 那种层层嵌套的公式——同一层会输出一个*常数*，每个词元得到同一个向量：输入的信息全丢了。

# %% [markdown] lang="en"
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
ch.check_close(ch.tr("有残差时，子层置零后输出为 LN(x)：词元保有各自的身份",
                     "with residuals, zeroed sublayers leave LN(x): tokens keep their identity"), with_residual,
               F.layer_norm(x, (C,), eps=EPS), atol=1e-5)
spread = float((no_residual - no_residual[:, :1]).abs().max())
ch.check(ch.tr("没有残差时，每个词元得到同一个向量", "without residuals, every token gets the same vector"), spread < 1e-6,
         ch.tr(f"词元之间的最大差异 {spread:.1e}", f"max difference between tokens {spread:.1e}"))

# %% [markdown] lang="zh"
# ## 5. 初始化时的后置与前置层归一化
#
# LayerNorm 放在哪里，决定了信号穿过多层时的表现。我们用库的默认初始化分别搭建两种 24 层的
# 堆叠，送入一批数据，在最终输出上对一个回归损失做反向传播，并在每一层记录：
#
# * 该层之后残差流的均方根（RMS）；
# * 传到该层注意力和前馈网络权重上的梯度范数（不计 LayerNorm 的 γ、β：后置层归一化的最后一层
#   含有输出端的 LayerNorm，而前置层归一化的那个 LayerNorm 在各层之外）。
#
# 要看什么：在**后置层归一化**中，每一层都以 LayerNorm 结尾，所以残差流的 RMS 被钉在 1，每一层
# 权重得到的梯度大小也差不多。在**前置层归一化**中，没有任何东西去归一化残差流本身：每一层都往
# 上*加*一点，于是它的 RMS 随深度增长，而每一层的贡献在其中所占的份额越来越小——传到靠后各层的
# 梯度随之变小，远低于后置层归一化。Xiong 等人（2020）把后置层归一化在输出端附近较大的梯度，
# 与它需要学习率预热（warm-up）联系起来（BERT 就用了预热）；前置层归一化（GPT-2）则更宽容。
# 具体曲线取决于初始化方式（这里是 PyTorch 对 nn.Linear 的默认初始化）。

# %% [markdown] lang="en"
# ## 5. Post-LN vs pre-LN at initialisation
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
print(ch.tr("     层   后置 LN rms / 梯度     前置 LN rms / 梯度", "  layer   post-LN rms / grad     pre-LN rms / grad"))
for i in range(0, DEPTH, 4):
    print(f"  {i + 1:5d}   {post_rms[i]:6.2f} / {post_grad[i]:.3f}      {pre_rms[i]:6.2f} / {pre_grad[i]:.3f}")
ch.check_close(ch.tr("后置层归一化：每一层之后残差流的 RMS 都是 1", "post-LN: the residual stream has RMS 1 after every layer"), post_rms,
               torch.ones(DEPTH), atol=1e-3)
ch.check_value(ch.tr(f"前置层归一化：残差流随深度增长（第 {DEPTH} 层之后的 RMS / 第 1 层之后的 RMS）",
                     f"pre-LN: the residual stream grows with depth (RMS after layer {DEPTH} / after layer 1)"),
               float(pre_rms[-1] / pre_rms[0]), low=1.3,
               detail=ch.tr(f"第 1 层之后 RMS 为 {float(pre_rms[0]):.2f}，第 {DEPTH} 层之后为 {float(pre_rms[-1]):.2f}",
                            f"RMS {float(pre_rms[0]):.2f} after layer 1, {float(pre_rms[-1]):.2f} after layer {DEPTH}"))
ch.check_value(ch.tr("后置层归一化：每一层权重的梯度大小相近（最大 / 最小）",
                     "post-LN: every layer's weights get gradients of about the same size (largest / smallest)"),
               float(post_grad.max() / post_grad.min()), high=1.35,  # 1.10 ± 0.04 over seeds 0-4 (pre-LN: 1.57)
               detail=f"{float(post_grad.min()):.3f} … {float(post_grad.max()):.3f}")
ch.check_value(ch.tr(f"前置层归一化：靠后的层得到的梯度比靠前的层小（第 {DEPTH} 层 / 第 1 层）",
                     f"pre-LN: later layers get smaller gradients than earlier ones (layer {DEPTH} / layer 1)"),
               float(pre_grad[-1] / pre_grad[0]), high=0.85,
               detail=ch.tr(f"第 1 层 {float(pre_grad[0]):.3f}，第 {DEPTH} 层 {float(pre_grad[-1]):.3f}",
                            f"{float(pre_grad[0]):.3f} at layer 1, {float(pre_grad[-1]):.3f} at layer {DEPTH}"))
ch.check_value(ch.tr("最后几层的梯度，前置层归一化比后置层归一化小（最后 4 层的均值，前置 / 后置）",
                     "the last layers' gradients are smaller in pre-LN than in post-LN (mean over the last 4, pre / post)"),
               float(pre_grad[-4:].mean() / post_grad[-4:].mean()), high=0.8,
               detail=ch.tr(f"前置 {float(pre_grad[-4:].mean()):.3f}，后置 {float(post_grad[-4:].mean()):.3f}",
                            f"pre-LN {float(pre_grad[-4:].mean()):.3f}, post-LN {float(post_grad[-4:].mean()):.3f}"))

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
layers = range(1, DEPTH + 1)
axes[0].plot(layers, post_rms, "o-", ms=3, label=ch.tr("后置 LN（BERT）", "post-LN (BERT)"))
axes[0].plot(layers, pre_rms, "s-", ms=3, label=ch.tr("前置 LN（GPT-2）", "pre-LN (GPT-2)"))
axes[0].set(title=ch.tr("每一层之后残差流的 RMS", "residual stream RMS after each layer"), xlabel=ch.tr("层", "layer"),
            ylim=(0, None))
axes[1].plot(layers, post_grad, "o-", ms=3, label=ch.tr("后置 LN（BERT）", "post-LN (BERT)"))
axes[1].plot(layers, pre_grad, "s-", ms=3, label=ch.tr("前置 LN（GPT-2）", "pre-LN (GPT-2)"))
axes[1].set(title=ch.tr("各层注意力 + 前馈网络权重的 ‖∂loss/∂W‖", "‖∂loss/∂W‖ of each layer's attention + FFN weights"),
            xlabel=ch.tr("层", "layer"), ylim=(0, None))
for ax in axes:
    ax.legend()
ch.savefig(fig, "post_ln_vs_pre_ln")

# %% [markdown] lang="zh"
# ## 本章小结
#
# * BERT 的编码器层 x = LN(x + Dropout(MHA(x)))；x = LN(x + Dropout(FFN(x)))，与
#   `nn.TransformerEncoderLayer` 一致（后置和前置层归一化，带填充）；
# * L 层编码器，与 `nn.TransformerEncoder` 一致；
# * 对文章中 Enc(X) 的更正：逐词元输出 (B, T, C)、没有 MaxPool、有残差连接、注意力接收三个输入，
#   句子级任务则用 [CLS] 池化层 tanh(W·h_[CLS] + b)；
# * 初始化时，后置与前置层归一化随深度的表现。
#
# 后面 minibert 的各章会在这个编码器前面加上词元、位置和片段嵌入，在后面接上 MLM / NSP 输出头。

# %% [markdown] lang="en"
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
