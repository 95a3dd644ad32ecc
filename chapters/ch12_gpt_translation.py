# %% [markdown] lang="zh"
# # 第 12 章 生成任务的微调：一个把英文译成中文的 GPT（文章 §3.2.4 微调，§6.3 机器翻译）
#
# 文章 §3.2.4 列出了两种微调（fine-tuning）方式：一种是在模型上面加一个分类器（分类任务）；另一种用于生成任务，即“使用标注数据进行序列到序列的微调”。§6.3 则以机器翻译为例。第 7 章用编码器-解码器 Transformer 完成了翻译；这里我们改用**仅解码器**（decoder-only）的 GPT 来做。它既没有编码器，也没有交叉注意力（cross-attention），于是一个翻译对被拼成一个序列：
#
#     Anna went to Tokyo by train. <sep> 安娜坐火车去了东京。<|endoftext|>
#     └───────── 提示（源句子）─────────┘ └──── 目标，计入损失 ────┘
#
# 模型的训练方式与第 9 章完全相同，都是预测下一个词元（token），唯一的区别是**只对目标部分的词元计算损失**。测试时，模型读入 `english <sep>` 作为提示（prompt），然后一直生成（generation），直到输出 `<|endoftext|>`。本章将：
#
# 1. 构造训练样本及其标签，用 −100 屏蔽提示部分，并说明为什么这样做；
# 2. 用右侧填充把样本组成批次（不需要注意力掩码，因果掩码已经把填充挡住了）；
# 3. 先在随书附带的*无标注*双语文本上预训练（pretraining）一个 GPT，再对它微调；同时把一个结构完全相同的 GPT 从头开始微调同样的步数（文章 §3.1：先预训练，再微调）；
# 4. 借助 KV 缓存用贪心解码（greedy decoding）翻译测试集，并以汉字为单位计算 BLEU；
# 5. 用文字把它与第 7 章的编码器-解码器做比较。

# %% [markdown] lang="en"
# # Chapter 12 · Fine-tuning for generation: a GPT that translates English into Chinese (Article §3.2.4, §6.3)
#
# The article's §3.2.4 lists two ways to fine-tune: a classifier on top (classification tasks), and
# for generation tasks "sequence-to-sequence fine-tuning with labelled data"; §6.3 names machine
# translation as the example. Chapter 7 does this with the encoder-decoder Transformer. Here we do
# it with a **decoder-only GPT**, which has no encoder and no cross-attention: the pair becomes one
# sequence,
#
#     Anna went to Tokyo by train. <sep> 安娜坐火车去了东京。<|endoftext|>
#     └──────── prompt (source) ─────────┘ └──── target, scored ────┘
#
# and the model is trained exactly as in ch09 — next-token prediction — except that **only the
# target tokens are scored**. At test time it reads `english <sep>` and continues until
# `<|endoftext|>`. We will:
#
# 1. build the examples and their labels, with the prompt masked by −100, and see why;
# 2. batch them with right-padding (no attention mask needed — the causal mask hides it);
# 3. pretrain a GPT on the bundled *unlabelled* bilingual text, then fine-tune it, and fine-tune an
#    identical GPT from scratch for the same number of steps (article §3.1: pretraining, then
#    fine-tuning);
# 4. translate the test set greedily with the KV cache and score it with BLEU on Chinese characters;
# 5. compare, in prose, with the encoder-decoder of chapter 7.

# %%
import copy
import math
import time
from collections import Counter, defaultdict

import torch
import torch.nn.functional as F

from chapters.book import Chapter, plt
from minigpt.config import GPTConfig
from minigpt.model import GPT, IGNORE_INDEX, next_token_targets
from minigpt.train import causal_lm_loss, encode_documents, split_text
from minitransformer.batches import by_split, epoch_batches, random_window_batches
from minitransformer.data import SentencePieceTokenizer, load_text, load_world_translation, world_path
from minitransformer.metrics import bleu_tokenize, corpus_bleu
from minitransformer.trainer import Trainer, TrainConfig

ch = Chapter("ch12_gpt_translation")

# %% [markdown] lang="zh"
# ## 1. 每个翻译对拼成一个序列
#
# 分词器是有 1000 个子词的 sentencepiece BPE，在*无标注*的双语文本 `data/world_{en,zh}.txt` 上学得（下面预训练用的也是这些文本），并带有三个特殊词元：`[UNK]`、分隔源句子和目标句子的 `<sep>`，以及标志目标结束的 `<|endoftext|>`。翻译对保存在 `data/translation.{train,val,test}.tsv` 中，分别为 3,200 / 400 / 400 对；验证集和测试集的句子都不出现在无标注文本里。

# %% [markdown] lang="en"
# ## 1. One sequence per pair
#
# The tokenizer is sentencepiece BPE with 1000 pieces, learned on the *unlabelled* bilingual text
# `data/world_{en,zh}.txt` (the same text we pretrain on below), with three special tokens:
# `[UNK]`, `<sep>` between source and target, `<|endoftext|>` to end the target. The translation
# pairs are `data/translation.{train,val,test}.tsv`: 3,200 / 400 / 400 pairs, none of the
# validation or test sentences occurring in the unlabelled text.

# %%
SPECIALS = {"unk": "[UNK]", "sep": "<sep>", "eot": "<|endoftext|>"}
texts = [split_text(load_text(world_path(f"world_{lang}.txt"))) for lang in ("en", "zh")]  # (train, val) per file
tok = SentencePieceTokenizer.train([train for train, _ in texts], 1000, "bpe", specials=SPECIALS)
if ch.fast:  # pretrain on a small slice: --fast only tests the code
    texts = [(train[:40_000], val[:10_000]) for train, val in texts]
