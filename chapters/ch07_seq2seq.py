# %% [markdown] lang="zh"
# # 第 7 章 · 生成任务与机器翻译：解码器、交叉注意力与编码器-解码器 Transformer（对应文章 §3.2.4、§6.3）
#
# 文章 §3.2.4 把**生成任务**（“使用有标签数据进行序列到序列的微调”）、§6.3 把**机器翻译**列为
# 预训练模型的用途，但都没有说明由什么样的模型把一个序列变成另一个序列。BERT（第 6 章）只有
# 编码器：每个输入词元对应一个向量，没有任何部件能写出新的词元。原始的 Transformer（Vaswani
# 等，2017）正是为翻译而设计的，它由两半组成：
#
# * **编码器**（encoder，第 6 章）把源句 x₁ … x_S 读成一份*记忆*（memory），每个源词元一个向量；
# * **解码器**（decoder）一次写一个目标词元，y_t = f(y₁ … y_{t−1}, memory)。它的每一层有三个子层：
#   对已写出的目标序列做**因果自注意力**（causal self-attention，不能偷看后面的目标词元）；从
#   目标序列到记忆的**交叉注意力**（cross-attention，查询来自解码器，键和值来自编码器）；以及
#   前馈网络。
#
# 本章先搭出解码器层并与 `nn.TransformerDecoderLayer` 对照，再把整个编码器-解码器
# （encoder-decoder）与 `nn.Transformer` 对照；然后在自带的英中句对上训练一个模型，用 KV 缓存
# 做贪心解码，在测试集上计算 BLEU，并观察交叉注意力。这里没有用任何预训练：这个玩具世界
# 又小又规则，3,200 个有标签的句对就够了。真实的翻译需要数以百万计的句对，或者拿一个预训练
# 模型来微调（§6.3）。

# %% [markdown] lang="en"
# # Chapter 7 · Generation tasks and machine translation — the decoder, cross-attention and the encoder-decoder Transformer (Article §3.2.4, §6.3)
#
# §3.2.4 lists **generation tasks** ("sequence-to-sequence fine-tuning with labelled data") and
# §6.3 **machine translation** among the uses of a pretrained model. Neither says what model
# produces a sequence from a sequence. BERT (ch06) is an encoder only: one vector per input token,
# nothing that writes new tokens. The original Transformer (Vaswani et al., 2017) was built for
# translation and has two halves:
#
# * an **encoder** (ch06) reads the source sentence x₁ … x_S into a *memory*, one vector per source token;
# * a **decoder** writes the target one token at a time, y_t = f(y₁ … y_{t−1}, memory). Each of its
#   blocks has three sublayers: **causal self-attention** over the target written so far (it must
#   not peek at later target tokens), **cross-attention** from the target to the memory (queries
#   from the decoder, keys and values from the encoder), and the feed-forward network.
#
# In this chapter we build the decoder block and check it against `nn.TransformerDecoderLayer`, check
# the whole encoder-decoder against `nn.Transformer`, then train one on the bundled English→Chinese
# pairs, decode greedily with a KV cache, score BLEU on the test set and look at cross-attention.
# Nothing here is pretrained: 3,200 labelled pairs are enough because the toy world is small and
# regular. Real translation needs millions of pairs, or a pretrained model to fine-tune (§6.3).

# %%
import time
import warnings
from collections import Counter
from functools import lru_cache

import torch
import torch.nn as nn
from matplotlib import font_manager

from chapters.book import Chapter, plt
from minitransformer.attention import KVCache
from minitransformer.batches import by_split, epoch_batches, mix_seed
from minitransformer.blocks import DecoderBlock
from minitransformer.data import BERT_SPECIALS, CharTokenizer, SentencePieceTokenizer, load_world_translation
from minitransformer.data.world_lexicon import ENTITIES
from minitransformer.metrics import bleu_tokenize, corpus_bleu
from minitransformer.trainer import Trainer, TrainConfig
from minitransformer.transformer import Decoder, Encoder, Seq2SeqConfig, Seq2SeqTransformer

ch = Chapter("ch07_seq2seq")

# %% [markdown] lang="zh"
# ## 1. 亲手搭一个解码器层
#
# 与原始 Transformer 一样采用后置层归一化（x：已写出的目标序列 (B, T, C)；m：记忆 (B, S, C)）：
#
#     x = LN₁(x + Dropout(SelfAttn(x, x, x; causal + target padding)))
#     x = LN₂(x + Dropout(CrossAttn(x, m, m; source padding)))      ← 查询来自 x，键和值来自 m
#     x = LN₃(x + Dropout(FFN(x)))
#
# 第一行是带因果掩码（causal）和目标序列填充掩码（target padding）的自注意力，第二行是只遮住
# 源句填充（source padding）的交叉注意力，第三行是前馈网络；每个子层都带残差连接和层归一化。我们用这一层自己的部件执行这三行，再与 `DecoderBlock.forward` 比较。

# %% [markdown] lang="en"
# ## 1. The decoder block, by hand
#
# Post-LN, as in the original Transformer (x: the target so far (B, T, C); m: the memory (B, S, C)):
#
#     x = LN₁(x + Dropout(SelfAttn(x, x, x; causal + target padding)))
#     x = LN₂(x + Dropout(CrossAttn(x, m, m; source padding)))      ← queries x, keys and values m
#     x = LN₃(x + Dropout(FFN(x)))
#
# The first line is self-attention under the causal and the target-padding masks, the second
# cross-attention with only the source padding masked, the third the feed-forward network; each
# sublayer has its residual connection and LayerNorm. We run these three lines with the block's
# own parts and compare with `DecoderBlock.forward`.

# %%
B, S, T, C, H, D_FF = 2, 7, 5, 32, 4, 64
block = DecoderBlock(C, H, D_FF, dropout=0.0, activation="relu", norm_first=False).train()
x = torch.randn(B, T, C)  # the target so far, embedded
memory = torch.randn(B, S, C)  # the encoder's output for the source sentence
tgt_keep = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])  # target 2 is 3 tokens + 2 padding
src_keep = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0]])  # source 2: 4 tokens + 3 padding

with torch.no_grad():
    a, _ = block.self_attn(x, attention_mask=tgt_keep, is_causal=True)  # SelfAttn(x, x, x), causal
    h = block.norm1(x + a)
    c, _ = block.cross_attn(h, memory, attention_mask=src_keep)  # CrossAttn(h, m, m)
    h = block.norm2(h + c)
    y_hand = block.norm3(h + block.ff(h))
    y_lib, _ = block(x, memory, attention_mask=tgt_keep, memory_mask=src_keep)
ch.show(ch.tr("x（已写出的目标序列）", "x (target so far)"), x, "(B, T, C)")
ch.show("memory", memory, "(B, S, C)")
ch.show("block(x, memory)", y_lib, ch.tr("(B, T, C)：每个目标位置一个向量", "(B, T, C): one vector per target position"))
ch.check_close(ch.tr("手写的解码器层 == 库里的 DecoderBlock", "decoder block by hand == library DecoderBlock"),
               y_hand, y_lib, atol=1e-6)

# %% [markdown] lang="zh"
# ## 2. 与 PyTorch 的 `nn.TransformerDecoderLayer` 对照
#
# PyTorch 的这一层有同样的部件：`self_attn`、`multihead_attn`（即交叉注意力）、`linear1`、
# `linear2`、`norm1`–`norm3`（W^Q、W^K、W^V 堆叠在 `in_proj_weight` 里）。它的布尔掩码与我们的
# 含义相反：**True 表示“不可关注”**——因果掩码 `tgt_mask` 在对角线上方为 True
# （`generate_square_subsequent_mask` 用 0 / −∞ 表示同样的意思），各个 `*_key_padding_mask` 在
# 填充位置为 True。所以我们的掩码在交给 PyTorch 之前要先取反。我们在 float64、dropout 为 0 的
# 条件下比较。

# %% [markdown] lang="en"
# ## 2. Against PyTorch's `nn.TransformerDecoderLayer`
#
# PyTorch's layer has the same parts: `self_attn`, `multihead_attn` (the cross-attention), `linear1`,
# `linear2`, `norm1`–`norm3` (W^Q, W^K, W^V stacked in `in_proj_weight`). Its boolean masks are
# the other way round from ours: **True means "may not attend"** — the causal `tgt_mask` is True
# above the diagonal (`generate_square_subsequent_mask` writes the same as 0 / −∞), and the
# `*_key_padding_mask`s are True at padding, so our masks are inverted before they go to PyTorch.
# We compare in float64 with dropout 0.

