# %% [markdown] lang="zh"
# # 第 13 章 更多的预训练模型：规模、开销与模型选择（文章标题，§3.2.2 模型选择）
#
# 文章 §3.2.2 说，要按**任务类型**、**模型规模**（“根据计算资源选择合适的模型规模”）和**已发表的效果**来选择预训练模型（pretrained model），却没有说这些模型有多大，某个规模又意味着多少开销。本章把这些都算出来，并核对每一个数字：
#
# 1. 把 BERT 和 GPT-2 的参数量写成公式，与在 PyTorch 的 `meta` 设备上实例化的模型（只有形状，不占内存）以及公布的参数量（BERT-base 109,482,240；GPT-2 small 124,439,808；……）逐一核对——练习 13.1 和 13.2；
# 2. 参数都在哪里：嵌入、注意力、前馈网络、层归一化（LayerNorm）；
# 3. 计算量：每个词元的浮点运算次数（FLOPs），前向约 2N，训练约 6N；先推导，再用 PyTorch 的 FLOP 计数器精确测量；
# 4. 不同规模的模型所需的内存和时间：一张按算力选择模型的表；
# 5. 按任务选择：编码器、解码器、编码器-解码器，以及每个位置能看到什么（实测）；
# 6. 从本地文件夹把 Hugging Face 的 BERT 和 GPT-2 检查点（checkpoint）载入我们的代码，输出与 `transformers` 一致（这一部分在安装了 `transformers` 时运行）；
# 7. 更正文章 §7.3 的参考文献列表。

# %% [markdown] lang="en"
# # Chapter 13 · More pretrained models: sizes, costs and choosing a model (Article title, §3.2.2)
#
# Article §3.2.2 says to choose a pretrained model by **task type**, **model size** ("choose the
# model size that suits your compute") and **published results**, without saying how big the models are or what a size
# costs. In this chapter we work it out and check every number:
#
# 1. the parameter count of BERT and GPT-2, written out as formulas — checked against models
#    instantiated on PyTorch's `meta` device (shapes only, no memory) and against the published
#    counts (BERT-base 109,482,240; GPT-2 small 124,439,808; …) — exercises 13.1 and 13.2;
# 2. where the parameters sit: embeddings, attention, feed-forward, LayerNorm;
# 3. the compute: FLOPs per token, ≈ 2N forward and ≈ 6N for training, derived and then measured
#    exactly with PyTorch's FLOP counter;
# 4. memory and time per model size: a table to choose by compute;
# 5. choosing by task: encoder, decoder, encoder-decoder, and what each position may see (measured);
# 6. loading Hugging Face BERT and GPT-2 checkpoints from a local folder into our code, outputs
#    equal to `transformers` (this part runs when `transformers` is installed);
# 7. the reading list of article §7.3, corrected.

# %%
import importlib.util
import shutil
import time

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from chapters.book import Chapter, plt
from minibert import BertConfig, BertForPreTraining, BertModel
from minigpt import GPT, GPTConfig
from minitransformer.transformer import Seq2SeqConfig, Seq2SeqTransformer

ch = Chapter("ch13_pretrained_models")

# Parameter counts as published (Hugging Face's `num_parameters()` of the released checkpoints):
# BertModel with its pooler, BertForPreTraining with the MLM and NSP heads, GPT2LMHeadModel (the
# output layer shares the token table), RobertaModel.
PUBLISHED = {
    "BERT-base": 109_482_240, "BERT-base + MLM/NSP heads": 110_106_428, "BERT-large": 335_141_888,
    "RoBERTa-base": 124_645_632,
    "GPT-2 small": 124_439_808, "GPT-2 medium": 354_823_168, "GPT-2 large": 774_030_080, "GPT-2 XL": 1_557_611_200,
}

# %% [markdown] lang="zh"
# ## 1. 手算 BERT 的参数量
#
# 先自己数一数：练习 13.1 和 13.2 要求写出参数量的公式，公式本身在练习之后给出。

# %% [markdown] lang="en"
# ## 1. BERT's parameters, by hand
#
# Before the formulas, count for yourself: exercises 13.1 and 13.2 ask for the closed forms; the
# formulas themselves follow the exercises.

# %% [markdown] lang="zh"
# ### 练习 13.1：BERT 参数量的公式
#
# **`bert_parameter_count_ex`** · ★★ · 1 分 · 约 20 分钟
#
# **题目：** 用公式计算 BertModel 的参数量：嵌入层及其 LayerNorm、每个编码器层、池化层。
#
# **提示：** Linear(a, b) 有 a·b + b 个参数，H 维的层归一化有 2H 个；前馈层宽度是单独的参数，不一定是 4H。
#
# **不可调用：** `config.count_bert_parameters`、`model.BertModel`、`heads.BertForPreTraining`、`nn.Module.parameters`、`nn.Module.named_parameters` 等共 7 个（`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch13`
#
# 编写 `bert_parameter_count_ex(vocab_size, max_positions, type_vocab_size, hidden, layers, intermediate)`，六个参数依次是词表大小、最大位置数、片段类型数、隐藏层宽度、层数和前馈网络的宽度；返回**包括**池化层在内的 BertModel 的参数量。检查程序会把结果与公布的参数量比较，也会与用 PyTorch 自带的模块——嵌入层 `nn.Embedding`、层归一化 `nn.LayerNorm`、编码器层 `nn.TransformerEncoderLayer` 和线性层 `nn.Linear`——在 meta 设备上搭出的同一架构比较。

# %% [markdown] lang="en"
# ### Exercise 13.1 — BERT's parameter count
#
# **`bert_parameter_count_ex`** · ★★ · 1 point · ~20 min
#
# **Task:** Count BertModel's parameters in closed form: embeddings and their LayerNorm, each
# encoder layer, the pooler.
#
# **Hint:** A Linear(a, b) has a·b + b numbers, a LayerNorm over H has 2H; the feed-forward width
# is its own size.
#
# **Not allowed:** `config.count_bert_parameters`, `model.BertModel`,
# `heads.BertForPreTraining`, `nn.Module.parameters`, `nn.Module.named_parameters` and 2 more
# (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch13`
#
# Write `bert_parameter_count_ex(vocab_size, max_positions, type_vocab_size, hidden, layers,
# intermediate)`: the parameters of a BertModel **with** its pooler. The check compares with the
# published counts and with the same architecture assembled from PyTorch's own modules
# (`nn.Embedding`, `nn.LayerNorm`, `nn.TransformerEncoderLayer`, `nn.Linear`) on the meta device.