SEP, EOT = tok.sep_id, tok.eot_id
pairs = {split: load_world_translation(split) for split in ("train", "val", "test")}
if ch.fast:
    pairs = {"train": pairs["train"][:200], "val": pairs["val"][:64], "test": pairs["test"][:24]}
print(ch.tr(f"  |V| = {tok.vocab_size}，<sep> = {SEP}，<|endoftext|> = {EOT}；翻译对：",
            f"  |V| = {tok.vocab_size}, <sep> = {SEP}, <|endoftext|> = {EOT}; pairs: ")
      + ", ".join(f"{k} {len(v)}" for k, v in pairs.items()))
en, zh = pairs["train"][0]
print(f"  {en!r} → {tok.tokenize(en)}")
print(f"  {zh!r} → {tok.tokenize(zh)}")
# (Chinese character runs take many of the 1000 merges, so rarer English words stay in pieces.)
ch.check(ch.tr("分词器能把每个测试句子原样还原（没有 [UNK]）", "the tokenizer round-trips every test sentence (no [UNK])"),
         all(tok.decode(tok.encode(s)) == s and tok.unk_id not in tok.encode(s) for pair in pairs["test"] for s in pair))

# %% [markdown] lang="zh"
# 序列为 s = 源句子 + `<sep>` + 目标句子 + `<|endoftext|>`。与第 9 章一样，输入是 s[:−1]，位置 t 被训练去预测 s[t+1]；但只有当 s[t+1] 属于目标部分时才保留这个标签，其余位置的标签都是 −100，即 `F.cross_entropy` 会忽略的值。请注意第一个保留的标签*在哪里*：在 `<sep>` 的位置上，它预测第一个中文词元。最后一个标签是 `<|endoftext|>`：没有它，模型永远学不会停下来。
#
# ### 练习 12.1：一个翻译对的输入与标签
#
# **`prompt_target_example_ex`** · ★ · 1 分 · 约 15 分钟
#
# **题目：** 为仅解码器的翻译构造一个训练样本：s = src + [sep] + tgt + [eot]；返回 (input_ids, labels)，其中 input_ids = s[:-1]；若 s[t+1] 属于 tgt + [eot] 则 labels[t] = s[t+1]，提示部分为 −100。
#
# **提示：** 第一个保留的标签在 <sep> 的位置（它预测第一个目标词元）；最后一个标签是 <|endoftext|>。
#
# **不可调用：** `model.next_token_targets`（`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch12`
#
# 编写 `prompt_target_example_ex(src_ids, tgt_ids, sep_id, eot_id)`，返回 `(input_ids, labels)`：两个列表，长度都是 len(src) + len(tgt) + 1。

# %% [markdown] lang="en"
# The sequence is s = source + `<sep>` + target + `<|endoftext|>`. As in ch09 the inputs are
# s[:−1] and position t is trained to predict s[t+1] — but a label is kept only where s[t+1]
# belongs to the target part; everywhere else it is −100, the value `F.cross_entropy` ignores.
# Note *where* the first kept label sits: at the `<sep>` position, which predicts the first
# Chinese token. And the last one is `<|endoftext|>`: without it the model never learns to stop.
#
# ### Exercise 12.1 — inputs and labels for one pair
#
# **`prompt_target_example_ex`** · ★ · 1 point · ~15 min
#
# **Task:** Build one training example of decoder-only translation: s = src + [sep] + tgt +
# [eot]; return (input_ids, labels) with input_ids = s[:-1] and labels[t] = s[t+1] where s[t+1]
# belongs to tgt + [eot], −100 over the prompt.
#
# **Hint:** The first kept label sits at the <sep> position (it predicts the first target token);
# the last one is <|endoftext|>.
#
# **Not allowed:** `model.next_token_targets` (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch12`
#
# Write `prompt_target_example_ex(src_ids, tgt_ids, sep_id, eot_id)` returning
# `(input_ids, labels)`, two lists of length len(src) + len(tgt) + 1.

# %%
def prompt_target_example_ex(src_ids, tgt_ids, sep_id, eot_id):
    """s = src + [sep] + tgt + [eot]; input_ids = s[:-1]; labels[t] = s[t+1] if s[t+1] is in tgt + [eot], else -100."""
    ### BEGIN SOLUTION
    seq = list(src_ids) + [sep_id] + list(tgt_ids) + [eot_id]
    labels = [IGNORE_INDEX] * len(src_ids) + list(tgt_ids) + [eot_id]
    return seq[:-1], labels
    ### END SOLUTION