# %%
@torch.no_grad()
def copy_attention(ours, ref: nn.MultiheadAttention) -> None:
    """Our q/k/v/out projections into nn.MultiheadAttention (W_Q, W_K, W_V stacked row-wise)."""
    ref.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
    ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
    ref.out_proj.weight.copy_(ours.out_proj.weight)
    ref.out_proj.bias.copy_(ours.out_proj.bias)


@torch.no_grad()
def copy_layer(ours, ref) -> None:
    """An EncoderBlock into nn.TransformerEncoderLayer, or a DecoderBlock into nn.TransformerDecoderLayer."""
    copy_attention(ours.self_attn, ref.self_attn)
    if hasattr(ref, "multihead_attn"):
        copy_attention(ours.cross_attn, ref.multihead_attn)
        ref.norm3.load_state_dict(ours.norm3.state_dict())
    ref.linear1.load_state_dict(ours.ff.fc1.state_dict())
    ref.linear2.load_state_dict(ours.ff.fc2.state_dict())
    ref.norm1.load_state_dict(ours.norm1.state_dict())
    ref.norm2.load_state_dict(ours.norm2.state_dict())


@torch.no_grad()
def jitter_norms(module) -> None:
    """Non-trivial LayerNorm γ, β, so that swapped norms would show up in the comparison."""
    for name, p in module.named_parameters():
        if "norm" in name:
            p.add_(0.1 * torch.randn_like(p))


def blocked_future(t):
    """nn.Transformer's causal tgt_mask as booleans: True above the diagonal = may NOT attend."""
    return torch.ones(t, t, dtype=torch.bool).triu(1)


ch.check(ch.tr("blocked_future(T) 恰好标出 nn.Transformer.generate_square_subsequent_mask(T) 中的 −∞ 元素",
               "blocked_future(T) marks the −∞ entries of nn.Transformer.generate_square_subsequent_mask(T)"),
         torch.equal(blocked_future(T), torch.isneginf(nn.Transformer.generate_square_subsequent_mask(T))))
x64, memory64 = x.double(), memory.double()
for norm_first, name in [(False, ch.tr("后置层归一化（原始 Transformer）", "post-LN (original Transformer)")),
                         (True, ch.tr("前置层归一化", "pre-LN"))]:
    ours = DecoderBlock(C, H, D_FF, dropout=0.0, activation="relu", norm_first=norm_first).double().train()
    jitter_norms(ours)
    ref = nn.TransformerDecoderLayer(C, H, D_FF, dropout=0.0, activation="relu", batch_first=True,
                                     norm_first=norm_first).double().train()
    copy_layer(ours, ref)
    with torch.no_grad():
        y_ours, _ = ours(x64, memory64, attention_mask=tgt_keep, memory_mask=src_keep)
        y_ref = ref(x64, memory64, tgt_mask=blocked_future(T), tgt_key_padding_mask=tgt_keep == 0,
                    memory_key_padding_mask=src_keep == 0)
    ch.check_close(ch.tr(f"{name}解码器层 == nn.TransformerDecoderLayer（因果掩码，两种填充）",
                         f"{name} decoder block == nn.TransformerDecoderLayer (causal, both paddings)"), y_ours, y_ref, atol=1e-10)

# %% [markdown] lang="zh"
# ## 3. 两种注意力各能看到什么
#
# * **因果自注意力**：位置 t 只能看到不超过 t 的目标位置。改动位置 3 的目标词元，位置 0–2 的
#   输出必须纹丝不动。
# * **交叉注意力**没有因果掩码：每个目标位置都可以关注每一个（真实的）源词元。改动一个源向量，
#   每个目标位置都会变化。填充的源词元得到的权重恰好为 0。权重的形状是 (B, H, T, S)：每个头
#   一张“目标 × 源”的表。

# %% [markdown] lang="en"
# ## 3. What the two attentions may see
#
# * **Causal self-attention**: position t sees target positions ≤ t only. Change the target token
#   at position 3 and the outputs at positions 0–2 must not move.
# * **Cross-attention** has no causal mask: every target position may look at every (real) source
#   token. Change one source vector and every target position moves. Padded source tokens get
#   weight exactly 0. The weights have shape (B, H, T, S): a target × source table per head.

# %%
with torch.no_grad():
    y0, w = block(x, memory, memory_mask=src_keep, need_weights=True)
    x_changed = x.clone()
    x_changed[:, 3] += 1.0  # change target position 3
    y1, _ = block(x_changed, memory, memory_mask=src_keep)
    memory_changed = memory.clone()
    memory_changed[:, 2] += 1.0  # change source position 2
    y2, _ = block(x, memory_changed, memory_mask=src_keep)
ch.show(ch.tr("交叉注意力权重", "cross-attention weights"), w["cross"], "(B, H, T, S)")
ch.check_close(ch.tr("因果掩码：改动目标位置 3，位置 0-2 不变", "causal: changing target position 3 leaves positions 0-2 unchanged"),
               y1[:, :3], y0[:, :3], atol=0)
ch.check(ch.tr("……而位置 3-4 会变", "… and changes positions 3-4"), bool(((y1[:, 3:] - y0[:, 3:]).abs().amax(-1) > 1e-3).all()))
ch.check(ch.tr("交叉注意力：改动一个源词元，每个目标位置都会变", "cross-attention: changing one source token changes every target position"),
         bool(((y2 - y0).abs().amax(-1) > 1e-3).all()))
ch.check(ch.tr("填充的源词元得到的交叉注意力权重为 0；每行之和为 1", "padded source tokens get cross-attention weight 0; each row sums to 1"),
         bool((w["cross"][1, :, :, 4:] == 0).all()) and bool(torch.allclose(w["cross"].sum(-1), torch.ones(B, H, T))))

# %% [markdown] lang="zh"
# ## 4. 完整的编码器-解码器，与 `nn.Transformer` 对照
#
# N 个编码器层把源句变成记忆；N 个解码器层通过各自的交叉注意力读取它。`nn.Transformer` 总是在
# 两个堆叠的末尾各加一个 LayerNorm（前置层归一化需要它，后置层归一化则是多出来的），所以为了
# 对照，我们构建时用 `final_norm=True`。
#
# 然后是完整的模型 `Seq2SeqTransformer`：嵌入 × √d_model + 正弦位置编码（第 5 章）→ 编码器 →
# 解码器 → 一个线性层，输出目标词表上的 logits。采用前置层归一化时，它的两个堆叠末尾也是同样的
# LayerNorm，所以 logits 必须等于 `lm_head(nn.Transformer(embed(src), embed(tgt)))`。

# %% [markdown] lang="en"
# ## 4. The whole encoder-decoder against `nn.Transformer`
#
# N encoder blocks turn the source into the memory; N decoder blocks read it through every
# cross-attention. `nn.Transformer` always ends both stacks with a LayerNorm (needed for pre-LN,
# an extra for post-LN), so we build ours with `final_norm=True` for the comparison.
#
# Then the full model `Seq2SeqTransformer`: embeddings × √d_model + sinusoidal positions (ch05) →
# encoder → decoder → a linear layer to target-vocabulary logits. With pre-LN its stacks end in the
# same LayerNorms, so the logits must equal `lm_head(nn.Transformer(embed(src), embed(tgt)))`.