# %%
def bert_parameter_count_ex(vocab_size, max_positions, type_vocab_size, hidden, layers, intermediate):
    """Parameters of BertModel: embeddings + LayerNorm, `layers` encoder layers, pooler."""
    ### BEGIN SOLUTION
    h, f = hidden, intermediate
    embeddings = (vocab_size + max_positions + type_vocab_size) * h + 2 * h
    layer = 4 * (h * h + h) + (h * f + f) + (f * h + h) + 2 * 2 * h
    return embeddings + layers * layer + (h * h + h)
    ### END SOLUTION


def check_bert_parameter_count_ex(impl):
    """Published counts, and nn.Embedding + nn.LayerNorm + nn.TransformerEncoderLayer + nn.Linear on the meta device."""
    published = [((30522, 512, 2, 768, 12, 3072), 109_482_240, "bert-base"),
                 ((30522, 512, 2, 1024, 24, 4096), 335_141_888, "bert-large"),
                 ((50265, 514, 1, 768, 12, 3072), 124_645_632, "roberta-base")]
    for args, want, name in published:
        got = impl(*args)
        if got != want:
            raise AssertionError(ch.tr(f"{name}：期望 {want:,}，实际得到 {got:,}——别漏了偏置（Linear(a, b) 有 "
                                       f"a·b + b 个参数）、LayerNorm 的两个向量 γ 和 β、全部三张嵌入表，以及池化层的 H² + H",
                                       f"{name}: expected {want:,}, received {got:,} — count the biases (a Linear(a, b) has "
                                       f"a·b + b), both LayerNorm vectors γ and β, all three tables and the pooler H² + H"))
    for v, p, s, h, n, f in [(99, 37, 3, 24, 3, 40), (1000, 128, 2, 64, 2, 256)]:
        with torch.device("meta"):
            parts = [nn.Embedding(v, h), nn.Embedding(p, h), nn.Embedding(s, h), nn.LayerNorm(h), nn.Linear(h, h)]
            parts += [nn.TransformerEncoderLayer(h, 1, f) for _ in range(n)]
        want = sum(x.numel() for m in parts for x in m.parameters())
        got = impl(v, p, s, h, n, f)
        if got != want:
            raise AssertionError(ch.tr(f"V={v}，P={p}，S={s}，H={h}，L={n}，F={f}：期望 {want:,}（PyTorch 模块），实际得到 "
                                       f"{got:,}——前馈网络的宽度 F 是一个单独的尺寸，不一定是 4H",
                                       f"V={v}, P={p}, S={s}, H={h}, L={n}, F={f}: expected {want:,} (PyTorch modules), received "
                                       f"{got:,} — the feed-forward width F is a separate size, not always 4H"))
    return ch.tr("bert-base、bert-large、roberta-base 与公布的参数量一致；两种非常规尺寸与 nn.TransformerEncoderLayer 一致",
                 "bert-base, bert-large, roberta-base as published; two odd sizes against nn.TransformerEncoderLayer")


ch.verify(check_bert_parameter_count_ex, bert_parameter_count_ex)

# %% [markdown] lang="zh"
# ### 练习 13.2：GPT-2 的参数量
#
# **`gpt2_parameter_count_ex`** · ★ · 1 分 · 约 15 分钟
#
# **题目：** 用公式计算 GPT-2 的参数量：词表与位置表、各层、最后的 LayerNorm；输出层与词表共享权重，只算一次。
#
# **提示：** 每个块是 12C² + 13C（注意力 4C² + 4C，MLP 8C² + 5C，两个层归一化 4C）；再加上最后的层归一化。
#
# **不可调用：** `config.gpt_param_count`、`model.GPT`、`nn.Module.parameters`、`nn.Module.named_parameters`、`nn.Module.state_dict` 等共 6 个（`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch13`
#
# GPT-2 的块由同样的部件组成（前置层归一化 pre-LN 与后置层归一化 post-LN 的区别不改变参数量），MLP 的宽度是 4C，最后一个块之后还有一个层归一化；没有片段嵌入，也没有池化层——而且它的输出层复用词元表。编写 `gpt2_parameter_count_ex(vocab_size, block_size, n_layer, n_embd)`。

# %% [markdown] lang="en"
# ### Exercise 13.2 — GPT-2's parameter count
#
# **`gpt2_parameter_count_ex`** · ★ · 1 point · ~15 min
#
# **Task:** Count GPT-2's parameters in closed form: token and position tables, blocks, final
# LayerNorm; the output layer is tied to the token table and counts once.
#
# **Hint:** Each block is 12C² + 13C (attention 4C² + 4C, MLP 8C² + 5C, two LayerNorms 4C); add
# the final LayerNorm.
#
# **Not allowed:** `config.gpt_param_count`, `model.GPT`, `nn.Module.parameters`,
# `nn.Module.named_parameters`, `nn.Module.state_dict` and 1 more
# (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch13`
#
# GPT-2's block has the same pieces (pre-LN instead of post-LN changes no count), an MLP of width
# 4C, a final LayerNorm after the last block, no segments and no pooler — and its output layer
# reuses the token table. Write `gpt2_parameter_count_ex(vocab_size, block_size, n_layer, n_embd)`.

# %%
def gpt2_parameter_count_ex(vocab_size, block_size, n_layer, n_embd):
    """Parameters of GPT-2 (GPT2LMHeadModel): tables, blocks, final LayerNorm; the tied output layer once."""
    ### BEGIN SOLUTION
    c = n_embd
    return (vocab_size + block_size) * c + n_layer * (12 * c * c + 13 * c) + 2 * c
    ### END SOLUTION


def check_gpt2_parameter_count_ex(impl):
    """The four published GPT-2 sizes, and PyTorch modules on the meta device for an odd size."""
    published = [((50257, 1024, 12, 768), 124_439_808, "gpt2"), ((50257, 1024, 24, 1024), 354_823_168, "gpt2-medium"),
                 ((50257, 1024, 36, 1280), 774_030_080, "gpt2-large"), ((50257, 1024, 48, 1600), 1_557_611_200, "gpt2-xl")]
    for args, want, name in published:
        got = impl(*args)
        if got != want:
            hint = (ch.tr("输出层与词元嵌入表共享权重：只算一次", "the output layer shares the token table: count it once")
                    if got - want == args[0] * args[3] else
                    ch.tr("每个块有 12C² + 13C 个参数；还要加上最后的 LayerNorm（2C）",
                          "each block is 12C² + 13C; add the final LayerNorm (2C)"))
            raise AssertionError(ch.tr(f"{name}：期望 {want:,}，实际得到 {got:,}——{hint}",
                                       f"{name}: expected {want:,}, received {got:,} — {hint}"))
    v, t, n, c = 101, 33, 3, 20
    with torch.device("meta"):
        parts = [nn.Embedding(v, c), nn.Embedding(t, c), nn.LayerNorm(c)] + [nn.TransformerEncoderLayer(c, 1, 4 * c) for _ in range(n)]
    want = sum(x.numel() for m in parts for x in m.parameters())
    got = impl(v, t, n, c)
    if got != want:
        raise AssertionError(ch.tr(f"V={v}，T={t}，L={n}，C={c}：期望 {want:,}（PyTorch 模块），实际得到 {got:,}",
                                   f"V={v}, T={t}, L={n}, C={c}: expected {want:,} (PyTorch modules), received {got:,}"))
    return ch.tr("GPT-2 small、medium、large 和 XL 与公布的参数量一致；一种非常规尺寸与 nn.TransformerEncoderLayer 一致",
                 "GPT-2 small, medium, large and XL as published; an odd size against nn.TransformerEncoderLayer")