def check_prompt_target_example_ex(impl):
    """A pair worked out by hand, then random lengths: inputs = s[:-1], labels = -100 over the
    prompt and the shifted target (ending with eot) after it."""
    def as_list(x):
        return [int(v) for v in (x.tolist() if isinstance(x, torch.Tensor) else x)]

    got = impl([10, 11, 12], [20, 21], 1, 2)
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise AssertionError(ch.tr(f"期望一个二元组 (input_ids, labels)，实际得到 {type(got).__name__}",
                                   f"expected a pair (input_ids, labels), received {type(got).__name__}"))
    inputs, labels = as_list(got[0]), as_list(got[1])
    if inputs != [10, 11, 12, 1, 20, 21]:
        raise AssertionError(ch.tr(f"src [10, 11, 12]，tgt [20, 21]，sep 1，eot 2：input_ids 为 {inputs}，期望 "
                                   "[10, 11, 12, 1, 20, 21]——即序列 src + [sep] + tgt + [eot] 去掉最后一个词元",
                                   f"src [10, 11, 12], tgt [20, 21], sep 1, eot 2: input_ids {inputs}, expected "
                                   "[10, 11, 12, 1, 20, 21] — the sequence src + [sep] + tgt + [eot] without its last token"))
    want = [-100, -100, -100, 20, 21, 2]
    if labels != want:
        hint = (ch.tr("<sep> 所在的位置必须预测目标序列的第一个词元", "the <sep> position must predict the first target token")
                if labels[3:4] != [20] else
                ch.tr("最后一个标签是 <|endoftext|>（模型必须学会停下来）", "the last label is <|endoftext|> (the model must learn to stop)")
                if labels[-1:] != [2] else
                ch.tr("标签是*下一个*词元：错开一位，凡是下一个词元属于提示的位置都填 -100",
                      "labels are the *next* tokens: shifted by one, -100 wherever the next token is in the prompt"))
        raise AssertionError(ch.tr(f"src [10, 11, 12]，tgt [20, 21]，sep 1，eot 2：labels 为 {labels}，期望 {want}——{hint}",
                                   f"src [10, 11, 12], tgt [20, 21], sep 1, eot 2: labels {labels}, expected {want} — {hint}"))
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        n_src, n_tgt = (int(n) for n in torch.randint(1, 9, (2,), generator=g))
        src = torch.randint(3, 50, (n_src,), generator=g).tolist()
        tgt = torch.randint(3, 50, (n_tgt,), generator=g).tolist()
        inputs, labels = (as_list(x) for x in impl(src, tgt, 1, 2))
        seq = src + [1] + tgt + [2]
        if inputs != seq[:-1] or len(labels) != len(seq) - 1:
            raise AssertionError(ch.tr(f"src 有 {n_src} 个词元，tgt 有 {n_tgt} 个：期望输入和标签各 {len(seq) - 1} 个，"
                                       f"实际得到 {len(inputs)} 个和 {len(labels)} 个",
                                       f"src of {n_src}, tgt of {n_tgt} tokens: expected {len(seq) - 1} inputs and labels, "
                                       f"received {len(inputs)} and {len(labels)}"))
        if labels[:n_src] != [-100] * n_src or labels[n_src:] != tgt + [2]:
            raise AssertionError(ch.tr(f"src 有 {n_src} 个词元，tgt 有 {n_tgt} 个：labels 为 {labels}——前 "
                                       f"{n_src} 个位置填 -100，之后是目标词元和 <|endoftext|>",
                                       f"src of {n_src}, tgt of {n_tgt} tokens: labels {labels} — -100 for the first "
                                       f"{n_src} positions, then the target tokens and <|endoftext|>"))
    return ch.tr("1 个手工推算的句对和 20 个随机句对：提示部分用 -100 掩码，第一个标签在 <sep> 处，最后一个 = eot",
                 "a pair worked out by hand and 20 random ones: prompt masked with -100, first label at <sep>, last = eot")


ch.verify(check_prompt_target_example_ex, prompt_target_example_ex)


def encode_pair(en, zh):
    return prompt_target_example_ex(tok.encode(en), tok.encode(zh), SEP, EOT)


examples = {split: [encode_pair(e, z) for e, z in ps] for split, ps in pairs.items()}
inputs0, labels0 = examples["train"][0]
print(ch.tr("  词元         标签", "  token      label"))
ignored = ch.tr("−100（忽略）", "−100 (ignored)")
for t, (i, y) in enumerate(zip(inputs0, labels0)):
    print(f"  {tok.id_to_token(i)!s:<12} {ignored if y == IGNORE_INDEX else tok.id_to_token(y)}")
lengths = [len(x) for split in examples.values() for x, _ in split]
n_prompt = sum(y == IGNORE_INDEX for _, ys in examples["train"] for y in ys)
n_all = sum(len(ys) for _, ys in examples["train"])
mean_length = sum(lengths) / len(lengths)
print(ch.tr(f"  序列长度：平均 {mean_length:.1f}，最长 {max(lengths)} 个词元；训练位置中有 {n_prompt / n_all:.0%} 属于提示（被屏蔽）",
            f"  sequence length: mean {mean_length:.1f}, max {max(lengths)} tokens; "
            f"{n_prompt / n_all:.0%} of the training positions are prompt (masked)"))

# %% [markdown] lang="zh"
# **为什么不对提示部分计算损失？**
#
# * 测试时，英文句子是*给定*的。预测它并不是我们的任务；在它上面计算损失，会把模型的容量（以及梯度）花在对英文建模上。
# * 它会主导我们观察的那个数字：超过一半的位置属于提示，而下一个英文词（“哪个城市？”“哪位朋友？”）确实是不确定的；中文则几乎完全由英文决定。下面第 6 节会分别度量这两部分。
# * 屏蔽不花任何代价：标签为 −100 的位置对损失和梯度的贡献恰好为零。
#
# 下面在随机的 logits 上验证最后一点：带 −100 标签的损失等于只在目标位置上计算的平均交叉熵，而改变提示位置上的 logits 不会带来任何变化。