# %%
N_LAYERS, S2, T2 = 2, 6, 5
with warnings.catch_warnings():  # nn.Transformer warns that pre-LN disables its nested-tensor fast path
    warnings.simplefilter("ignore", UserWarning)
    for norm_first, name in [(False, ch.tr("后置层归一化", "post-LN")), (True, ch.tr("前置层归一化", "pre-LN"))]:
        enc = Encoder(N_LAYERS, C, H, D_FF, dropout=0.0, activation="relu", norm_first=norm_first, final_norm=True).double()
        dec = Decoder(N_LAYERS, C, H, D_FF, dropout=0.0, activation="relu", norm_first=norm_first, final_norm=True).double()
        jitter_norms(enc)
        jitter_norms(dec)
        ref = nn.Transformer(C, H, N_LAYERS, N_LAYERS, D_FF, dropout=0.0, activation="relu", batch_first=True,
                             norm_first=norm_first).double().train()
        for o, r in zip(list(enc.layers) + list(dec.layers), list(ref.encoder.layers) + list(ref.decoder.layers)):
            copy_layer(o, r)
        ref.encoder.norm.load_state_dict(enc.norm.state_dict())
        ref.decoder.norm.load_state_dict(dec.norm.state_dict())
        src_x, tgt_x = torch.randn(B, S2, C, dtype=torch.float64), torch.randn(B, T2, C, dtype=torch.float64)
        src_keep2 = torch.tensor([[1] * S2, [1] * 3 + [0] * (S2 - 3)])
        with torch.no_grad():
            mem, _ = enc(src_x, src_keep2)
            y_ours, _ = dec(tgt_x, mem, memory_mask=src_keep2)
            y_ref = ref(src_x, tgt_x, tgt_mask=blocked_future(T2),
                        src_key_padding_mask=src_keep2 == 0, memory_key_padding_mask=src_keep2 == 0)
        ch.check_close(ch.tr(f"{name}的 {N_LAYERS}+{N_LAYERS} 层编码器-解码器 == nn.Transformer",
                             f"{name} {N_LAYERS}+{N_LAYERS}-layer encoder-decoder == nn.Transformer"), y_ours, y_ref, atol=1e-10)
    n_ours = sum(p.numel() for p in list(enc.parameters()) + list(dec.parameters()))
    ch.check(ch.tr("参数量与 nn.Transformer 相同", "same number of parameters as nn.Transformer"),
             n_ours == sum(p.numel() for p in ref.parameters()),
             f"{n_ours:,}")

    cfg = Seq2SeqConfig(src_vocab_size=30, tgt_vocab_size=20, d_model=C, n_heads=H, d_ff=D_FF, n_encoder_layers=N_LAYERS,
                        n_decoder_layers=N_LAYERS, dropout=0.0, norm_first=True, max_len=16)
    full = Seq2SeqTransformer(cfg).double()
    jitter_norms(full)
    ref = nn.Transformer(C, H, N_LAYERS, N_LAYERS, D_FF, dropout=0.0, activation="relu", batch_first=True,
                         norm_first=True).double().train()
    for o, r in zip(list(full.encoder.layers) + list(full.decoder.layers), list(ref.encoder.layers) + list(ref.decoder.layers)):
        copy_layer(o, r)
    ref.encoder.norm.load_state_dict(full.encoder.norm.state_dict())
    ref.decoder.norm.load_state_dict(full.decoder.norm.state_dict())
src_ids = torch.tensor([[5, 9, 12, 7, 3, 8], [6, 11, 4, 0, 0, 0]])  # 0 = [PAD]
tgt_ids = torch.tensor([[2, 7, 9, 4, 5], [2, 8, 3, 0, 0]])
with torch.no_grad():
    logits, _ = full(src_ids, tgt_ids)
    h_ref = ref(full.embed(src_ids, full.src_embed), full.embed(tgt_ids, full.tgt_embed),
                tgt_mask=blocked_future(T2),
                src_key_padding_mask=src_ids == 0, tgt_key_padding_mask=tgt_ids == 0, memory_key_padding_mask=src_ids == 0)
ch.show("logits", logits, "(B, T, V_tgt)")
ch.check_close(ch.tr("Seq2SeqTransformer 的 logits == lm_head(nn.Transformer(embed(src), embed(tgt)))",
                     "Seq2SeqTransformer logits == lm_head(nn.Transformer(embed(src), embed(tgt)))"),
               logits, full.lm_head(h_ref), atol=1e-10)

# %% [markdown] lang="zh"
# ## 5. 数据：英译中
#
# `data/translation.{train,val,test}.tsv` 中是自带的玩具世界里的 3,200 / 400 / 400 个句对。两种
# 语言各有自己的分词器（tokenizer），都只在训练句对上训练：
#
# * 英文：600 个子词的 sentencepiece BPE——几乎每个词都是一个子词（第 1 章）；
# * 中文：每个汉字一个词元。
#
# 两边都使用 BERT 的特殊词元，因此两边的 [PAD] 都是 0。解码器需要一个*起始*词元作为第一次
# 预测的条件，模型也必须学会*停下*：我们用 [CLS] 作起始词元、[SEP] 作结束词元，与 Hugging Face
# 的 BERT-to-BERT 编码器-解码器做法相同。训练采用**教师强制**（teacher forcing）：解码器读入右移
# 一位的正确目标序列，一次性预测每一个下一个字（因果掩码保证每次预测都不作弊）：
#
#     tgt_in = [CLS] y₁ y₂ … y_n          labels = y₁ y₂ … y_n [SEP]      （损失忽略 [PAD]）

# %% [markdown] lang="en"
# ## 5. The data: English → Chinese
#
# `data/translation.{train,val,test}.tsv` hold 3,200 / 400 / 400 sentence pairs of the bundled
# world. Each side gets its own tokenizer, trained on the training pairs only:
#
# * English: sentencepiece BPE with 600 pieces — nearly every word is one piece (ch01);
# * Chinese: one token per character.
#
# Both use BERT's special tokens, so [PAD] = 0 on both sides. The decoder needs a *start* token to
# condition the first prediction on, and the model must learn to *stop*: we use [CLS] as the start
# and [SEP] as the end token, as Hugging Face's BERT-to-BERT encoder-decoders do. Training uses
# **teacher forcing**: the decoder reads the correct target shifted right and predicts every next
# character at once (the causal mask keeps each prediction honest):
#
#     tgt_in = [CLS] y₁ y₂ … y_n          labels = y₁ y₂ … y_n [SEP]      (loss ignores [PAD])

# %% [markdown] lang="zh"
# ### 练习 7.1 — 教师强制损失
#
# **`teacher_forcing_loss_ex`** · ★★ · 2 分 · 约 25 分钟
#
# **题目：** 编码器-解码器的教师强制损失：对每个目标序列 y（id 列表），解码器读入 [BOS] y₁ … y_n，
# 要预测 y₁ … y_n [EOS]。用 pad_id 把一批补齐，源句只编码一次（src_mask = src != pad_id），一次调
# 用解码所有位置，返回在所有真实目标词元上平均的交叉熵（忽略填充）。
#
# **提示：** tgt_in 与 labels 是错开一位的同一序列：[BOS] + y 与 y + [EOS]。F.cross_entropy(...,
# ignore_index=pad_id) 只在非填充的标签上取平均。
#
# **不可调用：** `transformer.Seq2SeqTransformer.forward`
# （`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch07`
#
# 实现 `teacher_forcing_loss_ex(model, src, targets, bos_id, eos_id, pad_id)`：`model` 是一个
# `Seq2SeqTransformer`（使用 `model.encode(src, src_mask)` 和 `model.decode(tgt_in, memory,
# src_mask)`），`src` 是补齐后的 (B, S) 张量，`targets` 是 B 个长度各不相同的目标 id 列表。返回
# 标量损失。检查函数用另一种方式计算同一个平均值：每次取一个前缀，给定真实前缀时下一个目标
# 词元的负对数概率。

# %% [markdown] lang="en"
# ### Exercise 7.1 — the teacher-forcing loss
#
# **`teacher_forcing_loss_ex`** · ★★ · 2 points · ~25 min
#
# **Task:** The teacher-forcing loss of an encoder-decoder: for each target y (a list of ids)
# the decoder reads [BOS] y₁ … y_n and must predict y₁ … y_n [EOS]. Pad the batch with pad_id,
# encode src once (src_mask = src != pad_id), decode every position in one call, and return the
# cross-entropy averaged over every real target token (padding ignored).
#
# **Hint:** tgt_in and labels are one list shifted by one: [BOS] + y and y + [EOS].
# F.cross_entropy(..., ignore_index=pad_id) averages over the labels that are not padding.
#
# **Not allowed:** `transformer.Seq2SeqTransformer.forward`
# (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch07`
#
# Write `teacher_forcing_loss_ex(model, src, targets, bos_id, eos_id, pad_id)`: `model` is a
# `Seq2SeqTransformer` (use `model.encode(src, src_mask)` and `model.decode(tgt_in, memory,
# src_mask)`), `src` a padded (B, S) tensor, `targets` B lists of target ids of different
# lengths. Return the scalar loss. The check computes the same average another way: one prefix
# at a time, the negative log-probability of each next target token given the true prefix.