ch.verify(check_gpt2_parameter_count_ex, gpt2_parameter_count_ex)

# %% [markdown] lang="zh"
# ### 参数量公式
#
# 记 H 为宽度（hidden_size），F 为前馈网络的宽度（intermediate_size，即 4H），L 为层数，V / P / S 分别为词元表、位置表和片段表的大小。一个 `Linear(a, b)` 有 a·b 个权重和 b 个偏置；H 维上的层归一化有 γ 和 β，共 2H 个数。
#
#     嵌入层       V·H + P·H + S·H            三张查找表
#                  + 2H                       它们的层归一化
#     每一层       4(H² + H)                  Q、K、V 和输出投影（多头只是把 H 分开，不增加参数）
#                  + (H·F + F) + (F·H + H)    前馈网络
#                  + 2·2H                     两个层归一化
#                  = 12H² + 13H（当 F = 4H 时）
#     池化层       H² + H                     tanh(W h_[CLS] + b)
#
# 预训练还要加上 MLM 头（一个稠密层 H² + H、一个层归一化 2H、一个输出偏置 V；它的 V×H 矩阵*就是*词元表，两者绑定（tied），所以不增加参数）和 NSP 头（2H + 2）。
#
# 我们不必分配内存就能数出一个真实模型的参数：在 `torch.device("meta")` 下，每个张量都有形状但没有存储，所以即使是 GPT-2 XL（15 亿个数，float32 下 6 GB）也能瞬间建好。`model.parameters()` 对共享（绑定）的张量只列出一次。下表中，“实际计数”一栏为 `-` 的模型只在默认模式（不加 `--fast`）下实例化并计数。

# %% [markdown] lang="en"
# ### The formulas
#
# Write H for the width (hidden_size), F for the feed-forward width (intermediate_size, 4H), L for
# the number of layers, V / P / S for the sizes of the token, position and segment tables. A
# `Linear(a, b)` has a·b weights and b biases; a LayerNorm over H has γ and β, 2H numbers.
#
#     embeddings   V·H + P·H + S·H            three lookup tables
#                  + 2H                       their LayerNorm
#     one layer    4(H² + H)                  Q, K, V and output projections (the heads split H, they add nothing)
#                  + (H·F + F) + (F·H + H)    the feed-forward network
#                  + 2·2H                     two LayerNorms
#                  = 12H² + 13H when F = 4H
#     pooler       H² + H                     tanh(W h_[CLS] + b)
#
# Pretraining adds the MLM head (a dense layer H² + H, a LayerNorm 2H, an output bias V; its V×H
# matrix *is* the token table, tied, so it costs nothing) and the NSP head (2H + 2).
#
# We count a real model without allocating it: under `torch.device("meta")` every tensor has a
# shape but no storage, so even GPT-2 XL (1.5 billion numbers, 6 GB in float32) is built in a
# moment. `model.parameters()` lists a shared (tied) tensor once. In the table below, a model
# counted "(default mode)" is instantiated and counted only without `--fast`.

# %%
def bert_components(c: BertConfig, heads: bool = False) -> dict:
    """BERT's parameters by component, from the formulas above (heads: MLM + NSP)."""
    h, f, n = c.hidden_size, c.intermediate_size, c.num_hidden_layers
    parts = {
        "token embeddings": c.vocab_size * h,
        "positions / segments": (c.max_position_embeddings + c.type_vocab_size) * h,
        "attention": n * 4 * (h * h + h),
        "feed-forward": n * (h * f + f + f * h + h),
        "LayerNorm": 2 * h + n * 2 * 2 * h + (2 * h if heads else 0),
        "pooler / heads": (h * h + h) + ((h * h + h) + c.vocab_size + (2 * h + 2) if heads else 0),
    }
    return parts


def gpt_components(c: GPTConfig) -> dict:
    """GPT-2's parameters by component: the same pieces, an MLP of width 4C, pre-LN plus a final LayerNorm."""
    d, n = c.n_embd, c.n_layer
    return {
        "token embeddings": c.vocab_size * d,  # also the output layer (tied)
        "positions / segments": c.block_size * d,
        "attention": n * 4 * (d * d + d),
        "feed-forward": n * (d * 4 * d + 4 * d + 4 * d * d + d),
        "LayerNorm": n * 2 * 2 * d + 2 * d,
        "pooler / heads": 0,
    }


def component_of(name: str) -> str:
    """Which component a parameter of our BERT or GPT belongs to, from its name."""
    if "word_embeddings" in name or ".wte." in name:
        return "token embeddings"
    if "position_embeddings" in name or "token_type" in name or ".wpe." in name:
        return "positions / segments"
    if "self_attn" in name:
        return "attention"
    if ".ff." in name:
        return "feed-forward"
    if "norm" in name or "ln_f" in name:
        return "LayerNorm"
    return "pooler / heads"


def count_by_component(model: nn.Module) -> dict:
    counts = dict.fromkeys(bert_components(BertConfig()), 0)
    for name, p in model.named_parameters():  # a tied tensor appears once
        counts[component_of(name)] += p.numel()
    return counts


BERT_SIZES = {"BERT-base": BertConfig(),
              "BERT-large": BertConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
              "RoBERTa-base": BertConfig(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1)}
GPT_SIZES = {"GPT-2 small": GPTConfig(), "GPT-2 medium": GPTConfig(n_layer=24, n_head=16, n_embd=1024),
             "GPT-2 large": GPTConfig(n_layer=36, n_head=20, n_embd=1280),
             "GPT-2 XL": GPTConfig(n_layer=48, n_head=25, n_embd=1600)}
instantiate = ["BERT-base", "GPT-2 small"] if ch.fast else list(BERT_SIZES) + list(GPT_SIZES)  # XL takes a second

from minibert import count_bert_parameters  # the library's versions (exercises 13.1, 13.2)
from minigpt import gpt_param_count

t0 = time.perf_counter()
models = {}
with torch.device("meta"):
    models["BERT-base + MLM/NSP heads"] = BertForPreTraining(BertConfig())
    for name in instantiate:
        models[name] = BertModel(BERT_SIZES[name]) if name in BERT_SIZES else GPT(GPT_SIZES[name])