# %% [markdown] lang="en"
# **Why mask the prompt?**
#
# * At test time the English sentence is *given*. Predicting it is not the task; a loss on it
#   spends the model's capacity (and the gradient) on modelling English.
# * It would dominate the number we watch: well over half of the positions are prompt, and the next
#   English word ("which city?", "which friend?") is genuinely uncertain, while the Chinese is
#   nearly determined by the English. §6 below measures both parts.
# * The mask is free: −100 labels contribute exactly nothing to the loss or the gradient.
#
# The last point, checked on random logits: the loss with −100 labels equals the mean
# cross-entropy over the target positions alone, and changing the logits at prompt positions
# changes nothing.

# %%
V = tok.vocab_size
x_ids, y_ids = torch.tensor(inputs0), torch.tensor(labels0)
logits = torch.randn(len(x_ids), V, dtype=torch.float64, requires_grad=True)
masked = F.cross_entropy(logits, y_ids, ignore_index=IGNORE_INDEX)
keep = y_ids != IGNORE_INDEX
target_only = -torch.log_softmax(logits, -1)[keep, y_ids[keep]].mean()
ch.check_close(ch.tr("带 −100 标签的损失 == 只在目标位置上计算的平均交叉熵",
                     "loss with −100 labels == mean cross-entropy over the target positions only"), masked, target_only, atol=1e-12)
(grad,) = torch.autograd.grad(masked, logits)
ch.check(ch.tr("提示位置得到的梯度恰好为零", "prompt positions receive exactly zero gradient"),
         bool((grad[~keep] == 0).all()) and bool((grad[keep] != 0).any()),
         ch.tr(f"{int((~keep).sum())} 个位置被屏蔽，{int(keep.sum())} 个位置计分",
               f"{int((~keep).sum())} masked positions, {int(keep.sum())} scored"))

# %% [markdown] lang="zh"
# ## 2. 批次：右侧填充，无须注意力掩码
#
# 句子长短不一，所以一个批次要用 `<|endoftext|>` 把每个句子填充（padding）到批次中最长句子的长度，填充位置的标签为 −100。我们在**右侧**填充：填充词元都位于所有真实词元之后，而在因果掩码（causal mask）下，真实词元从不往右看——所以不需要注意力掩码，填充位置也不计入损失。

# %% [markdown] lang="en"
# ## 2. Batches: right-padding without an attention mask
#
# Sentences differ in length, so a batch pads them to its longest with `<|endoftext|>` and
# labels −100. We pad on the **right**: a padding token sits after every real token, and under the
# causal mask a real token never looks to its right — so no attention mask is needed, and the
# padded positions are simply not scored.

# %%
def collate(rows):
    """Right-pad (input_ids, labels) pairs to the longest: {"input_ids": (B, T), "labels": (B, T)}."""
    t = max(len(x) for x, _ in rows)
    input_ids = torch.full((len(rows), t), EOT)  # (B, T)
    labels = torch.full((len(rows), t), IGNORE_INDEX)  # (B, T)
    for r, (x, y) in enumerate(rows):
        input_ids[r, : len(x)] = torch.tensor(x)
        labels[r, : len(y)] = torch.tensor(y)
    return {"input_ids": input_ids, "labels": labels}


def pair_batches(split, batch_size, seed):
    """get_batch over one split's examples, epoch by epoch (minitransformer.batches.epoch_batches)."""
    return epoch_batches(len(examples[split]), batch_size, seed, lambda idx: collate([examples[split][i] for i in idx]))


BLOCK = 48
config = GPTConfig(block_size=BLOCK, vocab_size=V, n_layer=2, n_head=4, n_embd=96)
ch.check(ch.tr(f"每个序列都放得进 block_size = {BLOCK}", f"every sequence fits in block_size = {BLOCK}"), max(lengths) <= BLOCK,
         ch.tr(f"最长的有 {max(lengths)} 个词元", f"longest {max(lengths)} tokens"))
probe = GPT(config).eval()
short, long = examples["train"][1], max(examples["train"][:50], key=lambda e: len(e[0]))
batch = collate([short, long])
with torch.no_grad():
    alone = probe(torch.tensor([short[0]]))[0][0]  # (T_short, V)
    padded = probe(batch["input_ids"])[0][0, : len(short[0])]  # the same row, padded on the right
ch.check_close(ch.tr("右侧填充的一行，在真实位置上的 logits 与单独计算时相同",
                     "a right-padded row gives the same logits at its real positions as alone"), padded, alone, atol=1e-5)

# %% [markdown] lang="zh"
# ## 3. 在无标注的双语文本上预训练
#
# 完全沿用第 9 章的做法，用的也是同样的文件：从 `world_en.txt` 和 `world_zh.txt` 中随机截取长 48 个词元的窗口，用共享的 `Trainer` 训练。这些文本是单语的——英文故事在一个文件里，它们的中文版本在另一个文件里，两种语言从不并排出现在同一个窗口中——因此预训练阶段完全看不到翻译。它能学到的是每种语言本身：拼写、词序，以及哪些词会出现在同类的句子里。

# %% [markdown] lang="en"
# ## 3. Pretraining on unlabelled bilingual text
#
# Exactly ch09's recipe, on the same files: random 48-token windows of `world_en.txt` and
# `world_zh.txt` with the shared `Trainer`. The text is monolingual — English stories in one file,
# their Chinese versions in the other, never side by side in a window — so pretraining sees no
# translation at all. What it can learn is each language: spelling, word order, which words
# appear in the same kinds of sentence.