# %%
def teacher_forcing_loss_ex(model, src, targets, bos_id, eos_id, pad_id):
    """Mean cross-entropy of predicting y₁ … y_n [EOS] from [BOS] y₁ … y_n, over every real target token."""
    ### BEGIN SOLUTION
    length = max(len(y) for y in targets) + 1
    tgt_in = torch.tensor([[bos_id] + list(y) + [pad_id] * (length - 1 - len(y)) for y in targets])  # (B, T)
    labels = torch.tensor([list(y) + [eos_id] + [pad_id] * (length - 1 - len(y)) for y in targets])  # (B, T)
    src_mask = src != pad_id
    logits = model.decode(tgt_in, model.encode(src, src_mask), src_mask)  # (B, T, V)
    return nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=pad_id)
    ### END SOLUTION


def tiny_seq2seq(seed):
    """A small random Seq2SeqTransformer in float64 for the checks (vocabularies of 11 and 13 ids, [PAD] = 0)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        config = Seq2SeqConfig(11, 13, d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1, n_decoder_layers=1,
                               dropout=0.0, max_len=32, pad_id=0)
        return Seq2SeqTransformer(config).double().eval()


def check_teacher_forcing_loss_ex(impl):
    """Against the definition, one prefix at a time: mean over all target tokens (and each [EOS]) of
    −log p(y_t | [BOS] y_<t, x), with the sentences padded to different lengths (float64, atol 1e-10)."""
    bos, eos, pad = 1, 2, 0
    model = tiny_seq2seq(0)
    src = torch.tensor([[5, 6, 7, 8, 9], [4, 3, 0, 0, 0], [10, 9, 8, 0, 0]])  # (B, S), [PAD] = 0
    targets = [[3, 4, 5, 6], [7], [8, 9, 12]]
    nll = []
    with torch.no_grad():
        for row, y in zip(src, targets):
            s = row[None, : int((row != pad).sum())]  # the sentence alone, unpadded
            memory = model.encode(s, s != pad)
            for t, nxt in enumerate(list(y) + [eos]):
                logits = model.decode(torch.tensor([[bos] + list(y[:t])]), memory, s != pad)[0, -1]  # (V,)
                nll.append(-float(torch.log_softmax(logits, -1)[nxt]))
        want = sum(nll) / len(nll)
        got = impl(model, src, [list(y) for y in targets], bos, eos, pad)
    if not isinstance(got, torch.Tensor) or got.dim() != 0:
        raise AssertionError(ch.tr(f"期望一个标量张量，实际得到 {getattr(got, 'shape', type(got).__name__)}",
                                   f"expected a scalar tensor, received {getattr(got, 'shape', type(got).__name__)}"))
    err = abs(float(got) - want)
    if not err <= 1e-10:
        raise AssertionError(ch.tr(f"损失为 {float(got):.6f}，期望 {want:.6f}（{len(nll)} 个下一词元损失的平均值）——"
                                   "解码器读入 [BOS] + y，标签是 y + [EOS]；忽略填充（ignore_index=pad_id），"
                                   "并用源序列的填充掩码对其编码",
                                   f"loss {float(got):.6f}, expected {want:.6f} (the mean of {len(nll)} next-token losses) — the "
                                   "decoder reads [BOS] + y, the labels are y + [EOS]; ignore the padding (ignore_index=pad_id) "
                                   "and encode the source with its padding mask"))
    return ch.tr(f"等于逐个前缀算出的 {len(nll)} 个下一词元损失的平均值（误差 {err:.1e}）",
                 f"equals the mean of {len(nll)} next-token losses computed one prefix at a time (err {err:.1e})")


ch.verify(check_teacher_forcing_loss_ex, teacher_forcing_loss_ex)

# %%
pairs = {split: load_world_translation(split) for split in ("train", "val", "test")}
src_tok = SentencePieceTokenizer.train([en for en, _ in pairs["train"]], 600, model_type="bpe", specials=BERT_SPECIALS)
tgt_tok = CharTokenizer.train([zh for _, zh in pairs["train"]], specials=BERT_SPECIALS)
PAD, BOS, EOS = tgt_tok.pad_id, tgt_tok.cls_id, tgt_tok.sep_id
encoded = {split: [(src_tok.encode(en), tgt_tok.encode(zh)) for en, zh in pairs[split]] for split in pairs}
print(ch.tr(f"  词表：英文 {src_tok.vocab_size} 个 BPE 子词，中文 {tgt_tok.vocab_size} 个汉字",
            f"  vocabularies: English {src_tok.vocab_size} BPE pieces, Chinese {tgt_tok.vocab_size} characters"))
print(ch.tr(f"  {len(encoded['train'])} / {len(encoded['val'])} / {len(encoded['test'])} 个句对（训练 / 验证 / 测试）",
            f"  {len(encoded['train'])} / {len(encoded['val'])} / {len(encoded['test'])} pairs (train / val / test)"))
unk_test = sum(ids.count(tgt_tok.unk_id) for _, ids in encoded["test"])
print(ch.tr(f"  测试目标中训练时没见过的汉字：{unk_test} 个 [UNK]", f"  test targets with characters unseen in training: {unk_test} [UNK]"))
ch.check(ch.tr("两边的 [PAD] 都是 id 0；起始词元 [CLS] 与结束词元 [SEP] 互不相同",
               "[PAD] is id 0 on both sides; start [CLS] and end [SEP] are distinct"),
         src_tok.pad_id == 0 == PAD and len({PAD, BOS, EOS}) == 3)


def pad_to(seqs, length=None):
    """Right-pad lists of ids with [PAD] into a (B, max len) tensor."""
    length = length or max(map(len, seqs))
    return torch.tensor([s + [PAD] * (length - len(s)) for s in seqs])


def collate(items):
    """(src ids, tgt ids) pairs -> the batch Seq2SeqTransformer.forward takes."""
    return {"src": pad_to([s for s, _ in items]),
            "tgt_in": pad_to([[BOS] + t for _, t in items]),  # (B, T): [CLS] y₁ … y_n
            "labels": pad_to([t + [EOS] for _, t in items])}  # (B, T): y₁ … y_n [SEP]


en, zh = pairs["train"][0]
one = collate([encoded["train"][0]])
print(f"  {en!r} -> {src_tok.tokenize(en)}")
print("  tgt_in: " + " ".join(tgt_tok.id_to_token(i) for i in one["tgt_in"][0].tolist()))
print("  labels: " + " ".join(tgt_tok.id_to_token(i) for i in one["labels"][0].tolist()))
ch.check(ch.tr("labels 是 tgt_in 左移一位，并以 [SEP] 结尾", "labels are tgt_in shifted left by one, ending in [SEP]"),
         torch.equal(one["tgt_in"][0, 1:], one["labels"][0, :-1]) and int(one["labels"][0, -1]) == EOS)

# %% [markdown] lang="zh"
# ## 6. 训练
#
# 一个小模型——d_model 为 64、4 个头、一个编码器层和一个解码器层、不用 dropout——用共享的
# `Trainer`（`minitransformer/trainer.py`：AdamW、预热 + 余弦学习率调度、梯度裁剪）训练 300 步，
# 每步 64 个句对，相当于把训练集过六遍。
#
# 这里用了一个技巧。库里的 `epoch_batches` 随机抽取样本，所以每个批次都要补齐到其中最长的句子。
# **长度分桶**（bucketing）先把一轮（epoch）的样本按长度排序，再切成批次，最后打乱批次的顺序：
# 长度相近的句子落在同一批，张量缩小了三分之一，每一步的计算量也按比例减少（注意力的开销与
# 长度成平方关系，减少得更多）。批次仍然是 (split, index) 的纯函数，这正是 Trainer 所要求的。

# %% [markdown] lang="en"
# ## 6. Training
#
# A small model — d_model 64, 4 heads, one encoder and one decoder block, no dropout — trained with
# the shared `Trainer` (`minitransformer/trainer.py`: AdamW, warmup + cosine schedule, gradient
# clipping) for 300 steps of 64 pairs, six passes over the training set.
#
# One trick: the library's `epoch_batches` draws random examples, so a batch is padded to its longest
# sentence. **Bucketing** sorts an epoch's examples by length before cutting them into batches,
# then shuffles the batches: similar lengths share a batch, the tensors shrink by a third, and a
# step gets cheaper in proportion (attention, quadratic in length, even more). The batches are still
# a pure function of (split, index), as the Trainer requires.

# %%
def bucketed_batches(pairs_ids, batch_size, seed):
    """get_batch over epochs with length bucketing. Epoch e: shuffle with (seed, e), sort by
    (source length, target length) — the shuffle breaks ties at random —, cut into batches,
    shuffle the batches. The last incomplete batch of an epoch is dropped (every batch has batch_size rows)."""
    n_batches = len(pairs_ids) // batch_size

    @lru_cache(maxsize=2)
    def epoch(e):
        g = torch.Generator().manual_seed(mix_seed("bucket", seed, e))
        order = torch.randperm(len(pairs_ids), generator=g).tolist()[: n_batches * batch_size]
        order.sort(key=lambda i: (len(pairs_ids[i][0]), len(pairs_ids[i][1])))  # stable: random among equals
        batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        return [batches[i] for i in torch.randperm(n_batches, generator=g).tolist()]

    def get_batch(split, index):
        return collate([pairs_ids[i] for i in epoch(index // n_batches)[index % n_batches]])

    get_batch.epoch = epoch  # the example indices of each batch of epoch e, for inspection
    return get_batch


BATCH = 64
STEPS = ch.steps(300, 10)
random_batches = epoch_batches(len(encoded["train"]), BATCH, ch.seed_for(0), lambda idx: collate([encoded["train"][i] for i in idx]))
bucketed = bucketed_batches(encoded["train"], BATCH, seed=ch.seed_for(0))
n_check = ch.steps(50, 10)  # 50 = one epoch, 3200 / 64
ratio = {}  # tokens in the padded (B, S) and (B, T) tensors per real token
for name, get_batch in [("random", random_batches), ("bucketed", bucketed)]:
    batches = [get_batch("train", i) for i in range(n_check)]
    padded = sum(b["src"].numel() + b["tgt_in"].numel() for b in batches)
    real = sum(int((b["src"] != PAD).sum() + (b["tgt_in"] != PAD).sum()) for b in batches)
    ratio[name] = padded / real
print(ch.tr(f"  {n_check} 个批次的张量大小 / 真实词元数：随机 {ratio['random']:.2f}，分桶 {ratio['bucketed']:.2f}",
            f"  tensor size / real tokens over {n_check} batches: random {ratio['random']:.2f}, bucketed {ratio['bucketed']:.2f}"))
ch.check_value(ch.tr("长度分桶：批次张量不超过真实词元数的 1.1 倍（张量大小 / 真实词元数，分桶）",
                     "bucketing: batches hold ≤ 1.1× the real tokens (tensor size / real tokens, bucketed)"), ratio["bucketed"], high=1.1)
ch.check_value(ch.tr("……随机批次则超过 1.5 倍（张量大小 / 真实词元数，随机）", "… random batches > 1.5× (tensor size / real tokens, random)"),
               ratio["random"], low=1.5)
ch.check(ch.tr("分桶后的一轮批次恰好包含每个训练句对一次", "one epoch of bucketed batches holds every training pair exactly once"),
         sorted(i for b in bucketed.epoch(0) for i in b) == list(range(len(encoded["train"]))))

ch.manual_seed(0)
config = Seq2SeqConfig(src_tok.vocab_size, tgt_tok.vocab_size, d_model=64, n_heads=4, d_ff=128, n_encoder_layers=1,
                       n_decoder_layers=1, dropout=0.0, max_len=64, pad_id=PAD)
model = Seq2SeqTransformer(config)
n_params = sum(p.numel() for p in model.parameters())
n_embed = sum(p.numel() for p in (model.src_embed.weight, model.tgt_embed.weight, model.lm_head.weight))
print(ch.tr(f"  模型：{n_params:,} 个参数，其中 {n_embed:,} 个在两张嵌入表和输出层里",
            f"  model: {n_params:,} parameters, {n_embed:,} of them in the two embedding tables and the output layer"))

val_batches = epoch_batches(len(encoded["val"]), BATCH, ch.seed_for(0), lambda idx: collate([encoded["val"][i] for i in idx]))
train_config = TrainConfig(out_dir=str(ch.out / "run"), max_steps=STEPS, batch_size=BATCH, lr=3e-3, min_lr=1e-4,
                           warmup_steps=max(1, STEPS // 12), weight_decay=0.01, betas=(0.9, 0.98),
                           eval_interval=ch.steps(40, 5), eval_steps=ch.steps(3, 1), log_interval=ch.steps(10, 2),
                           checkpoint_interval=-1, progress=False, overwrite=True, seed=ch.seed_for(0))
t0 = time.perf_counter()
history = Trainer(model, train_config, by_split(train=bucketed, val=val_batches)).fit()
train_seconds = time.perf_counter() - t0
train_rows = [r for r in history if r["split"] == "train"]
val_rows = [r for r in history if r["split"] == "val"]
print(ch.tr(f"  {STEPS} 步用时 {train_seconds:.1f} s；训练损失 {train_rows[0]['loss']:.2f} -> {train_rows[-1]['loss']:.3f}，"
            f"验证损失 {val_rows[0]['loss']:.2f} -> {val_rows[-1]['loss']:.3f}",
            f"  {STEPS} steps in {train_seconds:.1f} s; train loss {train_rows[0]['loss']:.2f} -> {train_rows[-1]['loss']:.3f}, "
            f"val loss {val_rows[0]['loss']:.2f} -> {val_rows[-1]['loss']:.3f}"))
with torch.no_grad():
    few = encoded["val"][:8]
    own = model.eval()(**collate(few))[1]
    ex_loss = teacher_forcing_loss_ex(model, pad_to([s for s, _ in few]), [y for _, y in few], BOS, EOS, PAD)
ch.check_close(ch.tr("练习 7.1 == Seq2SeqTransformer.forward 的损失（8 个验证句对）",
                     "exercise 7.1 == Seq2SeqTransformer.forward's loss (8 validation pairs)"), ex_loss, own, atol=1e-5)
ch.check_value(ch.tr("验证损失下降了（最后 / 最初）", "validation loss went down (last / first)"),
               val_rows[-1]["loss"] / val_rows[0]["loss"], high=ch.steps(0.1, 0.9),
               detail=f"{val_rows[0]['loss']:.2f} -> {val_rows[-1]['loss']:.3f}")

fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.plot([r["step"] for r in train_rows], [r["loss"] for r in train_rows],
        label=ch.tr(f"训练（每 {train_config.log_interval} 步的均值）", f"train (mean of {train_config.log_interval} steps)"))
ax.plot([r["step"] for r in val_rows], [r["loss"] for r in val_rows], "o-", label=ch.tr("验证", "validation"))
ax.set(xlabel=ch.tr("步数", "step"), ylabel=ch.tr("每个目标汉字的交叉熵", "cross-entropy per target character"), yscale="log",
       title=ch.tr(f"英译中，{n_params:,} 个参数", f"English → Chinese, {n_params:,} parameters"))
ax.legend()
ch.savefig(fig, "loss_curve")

# %% [markdown] lang="zh"
# ## 7. 带 KV 缓存的贪心解码
#
# 测试时没有目标序列可供“强制”：解码器从 [CLS] 出发，取概率最大的下一个字，接到后面，如此
# 重复，直到写出 [SEP]（或达到长度上限）：
#
#     y_t = argmax_v p(v | y₁ … y_{t−1}, x)
#
# 源句只编码一次。每一步都在整个前缀上重新运行解码器是在做重复劳动：位置 < t 的键和值永远
# 不会改变（因果掩码）。`greedy_decode` 把它们存进 **KV 缓存**（KV cache），每一步只送入最新的
# 词元。它给出的输出必须与重新计算完全相同。

# %% [markdown] lang="en"
# ## 7. Greedy decoding with a KV cache
#
# At test time there is no target to force: the decoder starts from [CLS], takes the most probable
# next character, appends it, and repeats until it writes [SEP] (or a length limit):
#
#     y_t = argmax_v p(v | y₁ … y_{t−1}, x)
#
# The source is encoded once. Recomputing the decoder over the whole prefix at every step repeats
# work: the keys and values of positions < t never change (causal mask). `greedy_decode` keeps
# them in a **KV cache** and feeds only the newest token. It must give exactly the same output.

# %% [markdown] lang="zh"
# ### 练习 7.2 — 贪心解码
#
# **`greedy_decode_ex`** · ★★ · 2 分 · 约 25 分钟
#
# **题目：** 不带缓存的贪心解码：源句只编码一次，每行从 [BOS] 开始，每一步把 model.decode(prefix,
# memory, src_mask)[:, -1] 的 argmax 接到前缀后面。某行生成 [EOS] 之后一律填 pad_id；所有行都结束
# 或走满 max_new_tokens 步时停止。返回新生成的词元 (B, 步数)，不含 [BOS]。
#
# **提示：** 维护一个布尔向量 done；接上新词元之前，用 masked_fill 把已结束行的新词元换成 pad_id，
# 再用 (token == eos_id) 更新 done。
#
# **不可调用：** `transformer.Seq2SeqTransformer.greedy_decode`
# （`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch07`
#
# 实现**不带**缓存的 `greedy_decode_ex(model, src, bos_id, eos_id, pad_id, max_new_tokens)`：每一步
# 都在整个前缀上重新运行 `model.decode(prefix, memory, src_mask)`（只使用 `model.encode` 和
# `model.decode`）。它的返回值与 `model.greedy_decode` 相同，本章随后会检查两者逐词元一致。
# 评分用的检查函数使用一个答案已知的脚本模型，以及一个随机模型——后者输出的每个词元都必须是
# argmax。

# %% [markdown] lang="en"
# ### Exercise 7.2 — greedy decoding
#
# **`greedy_decode_ex`** · ★★ · 2 points · ~25 min
#
# **Task:** Greedy decoding without a cache: encode src once, start every row from [BOS], and
# at each step append the argmax of model.decode(prefix, memory, src_mask)[:, -1]. A row that has
# produced [EOS] gets pad_id from then on; stop when every row has finished or after
# max_new_tokens steps. Return the new tokens (B, steps), [BOS] excluded.
#
# **Hint:** Keep a boolean vector done; before appending, masked_fill the new tokens of finished
# rows with pad_id, then update done with (token == eos_id).
#
# **Not allowed:** `transformer.Seq2SeqTransformer.greedy_decode`
# (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch07`
#
# Write `greedy_decode_ex(model, src, bos_id, eos_id, pad_id, max_new_tokens)` **without** a
# cache: rerun `model.decode(prefix, memory, src_mask)` over the whole prefix at every step (use
# only `model.encode` and `model.decode`). It returns what `model.greedy_decode` returns, and the
# chapter then checks that the two agree token for token. The grader's check uses a scripted
# model whose answers are known, and a random one whose every emitted token must be the argmax.

# %%
@torch.no_grad()
def greedy_decode_ex(model, src, bos_id, eos_id, pad_id, max_new_tokens):
    """Greedy decoding without a cache: the decoder reruns over the whole prefix at every step. -> (B, steps)."""
    ### BEGIN SOLUTION
    src_mask = src != pad_id
    memory = model.encode(src, src_mask)
    seq = torch.full((src.size(0), 1), bos_id, dtype=torch.long)
    done = torch.zeros(src.size(0), dtype=torch.bool)
    for _ in range(max_new_tokens):
        nxt = model.decode(seq, memory, src_mask)[:, -1].argmax(-1)  # (B,) from (B, t, V)
        nxt = nxt.masked_fill(done, pad_id)  # finished rows get padding
        seq = torch.cat([seq, nxt[:, None]], dim=1)
        done |= nxt == eos_id
        if bool(done.all()):
            break
    return seq[:, 1:]
    ### END SOLUTION


def scripted_seq2seq(scripts):
    """A Seq2SeqTransformer whose encode/decode are replaced by a script: the row whose source starts
    with id s puts its largest logit on scripts[s][t] at target position t."""
    model = tiny_seq2seq(1)

    def encode(src, src_mask=None):
        return src[:, :1, None].to(torch.float64).expand(-1, 1, 16)  # (B, 1, C): the row's first source id

    def decode(tgt, memory, src_mask=None, tgt_mask=None, caches=None, offset=0):
        logits = torch.zeros(tgt.size(0), tgt.size(1), 13, dtype=torch.float64)
        for r in range(tgt.size(0)):
            script = scripts[int(memory[r, 0, 0])]
            for i in range(tgt.size(1)):
                logits[r, i, script[min(offset + i, len(script) - 1)]] = 1.0
        return logits

    model.encode, model.decode = encode, decode
    return model


def check_greedy_decode_ex(impl):
    """A random model: every token up to [EOS] is the argmax given the prefix, [PAD] after it, at most
    max_new_tokens steps. A scripted model: outputs written out by hand ([EOS] at different steps,
    stopping early when every row is done, the length limit)."""
    bos, eos, pad = 1, 2, 0
    model = tiny_seq2seq(2)
    src = torch.tensor([[5, 6, 7, 8], [4, 3, 0, 0], [9, 10, 8, 0]])
    out = impl(model, src, bos, eos, pad, 6)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.size(0) != 3 or not 1 <= out.size(1) <= 6:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise AssertionError(ch.tr(f"随机模型，max_new_tokens=6：期望形状为 (3, steps ≤ 6) 的词元 id 张量，实际得到 {shape}",
                                   f"random model, max_new_tokens=6: expected a (3, steps ≤ 6) tensor of ids, received {shape}"))
    with torch.no_grad():
        logits = model.decode(torch.cat([torch.full((3, 1), bos), out], 1), model.encode(src, src != pad), src != pad)
    best = logits[:, :-1].argmax(-1)  # (3, steps): the argmax after each prefix
    for r in range(3):
        row = out[r].tolist()
        end = row.index(eos) + 1 if eos in row else len(row)
        if row[:end] != best[r, :end].tolist():
            raise AssertionError(ch.tr(f"随机模型，第 {r} 行：生成了 {row[:end]}，但每个前缀之后的 argmax 是 "
                                       f"{best[r, :end].tolist()}——输入 [BOS] + 已生成的词元，取最后一个位置的 argmax",
                                       f"random model, row {r}: generated {row[:end]}, but the argmax after each prefix is "
                                       f"{best[r, :end].tolist()} — feed [BOS] + the tokens so far, take the last position's argmax"))
        if any(x != pad for x in row[end:]):
            raise AssertionError(ch.tr(f"随机模型，第 {r} 行：[EOS] 之后期望为 [PAD] = {pad}，实际得到 {row[end:]}",
                                       f"random model, row {r}: after [EOS] expected [PAD] = {pad}, received {row[end:]}"))
    scripts = {3: [4, 5, 2], 4: [3, 2], 5: [5, 6, 5, 6, 5, 6, 5]}
    cases = [(ch.tr("各行分别在第 3 步、第 2 步结束和始终不结束，max_new_tokens=5",
                    "rows ending at steps 3, 2 and never, max_new_tokens=5"), [[3, 7], [4, 7], [5, 7]], 5,
              [[4, 5, 2, 0, 0], [3, 2, 0, 0, 0], [5, 6, 5, 6, 5]]),
             (ch.tr("每行都在第 3 步之前结束，max_new_tokens=6", "every row ends by step 3, max_new_tokens=6"),
              [[4, 7], [3, 7]], 6, [[3, 2, 0], [4, 5, 2]]),
             ("max_new_tokens=1", [[3, 7], [5, 7]], 1, [[4], [5]])]
    for case, rows, limit, want in cases:
        got = impl(scripted_seq2seq(scripts), torch.tensor(rows), bos, eos, pad, limit)
        got = got.tolist() if isinstance(got, torch.Tensor) else got
        if got != want:
            raise AssertionError(ch.tr(f"脚本模型，{case}：期望 {want}，实际得到 {got}——[EOS] 之后填 [PAD]，每一行都生成 [EOS] 后"
                                       "立即停止，并且返回值中不含 [BOS]",
                                       f"scripted model, {case}: expected {want}, received {got} — [PAD] after [EOS], stop as soon "
                                       "as every row has produced [EOS], and never return [BOS]"))
    return ch.tr(f"随机模型：每个词元都是其前缀之后的 argmax（{out.size(1)} 步）；3 个脚本情形完全一致",
                 f"random model: each token the argmax of its prefix ({out.size(1)} steps); 3 scripted cases exactly")


ch.verify(check_greedy_decode_ex, greedy_decode_ex)

# %%
def to_text(ids):
    """Generated ids -> Chinese text, cut at the first [SEP]."""
    ids = ids.tolist()
    return tgt_tok.decode(ids[: ids.index(EOS)] if EOS in ids else ids)


n_test = ch.steps(len(encoded["test"]), 48)
test_src = pad_to([s for s, _ in encoded["test"][:n_test]])
references = [zh for _, zh in pairs["test"][:n_test]]
max_new = max(len(t) for _, t in encoded["train"]) + 10
t0 = time.perf_counter()
out_cached = model.greedy_decode(test_src, BOS, EOS, max_new_tokens=max_new)
t_cached = time.perf_counter() - t0
n_re = min(n_test, 100)  # recomputing is slow: the first 100 sentences
t0 = time.perf_counter()
out_cached_re = model.greedy_decode(test_src[:n_re], BOS, EOS, max_new_tokens=max_new)
t_cached_re = time.perf_counter() - t0
t0 = time.perf_counter()
out_full = greedy_decode_ex(model.eval(), test_src[:n_re], BOS, EOS, PAD, max_new)
t_full = time.perf_counter() - t0
print(ch.tr(f"  {n_re} 个句子：用 KV 缓存 {t_cached_re:.2f} s，重新计算前缀 {t_full:.2f} s",
            f"  {n_re} sentences: with KV cache {t_cached_re:.2f} s, recomputing the prefix {t_full:.2f} s"))
ch.check(ch.tr("用 KV 缓存的贪心解码 == 重新计算前缀（每个词元都相同）", "greedy decoding with the KV cache == recomputing the prefix (every token)"),
         torch.equal(out_cached_re, out_full),
         ch.tr(f"{out_full.shape[1]} 步 × {n_re} 个句子", f"{out_full.shape[1]} steps × {n_re} sentences"))

# the cache at the level of logits: feed a target one token at a time vs all at once
model.eval()
with torch.no_grad():
    batch = collate(encoded["test"][:8])
    src_mask = batch["src"] != PAD
    memory_t = model.encode(batch["src"], src_mask)
    full_logits = model.decode(batch["tgt_in"], memory_t, src_mask)  # (B, T, V), causal mask inside
    caches = [KVCache() for _ in model.decoder.layers]
    step_logits = torch.cat([model.decode(batch["tgt_in"][:, t:t + 1], memory_t, src_mask, caches=caches, offset=t)
                             for t in range(batch["tgt_in"].size(1))], dim=1)
ch.check_close(ch.tr("借助缓存逐个词元算出的解码器 logits == 一次算出全部位置",
                     "decoder logits one token at a time with the cache == all positions at once"), step_logits, full_logits,
               atol=1e-4)

# %% [markdown] lang="zh"
# ## 8. 测试集上的 BLEU
#
# BLEU（Papineni 等，2002）比较输出与参考译文的 n 元组（n-gram，n = 1…4）：做截断计数，使一个
# n 元组最多按它在参考译文中出现的次数计分；在整个测试集上求和；输出比参考译文短时另加惩罚。
# 对中文，我们把**汉字**当作词元来计数（`bleu_tokenize(text, "zh")`）；词级 BLEU 需要先用中文
# 分词器切词，得到的数值也不同，所以报告 BLEU 时一定要说明用的是哪种切分。
#
# 两个不用模型的基线（baseline）：
#
# * **常数基线**：对每个句子都输出训练集中最常见的那条译文；
# * **最近邻基线**：在训练集中找出与测试句共享词最多的源句，输出*它*的译文。在这样规则的世界里，
#   这是一个很强的基线。

# %% [markdown] lang="en"
# ## 8. BLEU on the test set
#
# BLEU (Papineni et al., 2002) compares n-grams (n = 1…4) of the output with the reference,
# clipped so an n-gram is credited at most as often as the reference has it, summed over the whole
# test set, with a penalty for outputs shorter than the references. For Chinese we count
# **characters** as tokens (`bleu_tokenize(text, "zh")`); word-level BLEU would first need a
# Chinese word segmenter and gives other numbers, so always say which tokenisation a BLEU uses.
#
# Two baselines that use no model:
#
# * **constant**: output the most frequent training translation for every sentence;
# * **nearest neighbour**: find the training source sentence sharing the most words with the test
#   sentence and output *its* translation. In a world this regular that is a strong baseline.

# %%
hyps = [to_text(row) for row in out_cached]
tok_refs = [bleu_tokenize(r, "zh") for r in references]
bleu = corpus_bleu([bleu_tokenize(h, "zh") for h in hyps], tok_refs)
exact = sum(h == r for h, r in zip(hyps, references)) / n_test

most_common = Counter(zh for _, zh in pairs["train"]).most_common(1)[0][0]  # ties: the first seen
bleu_constant = corpus_bleu([bleu_tokenize(most_common, "zh")] * n_test, tok_refs)


def bag_of_words(sentences, vocab):
    """(N, W) 0/1 matrix: which words of ``vocab`` (English, bleu_tokenize) each sentence contains."""
    bag = torch.zeros(len(sentences), len(vocab))
    for r, sentence in enumerate(sentences):
        bag[r, [vocab[w] for w in bleu_tokenize(sentence)]] = 1.0
    return bag


train_en = [en_s for en_s, _ in pairs["train"]]
test_en = [en_s for en_s, _ in pairs["test"][:n_test]]
vocab = {w: i for i, w in enumerate(sorted({w for en_s in train_en + test_en for w in bleu_tokenize(en_s)}))}
train_bag, test_bag = bag_of_words(train_en, vocab), bag_of_words(test_en, vocab)
shared = test_bag @ train_bag.T  # (n_test, N_train) words in common
jaccard = shared / (test_bag.sum(1, keepdim=True) + train_bag.sum(1) - shared)  # |a ∩ b| / |a ∪ b|
nn_hyps = [pairs["train"][j][1] for j in jaccard.argmax(1).tolist()]  # the nearest training sentence's Chinese
bleu_nn = corpus_bleu([bleu_tokenize(h, "zh") for h in nn_hyps], tok_refs)
print(ch.tr(f"  BLEU（按汉字），{n_test} 个测试句：模型 {bleu:.1f}（完全一致 {exact:.0%}）；"
            f"常数基线 {bleu_constant:.1f}；最近邻基线 {bleu_nn:.1f}",
            f"  BLEU (characters), {n_test} test sentences: model {bleu:.1f} (exact match {exact:.0%}); "
            f"constant {bleu_constant:.1f}; nearest neighbour {bleu_nn:.1f}"))
if ch.fast:
    ch.check_value(ch.tr("（快速模式，只训练几步）BLEU 是 [0, 100] 之间的数", "(fast mode, a few steps) BLEU is a number in [0, 100]"), bleu,
                   low=0.0, high=100.0)
else:
    ch.check_value(ch.tr("BLEU 远高于常数基线（BLEU − 常数基线）", "BLEU well above the constant baseline (BLEU − constant)"),
                   bleu - bleu_constant, low=50,
                   detail=f"{bleu:.1f} vs {bleu_constant:.1f}")
    ch.check_value(ch.tr("BLEU 高于最近邻基线（BLEU − 最近邻基线）", "BLEU above the nearest-neighbour baseline (BLEU − nearest neighbour)"),
                   bleu - bleu_nn, low=10,
                   detail=f"{bleu:.1f} vs {bleu_nn:.1f}")
    ch.check_value("BLEU", bleu, low=80)

print(ch.tr("  几条译文（源句 | 参考译文 | 模型输出）：", "  a few translations (source | reference | model):"))
wrong = [i for i in range(4, n_test) if hyps[i] != references[i]]
for i in list(range(4)) + wrong[:3]:  # the first four, then three mistakes
    mark = "✓" if hyps[i] == references[i] else "✗"
    print(f"    {mark} {pairs['test'][i][0]} | {references[i]} | {hyps[i]}")

# %% [markdown] lang="zh"
# ## 9. 交叉注意力：每个字关注哪个源词
#
# 对模型自己给出的某个测试句译文做教师强制，读出解码器层的交叉注意力权重，并在 4 个头上取平均：
# 每列对应一个源子词，每行对应一个解码器位置。第 t 行读入 [CLS] y₁ … y_t 并**预测** y_{t+1}，
# 所以我们用该行写出的那个字来标注这一行。中文把地点放在动词前面（“works at … in Berlin” →
# 在柏林的…工作），所以对齐关系不是一条对角线。（没有 CJK 字体（例如 Noto Sans CJK）时，
# matplotlib 画不出汉字：这时各行显示为码位，文字输出里则会列出这些汉字。）
#
# 为了测量而不是凭肉眼看，我们利用这个世界的词典（`minitransformer.data.world_lexicon`：
# Berlin ↔ 柏林、Chen Jing ↔ 陈静……）：对翻译正确的测试句中的每个名字，写出该名字第一个字的
# 那一行，关注最多的是否是这个名字的某个源子词？注意力权重只是模型用到了什么的线索，并不是证明。

# %% [markdown] lang="en"
# ## 9. Cross-attention: which source word each character looks at
#
# Teacher-force the model's own translation of a test sentence and read the cross-attention
# weights of the decoder block, averaged over the 4 heads: a column per source piece, a row per
# decoder position. Row t reads [CLS] y₁ … y_t and **predicts** y_{t+1}, so we label each row with
# the character it writes. Chinese puts the place before the verb ("works at … in Berlin" →
# 在柏林的…工作), so the alignment is not a diagonal. (Without a CJK font, e.g. Noto Sans CJK,
# matplotlib cannot draw Chinese: the rows then show code points, and the text output lists the
# characters.)
#
# To measure rather than eyeball, we use the world's lexicon (`minitransformer.data.world_lexicon`:
# Berlin ↔ 柏林, Chen Jing ↔ 陈静, …): for each name in a correctly translated test sentence, does
# the row that writes the name's first character attend most to one of the name's source pieces?
# Attention weights are a hint of what the model uses, not a proof of it.

# %%
@torch.no_grad()
def cross_attention_maps(model, items):
    """Head-averaged cross-attention of the (last) decoder block for (src ids, tgt ids) pairs,
    teacher-forced: (B, T, S); row t predicts target token t (row 0 reads [CLS])."""
    model.eval()
    batch = collate(items)
    src_mask = batch["src"] != PAD
    mem = model.encode(batch["src"], src_mask)
    _, weights = model.decoder(model.embed(batch["tgt_in"], model.tgt_embed), mem, batch["tgt_in"] != PAD, src_mask,
                               need_weights=True)
    return weights[-1]["cross"].mean(1)


def pieces_of(text, start, end):
    """Indices of the source pieces of ``text`` that overlap characters [start, end) (a lone ▁ never does)."""
    found, pos = [], -1  # ▁ stands for a space; sentencepiece puts one before the first word: offset -1
    for j, piece in enumerate(src_tok.tokenize(text)):
        if piece != "▁" and pos < end and pos + len(piece) > start:
            found.append(j)
        pos += len(piece)
    return found


good = [i for i in range(n_test) if hyps[i] == references[i]]
maps = cross_attention_maps(model, [(encoded["test"][i][0], tgt_tok.encode(hyps[i])) for i in good]) if good else None
hits, chance, names = 0, 0.0, 0
for row, i in enumerate(good):
    en_s, zh_s = pairs["test"][i]
    n_src = len(encoded["test"][i][0])
    for ent in ENTITIES:
        if en_s.count(ent.en) != 1 or zh_s.count(ent.zh) != 1:
            continue
        a = en_s.index(ent.en)
        pieces = pieces_of(en_s, a, a + len(ent.en))
        t = zh_s.index(ent.zh)  # the row that writes the name's first character
        hits += int(maps[row, t, :n_src].argmax()) in pieces
        chance += len(pieces) / n_src  # attending to a random piece
        names += 1
print(ch.tr(f"  {len(good)} 条正确译文中有 {names} 个名字：写出名字第一个字的那一行，有 {hits / max(names, 1):.0%} 的情况"
            f"最关注该名字的英文子词（随机水平 {chance / max(names, 1):.0%}）",
            f"  {names} names in {len(good)} correct translations: the row writing a name's first character attends most "
            f"to the name's English pieces {hits / max(names, 1):.0%} of the time (chance {chance / max(names, 1):.0%})"))
if not ch.fast:
    ch.check_value(ch.tr("对大多数名字，交叉注意力都能找到对应的源词（命中率 / 随机水平）",
                         "cross-attention finds the source name for most names (hits / chance)"),
                   hits / chance if names else float("nan"), low=3.0,
                   detail=ch.tr(f"{hits / max(names, 1):.0%}，随机水平 {chance / max(names, 1):.0%}，共 {names} 个名字",
                                f"{hits / max(names, 1):.0%} vs chance {chance / max(names, 1):.0%}, {names} names"))

idx = 1
cross = cross_attention_maps(model, [(encoded["test"][idx][0], tgt_tok.encode(hyps[idx]))])[0]  # (T, S)
cols = src_tok.tokenize(pairs["test"][idx][0])
writes = list(hyps[idx]) + ["[SEP]"]  # row t writes character t
ch.check(ch.tr("交叉注意力的每一行在源句上求和为 1", "cross-attention rows sum to 1 over the source"),
         bool(torch.allclose(cross.sum(-1), torch.ones(len(writes)))))
print(f"  {pairs['test'][idx][0]} -> {hyps[idx]}")
print(ch.tr("  每个字及其最关注的源子词：", "  each character and the source piece it attends to most: ")
      + ", ".join(f"{c}←{cols[int(cross[t].argmax())]}" for t, c in enumerate(writes)))

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
             "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "Arial Unicode MS")
installed = {f.name for f in font_manager.fontManager.ttflist}
cjk_font = next((f for f in CJK_FONTS if f in installed), None)
labels = writes if cjk_font else [f"{t + 1}: U+{ord(c):04X}" if len(c) == 1 else c for t, c in enumerate(writes)]
fig, ax = plt.subplots(figsize=(0.5 * len(cols) + 2.5, 0.36 * len(writes) + 1.5))
im = ax.imshow(cross.numpy(), cmap="viridis", vmin=0)
ax.set_xticks(range(len(cols)), cols, rotation=60)
ax.set_yticks(range(len(writes)), labels, **({"fontfamily": cjk_font} if cjk_font else {}))
ax.set(xlabel=ch.tr("源子词（英文）", "source piece (English)"), ylabel=ch.tr("这一行写出的字", "character written by this row"),
       title=ch.tr("交叉注意力，4 个头的平均", "cross-attention, mean of 4 heads")
       + ("" if cjk_font else ch.tr("\n（未找到 CJK 字体：各行显示为码位）", "\n(no CJK font found: rows as code points)")))
fig.colorbar(im, ax=ax, shrink=0.8)
ch.savefig(fig, "cross_attention")

# %% [markdown] lang="zh"
# ## 本章小结
#
# * 解码器层——因果自注意力、对编码器记忆的交叉注意力、前馈网络——与 `nn.TransformerDecoderLayer`
#   一致，编码器-解码器与 `nn.Transformer` 一致；
# * 每种注意力能看到什么：因果掩码遮住后面的目标词元，交叉注意力能看到每个真实的源词元、看不到
#   填充；
# * 一个在自带句对上从零训练的英译中模型，使用教师强制和长度分桶；带 KV 缓存的贪心解码（与重新
#   计算结果一致）、以汉字计的 BLEU 及两个基线，以及一张交叉注意力图。
#
# 去掉交叉注意力的解码器层就是 GPT 的层：后面几章会把编码器去掉。

# %% [markdown] lang="en"
# ## What we built
#
# * the decoder block — causal self-attention, cross-attention to the encoder's memory, FFN —
#   equal to `nn.TransformerDecoderLayer`, and the encoder-decoder equal to `nn.Transformer`;
# * what each attention may see: the causal mask hides later target tokens, cross-attention sees
#   every real source token and no padding;
# * an English→Chinese translator trained from scratch on the bundled pairs, with teacher forcing
#   and length bucketing; greedy decoding with a KV cache (equal to recomputing), BLEU on
#   characters against two baselines, and a cross-attention map.
#
# The decoder without cross-attention is GPT's block: the next chapters drop the encoder.

# %%
ch.done()