seconds, device = time.perf_counter() - t0, next(models["BERT-base"].parameters()).device
print(ch.tr(f"  在 meta 设备上构建了 {len(models)} 个模型，用时 {seconds:.1f} 秒；其中一个权重所在的设备：{device}",
            f"  built {len(models)} models on the meta device in {seconds:.1f} s; a weight there: {device}"))

formulas = {name: bert_components(c) for name, c in BERT_SIZES.items()}
formulas["BERT-base + MLM/NSP heads"] = bert_components(BertConfig(), heads=True)
formulas.update({name: gpt_components(c) for name, c in GPT_SIZES.items()})
print(ch.tr("  模型                                  公式       实际计数         公布值", f"  {'model':<27}{'formula':>15}{'counted':>15}{'published':>15}"))
for name, parts in formulas.items():
    counted = f"{sum(p.numel() for p in models[name].parameters()):,}" if name in models else ch.tr("-", "(default mode)")
    print(f"  {name:<27}{sum(parts.values()):>15,}{counted:>15}{PUBLISHED[name]:>15,}")
for name, model in models.items():
    counted = count_by_component(model)
    ch.check(ch.tr(f"{name}：公式 == 实例化的模型，逐个组件比较", f"{name}: formula == instantiated model, component by component"),
             counted == formulas[name], ch.tr(f"{sum(counted.values()):,} 个参数", f"{sum(counted.values()):,} parameters"))
for name, parts in formulas.items():
    ch.check(ch.tr(f"{name}：公式 == 公布的参数量 {PUBLISHED[name]:,}", f"{name}: formula == published count {PUBLISHED[name]:,}"),
             sum(parts.values()) == PUBLISHED[name])
ch.check(ch.tr("库中的 count_bert_parameters 和 gpt_param_count 给出同样的结果", "the library's count_bert_parameters and gpt_param_count agree"),
         count_bert_parameters(BertConfig()) == PUBLISHED["BERT-base"] and gpt_param_count(GPTConfig()) == PUBLISHED["GPT-2 small"])
head = models["BERT-base + MLM/NSP heads"]
ch.check(ch.tr("MLM 的解码层就是词元表（两者绑定），因此不增加参数", "the MLM decoder is the token table (tied), so it adds no parameters"),
         head.mlm_head.decoder.weight is head.bert.embeddings.word_embeddings.weight)

# %% [markdown] lang="zh"
# ## 2. 参数都在哪里
#
# 在每一层的 12H² 个权重中，前馈网络占 8H²，注意力占 4H²，层归一化几乎可以忽略。词元表 V·H 由词表决定，因此它在小模型中占比很大（BERT-base 的五分之一，GPT-2 small 的将近三分之一），在大模型中占比很小（GPT-2 XL 的 5%）：模型变大，靠的是把各层变大。

# %% [markdown] lang="en"
# ## 2. Where the parameters sit
#
# In one layer the feed-forward network holds 8H² of the 12H² weights, attention 4H², and the
# LayerNorms almost nothing. The token table V·H is fixed by the vocabulary, so it is a large share
# of a small model (a fifth of BERT-base, almost a third of GPT-2 small) and a small share of a
# big one (5 % of GPT-2 XL): growing a model means growing its layers.

# %%
names = list(formulas)
components = list(bert_components(BertConfig()))
COMPONENT_ZH = {"token embeddings": "词元嵌入", "positions / segments": "位置 / 片段嵌入", "attention": "注意力",
                "feed-forward": "前馈网络", "LayerNorm": "层归一化", "pooler / heads": "池化层 / 输出头"}  # for the Chinese output
fig, ax = plt.subplots(figsize=(11, 4.2))
left = [0.0] * len(names)
for comp in components:
    share = [formulas[n][comp] / sum(formulas[n].values()) for n in names]
    ax.barh(names, share, left=left, label=ch.tr(COMPONENT_ZH[comp], comp))
    left = [a + b for a, b in zip(left, share)]
for i, n in enumerate(names):
    ax.text(1.01, i, f"{sum(formulas[n].values()) / 1e6:,.1f} M", va="center", fontsize=8)
ax.set(xlim=(0, 1.12), xlabel=ch.tr("占参数总量的比例", "share of the parameters"), title=ch.tr("各组件的参数量", "parameters by component"))
ax.invert_yaxis()
ax.legend(ncol=3, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15))
ch.savefig(fig, "parameters_by_component")
for n in ("BERT-base", "GPT-2 small", "GPT-2 XL"):
    parts = formulas[n]
    print(ch.tr(f"  {n}：" + "，".join(f"{COMPONENT_ZH[k]} {v / sum(parts.values()):.1%}" for k, v in parts.items() if v),
                f"  {n}: " + ", ".join(f"{k} {v / sum(parts.values()):.1%}" for k, v in parts.items() if v)))
share_ffn = formulas["BERT-base"]["feed-forward"] / (formulas["BERT-base"]["feed-forward"] + formulas["BERT-base"]["attention"])
ch.check_value(ch.tr("在每层的注意力 + 前馈网络权重中，前馈网络约占 2/3（占比）",
                     "feed-forward ≈ 2/3 of each layer's attention + feed-forward weights (share)"), share_ffn,
               low=2 / 3 - 1e-3, high=2 / 3 + 1e-3)

# %% [markdown] lang="zh"
# ## 3. 计算量：每个词元的 FLOPs
#
# 一次矩阵乘法 (m × k)·(k × n) 需要 m·k·n 次乘加，即 **2mkn 次浮点运算（FLOPs）**。因此，权重为 k × n 的线性层作用于一个词元时，每个权重花费 2 次 FLOPs；查表则不花 FLOPs。对 GPT-2，记 C = n_embd，上下文长度为 T，每个词元的计算量为：
#
#     前向      2·N_mm + 4·L·T·C      N_mm = L·12C²（各层的矩阵）+ V·C（输出层）
#                                     4·L·T·C：Q·Kᵀ 和 P·V，每层每个查询各 2·T·C
#     反向      2 × 前向              每个乘积 Y = XW 都需要 dX = dY Wᵀ 和 dW = Xᵀ dY
#     训练      3 × 前向 = 6·N_mm + 12·L·T·C  ≈ 6N
#
# 这就是经验法则：对 N 个参数、D 个训练词元，C_train ≈ 6·N·D FLOPs（Kaplan 等，2020）。偏置、层归一化、softmax 和 GELU 的开销是每个*激活值*几次 FLOPs，而不是每个权重几次，因此不计入（下面的计数器同样不计它们）。我们用 `torch.utils.flop_counter.FlopCounterMode` 精确核对这些公式：它统计 PyTorch 执行的每一次矩阵乘法（注意力走普通的实现路径，这样它的矩阵乘法对计数器可见）。