# %%
TRAIN = dict(lr=5e-3, min_lr=5e-4, checkpoint_interval=-1, progress=False, overwrite=True, seed=ch.seed_for(0))
lm_ids = {split: encode_documents(tok, [parts[k] for parts in texts]) for k, split in enumerate(("train", "val"))}
ch.manual_seed(0)
pretrained = GPT(config)
t0 = time.perf_counter()
pre = Trainer(pretrained, TrainConfig(
    out_dir=str(ch.out / "pretrain"), max_steps=ch.steps(100, 3), batch_size=16, warmup_steps=ch.steps(20, 1),
    eval_interval=ch.steps(100, 3), eval_steps=ch.steps(6, 1), perplexity=True, **TRAIN),
    by_split(**{s: random_window_batches(ids, BLOCK, 16, seed=ch.seed_for(0)) for s, ids in lm_ids.items()}), loss_fn=causal_lm_loss)
pre_rows = [r for r in pre.fit() if r["split"] == "val"]
seconds = time.perf_counter() - t0
print(ch.tr(f"  预训练：验证集上每个词元的困惑度 {pre_rows[0]['perplexity']:.0f} → {pre_rows[-1]['perplexity']:.2f}"
            f"（均匀分布为 {V}），用时 {seconds:.1f} 秒",
            f"  pretraining: val perplexity {pre_rows[0]['perplexity']:.0f} → {pre_rows[-1]['perplexity']:.2f} per token "
            f"(uniform: {V}) in {seconds:.1f} s"))
language_model = copy.deepcopy(pretrained).eval()  # kept as it is now, for §6
ch.check_value(ch.tr("预训练使验证集困惑度低于 |V|（也低于第 0 步的值）：困惑度 / min(|V|, 第 0 步)",
                     "pretraining lowers the validation perplexity below |V| (and below step 0's): perplexity / min(|V|, step 0)"),
               pre_rows[-1]["perplexity"] / min(V, pre_rows[0]["perplexity"]), high=1.0,
               detail=ch.tr(f"{pre_rows[-1]['perplexity']:.2f}，|V| = {V}，第 0 步为 {pre_rows[0]['perplexity']:.0f}",
                            f"{pre_rows[-1]['perplexity']:.2f} vs |V| = {V}, {pre_rows[0]['perplexity']:.0f} at step 0"))

# %% [markdown] lang="zh"
# ## 4. 微调：从预训练的 GPT 出发，以及从头开始
#
# 两个结构完全相同的模型，用相同的批次、相同的学习率调度和相同的步数训练；一个从预训练的权重出发，另一个从随机权重出发（随机种子与预训练模型初始化时相同）。验证损失是屏蔽后的损失：只计目标词元。

# %% [markdown] lang="en"
# ## 4. Fine-tuning: from the pretrained GPT, and from scratch
#
# Two identical architectures, the same batches, the same schedule and number of steps; one
# starts from the pretrained weights, the other from random ones (the same seed as the pretrained
# model's initialisation). The validation loss is the masked one: target tokens only.

# %%
FT_STEPS = ch.steps(120, 6)
ZH_NAMES = {"scratch": "从头训练", "pretrained": "先预训练", "constant baseline": "常数基线"}  # the models in the Chinese output


def fine_tune(model, name):
    trainer = Trainer(model, TrainConfig(
        out_dir=str(ch.out / name), max_steps=FT_STEPS, batch_size=32, warmup_steps=ch.steps(15, 1),
        eval_interval=ch.steps(20, 6), eval_steps=ch.steps(4, 1), **TRAIN),
        by_split(train=pair_batches("train", 32, seed=ch.seed_for(0)), val=pair_batches("val", 32, seed=ch.seed_for(0))), loss_fn=causal_lm_loss)
    t0 = time.perf_counter()
    rows = [r for r in trainer.fit() if r["split"] == "val"]
    seconds = time.perf_counter() - t0
    print(ch.tr(f"  {ZH_NAMES[name]}：验证集损失（目标词元）{rows[0]['loss']:.3f} → {rows[-1]['loss']:.3f}，用时 {seconds:.1f} 秒",
                f"  {name:>10}: val loss (target tokens) {rows[0]['loss']:.3f} → {rows[-1]['loss']:.3f} in {seconds:.1f} s"))
    return rows


ch.manual_seed(0)
scratch = GPT(config)
curves = {"scratch": fine_tune(scratch, "scratch"), "pretrained": fine_tune(pretrained, "pretrained")}
for name, rows in curves.items():
    ch.check_value(ch.tr(f"{ZH_NAMES[name]}：微调降低了目标损失（降低量，单位 nat）", f"{name}: fine-tuning lowers the target loss (by, nats)"),
                   rows[0]["loss"] - rows[-1]["loss"],
                   low=ch.steps(1.0, 0.1), detail=f"{rows[0]['loss']:.2f} → {rows[-1]['loss']:.2f}")

# %% [markdown] lang="zh"
# ## 5. 翻译：借助 KV 缓存的贪心解码
#
# 对每个测试句子，提示是 `english <sep>`；模型每次取概率最大的词元（argmax），把序列向后延长一个词元，直到生成 `<|endoftext|>`，其间使用第 9 章的 KV 缓存。为了不经填充就能一次解码很多句子（我们的 GPT 没有填充掩码），我们把**长度相同**的提示放进同一个批次：这样的批次中每一行都是真实的句子，而 `generate(stop_token=...)` 会在所有行都结束时停止。

# %% [markdown] lang="en"
# ## 5. Translating: greedy decoding with the KV cache
#
# For each test sentence the prompt is `english <sep>`; the model extends it one token at a time
# (argmax) until `<|endoftext|>`, with the KV cache of ch09. To decode many sentences at once
# without padding (our GPT has no padding mask), we batch the prompts **of equal length**
# together: every row of such a batch is a real sentence, and `generate(stop_token=...)` stops
# when all rows have ended.