# %% [markdown] lang="en"
# ## 3. Compute: FLOPs per token
#
# A matrix product (m × k)·(k × n) costs m·k·n multiply-adds, **2mkn FLOPs**. A Linear layer with
# a k × n weight applied to one token therefore costs 2 FLOPs per weight; table lookups cost none.
# For GPT-2 with C = n_embd, per token, context T:
#
#     forward   2·N_mm + 4·L·T·C      N_mm = L·12C² (the layers' matrices) + V·C (the output layer)
#                                     4·L·T·C: Q·Kᵀ and P·V, each 2·T·C per query per layer
#     backward  2 × forward           every product Y = XW needs dX = dY Wᵀ and dW = Xᵀ dY
#     training  3 × forward = 6·N_mm + 12·L·T·C  ≈ 6N
#
# which is the rule of thumb C_train ≈ 6·N·D FLOPs for N parameters and D training tokens (Kaplan
# et al. 2020). Biases, LayerNorm, softmax and GELU are a few FLOPs per *activation*, not per
# weight, and are left out (the counter below leaves them out too). We check the formulas
# exactly with `torch.utils.flop_counter.FlopCounterMode`, which counts every matrix product
# PyTorch runs (attention through the plain path, so its products are visible to it).

# %%
def gpt_forward_flops(c: GPTConfig, b: int, t: int) -> int:
    """Matrix-product FLOPs of GPT's forward pass on a (b, t) batch."""
    n_mm = c.n_layer * 12 * c.n_embd ** 2 + c.vocab_size * c.n_embd
    return 2 * b * t * n_mm + 4 * c.n_layer * b * t * t * c.n_embd


def bert_forward_flops(c: BertConfig, b: int, t: int) -> int:
    """Matrix-product FLOPs of BertModel's forward pass (encoder + pooler) on a (b, t) batch."""
    h, f, n = c.hidden_size, c.intermediate_size, c.num_hidden_layers
    return 2 * b * t * n * (4 * h * h + 2 * h * f) + 4 * n * b * t * t * h + 2 * b * h * h


def measured_flops(model, ids, loss_of):
    """(forward FLOPs, backward FLOPs) as FlopCounterMode counts them."""
    with FlopCounterMode(display=False) as fwd:
        loss = loss_of(model, ids)
    with FlopCounterMode(display=False) as bwd:
        loss.backward()
    return fwd.get_total_flops(), bwd.get_total_flops()


B, T = 2, 32
small_gpt = GPTConfig(block_size=64, vocab_size=300, n_layer=2, n_head=4, n_embd=64, use_sdpa=False)
small_bert = BertConfig(vocab_size=300, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
                        max_position_embeddings=64, use_sdpa=False)
ids = torch.randint(0, 300, (B, T))
for name, model, loss_of, formula in [
    ("GPT", GPT(small_gpt), lambda m, x: m(x, x)[1], gpt_forward_flops(small_gpt, B, T)),
    ("BERT", BertModel(small_bert), lambda m, x: m(x).pooler_output.sum(), bert_forward_flops(small_bert, B, T)),
]:
    fwd, bwd = measured_flops(model, ids, loss_of)
    print(ch.tr(f"  {name}：前向 {fwd:,} FLOPs（公式为 {formula:,}），反向 {bwd:,}",
                f"  {name}: forward {fwd:,} FLOPs (formula {formula:,}), backward {bwd:,}"))
    ch.check(ch.tr(f"{name}：前向 FLOPs == 公式（FlopCounterMode）", f"{name}: forward FLOPs == formula (FlopCounterMode)"), fwd == formula)
    ch.check(ch.tr(f"{name}：反向 FLOPs == 2 × 前向", f"{name}: backward FLOPs == 2 × forward"), bwd == 2 * fwd)

# %% [markdown] lang="zh"
# 在完整规模下（GPT-2 的 T = 1024，BERT 的 T = 512），每个训练词元的计算量如下：

# %% [markdown] lang="en"
# At full size (T = 1024 for GPT-2, 512 for BERT), per training token:

# %%
print(ch.tr("  模型                  N        6N    精确值，完整上下文       注意力占比", f"  {'model':<14}{'N':>9}{'6N':>10}{'exact, full context':>22}{'attention share':>17}"))
flop_rows = {}
for name, c in list(GPT_SIZES.items()) + [("BERT-base", BERT_SIZES["BERT-base"]), ("BERT-large", BERT_SIZES["BERT-large"])]:
    n = sum(formulas[name].values())
    if isinstance(c, GPTConfig):
        exact, attn = 3 * gpt_forward_flops(c, 1, c.block_size) / c.block_size, 12 * c.n_layer * c.block_size * c.n_embd
    else:
        t = c.max_position_embeddings
        exact, attn = 3 * bert_forward_flops(c, 1, t) / t, 12 * c.num_hidden_layers * t * c.hidden_size
    flop_rows[name] = (n, exact)
    print(f"  {name:<14}{n / 1e6:>8.0f}M{6 * n / 1e9:>9.2f}G{exact / 1e9:>21.2f}G{attn / exact:>16.0%}")
ch.check_value(ch.tr("对这里的每个模型，6N 与每个词元训练 FLOPs 的精确值相差都不到 25%（最大的 |6N − 精确值| / 精确值）",
                     "6N is within 25% of the exact training FLOPs per token for every model here (largest |6N − exact| / exact)"),
               max(abs(6 * n - exact) / exact for n, exact in flop_rows.values()), high=0.25)

# %% [markdown] lang="zh"
# 对 GPT-2 来说，6N 很接近精确值，因为它的词元表同时也是输出层，是一次真正的矩阵乘法；在完整上下文下，注意力项再多出 9–13%。对 BertModel，6N 则偏高：它的词元表里那 2300 万个数只被查表使用（预训练时 MLM 输出层只在约 15% 被遮蔽的位置上计算，微调时则完全不用）。
#
# ## 4. 按算力选择模型规模
#
# 在计入任何激活值之前，模型需要的字节数是：float32 下每个参数 4 字节，bfloat16 下 2 字节（用于推理）；**用 AdamW 在 float32 下做全量微调，每个参数 16 字节**（权重、它们的梯度，以及 Adam 的两个滑动平均）。所需时间则是 FLOPs 除以机器能持续达到的速度。我们测量本机 CPU 的矩阵乘法速度，并与一块能持续达到 100 TFLOP/s 的 GPU 比较。

# %% [markdown] lang="en"
# For GPT-2, 6N is close because its token table is also the output layer, a real matrix product;
# the attention term adds 9–13 % at full context. For BertModel, 6N overestimates: the 23 million
# numbers of its token table are only looked up (its MLM output layer runs on the ~15 % masked
# positions during pretraining, and not at all when fine-tuning).
#
# ## 4. Choosing by compute
#
# The bytes a model needs, before any activation: 4 per parameter in float32, 2 in bfloat16 (for
# inference); **16 per parameter for full fine-tuning with AdamW in float32** (the weights, their
# gradients, and Adam's two moving averages). The time: FLOPs divided by what the machine sustains.
# We measure this CPU's matrix-product speed and compare with a GPU that sustains 100 TFLOP/s.