# %%
def translate(model, sources, use_cache=True, max_new=24):
    """Greedy translations of a list of English sentences (batched by prompt length)."""
    by_len = defaultdict(list)
    for i, s in enumerate(sources):
        by_len[len(tok.encode(s))].append(i)
    out = [None] * len(sources)
    for n, rows in by_len.items():
        prompt = torch.tensor([tok.encode(sources[i]) + [SEP] for i in rows])  # (B, n + 1)
        new = model.generate(prompt, min(max_new, BLOCK - n - 1), greedy=True, stop_token=EOT, use_cache=use_cache)
        for i, ids in zip(rows, new[:, n + 1 :].tolist()):
            out[i] = tok.decode(ids[: ids.index(EOT)] if EOT in ids else ids)
    return out


sources = [e for e, _ in pairs["test"]]
references = [z for _, z in pairs["test"]]
t0 = time.perf_counter()
hyps = {name: translate(model, sources) for name, model in (("scratch", scratch), ("pretrained", pretrained))}
seconds = time.perf_counter() - t0
print(ch.tr(f"  两个模型各翻译了 {len(sources)} 个测试句子，共用时 {seconds:.1f} 秒",
            f"  translated {len(sources)} test sentences twice in {seconds:.1f} s"))
few = sources[: ch.steps(60, 8)]
ch.check(ch.tr("使用 KV 缓存的贪心解码结果 == 每步重新计算整个前缀的结果", "greedy translations with the KV cache == recomputing the prefix"),
         translate(pretrained, few, use_cache=True) == translate(pretrained, few, use_cache=False),
         ch.tr(f"{len(few)} 个句子", f"{len(few)} sentences"))

# %% [markdown] lang="zh"
# **BLEU**（第 7 章用的也是它）：在整个测试集上，计算 1 元到 4 元语法（n-gram）相对于参考译文的精确率的几何平均，再乘以一个简短惩罚（brevity penalty）（`minitransformer.metrics.corpus_bleu`）。中文没有空格，所以我们把**汉字**当作词元来计数（`bleu_tokenize(text, "zh")`），这是中文的常见做法（sacreBLEU 的 `zh` 分词器同样把每个汉字单独切开）。一个平凡的基线：对每个句子都回答训练集中出现次数最多的那个译文。

# %% [markdown] lang="en"
# **BLEU** (ch07 uses the same): the geometric mean of the 1- to 4-gram precisions against the
# reference, times a brevity penalty, over the whole test set (`minitransformer.metrics.corpus_bleu`).
# Chinese has no spaces, so we count **characters** as tokens (`bleu_tokenize(text, "zh")`), the
# usual choice for Chinese (sacreBLEU's `zh` tokenizer also splits every Chinese character).
# A trivial baseline: answer every sentence with the most frequent training translation.

# %%
def bleu(hypotheses):
    return corpus_bleu([bleu_tokenize(h, "zh") for h in hypotheses], [bleu_tokenize(r, "zh") for r in references])


most_common = Counter(z for _, z in pairs["train"]).most_common(1)[0][0]
scores = {"constant baseline": bleu([most_common] * len(references)), **{k: bleu(v) for k, v in hyps.items()}}
for name, score in scores.items():
    print(ch.tr(f"  BLEU（{ZH_NAMES[name]}）：{score:5.1f}", f"  BLEU {name:>17}: {score:5.1f}"))
print(ch.tr(f"  （基线对每个句子都回答 {most_common!r}）", f"  (the baseline always answers {most_common!r})"))
ch.check(ch.tr("BLEU 在 0 到 100 之间；与参考译文完全相同的译文得 100 分",
               "BLEU is between 0 and 100; a perfect copy of the references scores 100"),
         all(0 <= s <= 100 for s in scores.values()) and abs(bleu(references) - 100) < 1e-9)
if not ch.fast:
    base = scores["constant baseline"]
    ch.check_value(ch.tr("微调后的 GPT 译得远好于平凡的基线：BLEU（先预训练）",
                         "the fine-tuned GPT translates far better than the trivial baseline: BLEU (pretrained)"),
                   scores["pretrained"], low=30.0)
    ch.check_value(ch.tr("……BLEU（先预训练）/ BLEU（常数基线）", "… BLEU (pretrained) / BLEU (constant baseline)"),
                   scores["pretrained"] / base if base else float("inf"),
                   low=5.0, detail=f"{scores['pretrained']:.1f} vs {base:.1f}")
    ch.check_value(ch.tr("……BLEU（从头训练）/ BLEU（常数基线）", "… BLEU (scratch) / BLEU (constant baseline)"),
                   scores["scratch"] / base if base else float("inf"),
                   low=2.0, detail=f"{scores['scratch']:.1f} vs {base:.1f}")
    ch.check_value(ch.tr("微调预算相同时，从预训练的 GPT 出发得到的 BLEU 更高（先预训练 − 从头训练）",
                         "with the same fine-tuning budget, starting from the pretrained GPT gives higher BLEU (pretrained − scratch)"),
                   scores["pretrained"] - scores["scratch"], low=5.0,
                   detail=f"{scores['pretrained']:.1f} vs {scores['scratch']:.1f}")