# %%
n_rep = ch.steps(20, 3)
a, b = torch.randn(512, 512), torch.randn(512, 512)
a @ b  # warm-up
t0 = time.perf_counter()
for _ in range(n_rep):
    a @ b
cpu_flops = 2 * 512 ** 3 * n_rep / (time.perf_counter() - t0)
TOKENS = 10_000 * 128 * 3  # fine-tuning: 10,000 examples of 128 tokens, 3 epochs
print(ch.tr(f"  本机 CPU：512×512 矩阵乘法 {cpu_flops / 1e9:.0f} GFLOP/s（{torch.get_num_threads()} 个线程）",
            f"  this CPU: {cpu_flops / 1e9:.0f} GFLOP/s on 512×512 products ({torch.get_num_threads()} threads)"))
print(ch.tr("  模型               参数     bf16 权重  AdamW fp32          微调 3.8M 词元：CPU  GPU 100 TF/s",
            f"  {'model':<14}{'params':>9}{'bf16 weights':>14}{'AdamW fp32':>12}{'fine-tune 3.8M tokens: CPU':>29}{'GPU 100 TF/s':>14}"))
for name, (n, exact) in flop_rows.items():
    flops = exact * TOKENS
    print(f"  {name:<14}{n / 1e6:>8.0f}M{2 * n / 2**30:>12.2f}GB{16 * n / 2**30:>10.1f}GB"
          f"{flops / cpu_flops / 3600:>27.1f} h{flops / 100e12:>12.0f} s")
ch.check(ch.tr("用 AdamW 微调 GPT-2 XL，还没算激活值就需要超过 16 GiB：16 GB 的 GPU 放不下",
               "AdamW fine-tuning of GPT-2 XL needs > 16 GiB before activations: it does not fit a 16 GB GPU"),
         16 * PUBLISHED["GPT-2 XL"] / 2**30 > 16)

# %% [markdown] lang="zh"
# 怎么读这张表：在笔记本电脑的 CPU 上，哪怕只是在一个中等规模的数据集上微调 BERT-base，也要好几个小时，这就是各章只训练几十万个参数的模型的原因；一块 GPU 能把几个小时变成几分钟。预训练则是另一个量级：Hoffmann 等（2022）发现，计算最优的做法是每个参数大约用 20 个词元训练，于是需要 6·N·20N FLOPs——对 GPT-2 small 约为 1.9·10¹⁸，在那块 GPU 上要五个小时。

# %% [markdown] lang="en"
# Reading the table: on a laptop CPU, fine-tuning even BERT-base on a modest dataset takes hours,
# which is why the chapters train models of a few hundred thousand parameters; a single GPU turns
# hours into minutes. Pretraining is another scale: Hoffmann et al. (2022) find ≈ 20 tokens per
# parameter compute-optimal, so 6·N·20N FLOPs — for GPT-2 small ≈ 1.9·10¹⁸, five hours on that GPU.

# %%
chinchilla = 6 * PUBLISHED["GPT-2 small"] * 20 * PUBLISHED["GPT-2 small"]
print(ch.tr(f"  GPT-2 small，每个参数 20 个词元：{chinchilla:.2e} FLOPs，在 100 TFLOP/s 下需要 {chinchilla / 100e12 / 3600:.1f} 小时",
            f"  GPT-2 small, 20 tokens per parameter: {chinchilla:.2e} FLOPs = {chinchilla / 100e12 / 3600:.1f} h at 100 TFLOP/s"))

# %% [markdown] lang="zh"
# ## 5. 按任务选择模型
#
# | 任务（文章 §3.4、§6） | 架构 | 每个输出位置能看到什么 | 例子 |
# |---|---|---|---|
# | 理解：分类、NER、抽取式问答 | **编码器** | 所有词元，左右两侧都能看到 | BERT、RoBERTa、ALBERT、ELECTRA |
# | 生成：续写、对话 | **解码器** | 它自己和它前面的词元 | GPT-2、GPT-3、LLaMA |
# | 序列到序列：翻译、摘要 | **编码器-解码器** | 整个源序列，以及到目前为止的目标序列 | Transformer（第 7 章）、T5、BART |
#
# 中间一栏就是理由，而且可以实测：改动一个输入词元，看哪些输出位置随之改变。大的解码器也能做分类（通过提示，prompting），只是开销要大很多倍。

# %% [markdown] lang="en"
# ## 5. Choosing by task
#
# | task (article §3.4, §6) | architecture | what each output position sees | examples |
# |---|---|---|---|
# | understanding: classification, NER, extractive QA | **encoder** | every token, both sides | BERT, RoBERTa, ALBERT, ELECTRA |
# | generation: continuation, dialogue | **decoder** | itself and the tokens before it | GPT-2, GPT-3, LLaMA |
# | sequence to sequence: translation, summarisation | **encoder-decoder** | the whole source, and the target so far | the Transformer (ch07), T5, BART |
#
# The middle column is the reason, and we can measure it: change one input token and see which
# output positions change. A large decoder can also classify (by prompting), at many times the cost.

# %%
def dependence(run, x, vocab):
    """D[i, j] = True when output position i changes after input token j is replaced."""
    with torch.no_grad():
        base = run(x)
        cols = []
        for j in range(x.size(1)):
            x2 = x.clone()
            x2[0, j] = (x2[0, j] + 1) % vocab
            cols.append((run(x2) - base).abs().amax(-1)[0] > 1e-6)
    return torch.stack(cols, dim=1)  # (T_out, T_in)


ch.manual_seed(0)
T, V = 8, 50
tiny_bert = BertModel(BertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=64, max_position_embeddings=16)).eval()
tiny_gpt = GPT(GPTConfig(block_size=16, vocab_size=V, n_layer=2, n_head=4, n_embd=32)).eval()
tiny_s2s = Seq2SeqTransformer(Seq2SeqConfig(V, V, d_model=32, n_heads=4, d_ff=64, max_len=16)).eval()
src, tgt = torch.randint(1, V, (1, T)), torch.randint(1, V, (1, T))
deps = {
    "encoder (BERT)": dependence(lambda x: tiny_bert(x).last_hidden_state, src, V),
    "decoder (GPT)": dependence(lambda x: tiny_gpt(x)[0], src, V),
    "encoder-decoder: source": dependence(lambda x: tiny_s2s(x, tgt)[0], src, V),
    "encoder-decoder: target": dependence(lambda y: tiny_s2s(src, y)[0], tgt, V),
}
lower = torch.ones(T, T, dtype=torch.bool).tril()
ch.check(ch.tr("编码器：每个输出都依赖于每个输入词元", "encoder: every output depends on every input token"),
         bool(deps["encoder (BERT)"].all()))
ch.check(ch.tr("解码器：输出 i 恰好依赖于词元 j ≤ i（因果）", "decoder: output i depends exactly on tokens j ≤ i (causal)"),
         torch.equal(deps["decoder (GPT)"], lower))
ch.check(ch.tr("编码器-解码器：每个目标位置都能看到整个源序列", "encoder-decoder: every target position sees the whole source"),
         bool(deps["encoder-decoder: source"].all()))
ch.check(ch.tr("编码器-解码器：目标位置 i 能看到目标词元 j ≤ i", "encoder-decoder: target position i sees target tokens j ≤ i"),
         torch.equal(deps["encoder-decoder: target"], lower))
fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
titles = [ch.tr("编码器（BERT）", "encoder (BERT)"), ch.tr("解码器（GPT）", "decoder (GPT)"),
          ch.tr("编码器-解码器：源序列", "encoder-decoder: source"), ch.tr("编码器-解码器：目标序列", "encoder-decoder: target")]
xlabels = [ch.tr("被改动的输入词元", "input token changed"), ch.tr("被改动的输入词元", "input token changed"),
           ch.tr("被改动的源词元", "source token changed"), ch.tr("被改动的目标词元", "target token changed")]
for ax, d, title, xlabel in zip(axes, deps.values(), titles, xlabels):
    ax.imshow(d.float().numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set(title=title, xlabel=xlabel, ylabel=ch.tr("输出位置", "output position"))
ch.savefig(fig, "what_each_position_sees")

# %% [markdown] lang="zh"
# ## 6. 把 Hugging Face 的检查点载入我们的代码
#
# 一个预训练模型就是一个文件夹：`config.json`（各种尺寸）和 `model.safetensors`（权重），外加分词器的文件。`minibert` 的 `BertForPreTraining.from_pretrained(folder)` 和 `minigpt` 的 `GPT.from_pretrained(folder)` 能读取 Hugging Face 的文件夹：它们会映射参数名（`encoder.layer.0.attention.self.query` → `bert.encoder.layers.0.self_attn.q_proj`；GPT-2 的 `Conv1D` 权重要转置，打包在一起的 `c_attn` 要拆成 Q、K、V），遇到其他架构的文件夹则拒绝加载。如果磁盘上有一个真实的检查点（在别处下载过一次）：
#
#     model = BertForPreTraining.from_pretrained("path/to/bert-base-uncased")
#     tokenizer = WordPieceTokenizer.from_file("path/to/bert-base-uncased/vocab.txt")
#
# 第一行读取配置并把权重映射到我们的模型上，第二行从词表文件构建分词器。这里什么也不下载：我们用 `transformers` 构建很小的*随机*模型，保存下来，再用我们的代码加载，并比较输出。各章的其他部分都不需要 `transformers`（`requirements.txt` 不安装它）；测试套件也做同样的比较（`tests/test_bert_hf.py`、`tests/test_gpt_hf.py`）。

# %% [markdown] lang="en"
# ## 6. Loading Hugging Face checkpoints into our code
#
# A pretrained model is a folder: `config.json` (the sizes) and `model.safetensors` (the weights),
# plus the tokenizer files. `minibert`'s `BertForPreTraining.from_pretrained(folder)` and `minigpt`'s
# `GPT.from_pretrained(folder)` read Hugging Face's folders: they map the names
# (`encoder.layer.0.attention.self.query` → `bert.encoder.layers.0.self_attn.q_proj`; GPT-2's
# `Conv1D` weights are transposed and its packed `c_attn` is split into Q, K, V) and refuse a
# folder of another architecture. With a real checkpoint on disk (downloaded once, elsewhere):
#
#     model = BertForPreTraining.from_pretrained("path/to/bert-base-uncased")
#     tokenizer = WordPieceTokenizer.from_file("path/to/bert-base-uncased/vocab.txt")
#
# The first line reads the configuration and maps the weights onto our model; the second builds the
# tokenizer from the vocabulary file. Here nothing is downloaded: we build tiny *random* models with
# `transformers`, save them, load them with our code and compare the outputs. `transformers` is not
# needed by anything else in the chapters (`requirements.txt` does not install it); the test suite
# runs the same comparison (`tests/test_bert_hf.py`, `tests/test_gpt_hf.py`).

# %%
HAVE_TRANSFORMERS = importlib.util.find_spec("transformers") is not None
if not HAVE_TRANSFORMERS:
    print(ch.tr("  ⚠ 这一部分需要 Hugging Face 的库：pip install transformers——已跳过；本章的其余部分已经运行",
                "  ⚠ this part needs the Hugging Face library: pip install transformers — skipped; the rest of the chapter ran"))
elif ch.fast:
    print(ch.tr("  （--fast 模式下跳过：光是导入 transformers 就要好几秒；不加 --fast 运行本章即可）",
                "  (skipped with --fast: importing transformers alone takes seconds; run the chapter without --fast)"))
else:
    import transformers
    from transformers import BertConfig as HFBertConfig, BertForPreTraining as HFBertForPreTraining, GPT2Config, GPT2LMHeadModel

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    folder = ch.out / "hf_checkpoints"  # written fresh on every run
    shutil.rmtree(folder, ignore_errors=True)

    def jitter(model):
        """Move every weight off its initial value (biases 0, LayerNorm 1/0) so that all are tested."""
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        return model.eval()

    ch.manual_seed(0)
    hf_cfg = HFBertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                          max_position_embeddings=64, type_vocab_size=2)
    hf_bert = jitter(HFBertForPreTraining(hf_cfg))
    hf_bert.save_pretrained(folder / "bert")
    ours = BertForPreTraining.from_pretrained(folder / "bert").eval()
    print(ch.tr("  文件：", "  files:"), sorted(p.name for p in (folder / "bert").iterdir()))
    ids = torch.randint(0, 99, (2, 11))
    segments = torch.tensor([[0] * 6 + [1] * 5, [0] * 4 + [1] * 7])
    mask = torch.tensor([[1] * 11, [1] * 8 + [0] * 3])  # the second row ends in padding
    with torch.no_grad():
        ref = hf_bert(input_ids=ids, token_type_ids=segments, attention_mask=mask, output_hidden_states=True)
        got = ours(ids, segments, mask, output_hidden_states=True)
    real = mask.bool()
    for i, (a, b) in enumerate(zip(got.hidden_states, ref.hidden_states)):
        ch.check_close(ch.tr(f"BERT 的隐状态 {i}（真实词元）== transformers", f"BERT hidden states {i} (real tokens) == transformers"),
                       a[real], b[real], atol=1e-5)
    ch.check_close(ch.tr("BERT 的 MLM logits == transformers", "BERT MLM logits == transformers"), got.mlm_logits[real],
                   ref.prediction_logits[real], atol=1e-5)
    ch.check_close(ch.tr("BERT 的 NSP logits == transformers", "BERT NSP logits == transformers"), got.nsp_logits,
                   ref.seq_relationship_logits, atol=1e-5)

    hf_gpt = jitter(GPT2LMHeadModel(GPT2Config(vocab_size=99, n_positions=64, n_embd=32, n_layer=2, n_head=4)))
    hf_gpt.save_pretrained(folder / "gpt2")
    ours_gpt = GPT.from_pretrained(folder / "gpt2").eval()
    x = torch.randint(0, 99, (2, 12))
    with torch.no_grad():
        ch.check_close(ch.tr("GPT-2 logits：我们的 GPT.from_pretrained == transformers", "GPT-2 logits: our GPT.from_pretrained == transformers"),
                       ours_gpt(x)[0], hf_gpt(x).logits, atol=1e-5)
        mine = GPT(GPTConfig(block_size=64, vocab_size=99, n_layer=2, n_head=4, n_embd=32)).eval()
        mine.save_pretrained(folder / "ours_as_gpt2")
        back = GPT2LMHeadModel.from_pretrained(folder / "ours_as_gpt2").eval()
        ch.check_close(ch.tr("反过来：用我们的 save_pretrained 保存，由 transformers 加载",
                             "and the other way: our save_pretrained, loaded by transformers"), back(x).logits, mine(x)[0], atol=1e-5)
    with torch.device("meta"):
        hf_counts = {"BERT-base": transformers.BertModel(HFBertConfig()).num_parameters(),
                     "GPT-2 small": GPT2LMHeadModel(GPT2Config()).num_parameters()}
    for name, n in hf_counts.items():
        ch.check(ch.tr(f"{name}：我们的公式 == transformers 的 num_parameters()（{n:,}）",
                       f"{name}: our formula == transformers' num_parameters() ({n:,})"), sum(formulas[name].values()) == n)