print()
for i in range(ch.steps(6, 3)):
    print(ch.tr(f"  英文        {sources[i]}\n  参考译文    {references[i]}\n  从头训练    {hyps['scratch'][i]}\n"
                f"  先预训练    {hyps['pretrained'][i]}\n",
                f"  EN          {sources[i]}\n  reference   {references[i]}\n  scratch     {hyps['scratch'][i]}\n"
                f"  pretrained  {hyps['pretrained'][i]}\n"))

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 2]})
for name, rows in curves.items():
    axes[0].plot([r["step"] for r in rows], [r["loss"] for r in rows], "o-", label=ch.tr(ZH_NAMES[name], f"from {name}"))
axes[0].set(xlabel=ch.tr("微调步数", "fine-tuning step"),
            ylabel=ch.tr("验证集交叉熵，目标词元（nat）", "val cross-entropy, target tokens (nats)"),
            title=ch.tr("英译中的微调", "fine-tuning English → Chinese"))
axes[0].legend()
axes[1].bar(range(3), list(scores.values()), color=["gray", "C0", "C1"])
axes[1].set_xticks(range(3), [ch.tr("常数\n基线", "constant\nbaseline"), ch.tr("GPT\n从头训练", "GPT\nfrom scratch"),
                              ch.tr("GPT\n先预训练", "GPT\npretrained")])
axes[1].set(ylabel=ch.tr("BLEU（以汉字计）", "BLEU (Chinese characters)"), ylim=(0, 100),
            title=ch.tr(f"测试集，{len(references)} 个句子", f"test set, {len(references)} sentences"))
for k, s in enumerate(scores.values()):
    axes[1].text(k, s + 2, f"{s:.1f}", ha="center")
ch.savefig(fig, "finetune_translation")

# %% [markdown] lang="zh"
# ## 6. 为什么提示部分不计入损失：实际度量
#
# 如果对整个序列计算损失，英文提示会占多大的分量？我们取一些验证集的翻译对，用刚预训练完时的语言模型（一个学过英文的模型）给其中的英文位置打分（每个位置预测下一个英文词元），再用微调后的模型给目标位置打分。

# %% [markdown] lang="en"
# ## 6. Why the prompt stays unscored, measured
#
# How much would the English prompt weigh in a whole-sequence loss? Score the English positions of
# validation pairs (each predicting the next English token) with the language model as it was
# right after pretraining — a model that has learned English — and the target positions with the
# fine-tuned model.

# %%
val = collate(examples["val"][:64])
is_target = val["labels"] != IGNORE_INDEX
full_targets = next_token_targets(val["input_ids"])  # every position's next input token …
full_targets[is_target] = val["labels"][is_target]  # … and <|endoftext|> where the target ends
real = torch.zeros_like(is_target)
for r, (x, _) in enumerate(examples["val"][:64]):
    real[r, : len(x) - 1] = True  # positions whose next token is a real token of this row
is_english = real & ~is_target & (full_targets != SEP)  # predicting an English token (the LM never saw <sep>)
with torch.no_grad():
    pretrained.eval()
    nll_lm = F.cross_entropy(language_model(val["input_ids"])[0].transpose(1, 2), full_targets.clamp_min(0), reduction="none")
    nll_ft = F.cross_entropy(pretrained(val["input_ids"])[0].transpose(1, 2), full_targets.clamp_min(0), reduction="none")
    own_loss = float(pretrained(val["input_ids"], val["labels"])[1])  # (B, T) losses above; the model's own below
english_lm, english_ft = float(nll_lm[is_english].mean()), float(nll_ft[is_english].mean())
target_ft = float(nll_ft[is_target].mean())
n_en, n_tgt = int(is_english.sum()), int(is_target.sum())
share = english_lm * n_en / (english_lm * n_en + target_ft * n_tgt)
print(ch.tr(f"  英文位置：{n_en} 个，平均损失 {english_lm:.2f} nat（预训练后的语言模型），{english_ft:.2f}（微调后）",
            f"  English positions: {n_en}, mean loss {english_lm:.2f} nats (pretrained LM), {english_ft:.2f} (after fine-tuning)"))
print(ch.tr(f"  目标位置：{n_tgt} 个，平均损失 {target_ft:.2f} nat（微调后）",
            f"  target positions:  {n_tgt}, mean loss {target_ft:.2f} nats (fine-tuned)"))
print(ch.tr(f"  若对整个序列计算损失，其值约有 {share:.0%} 来自英文提示",
            f"  a whole-sequence loss would take ≈ {share:.0%} of its value from the English prompt"))
ch.check_close(ch.tr("模型自己算出的损失（标签含 −100）== 目标位置上损失的平均值",
                     "the model's own loss (labels with −100) == the mean over the target positions"), own_loss, target_ft, atol=1e-4)
if not ch.fast:
    ch.check_value(ch.tr("即使是在英文上训练过的模型，预测提示也比预测目标难得多（损失之比）",
                         "even a model trained on English finds the prompt much harder to predict than the target (loss ratio)"),
                   english_lm / target_ft, low=2.0,
                   detail=ch.tr(f"{english_lm:.2f} 对 {target_ft:.2f} nat", f"{english_lm:.2f} vs {target_ft:.2f} nats"))
    ch.check_value(ch.tr("只对目标做微调之后，模型预测英文的能力不如预训练刚结束时（多出的 nat）",
                         "after target-only fine-tuning the model no longer predicts English as well as after pretraining (extra nats)"),
                   english_ft - english_lm, low=0.0,
                   detail=ch.tr(f"{english_ft:.2f} 对 {english_lm:.2f} nat（均匀分布：ln |V| = {math.log(V):.2f}）",
                                f"{english_ft:.2f} vs {english_lm:.2f} nats (uniform: ln |V| = {math.log(V):.2f})"))