# %% [markdown] lang="zh"
# ## 7. 更正文章 §7.3 的参考文献列表
#
# §7.3 中有两个条目并不是它们被列为的那种文献：
#
# * “BERT, RoBERTa, XLNet and ALBERT: State-of-the-Art NLP Models Explained”是一篇博客文章，不是论文。对应的论文是：Devlin 等 2019，*BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding*（用于语言理解的深度双向 Transformer 预训练）；Liu 等 2019，*RoBERTa: A Robustly Optimized BERT Pretraining Approach*（一种稳健优化的 BERT 预训练方法）；Yang 等 2019，*XLNet: Generalized Autoregressive Pretraining for Language Understanding*（用于语言理解的广义自回归预训练）；Lan 等 2020，*ALBERT: A Lite BERT for Self-supervised Learning of Language Representations*（用于语言表示自监督学习的轻量 BERT）。
# * “Generating Sentences from a Continuous Space”（Bowman 等 2016）讲的是基于 LSTM 的变分自编码器，与 GPT 无关。GPT 的论文是：Radford 等 2018，*Improving Language Understanding by Generative Pre-Training*（通过生成式预训练提升语言理解，即 GPT）；Radford 等 2019，*Language Models are Unsupervised Multitask Learners*（语言模型是无监督的多任务学习者，即 GPT-2，文章列得没错）；Brown 等 2020，*Language Models are Few-Shot Learners*（语言模型是少样本学习者，即 GPT-3）。
#
# 本章的数字出自：Kaplan 等 2020，*Scaling Laws for Neural Language Models*（神经语言模型的缩放定律；C ≈ 6ND）；Hoffmann 等 2022，*Training Compute-Optimal Large Language Models*（训练计算最优的大语言模型；每个参数约 20 个词元）。
#
# ## 本章小结
#
# * BERT 和 GPT-2 的参数量公式，与 meta 设备上的模型、PyTorch 自带的模块以及公布的参数量都一致，从 BERT-base（109,482,240）到 GPT-2 XL（1,557,611,200）；
# * 参数都在哪里（前馈网络约占每层的 2/3；词元表的占比随模型变大而缩小）；
# * 每个词元的 FLOPs：前向 2N，训练约 6N 再加一个注意力项，与 PyTorch 的 FLOP 计数器一致；不同规模的模型所需的内存（AdamW 每个参数 16 字节）和时间；
# * 编码器 / 解码器 / 编码器-解码器：实测每个输出位置能看到什么；
# * 把 Hugging Face 的检查点载入我们的代码，输出一致（在安装了 `transformers` 时）。

# %% [markdown] lang="en"
# ## 7. The reading list of article §7.3, corrected
#
# Two entries of §7.3 are not what they are listed as:
#
# * "BERT, RoBERTa, XLNet and ALBERT: State-of-the-Art NLP Models Explained" is a blog post, not a
#   paper. The papers: Devlin et al. 2019, *BERT: Pre-training of Deep Bidirectional Transformers
#   for Language Understanding*; Liu et al. 2019, *RoBERTa: A Robustly Optimized BERT Pretraining
#   Approach*; Yang et al. 2019, *XLNet: Generalized Autoregressive Pretraining for Language
#   Understanding*; Lan et al. 2020, *ALBERT: A Lite BERT for Self-supervised Learning of Language
#   Representations*.
# * "Generating Sentences from a Continuous Space" (Bowman et al. 2016) is about a variational
#   autoencoder with an LSTM, not GPT. The GPT papers: Radford et al. 2018, *Improving Language
#   Understanding by Generative Pre-Training* (GPT); Radford et al. 2019, *Language Models are
#   Unsupervised Multitask Learners* (GPT-2, listed correctly); Brown et al. 2020, *Language Models
#   are Few-Shot Learners* (GPT-3).
#
# For this chapter's numbers: Kaplan et al. 2020, *Scaling Laws for Neural Language Models* (C ≈ 6ND);
# Hoffmann et al. 2022, *Training Compute-Optimal Large Language Models* (≈ 20 tokens per parameter).
#
# ## What we built
#
# * parameter formulas for BERT and GPT-2, equal to meta-device models, to PyTorch's own modules
#   and to the published counts, from BERT-base (109,482,240) to GPT-2 XL (1,557,611,200);
# * where the parameters are (feed-forward ≈ 2/3 of a layer; the token table shrinks in share);
# * FLOPs per token, forward 2N and training ≈ 6N plus an attention term, equal to PyTorch's FLOP
#   counter; memory (16 bytes per parameter for AdamW) and time per model size;
# * encoder / decoder / encoder-decoder by what each output position can see, measured;
# * Hugging Face checkpoints loaded into our code with equal outputs (when `transformers` is installed).

# %%
ch.done()