# %% [markdown] lang="zh"
# 在英文中，谁在哪个城市遇见了谁，本来就是不确定的，翻译能力再强也无法减少这种不确定性；而给定英文之后，中文几乎是确定的。因此，对整个序列计算的损失大部分衡量的是英文有多好预测，而不是模型译得有多好，它的梯度也大都会用在对英文建模上。加上屏蔽之后，微调后的模型甚至不再预测英文了（上面打印出它在英文位置上的损失，比预训练后差得多）：它从来不需要预测英文，因为提示总是给定的。（有些训练方案给提示部分保留一个小的权重，而不是零；但在翻译和指令微调中，只对目标计算损失是常见的默认做法。）
#
# ## 7. 仅解码器与编码器-解码器的比较（与第 7 章对照）
#
# 第 7 章在同样的翻译对上训练原始的 Transformer，并用同样的、以汉字为单位的 BLEU 评分；运行它就可以比较数字。但比较时要小心：第 7 章从头训练，在训练集上过了好几遍，而我们为了让本章简短，只微调了大约一遍（120 步 × 32 对 = 1.2 个轮次）。所以 BLEU 上的差距更多反映的是训练预算，而不是架构。架构上的不同之处如下：
#
# | | 编码器-解码器（第 7 章） | 仅解码器的 GPT（本章） |
# |---|---|---|
# | 堆叠 | 两个：编码器处理源句子，解码器处理目标句子 | 一个 |
# | 如何读源句子 | 双向：每个源词元都能看到整个句子 | 因果地、从左到右读，作为与目标处在同一上下文中的提示 |
# | 目标如何看到源句子 | 对编码器输出的交叉注意力（有自己的子层和权重） | 用读目标时的同一个因果自注意力（没有交叉注意力） |
# | 对什么计算损失 | 目标（源句子从不被预测） | 目标，因为提示被 −100 屏蔽了 |
# | 上下文窗口中放的是 | 只有目标（源句子在编码器的输出里） | 源句子 + 目标：两者都占用 `block_size`，都要存入 KV 缓存 |
# | 在纯文本上预训练 | 需要另外的目标函数（例如去噪） | 与微调相同的预测下一个词元的目标（第 9 章） |
#
# 最后一行正是仅解码器模型后来居上的原因：预训练和所有生成任务都用同一种架构、同一个目标函数，任务本身则在提示中说明。
#
# ## 本章小结
#
# * 把一个翻译样本表示成一个序列 `english <sep> 中文<|endoftext|>`，提示部分的标签为 −100——那里的损失和梯度恰好为零——第一个计分的标签位于 `<sep>`；
# * 右侧填充的批次，在因果注意力下不需要注意力掩码；
# * 先在无标注的双语文本上预训练，再微调——BLEU 比同样的微调从头开始更高（文章 §3.1 的流程）；
# * 借助 KV 缓存、按提示长度分批的贪心解码，以及以汉字为单位的语料级 BLEU。

# %% [markdown] lang="en"
# Who meets whom, in which city, is genuinely uncertain in English, and no amount of translation
# skill makes it less so; the Chinese, given the English, is nearly determined. So most of a
# whole-sequence loss would measure how predictable English is, not how well the model translates,
# and most of its gradient would go into modelling English. With the mask the fine-tuned model even
# stops predicting English (its loss there, printed above, is far worse than after pretraining):
# it never has to, the prompt is always given. (Some recipes keep a small weight on the prompt
# instead of zero; the target-only loss is the common default for translation and instruction
# fine-tuning.)
#
# ## 7. Decoder-only vs encoder-decoder (compared with chapter 7)
#
# Chapter 7 trains the original Transformer on the same pairs and scores it with the same BLEU on
# Chinese characters; run it to compare numbers. Compare with care: it trains from scratch for
# several passes over the training pairs, while we fine-tune for about one pass
# (120 steps × 32 pairs = 1.2 epochs) to keep this chapter short, so a gap in BLEU measures the
# budgets more than the architectures. What differs in the architecture:
#
# | | encoder-decoder (ch07) | decoder-only GPT (this chapter) |
# |---|---|---|
# | stacks | two: an encoder for the source, a decoder for the target | one |
# | how the source is read | bidirectionally: every source token sees the whole sentence | causally, left to right, as a prompt in the same context as the target |
# | how the target sees the source | cross-attention to the encoder's output (its own sublayer and weights) | the same causal self-attention that reads the target (no cross-attention) |
# | what is scored | the target (the source is never predicted) | the target, because the prompt is masked with −100 |
# | the context window holds | the target only (the source is in the encoder's memory) | source + target: both count against `block_size` and fill the KV cache |
# | pretraining on plain text | needs a separate objective (e.g. denoising) | the same next-token objective as fine-tuning (ch09) |
#
# The last row is why decoder-only models took over: one architecture and one objective for
# pretraining and for every generation task, the task being stated in the prompt.
#
# ## What we built
#
# * a translation example as one sequence `english <sep> 中文<|endoftext|>`, with −100 labels on
#   the prompt — exactly zero loss and gradient there — and the first scored label at `<sep>`;
# * right-padded batches that need no attention mask under causal attention;
# * pretraining on unlabelled bilingual text, then fine-tuning — better BLEU than the same
#   fine-tuning from scratch (article §3.1's pipeline);
# * greedy decoding with the KV cache, batched by prompt length, and corpus BLEU on Chinese characters.

# %%
ch.done()
