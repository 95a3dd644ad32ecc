# %% [markdown] lang="zh"
# # 第 8 章 · 预训练：BERT 的两个预训练任务 MLM 与 NSP（原文 §3.2.3）
#
# 原文 §3.2.3 对每个预训练任务只用一句话带过。本章从数据开始亲手构造这两个任务，用测量验证它们
# 确实像论文所说的那样工作，再用它们预训练（pretraining）一个很小的 BERT：
#
# 1. 语料库及其分词器（无标签数据，对应原文 §3.2.1“数据准备”）；
# 2. **下一句预测（next sentence prediction，NSP）**：`[CLS] A [SEP] B [SEP]`、片段编号（segment id），
#    50% 是真正的下一句，50% 是另一篇文档中的句子——绝不会是真正的下一句；
# 3. **掩码语言模型（masked language model，MLM）**：在普通词元（token）中选出 15%；其中 80% 换成
#    `[MASK]`，10% 换成随机词元，10% 保持不变——在超过 100,000 次抽取上测量；
#    *动态*掩码：同一个句子每次出现都重新抽取掩码；
# 4. 两个输出头及其损失，以及一个一无所知的模型能得多少分（ln|V|、50%）；
# 5. 用共享的 `Trainer` 预训练一个小 BERT，把它的四条曲线与随机水平对比，并看看它学到了什么；
#    模型会保存下来，供 ch10（微调）使用。
#
# **更正原文。** §3.2.3 列出了三个“常见的预训练任务”：MLM、NSP 和“双向编码器（BERT）”。BERT
# 不是任务，而是**模型**——即 ch06 的双向 Transformer 编码器。MLM 和 NSP 才是 BERT 预训练所用的
# 两个任务（Devlin 等，2019，§3.1）。

# %% [markdown] lang="en"
# # Chapter 8 · Pretraining — BERT's two pretraining tasks, MLM and NSP (Article §3.2.3)
#
# The article's §3.2.3 names the pretraining tasks in one line each. In this chapter we build both
# from the data up, measure that they do what the paper says, and pretrain a tiny BERT with them:
#
# 1. the corpus and its tokenizer (unlabelled text, article §3.2.1 "数据准备", data preparation);
# 2. **NSP** (next sentence prediction): `[CLS] A [SEP] B [SEP]`, segment ids, 50% true next sentence, 50% a
#    sentence of another document — never the true next one;
# 3. **MLM** (masked language model): select 15% of the ordinary tokens; of those 80% → `[MASK]`,
#    10% → a random token, 10% unchanged — measured over more than 100,000 draws;
#    *dynamic* masking: a new mask every time a sentence comes back;
# 4. the two heads and their losses, and what a model that knows nothing scores (ln|V|, 50%);
# 5. a tiny BERT pretrained with the shared `Trainer`, its four curves against chance, and a look
#    at what it learnt; the model is saved for ch10 (fine-tuning).
#
# **A correction to the article.** §3.2.3 lists three "常见的预训练任务" (common pretraining tasks):
# MLM, NSP and "双向编码器（BERT）" (bidirectional encoder). BERT is not a task: it is the **model** — the
# bidirectional Transformer encoder of ch06. MLM and NSP are the two tasks BERT is pretrained on
# (Devlin et al., 2019, §3.1).

# %%
import json
import math
import random
import re

import torch
import torch.nn.functional as F

from chapters.book import Chapter, plt
from minibert import BertConfig, BertForPreTraining, BertForSequenceClassification, mlm_loss, nsp_loss
from minibert.pretraining import (PretrainingData, build_pair_inputs, chance_levels, nsp_anchors, pad_rows,
                                  pretraining_loss, tokenize_documents)
from minitransformer.batches import mix_seed
from minitransformer.checkpoint import save_checkpoint
from minitransformer.data import BERT_SPECIALS, SentencePieceTokenizer, load_world_documents
from minitransformer.data.world_lexicon import BAD_FEELINGS, CITIES, GOOD_FEELINGS, TRANSPORT
from minitransformer.trainer import TrainConfig, Trainer

ch = Chapter("ch08_bert_pretraining")

# %% [markdown] lang="zh"
# ## 1. 语料库与分词器（无标签数据）
#
# 预训练只需要无标签的文本。我们使用随书附带的玩具世界（`data/world_en.txt`，见 `data/README.md`）：
# 3,300 篇文档——短故事和无标签的评论——每行一句，文档之间空一行。NSP 需要知道一篇文档在哪里结束，
# 所以我们让各篇文档保持分开。另有少数文档被整篇留出，用作验证集。
#
# 分词器是在训练文档上训练的 sentencepiece BPE。词表有 700 个子词时，这个小世界里的每个词都恰好是
# 一个子词（`▁` 标记词的开头）。BERT 的特殊词元排在最前面：
# `[PAD]`=0、`[UNK]`=1、`[CLS]`=2、`[SEP]`=3、`[MASK]`=4。

# %% [markdown] lang="en"
# ## 1. The corpus and the tokenizer (unlabelled data)
#
# Pretraining needs only unlabelled text. We use the bundled toy world (`data/world_en.txt`, see
# `data/README.md`): 3,300 documents — short stories and unlabelled reviews — one sentence per line,
# a blank line between documents. NSP needs to know where a document ends, so we keep them apart.
# A few documents are held out whole for validation.
#
# The tokenizer is sentencepiece BPE trained on the training documents. With 700 pieces every word
# of this small world is one piece (`▁` marks a word start). BERT's special tokens come first:
# `[PAD]`=0, `[UNK]`=1, `[CLS]`=2, `[SEP]`=3, `[MASK]`=4.

# %%
VOCAB_SIZE = 700
MAX_LEN = 64  # [CLS] A [SEP] B [SEP], longer pairs are cut longest-first
N_VAL_DOCS = 100

all_docs = load_world_documents("en")  # list of documents, each a list of sentences (str)
order = list(range(len(all_docs)))
random.Random(0).shuffle(order)
val_text = [all_docs[i] for i in order[:N_VAL_DOCS]]
train_text = [all_docs[i] for i in order[N_VAL_DOCS:]]
tokenizer = SentencePieceTokenizer.train(["\n".join(d) for d in train_text], VOCAB_SIZE, specials=BERT_SPECIALS)
train_docs = tokenize_documents(train_text, tokenizer)  # documents -> sentences -> token ids
val_docs = tokenize_documents(val_text, tokenizer)
V = tokenizer.vocab_size
SPECIAL_IDS = sorted(tokenizer.special_ids)
n_sent = sum(len(d) for d in train_docs)
n_tok = sum(len(s) for d in train_docs for s in d)
print(ch.tr(f"  {len(train_docs)} 篇训练文档，{n_sent} 个句子，{n_tok} 个词元（每句 {n_tok / n_sent:.1f} 个）；"
            f"留出 {len(val_docs)} 篇",
            f"  {len(train_docs)} training documents, {n_sent} sentences, {n_tok} tokens ({n_tok / n_sent:.1f} per sentence); "
            f"{len(val_docs)} held out"))
print(ch.tr(f"  词表 |V| = {V}；特殊词元的 id {dict(zip(BERT_SPECIALS.values(), SPECIAL_IDS))}",
            f"  vocabulary |V| = {V}; special ids {dict(zip(BERT_SPECIALS.values(), SPECIAL_IDS))}"))
print(ch.tr("  一篇文档：\n", "  a document:\n") + "\n".join(f"    {s}" for s in train_text[0][:4]))
print(ch.tr(f"  它的第三句切分成子词：{tokenizer.tokenize(train_text[0][2])}",
            f"  its third sentence as pieces: {tokenizer.tokenize(train_text[0][2])}"))

ch.check(ch.tr("特殊词元 [PAD] [UNK] [CLS] [SEP] [MASK] 的 id 为 0-4", "special tokens [PAD] [UNK] [CLS] [SEP] [MASK] are ids 0-4"),
         [tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id] == [0, 1, 2, 3, 4])
sample = [s for d in train_text[:200] for s in d]
ch.check(ch.tr("200 篇文档的每个句子都满足 decode(encode(s)) == s", "decode(encode(s)) == s for every sentence of 200 documents"),
         all(tokenizer.decode(tokenizer.encode(s)) == s for s in sample), ch.tr(f"{len(sample)} 个句子", f"{len(sample)} sentences"))
ch.check(ch.tr("训练文本从不产生 [UNK]", "the training text never produces [UNK]"), all(tokenizer.unk_id not in s for d in train_docs for s in d))
words = sorted({w for d in train_text for s in d for w in re.findall(r"[A-Za-z]+", s)})
ch.check(ch.tr("训练文本中的每个词都是单个子词", "every word of the training text is a single piece"),
         all(len(tokenizer.encode("a " + w)) == 2 for w in words), ch.tr(f"{len(words)} 个不同的词", f"{len(words)} distinct words"))

# %% [markdown] lang="zh"
# ## 2. 下一句预测（NSP）
#
# 一个训练样本包含两段文本：
#
#     [CLS] A [SEP] B [SEP]        片段编号  0 0 … 0 0  1 … 1 1
#
# A 是文档中一个有后继句的句子。B 以 ½ 的概率**就是**那个下一句（标签“是下一句”）；否则 B 取自均匀
# 选出的**另一篇**文档中的一个句子（标签“随机”）。片段编号（也叫词元类型编号，token type id）告诉模型
# 每个词元属于哪一边：`[CLS]`、A 和第一个 `[SEP]` 为 0，B 和最后一个 `[SEP]` 为 1。NSP 头读取
# `[CLS]` 的向量（经过池化层），必须区分这两种情况，而这只有把 B 与 A 联系起来才能做到。标签沿用
# transformers 的约定：`next_sentence_label` 0 = 是下一句，1 = 随机。
#
# 原文略去了两个细节：
#
# * 负样本取自**另一篇文档**，所以它绝不会是真正的下一句；
# * 长于 `MAX_LEN` 的句对按**最长优先**截断：反复去掉 A、B 中较长者的最后一个词元，直到
#   `len(A) + len(B) + 3 ≤ MAX_LEN`。
#
# （BERT 的“句子”其实是填满 512 个位置的文本片段；我们的则是单个句子。后来的模型发现 NSP 作用不大，
# 于是去掉了它（RoBERTa），或换成了句序预测（ALBERT）——但原文和 BERT 描述的正是 NSP。）

# %% [markdown] lang="en"
# ## 2. Next-sentence prediction (NSP)
#
# One training row holds two pieces of text:
#
#     [CLS] A [SEP] B [SEP]        segment ids  0 0 … 0 0  1 … 1 1
#
# A is a sentence that has a successor in its document. With probability ½, B **is** that next
# sentence (label "is next"); otherwise B is a sentence of a uniformly chosen **other** document
# (label "random"). The segment (token type) ids tell the model which side each token is on: 0 for
# `[CLS]`, A and the first `[SEP]`, 1 for B and the last `[SEP]`. The NSP head reads the `[CLS]`
# vector (through the pooler) and must tell the two cases apart, which is only possible by
# relating B to A. Labels follow transformers: `next_sentence_label` 0 = is next, 1 = random.
#
# Two details the article leaves out:
#
# * a negative is taken from **another document**, so it is never the true next sentence;
# * a pair longer than `MAX_LEN` is cut **longest first**: the last token of the longer of A and B
#   goes, again and again, until `len(A) + len(B) + 3 ≤ MAX_LEN`.
#
# (BERT's "sentences" are really spans of text filling 512 positions; ours are single sentences.
# Later models dropped NSP (RoBERTa) or replaced it with sentence-order prediction (ALBERT), after
# finding it adds little — but it is what the article and BERT describe.)

# %% [markdown] lang="zh"
# ### 练习 8.1 — 构造一个 NSP 句对
#
# **`nsp_pair_ex`** · ★★ · 2 分 · 约 20 分钟
#
# **题目：** 采样 NSP 句对：以 ½ 的概率取真正的下一句（is_next=True），否则从另一篇文档中随机取一
# 句（绝不是真正的下一句）。
#
# **提示：** 用 rng.randrange(len(docs) − 1) 抽另一篇文档，抽到的编号不小于 doc_idx 时加 1 跳过它
# ；所有随机数都必须来自 rng。
#
# **不可调用：** `pretraining.make_nsp_pair`（`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch08`
#
# 编写 `nsp_pair_ex(docs, doc_idx, sent_idx, rng)` → `(sentence_a, sentence_b, is_next)`：
#
# * `docs`：若干篇文档，每篇是句子的列表，每个句子是词元 id 的列表；至少有 2 篇文档；
# * `sentence_a = docs[doc_idx][sent_idx]`（一个有后继句的句子）；
# * 以 ½ 的概率（`rng.random() < 0.5`）：`sentence_b` = 同一篇文档中的下一句，`is_next = True`；
# * 否则 `is_next = False`，`sentence_b` 是均匀选出的**另一篇**文档（绝不是 `doc_idx` 本身）中
#   均匀选出的一个句子；
# * 所有随机数都从 `rng`（一个 `random.Random`）中抽取，这样固定种子就固定了句对。
#
# 检查程序从一组“句子写着自己编号”的文档中抽取数千个句对，并把各项计数与其期望值比较。

# %% [markdown] lang="en"
# ### Exercise 8.1 — an NSP pair
#
# **`nsp_pair_ex`** · ★★ · 2 points · ~20 min
#
# **Task:** Sample an NSP pair: with probability ½ the true next sentence (is_next=True),
# otherwise a random sentence from another document (never the true next one).
#
# **Hint:** Draw the other document with rng.randrange(len(docs) − 1) and skip doc_idx by adding 1
# when the draw reaches it; every random number must come from rng.
#
# **Not allowed:** `pretraining.make_nsp_pair` (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch08`
#
# Write `nsp_pair_ex(docs, doc_idx, sent_idx, rng)` → `(sentence_a, sentence_b, is_next)`:
#
# * `docs`: documents, each a list of sentences, each a list of token ids; at least 2 documents;
# * `sentence_a = docs[doc_idx][sent_idx]` (a sentence that has a successor);
# * with probability ½ (`rng.random() < 0.5`): `sentence_b` = the next sentence of the same
#   document and `is_next = True`;
# * otherwise `is_next = False` and `sentence_b` is a uniformly chosen sentence of a uniformly
#   chosen **other** document (never `doc_idx` itself);
# * draw every random number from `rng` (a `random.Random`), so a seed fixes the pairs.
#
# The check draws thousands of pairs from documents whose sentences name themselves, and compares
# the counts with their expected values.

# %%
def nsp_pair_ex(docs, doc_idx, sent_idx, rng):
    """(A, B, is_next): B = the next sentence with probability ½, else a random sentence of another document."""
    ### BEGIN SOLUTION
    a = docs[doc_idx][sent_idx]
    if rng.random() < 0.5:
        return list(a), list(docs[doc_idx][sent_idx + 1]), True
    other = rng.randrange(len(docs) - 1)  # uniform over the other documents
    if other >= doc_idx:
        other += 1
    return list(a), list(rng.choice(docs[other])), False
    ### END SOLUTION


def check_nsp_pair_ex(impl):
    """Draw 6,000 pairs from 6 documents of 1 to 8 sentences whose tokens name them (1000·doc + position);
    compare every pair with the rule and the counts with their expectations (5 standard errors)."""
    lengths = [5, 1, 8, 2, 3, 6]
    docs = [[[1000 * d + s, 7] for s in range(n)] for d, n in enumerate(lengths)]
    anchors = [(d, s) for d, n in enumerate(lengths) for s in range(n - 1)]
    rng, pick = random.Random(0), random.Random(1)
    n = 6000
    n_pos, from_doc, expected = 0, [0] * len(lengths), [0.0] * len(lengths)
    positions = set()
    for _ in range(n):
        d, s = anchors[pick.randrange(len(anchors))]
        out = impl(docs, d, s, rng)
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            raise AssertionError(ch.tr(f"期望一个元组 (sentence_a, sentence_b, is_next)，实际得到 {type(out).__name__}",
                                       f"expected a tuple (sentence_a, sentence_b, is_next), received {type(out).__name__}"))
        a, b, is_next = out
        if list(a) != docs[d][s]:
            raise AssertionError(ch.tr(f"sentence_a 应为 docs[{d}][{s}] = {docs[d][s]}，实际得到 {list(a)}",
                                       f"sentence_a must be docs[{d}][{s}] = {docs[d][s]}, received {list(a)}"))
        if not isinstance(is_next, bool):
            raise AssertionError(ch.tr(f"is_next 必须是 True 或 False，实际得到 {is_next!r}",
                                       f"is_next must be True or False, received {is_next!r}"))
        b = list(b)
        if len(b) != 2 or b[1] != 7 or not (0 <= b[0] // 1000 < len(lengths) and b[0] % 1000 < lengths[b[0] // 1000]):
            raise AssertionError(ch.tr(f"sentence_b 必须是 docs 中的一个句子，实际得到 {b}",
                                       f"sentence_b must be a sentence of docs, received {b}"))
        b_doc, b_pos = divmod(b[0], 1000)
        if is_next:
            n_pos += 1
            if (b_doc, b_pos) != (d, s + 1):
                raise AssertionError(ch.tr(f"is_next=True，但 sentence_b 是 docs[{b_doc}][{b_pos}]，而不是下一句 docs[{d}][{s + 1}]",
                                           f"is_next=True but sentence_b is docs[{b_doc}][{b_pos}], not the next sentence docs[{d}][{s + 1}]"))
            continue
        if b_doc == d:
            detail = (ch.tr("真正的下一句", "the true next sentence") if b_pos == s + 1
                      else ch.tr("同一文档中的另一个句子", "another sentence of the same document"))
            raise AssertionError(ch.tr(f"is_next=False，但 sentence_b 是 docs[{b_doc}][{b_pos}]，即{detail}：负例必须来自"
                                       "另一个文档，这样它才永远不会是真正的下一句",
                                       f"is_next=False but sentence_b is docs[{b_doc}][{b_pos}], {detail}: a negative must come "
                                       "from another document, so that it is never the true next sentence"))
        from_doc[b_doc] += 1
        positions.add((b_doc, b_pos))
        for e in range(len(lengths)):
            expected[e] += (e != d) / (len(lengths) - 1)
    se = math.sqrt(0.25 / n)
    if abs(n_pos / n - 0.5) > 5 * se:
        raise AssertionError(ch.tr(f"正例占句子对的 {n_pos / n:.3f}；期望 0.5 ± {5 * se:.3f}（5 个标准误）",
                                   f"{n_pos / n:.3f} of the pairs are positives; expected 0.5 ± {5 * se:.3f} (5 standard errors)"))
    n_neg = n - n_pos
    for e in range(len(lengths)):
        p = expected[e] / n_neg
        if abs(from_doc[e] - expected[e]) > 5 * math.sqrt(n_neg * p * (1 - p)) + 1:
            raise AssertionError(ch.tr(f"文档 {e} 给出了 {from_doc[e]} 个负例，期望约为 {expected[e]:.0f}：应均匀地选择另一个"
                                       "文档（每个文档的概率为 1/(文档数 − 1)），再从中选一个句子",
                                       f"document {e} gave {from_doc[e]} negatives, expected about {expected[e]:.0f}: choose the other "
                                       "document uniformly (each with probability 1/(number of documents − 1)), then a sentence in it"))
    if len(positions) != sum(lengths):
        raise AssertionError(ch.tr(f"负例只用到了 {sum(lengths)} 个句子中的 {len(positions)} 个：另一个文档中的每个句子"
                                   "（包括第一句和最后一句）都应该有可能被选中",
                                   f"negatives used {len(positions)} of the {sum(lengths)} sentences: every sentence of another document "
                                   "should be possible, the first and the last included"))
    runs = [[impl(docs, 0, 1, r) for _ in range(20)] for r in (random.Random(5), random.Random(5))]
    if runs[0] != runs[1]:
        raise AssertionError(ch.tr("相同的 rng 种子给出了不同的句子对：每个随机数都应从 rng 中抽取",
                                   "the same rng seed gave different pairs: draw every random number from rng"))
    return ch.tr(f"{n} 个句子对：正例占 {n_pos / n:.3f}，每个正例都是下一句，每个负例都来自另一个文档",
                 f"{n} pairs: {n_pos / n:.3f} positives, every positive the next sentence, every negative from another document")


ch.verify(check_nsp_pair_ex, nsp_pair_ex)

# %%
from minibert.pretraining import make_nsp_pair  # the library's version (exercise 8.1)

cls_id, sep_id, pad_id, mask_id = tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id, tokenizer.mask_id
rng = random.Random(1)
shown = {}
while len(shown) < 2:  # one positive and one negative pair from the first document
    a, b, is_next = make_nsp_pair(train_docs, 0, 1, rng)
    shown.setdefault(is_next, (a, b))
for is_next, (a, b) in sorted(shown.items(), reverse=True):
    ids, seg = build_pair_inputs(a, b, cls_id, sep_id, MAX_LEN)
    pieces = [tokenizer.id_to_token(i) for i in ids]
    print(f"  is_next={is_next} (next_sentence_label {0 if is_next else 1}):")
    print("    " + " ".join(f"{p}/{s}" for p, s in zip(pieces, seg)))
    ch.check(ch.tr(f"{'正' if is_next else '负'}样本句对：[CLS] A [SEP] B [SEP]，片段编号 0…0 1…1",
                   f"{'positive' if is_next else 'negative'} pair: [CLS] A [SEP] B [SEP], segments 0…0 1…1"),
             ids == [cls_id, *a, sep_id, *b, sep_id] and seg == [0] * (len(a) + 2) + [1] * (len(b) + 1))

long_a, long_b = list(range(10, 60)), list(range(100, 110))  # 50 and 10 tokens, cut to fit 32 positions
ids, seg = build_pair_inputs(long_a, long_b, cls_id, sep_id, 32)
ch.check(ch.tr("最长优先截断：A 不断丢掉词元，直到 len(A) + len(B) + 3 = 32",
               "longest-first truncation: A loses tokens until len(A) + len(B) + 3 = 32"), len(ids) == 32 and
         ids[1:20] == long_a[:19] and ids[21:31] == long_b,
         ch.tr(f"A 保留了 50 个词元中的 {seg.count(0) - 2} 个，B 全部 10 个保留", f"A kept {seg.count(0) - 2} of 50 tokens, B all 10"))

# %% [markdown] lang="zh"
# **在大量抽取上测量。** 为了看出 B 来自*哪个*句子，我们在语料库的一个副本上运行库中的
# `make_nsp_pair`：副本里每个句子都换成一个写着自己编号的词元，即 1000·文档号 + 位置。这样就能精确
# 地验证规则：正样本是真正的下一句，负样本来自另一篇文档，并且两类平衡——正样本的占比应在 ½ 的
# 几个标准误 √(¼/n) 之内。

# %% [markdown] lang="en"
# **Measured over many draws.** To see *which* sentence B came from, we run the library's
# `make_nsp_pair` on a copy of the corpus in which every sentence is replaced by one token that
# names it, 1000·document + position. Then we can verify the rule exactly: positives are the true
# next sentence, negatives come from another document, and the classes are balanced — the share of
# positives should be ½ within a few standard errors √(¼/n).

# %%
tagged = [[[1000 * d + s] for s in range(len(doc))] for d, doc in enumerate(train_docs)]
anchors = nsp_anchors(train_docs)  # every (document, sentence) with a successor
n_pairs = ch.steps(20_000, 5_000)
rng = random.Random(2)
n_pos, wrong_pos, same_doc_neg, text_equal_neg = 0, 0, 0, 0
for _ in range(n_pairs):
    d, s = anchors[rng.randrange(len(anchors))]
    a, b, is_next = make_nsp_pair(tagged, d, s, rng)
    b_doc, b_pos = divmod(b[0], 1000)
    if is_next:
        n_pos += 1
        wrong_pos += (b_doc, b_pos) != (d, s + 1)
    else:
        same_doc_neg += b_doc == d
        text_equal_neg += train_docs[b_doc][b_pos] == train_docs[d][s + 1]  # same words, other document
share = n_pos / n_pairs
se = math.sqrt(0.25 / n_pairs)
ch.check(ch.tr("NSP：一半句对是正样本，误差在 5 个标准误之内", "NSP: half of the pairs are positives (within 5 standard errors)"),
         abs(share - 0.5) < 5 * se, ch.tr(f"{n_pairs} 个句对中占 {share:.4f}，标准误 {se:.4f}", f"{share:.4f} of {n_pairs} pairs, SE {se:.4f}"))
ch.check(ch.tr("NSP：每个正样本的 B 都是真正的下一句", "NSP: every positive B is the true next sentence"), wrong_pos == 0,
         ch.tr(f"{n_pos} 个正样本", f"{n_pos} positives"))
ch.check(ch.tr("NSP：负样本的 B 从不来自 A 所在的文档（因此绝不是真正的下一句）",
               "NSP: no negative B comes from A's own document (so never the true next sentence)"), same_doc_neg == 0,
         ch.tr(f"{n_pairs - n_pos} 个负样本", f"{n_pairs - n_pos} negatives"))
print(ch.tr(f"  ……不过 {n_pairs - n_pos} 个负样本中有 {text_equal_neg} 个（{text_equal_neg / (n_pairs - n_pos):.2%}）恰好与真正的下一句"
            "用词相同（像 'He was happy.' 这样简短常见的句子）：这是 NSP 不得不忍受的标签噪声",
            f"  …but {text_equal_neg} of {n_pairs - n_pos} negatives ({text_equal_neg / (n_pairs - n_pos):.2%}) happen to have the same "
            "words as the true next sentence (short, common sentences such as 'He was happy.'): label noise NSP must live with"))

# %% [markdown] lang="zh"
# ## 3. 掩码语言模型（MLM）
#
# BERT 一次读入整行，左右两侧同时可见：如果用普通的“预测下一个词”作为目标，每个位置都能看到自己要
# 预测的那个词。所以 BERT 把一些词藏起来，再从两侧的上下文预测它们。规则如下（Devlin 等，2019，§3.1）：
#
# 1. 以 15% 的概率**选中**每个普通词元——绝不选 `[CLS]`、`[SEP]` 或 `[PAD]`；
# 2. 在选中的词元中，**80%** 换成 `[MASK]`，**10%** 换成一个随机的普通词元（绝不是特殊词元），
#    **10%** 保持不变；
# 3. 标签在被选中的位置是原来的词元，其余位置都是 −100（损失会忽略它们）。
#
# 为什么不总是换成 `[MASK]`？因为模型日后微调时根本不会遇到 `[MASK]`。如果只需预测 `[MASK]` 位置，
# 模型就可以让普通词元的向量不携带有用的信息。随机替换意味着任何词元都可能是错的，因此每个位置都
# 必须对照上下文加以检查；保持不变的那部分则把预测与实际看到的词联系起来。
#
# 由于随机替换是从全部 V′ 个普通 id 中抽取的，它以 1/V′ 的概率恰好就是原词元。所以在选中的词元中，
# 我们精确地预期：
#
#     P([MASK]) = 0.8      P(another token) = 0.1·(1 − 1/V′)      P(unchanged) = 0.1 + 0.1/V′
#
# （即换成另一个词元、保持不变的概率。）我们对真实 NSP 句对的各行施加掩码，在超过 100,000 次词元
# 抽取上计数。

# %% [markdown] lang="en"
# ## 3. The masked language model (MLM)
#
# BERT reads the whole row at once, left and right: a plain "predict the next word" objective
# would let every position see the word it has to predict. So BERT hides some words and predicts
# them from both sides. The rule (Devlin et al., 2019, §3.1):
#
# 1. **select** each ordinary token with probability 15% — never `[CLS]`, `[SEP]` or `[PAD]`;
# 2. of the selected tokens, replace **80%** by `[MASK]`, **10%** by a random ordinary token
#    (never a special one), and leave **10%** unchanged;
# 3. the label is the original token at the selected positions and −100 (ignored by the loss)
#    everywhere else.
#
# Why not always `[MASK]`? `[MASK]` never occurs when the model is later fine-tuned. If only
# `[MASK]` positions had to be predicted, the model could keep the vectors of ordinary tokens
# uninformative. Random replacements mean any token might be wrong, so every position must be
# checked against its context; unchanged ones tie the prediction to the word actually seen.
#
# Because a random replacement is drawn from all V′ ordinary ids, it is the original token with
# probability 1/V′. So among the selected tokens we expect, exactly,
#
#     P([MASK]) = 0.8      P(another token) = 0.1·(1 − 1/V′)      P(unchanged) = 0.1 + 0.1/V′
#
# We mask rows of real NSP pairs and count, over more than 100,000 token draws.

# %% [markdown] lang="zh"
# ### 练习 8.2 — BERT 的掩码规则（80/10/10）
#
# **`mlm_mask_ex`** · ★★★ · 3 分 · 约 30 分钟
#
# **题目：** BERT 的 MLM 遮盖规则：在非特殊符号中选 15%；其中 80% 换成 [MASK]，10% 换成随机的普通
# 词（绝不是特殊符号），10% 保持不变。标签在被选位置为原 id，其余为 -100。
#
# **提示：** 每个位置用一个均匀随机数决定是否选中（< 0.15 且不是特殊符号）；再用第二个随机数把选中
# 的分成 80 / 10 / 10；随机替换的 id 只从普通 id 组成的张量里抽。
#
# **不可调用：** `pretraining.mlm_mask_tokens`（`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch08`
#
# 编写 `mlm_mask_ex(input_ids, special_mask, vocab_size, mask_id, special_ids, generator)` →
# `(inputs, labels)`：
#
# * `input_ids` 为 (B, T) 的 int64；`special_mask` 为 (B, T) 的布尔张量，在 `[CLS]`、`[SEP]`、`[PAD]`
#   处为 True（这些位置绝不选中）；
# * 其余每个位置**独立地以 0.15 的概率**选中；
# * 在选中的位置中：80% → `mask_id`，10% → 从 `0 … vocab_size − 1` **去掉** `special_ids`（其中包含
#   `mask_id`）后均匀抽取的一个 id，10% 保持不变；
# * `labels` 在选中的位置为原 id，其余为 −100；不要修改 `input_ids`；
# * 所有随机数都来自 `generator`（`torch.rand(..., generator=generator)`、
#   `torch.randint(..., generator=generator)`）。
#
# 检查程序在一个只有 8 个 id 的词表上对 120,000 个词元施加掩码，并把每个比率与其闭式解比较。

# %% [markdown] lang="en"
# ### Exercise 8.2 — BERT's masking rule (80/10/10)
#
# **`mlm_mask_ex`** · ★★★ · 3 points · ~30 min
#
# **Task:** BERT's MLM corruption: select 15% of the non-special tokens; of those, 80% become
# [MASK], 10% a random ordinary (never special) token, 10% stay. Labels hold the original id at
# selected positions, -100 elsewhere.
#
# **Hint:** One uniform number per position selects (< 0.15, and not special); a second one splits
# the selected into 80 / 10 / 10; draw random ids from a tensor of the ordinary ids only.
#
# **Not allowed:** `pretraining.mlm_mask_tokens` (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch08`
#
# Write `mlm_mask_ex(input_ids, special_mask, vocab_size, mask_id, special_ids, generator)` →
# `(inputs, labels)`:
#
# * `input_ids` (B, T) int64; `special_mask` (B, T) bool, True at `[CLS]`, `[SEP]`, `[PAD]`
#   (never select these);
# * select each other position **independently with probability 0.15**;
# * of the selected: 80% → `mask_id`, 10% → an id drawn uniformly from `0 … vocab_size − 1`
#   **minus** `special_ids` (which includes `mask_id`), 10% unchanged;
# * `labels` = the original id at selected positions, −100 elsewhere; do not modify `input_ids`;
# * every random number comes from `generator` (`torch.rand(..., generator=generator)`,
#   `torch.randint(..., generator=generator)`).
#
# The check masks 120,000 tokens of an 8-id vocabulary and compares each rate with its closed form.

# %%
def mlm_mask_ex(input_ids, special_mask, vocab_size, mask_id, special_ids, generator):
    """BERT's MLM corruption: 15% selected (never special), of those 80% [MASK], 10% random ordinary id, 10% kept."""
    ### BEGIN SOLUTION
    forbidden = set(int(i) for i in special_ids) | {int(mask_id)}
    ordinary = torch.tensor([i for i in range(vocab_size) if i not in forbidden], dtype=torch.long)
    selected = (torch.rand(input_ids.shape, generator=generator) < 0.15) & ~special_mask
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    u = torch.rand(input_ids.shape, generator=generator)
    random_ids = ordinary[torch.randint(len(ordinary), input_ids.shape, generator=generator)]
    inputs = torch.where(selected & (u < 0.8), torch.full_like(input_ids, mask_id), input_ids)
    inputs = torch.where(selected & (u >= 0.8) & (u < 0.9), random_ids, inputs)
    return inputs, labels
    ### END SOLUTION


def check_mlm_mask_ex(impl):
    """Mask 7,500 rows of 32 tokens (vocabulary 8: specials 0-4, ordinary ids 5-7) and compare with the rule's
    closed forms: selection 0.15 of the eligible tokens; among the selected, [MASK] 0.8, another token
    0.1·(1 − 1/V′), unchanged 0.1 + 0.1/V′ (V′ = 3 ordinary ids), each within 5 standard errors; specials
    never touched. The tiny vocabulary makes a random draw that may return [MASK] itself visible."""
    g = torch.Generator().manual_seed(0)
    vocab, pad, cls, sep, mask = 8, 0, 2, 3, 4
    specials = [0, 1, 2, 3, 4]
    n_rows, t = 7500, 32
    ids = torch.randint(5, vocab, (n_rows, t), generator=g)
    len_a = torch.randint(3, 14, (n_rows,), generator=g)
    len_b = torch.randint(3, 14, (n_rows,), generator=g)
    pos = torch.arange(t)
    ids[:, 0] = cls
    ids[pos[None] == (len_a + 1)[:, None]] = sep
    ids[pos[None] == (len_a + len_b + 2)[:, None]] = sep
    ids[pos[None] > (len_a + len_b + 2)[:, None]] = pad
    special = (ids == cls) | (ids == sep) | (ids == pad)
    original = ids.clone()
    out = impl(ids, special, vocab, mask, specials, torch.Generator().manual_seed(1))
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise AssertionError(ch.tr(f"期望一个元组 (inputs, labels)，实际得到 {type(out).__name__}",
                                   f"expected a tuple (inputs, labels), received {type(out).__name__}"))
    inputs, labels = out
    for name, x in (("inputs", inputs), ("labels", labels)):
        if not isinstance(x, torch.Tensor) or x.shape != ids.shape or x.dtype != torch.long:
            got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise AssertionError(ch.tr(f"{name}：期望形状为 {tuple(ids.shape)} 的 LongTensor，实际得到 {got}",
                                       f"{name}: expected a LongTensor of shape {tuple(ids.shape)}, received {got}"))
    if not torch.equal(ids, original):
        raise AssertionError(ch.tr("input_ids 被原地修改了；应返回新的张量", "input_ids was modified in place; return new tensors"))
    selected = labels != -100
    if bool(selected[special].any()):
        kinds = sorted({("[CLS]", "[SEP]", "[PAD]")[[cls, sep, pad].index(int(i))] for i in ids[special & selected]})
        raise AssertionError(ch.tr(f"特殊词元被选中了（{', '.join(kinds)}）：special_mask 为 True 的位置绝不能被选中",
                                   f"special tokens were selected ({', '.join(kinds)}): never select where special_mask is True"))
    if not torch.equal(inputs[special], ids[special]):
        raise AssertionError(ch.tr("有 [CLS]/[SEP]/[PAD] 位置被改动了：特殊词元所在的位置应保持不变",
                                   "a [CLS]/[SEP]/[PAD] position was changed: leave special positions alone"))
    if not torch.equal(labels[selected], ids[selected]):
        raise AssertionError(ch.tr("labels 必须在每个选中的位置上保存原词元的 id（其他位置为 -100）",
                                   "labels must hold the original token id at every selected position (and -100 elsewhere)"))
    if not torch.equal(inputs[~selected], ids[~selected]):
        raise AssertionError(ch.tr("有未被选中的词元（标签为 -100）被改动了；那 10%“保持不变”的词元仍然有标签",
                                   "a token that was not selected (label -100) was changed; the 10% 'unchanged' still get a label"))
    n_elig, n_sel = int((~special).sum()), int(selected.sum())
    to_mask = selected & (inputs == mask)
    kept = selected & (inputs == ids)
    other = selected & ~to_mask & ~kept
    if bool(torch.isin(inputs[other], torch.tensor(specials)).any()):
        raise AssertionError(ch.tr("有随机替换的词元是特殊词元（[PAD]/[UNK]/[CLS]/[SEP]）：只能从普通 id 中抽取",
                                   "a random replacement was a special token ([PAD]/[UNK]/[CLS]/[SEP]): draw from the ordinary ids only"))
    if not bool((inputs[selected] != mask).any()) or not bool(other.any()):
        raise AssertionError(ch.tr("没有任何选中的词元被替换为随机 id：选中的词元中应有 10% 被替换",
                                   "no selected token was replaced by a random id: 10% of the selected must be"))
    v_ord = vocab - len(specials)
    rates = [(ch.tr("选中 / 可选", "selected / eligible"), n_sel / n_elig, 0.15, n_elig,
              ch.tr("每个可选词元都以 0.15 的概率被选中", "select each eligible token with probability 0.15")),
             (ch.tr("[MASK] / 选中", "[MASK] / selected"), int(to_mask.sum()) / n_sel, 0.8, n_sel,
              ch.tr("选中的词元中 80% 变为 mask_id，而随机替换的那 10% 绝不能抽到 mask_id",
                    "80% of the selected become mask_id, and the random 10% must never draw mask_id")),
             (ch.tr("其他词元 / 选中", "another token / selected"), int(other.sum()) / n_sel, 0.1 * (1 - 1 / v_ord), n_sel,
              ch.tr("选中的词元中 10% 变为随机的普通 id，从非特殊词元（也不是 [MASK]）的 id 中抽取",
                    "10% of the selected become a random ordinary id, drawn from the ids that are not special (nor [MASK])")),
             (ch.tr("不变 / 选中", "unchanged / selected"), int(kept.sum()) / n_sel, 0.1 + 0.1 / v_ord, n_sel,
              ch.tr("选中的词元中 10% 保持原样", "10% of the selected stay as they are"))]
    for name, got, want, n, hint in rates:
        se = math.sqrt(want * (1 - want) / n)
        if abs(got - want) > 5 * se:
            raise AssertionError(ch.tr(f"{name} = {got:.4f}，期望 {want:.4f} ± {5 * se:.4f}（{n} 次抽取的 5 个标准误）：{hint}",
                                       f"{name} = {got:.4f}, expected {want:.4f} ± {5 * se:.4f} (5 SE over {n} draws): {hint}"))
    counts = torch.bincount(inputs[other], minlength=vocab)[5:].double()
    if bool((counts == 0).any()):
        raise AssertionError(ch.tr(f"id {[i + 5 for i in (counts == 0).nonzero().flatten().tolist()]} 从未被抽作随机替换："
                                   "应从所有普通 id 中均匀抽取",
                                   f"ids {[i + 5 for i in (counts == 0).nonzero().flatten().tolist()]} were never drawn as random "
                                   "replacements: draw uniformly from every ordinary id"))
    again = impl(ids, special, vocab, mask, specials, torch.Generator().manual_seed(1))
    other_seed = impl(ids, special, vocab, mask, specials, torch.Generator().manual_seed(2))
    if not (torch.equal(again[0], inputs) and torch.equal(again[1], labels)):
        raise AssertionError(ch.tr("相同的 generator 种子给出了不同的掩码：每个随机数都应从随机数生成器 generator 中抽取",
                                   "the same generator seed gave different masks: draw every random number from generator"))
    if torch.equal(other_seed[1], labels):
        raise AssertionError(ch.tr("换一个 generator 种子，掩码却完全相同：选择位置时应使用 generator",
                                   "another generator seed gave the same masks: use generator for the selection"))
    return ch.tr(f"{n_elig:,} 个可选词元：选中 {n_sel / n_elig:.4f}，[MASK] {rates[1][1]:.4f}，其他词元 {rates[2][1]:.4f}，"
                 f"不变 {rates[3][1]:.4f}；特殊词元未被改动",
                 f"{n_elig:,} eligible tokens: selected {n_sel / n_elig:.4f}, [MASK] {rates[1][1]:.4f}, other {rates[2][1]:.4f}, "
                 f"unchanged {rates[3][1]:.4f}; specials untouched")


ch.verify(check_mlm_mask_ex, mlm_mask_ex)

# %%
from minibert.pretraining import mlm_mask_tokens  # the library's version (exercise 8.2)


def pair_rows(docs, n, seed):
    """n NSP rows of ``docs`` (before masking): input_ids, attention_mask (n, T) and the special mask."""
    r = random.Random(seed)
    found = nsp_anchors(docs)
    rows = [build_pair_inputs(*make_nsp_pair(docs, *found[r.randrange(len(found))], r)[:2], cls_id, sep_id, MAX_LEN)[0]
            for _ in range(n)]
    ids = pad_rows(rows, pad_id)  # (n, T)
    attention = pad_rows([[1] * len(x) for x in rows], 0)  # (n, T)
    special = torch.isin(ids, torch.tensor(SPECIAL_IDS)) | (attention == 0)  # (n, T) never selected
    return ids, attention, special


rows, attention, special = pair_rows(train_docs, 6500, seed=3)
gen = torch.Generator().manual_seed(4)
inputs, labels = mlm_mask_tokens(rows, special, V, SPECIAL_IDS, mask_id, gen)
ch.show("rows", rows, "(N, T) [CLS] A [SEP] B [SEP] [PAD]…")
ch.show("inputs, labels", inputs, ch.tr("各为 (N, T)", "(N, T) each"))

eligible = ~special
selected = labels != -100
n_elig, n_sel = int(eligible.sum()), int(selected.sum())
n_ordinary = V - len(SPECIAL_IDS)  # V′: the ids a random replacement is drawn from
to_mask = selected & (inputs == mask_id)
unchanged = selected & (inputs == rows)
to_other = selected & ~to_mask & ~unchanged
RATE_ZH = {"selected / eligible": "选中 / 可选", "[MASK] / selected": "[MASK] / 选中",
           "other token / selected": "其他词元 / 选中", "unchanged / selected": "不变 / 选中"}
measured = {"selected / eligible": n_sel / n_elig, "[MASK] / selected": int(to_mask.sum()) / n_sel,
            "other token / selected": int(to_other.sum()) / n_sel, "unchanged / selected": int(unchanged.sum()) / n_sel}
expected = {"selected / eligible": 0.15, "[MASK] / selected": 0.8,
            "other token / selected": 0.1 * (1 - 1 / n_ordinary), "unchanged / selected": 0.1 + 0.1 / n_ordinary}
counts = {"selected / eligible": n_elig}
errors = {}
for name, p in expected.items():
    n = counts.get(name, n_sel)
    errors[name] = math.sqrt(p * (1 - p) / n)
    ch.check(ch.tr(f"MLM：{RATE_ZH[name]} = {p:.4f}，误差在 5 个标准误之内", f"MLM: {name} = {p:.4f} (within 5 standard errors)"),
             abs(measured[name] - p) < 5 * errors[name],
             ch.tr(f"在 {n:,} 次抽取上测得 {measured[name]:.4f}，标准误 {errors[name]:.4f}",
                   f"measured {measured[name]:.4f} over {n:,} draws, SE {errors[name]:.4f}"))
ch.check(ch.tr("MLM：超过 100,000 次词元抽取", "MLM: over 100,000 token draws"), n_elig >= 100_000,
         ch.tr(f"{n_elig:,} 个可选词元，选中 {n_sel:,} 个", f"{n_elig:,} eligible tokens, {n_sel:,} selected"))
ch.check(ch.tr("MLM：[CLS]、[SEP] 和 [PAD] 从不被选中，也从不被改动", "MLM: [CLS], [SEP] and [PAD] are never selected and never changed"),
         bool((labels[special] == -100).all() and (inputs[special] == rows[special]).all()),
         ch.tr(f"{int(special.sum()):,} 个特殊/填充位置", f"{int(special.sum()):,} special/padding positions"))
ch.check(ch.tr("MLM：标签恰好在选中的位置上保存原词元", "MLM: labels hold the original token exactly at the selected positions"),
         torch.equal(labels[selected], rows[selected]))
ch.check(ch.tr("MLM：未选中的词元保持原样", "MLM: unselected tokens are left as they were"), torch.equal(inputs[~selected], rows[~selected]))
replaced = inputs[to_other]
ch.check(ch.tr("MLM：随机替换的词元从不是特殊词元", "MLM: a random replacement is never a special token"),
         not bool(torch.isin(replaced, torch.tensor(SPECIAL_IDS)).any()),
         ch.tr(f"{replaced.numel()} 次随机替换", f"{replaced.numel()} random replacements"))
hist = torch.bincount(replaced, minlength=V)[len(SPECIAL_IDS):].double()  # (V′,) how often each ordinary id was drawn
expect_each = replaced.numel() / n_ordinary  # ≈ uniform (the original id itself is excluded from "other", a 1/V′ effect)
chi2 = float(((hist - expect_each) ** 2 / expect_each).sum())
dof = n_ordinary - 1
ch.check(ch.tr("MLM：随机替换均匀地分布在普通 id 上，用 χ² 检验", "MLM: random replacements are spread uniformly over the ordinary ids (χ² test)"),
         chi2 < dof + 5 * math.sqrt(2 * dof),
         ch.tr(f"χ² = {chi2:.0f}，自由度 {dof}（均值 {dof}，标准差 {math.sqrt(2 * dof):.0f}）",
               f"χ² = {chi2:.0f} for {dof} degrees of freedom (mean {dof}, sd {math.sqrt(2 * dof):.0f})"))

print(ch.tr("  一行样本，原文 / 掩码之后（· = 未选中）：", "  one row, original / after masking (· = not selected):"))
r = int(selected.sum(1).argmax())  # the row with the most selections
for name, row in ((ch.tr("原文", "original"), rows[r]), (ch.tr("输入", "input"), inputs[r])):
    toks = [tokenizer.id_to_token(int(i)) for i, keep in zip(row, attention[r]) if keep]
    print(f"    {name:>8}: " + " ".join(toks))
print("    {:>8}: ".format(ch.tr("标签", "label")) + " ".join(tokenizer.id_to_token(int(t)) if t != -100 else "·"
                                              for t, keep in zip(labels[r], attention[r]) if keep))

fig, ax = plt.subplots(figsize=(7.5, 3.4))
names = list(expected)
xs = range(len(names))
ax.bar([x - 0.2 for x in xs], [expected[k] for k in names], width=0.4, label=ch.tr("规则（闭式解）", "rule (closed form)"), color="#bbb")
ax.bar([x + 0.2 for x in xs], [measured[k] for k in names], width=0.4, yerr=[5 * errors[k] for k in names], capsize=4,
       label=ch.tr(f"实测（{n_elig:,} 个词元），±5 个标准误", f"measured ({n_elig:,} tokens), ±5 SE"), color="tab:blue")
for x, k in zip(xs, names):
    ax.text(x + 0.2, measured[k] + 0.03, f"{measured[k]:.3f}", ha="center", fontsize=8)
ax.set_xticks(list(xs), [ch.tr(RATE_ZH[k], k) for k in names], fontsize=8)
ax.set(ylim=(0, 1), title=ch.tr("BERT 的掩码规则：选中 15%，其中 80 / 10 / 10", "BERT's masking rule: 15% selected; of those 80 / 10 / 10"))
ax.legend(fontsize=8)
ch.savefig(fig, "mlm_masking_rates")

# %% [markdown] lang="zh"
# ### 动态掩码
#
# 哪些词元被遮住，是在**每次使用某一行时**重新抽取的。原始的 BERT 只对数据做一次掩码，复制成十份
# （静态掩码：40 个轮次中每种掩码出现四次）；RoBERTa（Liu 等，2019）表明每次重新抽取掩码的效果至少
# 一样好。在 `minibert.pretraining.PretrainingData` 中，第 `index` 个批次用以 (seed, split, index) 为
# 种子的生成器抽取句对和掩码：每一步都看到新的掩码，而同一个 index 总是给出同一个批次，所以中断后
# 恢复的训练看到的数据与不中断时完全相同。
#
# 对同样的行在两个轮次（epoch）中分别施加掩码，第 1 轮选中的词元在第 2 轮再次被选中的概率是 15%
# （两次抽取相互独立），而不是静态掩码下的 100%。

# %% [markdown] lang="en"
# ### Dynamic masking
#
# Which tokens are hidden is drawn afresh **each time a row is used**. The original BERT masked
# its data once, in ten copies (static masking: each mask seen four times in 40 epochs); RoBERTa
# (Liu et al., 2019) showed that drawing a new mask every time works at least as well. In
# `minibert.pretraining.PretrainingData`, batch number `index` draws its pairs and masks from
# generators seeded by (seed, split, index): every step sees new masks, and the same index always
# gives the same batch, so a resumed run sees exactly the data it would have seen.
#
# Masking the same rows in two epochs, a token selected in epoch 1 is selected again in epoch 2
# with probability 15% (the draws are independent), not 100% as with a static mask.

# %%
epoch_masks = []
for epoch in (1, 2):
    g = torch.Generator().manual_seed(mix_seed("ch08 dynamic masking", epoch))
    epoch_masks.append(mlm_mask_tokens(rows, special, V, SPECIAL_IDS, mask_id, g)[1] != -100)
sel1, sel2 = epoch_masks
again = int((sel1 & sel2).sum()) / int(sel1.sum())
se_again = math.sqrt(0.15 * 0.85 / int(sel1.sum()))
same_rows = int((sel1 == sel2).all(1).sum())
ch.check(ch.tr("动态掩码：第 1 轮选中的词元在第 2 轮以 p = 0.15 再次被选中",
               "dynamic masking: a token selected in epoch 1 is selected again in epoch 2 with p = 0.15"),
         abs(again - 0.15) < 5 * se_again,
         ch.tr(f"实测 {again:.4f}（标准误 {se_again:.4f}）；静态掩码会得到 1", f"measured {again:.4f} (SE {se_again:.4f}); a static mask would give 1"))
print(ch.tr(f"  两个轮次中选中位置完全相同的行：{len(rows)} 行中有 {same_rows} 行（大多是一个也没选中的短行）",
            f"  rows with exactly the same selection in both epochs: {same_rows} of {len(rows)} (mostly short rows with none selected)"))

data = PretrainingData({"train": train_docs, "val": val_docs}, tokenizer, batch_size=4, max_len=MAX_LEN, seed=0)
b0, b0_again, b1 = data("train", 0), data("train", 0), data("train", 1)
ch.check(ch.tr("PretrainingData：同一个批次编号给出同一个批次（批次是编号的纯函数）",
               "PretrainingData: the same batch index gives the same batch (a pure function of the index)"),
         all(torch.equal(b0[k], b0_again[k]) for k in b0))
ch.check(ch.tr("PretrainingData：下一个编号给出新的句对和新的掩码", "PretrainingData: the next index gives new pairs and new masks"),
         not torch.equal(b0["labels"], b1["labels"]))
for k, v in b0.items():
    ch.show(k, v)

# %% [markdown] lang="zh"
# ## 4. 预训练的两个输出头、它们的损失，以及随机猜测的得分
#
# `BertForPreTraining` 在 ch06 的编码器上加了两个输出头：
#
# * **MLM 头**——在每个位置上，`LayerNorm(GELU(W h + b))` 乘以词嵌入表（权重共享）再加一个偏置：
#   为 |V| 个词元各打一个分，形状 (B, T, |V|)。损失是只在选中位置上计算的交叉熵（cross-entropy）：
#   L_MLM = −(1/|M|) Σ_{i∈M} log p(x_i | x̃)。
# * **NSP 头**——作用在池化后的 `[CLS]` 向量 tanh(W h_[CLS] + b) 上的一个线性层：两个分数，
#   形状 (B, 2)，损失 L_NSP = −(1/B) Σ_b log p(label_b)。
#
# 预训练最小化 L = L_MLM + L_NSP。一个一无所知的模型会平均地分配它的猜测：MLM 损失为 **ln |V|**
# （准确率 1/|V|），NSP 损失为 **ln 2**（准确率 50%）。BERT 较小的初始权重（标准差 0.02）让它几乎
# 恰好从这里起步。只在约 15% 的选中位置上计算 MLM 头（`masked_positions_only=True`），损失相同，
# 计算量更少。同样的道理再往下推一层：最后一个编码器层的每一行仍要充当键和值，但只有 `[CLS]` 和选中
# 位置的那几行会进入损失，所以它只为这些行计算查询、前馈层和两个层归一化
# （`EncoderBlock.forward_at`）。

# %% [markdown] lang="en"
# ## 4. The two heads, their losses, and what chance scores
#
# `BertForPreTraining` puts two heads on the encoder of ch06:
#
# * **MLM head** — at every position, `LayerNorm(GELU(W h + b))` times the word-embedding table
#   (tied weights) plus a bias: a score for each of the |V| tokens, (B, T, |V|). The loss is the
#   cross-entropy at the selected positions only:  L_MLM = −(1/|M|) Σ_{i∈M} log p(x_i | x̃).
# * **NSP head** — a linear layer on the pooled `[CLS]` vector tanh(W h_[CLS] + b): two scores,
#   (B, 2), and  L_NSP = −(1/B) Σ_b log p(label_b).
#
# Pretraining minimises L = L_MLM + L_NSP. A model that knows nothing spreads its guesses evenly:
# MLM loss **ln |V|** (accuracy 1/|V|), NSP loss **ln 2** (accuracy 50%). BERT's small initial
# weights (std 0.02) start it almost exactly there. Computing the MLM head only at the ~15%
# selected positions (`masked_positions_only=True`) gives the same loss for less work. The same
# holds one layer down: every row of the last encoder layer is still a key and a value, but only
# the rows of `[CLS]` and the selected positions reach a loss, so their queries, feed-forward and
# two LayerNorms are all it computes (`EncoderBlock.forward_at`).

# %%
ch.manual_seed(0)
config = BertConfig(vocab_size=V, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256,
                    max_position_embeddings=MAX_LEN, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
model = BertForPreTraining(config)
batch = PretrainingData({"train": train_docs}, tokenizer, batch_size=64, max_len=MAX_LEN, seed=0)("train", 0)
with torch.no_grad():
    out = model(**batch)
    out_sel = model(**batch, masked_positions_only=True)
ch.show("mlm_logits", out.mlm_logits, "(B, T, |V|)")
ch.show("nsp_logits", out.nsp_logits, "(B, 2)")
ch.show(ch.tr("mlm_logits（仅选中位置）", "mlm_logits (selected only)"), out_sel.mlm_logits, ch.tr("(选中数 N, |V|)", "(N selected, |V|)"))
ref_mlm = F.cross_entropy(out.mlm_logits.reshape(-1, V), batch["labels"].reshape(-1), ignore_index=-100)
ref_nsp = F.cross_entropy(out.nsp_logits, batch["next_sentence_label"])
ch.check_close("L_MLM == F.cross_entropy(ignore_index=-100)", out.mlm_loss, ref_mlm, atol=1e-6)
ch.check_close("L_NSP == F.cross_entropy", out.nsp_loss, ref_nsp, atol=1e-6)
ch.check_close(ch.tr("masked_positions_only 给出相同的 MLM 损失", "masked_positions_only gives the same MLM loss"),
               out_sel.mlm_loss, out.mlm_loss, atol=1e-5)
ch.check_close(ch.tr("库函数 mlm_loss + nsp_loss == 模型的损失", "library mlm_loss + nsp_loss == the model's loss"),
               mlm_loss(out.mlm_logits, batch["labels"]) + nsp_loss(out.nsp_logits, batch["next_sentence_label"]), out.loss, atol=1e-5)
chance = chance_levels(V)
ch.check(ch.tr("初始化时 MLM 损失为 ln|V|，即均匀猜测的水平", "at initialisation the MLM loss is ln|V| (a uniform guess)"),
         abs(float(out.mlm_loss) - math.log(V)) < 0.05,
         ch.tr(f"{float(out.mlm_loss):.3f}，对比 ln {V} = {math.log(V):.3f}", f"{float(out.mlm_loss):.3f} vs ln {V} = {math.log(V):.3f}"))
ch.check(ch.tr("初始化时 NSP 损失为 ln 2", "at initialisation the NSP loss is ln 2"), abs(float(out.nsp_loss) - math.log(2)) < 0.05,
         ch.tr(f"{float(out.nsp_loss):.3f}，对比 ln 2 = {math.log(2):.3f}", f"{float(out.nsp_loss):.3f} vs ln 2 = {math.log(2):.3f}"))

# %% [markdown] lang="zh"
# ## 5. 预训练一个小 BERT
#
# 上面的模型——2 层、宽度 64、2 个头、前馈层 256（bert-base 为 12、768、12、3072）——交给共享的
# `Trainer`（`minitransformer.trainer`）：`PretrainingData` 给出第 `index` 个批次（带新掩码的 NSP
# 句对），`pretraining_loss` 返回 L_MLM + L_NSP，并记录两个损失和两个准确率（MLM 准确率只在选中
# 位置上统计）。优化器为 AdamW，带预热（warm-up）和余弦衰减，梯度裁剪阈值为 1。我们关闭了 dropout
# （BERT 用的是 0.1）：这次训练太短，远不至于过拟合。验证集的样本来自留出的文档。

# %% [markdown] lang="en"
# ## 5. Pretraining a tiny BERT
#
# The model above — 2 layers, width 64, 2 heads, feed-forward 256 (bert-base: 12, 768, 12, 3072)
# — goes to the shared `Trainer` (`minitransformer.trainer`): `PretrainingData` gives batch number
# `index` (NSP pairs with fresh masks), `pretraining_loss` returns L_MLM + L_NSP and logs both
# losses and both accuracies (MLM accuracy over the selected positions only). AdamW with
# warm-up and cosine decay, gradient clipping at 1. Dropout is off (BERT used 0.1): this run is far
# too short to overfit. The validation rows come from the held-out documents.

# %%
PRETRAIN = dict(steps=ch.steps(600, 40), batch_size=32, lr=5e-3, warmup=ch.steps(30, 8), eval_every=ch.steps(100, 20),
                eval_batches=ch.steps(16, 2))
RECIPE = dict(chapter="ch08 tiny BERT v1", vocab_size=VOCAB_SIZE, max_len=MAX_LEN, n_val_docs=N_VAL_DOCS, split_seed=0,
              hidden_size=64, layers=2, heads=2, intermediate_size=256, **PRETRAIN, seed=ch.seed)  # ch10 reuses the model if this matches
data = PretrainingData({"train": train_docs, "val": val_docs}, tokenizer, batch_size=PRETRAIN["batch_size"], max_len=MAX_LEN,
                       seed=ch.seed_for(0))
train_config = TrainConfig(out_dir=str(ch.out / "pretraining_run"), max_steps=PRETRAIN["steps"], batch_size=PRETRAIN["batch_size"],
                           lr=PRETRAIN["lr"], min_lr=PRETRAIN["lr"] / 10, warmup_steps=PRETRAIN["warmup"], weight_decay=0.01,
                           betas=(0.9, 0.98), eval_interval=PRETRAIN["eval_every"], eval_steps=PRETRAIN["eval_batches"],
                           log_interval=10, checkpoint_interval=-1, progress=False, overwrite=True, seed=ch.seed_for(0))
trainer = Trainer(model, train_config, data, loss_fn=pretraining_loss, model_config=config.to_dict(), tokenizer=tokenizer)
n_params = sum(p.numel() for p in model.parameters())
print(ch.tr(f"  {n_params:,} 个参数；{PRETRAIN['steps']} 步，每步 {PRETRAIN['batch_size']} 个句对",
            f"  {n_params:,} parameters; {PRETRAIN['steps']} steps of {PRETRAIN['batch_size']} pairs"))
history = trainer.fit()

train_rows = [r for r in history if r["split"] == "train"]
val_rows = [r for r in history if r["split"] == "val"]
print(ch.tr("   步数   MLM 损失  MLM 准确率  NSP 损失  NSP 准确率（验证集）", "   step   MLM loss  MLM acc   NSP loss  NSP acc   (validation)"))
for r in val_rows:
    print(f"  {r['step']:5d}   {r['mlm_loss']:8.3f}  {r['mlm_acc']:7.1%}   {r['nsp_loss']:8.3f}  {r['nsp_acc']:7.1%}")
print(ch.tr("  随机   ", "  chance   ") + f"{chance['mlm_loss']:8.3f}  {chance['mlm_acc']:7.1%}   {chance['nsp_loss']:8.3f}  {chance['nsp_acc']:7.1%}")

fig, axes = plt.subplots(1, 4, figsize=(15, 3.3))
panels = [("mlm_loss", ch.tr("MLM 损失", "MLM loss"), chance["mlm_loss"], f"ln|V| = {chance['mlm_loss']:.2f}"),
          ("mlm_acc", ch.tr("MLM 准确率（选中的词元）", "MLM accuracy (selected tokens)"), chance["mlm_acc"],
           f"1/|V| = {chance['mlm_acc']:.4f}"),
          ("nsp_loss", ch.tr("NSP 损失", "NSP loss"), chance["nsp_loss"], "ln 2"),
          ("nsp_acc", ch.tr("NSP 准确率", "NSP accuracy"), chance["nsp_acc"], "50%")]
for ax, (key, title, level, label) in zip(axes, panels):
    ax.plot([r["step"] for r in train_rows], [r[key] for r in train_rows], lw=1, alpha=0.6, label=ch.tr("训练", "train"))
    ax.plot([r["step"] for r in val_rows], [r[key] for r in val_rows], "o-", label=ch.tr("验证", "validation"))
    ax.axhline(level, color="k", ls="--", lw=1, label=ch.tr(f"随机水平：{label}", f"chance: {label}"))
    ax.set(title=title, xlabel=ch.tr("步数", "step"))
    ax.legend(fontsize=7)
for ax in (axes[1], axes[3]):
    ax.set_ylim(0, 1)
ch.savefig(fig, "pretraining_curves")

last = val_rows[-1]
n_val_pairs = PRETRAIN["eval_batches"] * PRETRAIN["batch_size"]
nsp_se = math.sqrt(0.25 / n_val_pairs)
if ch.fast:
    ch.check(ch.tr("快速模式，只用较弱的界：MLM 验证损失降到了 ln|V| 以下", "MLM validation loss fell below ln|V| (fast run: a weak bound)"),
             last["mlm_loss"] < chance["mlm_loss"] - 1.0,
             ch.tr(f"{last['mlm_loss']:.3f}，对比 ln|V| = {chance['mlm_loss']:.3f}", f"{last['mlm_loss']:.3f} vs ln|V| = {chance['mlm_loss']:.3f}"))
else:
    ch.check(ch.tr("MLM 验证损失远低于 ln|V|，不到它的一半", "MLM validation loss fell well below ln|V| (under half)"),
             last["mlm_loss"] < 0.5 * chance["mlm_loss"],
             ch.tr(f"{last['mlm_loss']:.3f}，对比 ln|V| = {chance['mlm_loss']:.3f}", f"{last['mlm_loss']:.3f} vs ln|V| = {chance['mlm_loss']:.3f}"))
    ch.check(ch.tr("MLM 验证准确率远高于 1/|V|", "MLM validation accuracy is far above 1/|V|"), last["mlm_acc"] > 0.25,
             ch.tr(f"{last['mlm_acc']:.1%}，对比 {chance['mlm_acc']:.2%}", f"{last['mlm_acc']:.1%} vs {chance['mlm_acc']:.2%}"))
    ch.check(ch.tr("NSP 验证准确率明显高于 50%，超出 5 个标准误以上", "NSP validation accuracy is clearly above 50% (more than 5 standard errors)"),
             last["nsp_acc"] > 0.5 + 5 * nsp_se,
             ch.tr(f"在 {n_val_pairs} 个留出句对上为 {last['nsp_acc']:.1%}，标准误 {nsp_se:.1%}",
                   f"{last['nsp_acc']:.1%} on {n_val_pairs} held-out pairs, SE {nsp_se:.1%}"))

# %% [markdown] lang="zh"
# ## 6. 小模型学到了什么——又没学到什么
#
# 让 MLM 头来填空。当答案取决于紧挨着它的词时（“went to Tokyo by ___”“lives in ___”），模型给正确
# 类别的词分配的概率远高于这些词在语料中的频率。我们按预训练时的格式 `[CLS] A [SEP] B [SEP]` 输入
# 句对，空位在 B 中。现在换成一个答案取决于**另一个句子**中某个词的空位：
#
#     [CLS] The food was very good. [SEP] She was ___ . [SEP]      （以及把 "good" 换成 "bad" 的同一句）
#
# 在这些故事里二者总是一致的：饭菜好吃，人就 happy、pleased 或 glad；难吃则 sad、angry 或
# disappointed。我们对 800 个训练故事中的每个表达感受的句子打分，以它的前一句作为 A：如果模型恰好
# 在评价为好时给三个好感受词的概率之和大于三个坏感受词，就算它“懂得”情感（"not" 会把好坏反过来）。

# %% [markdown] lang="en"
# ## 6. What the tiny model learnt — and what it did not
#
# Ask the MLM head to fill in a blank. Where the answer depends on the words right next to it
# ("went to Tokyo by ___", "lives in ___"), the model puts much more probability on the right kind
# of word than its frequency. We give it pairs laid out as in pretraining, `[CLS] A [SEP] B [SEP]`,
# with the blank in B. Now a blank whose answer depends on a word **in the other sentence**:
#
#     [CLS] The food was very good. [SEP] She was ___ . [SEP]      (and the same with "bad")
#
# The stories always agree here: a good meal makes people happy, pleased or glad; a bad one sad,
# angry or disappointed. We score every feeling sentence of 800 training stories, with the
# sentence before it as A: the model "knows" the sentiment if it gives more probability to the
# three good feelings than to the three bad ones exactly when the judgement was good (a "not"
# flips it).

# %%
model.eval()


def fill_mask(a, b, word):
    """Mask ``word`` in sentence b of the pair [CLS] a [SEP] b [SEP] (the layout of pretraining). Returns
    the probabilities over the vocabulary there (|V|,), the last layer's attention from there (heads, T), the ids."""
    ids, segments = build_pair_inputs(tokenizer.encode(a), tokenizer.encode(b), cls_id, sep_id, MAX_LEN)
    at = len(ids) - 1 - ids[::-1].index(first_piece(word))  # the word's last occurrence: in b
    ids[at] = mask_id  # mask the id: "[MASK]" typed into the text would leave a stray "▁" piece before it
    with torch.no_grad():
        out = model(torch.tensor([ids]), token_type_ids=torch.tensor([segments]), output_attentions=True)
    return out.mlm_logits[0, at].softmax(-1), out.attentions[-1][0, :, at], ids


def first_piece(word):
    """The id of a word's first piece as it occurs inside a sentence ("▁word")."""
    return tokenizer.encode("a " + word)[1]


def top(probs, k=4):
    values, indices = probs.topk(k)
    return ", ".join(f"{tokenizer.id_to_token(int(i)).lstrip('▁')} {float(v):.2f}" for v, i in zip(values, indices))


probes = [("Anna lives in Paris.", "One day, Anna went to Tokyo by train.", "train", ch.tr("交通工具", "means of transport"),
           {first_piece(t.split()[1]) for t, _ in TRANSPORT}),
          ("Anna is a doctor.", "Anna lives in Paris.", "Paris", ch.tr("城市", "cities"), {first_piece(c.en) for c in CITIES})]
unigram = torch.bincount(torch.tensor([i for d in train_docs for s in d for i in s]), minlength=V).double()
unigram /= unigram.sum()  # how often each token occurs: what a model that ignores the context would guess
for a, text, word, kind, ids in probes:
    probs, _, _ = fill_mask(a, text, word)
    shown_text = text.replace(word, "___")
    mass, prior = float(probs[sorted(ids)].sum()), float(unigram[sorted(ids)].sum())
    print(ch.tr(f"  {shown_text:<42} {top(probs)}   （所有{kind}：{mass:.2f}；它们在语料中的占比 {prior:.3f}）",
                f"  {shown_text:<42} {top(probs)}   (all {kind}: {mass:.2f}; their share of the corpus {prior:.3f})"))
    if not ch.fast:  # bound: bench/README.md, "ch08 across seeds" (seed 2 gave 3.2× for cities)
        ch.check_value(ch.tr(f"模型用{kind}填 '{shown_text}' 的概率是其频率的许多倍（倍数）",
                             f"the model fills '{shown_text}' with {kind} many times more often than their frequency (ratio)"),
                       mass / prior, low=2.0,
                       detail=ch.tr(f"概率 {mass:.2f}，对比频率 {prior:.3f}", f"probability {mass:.2f} vs frequency {prior:.3f}"))

good_ids = [first_piece(w) for w, _ in GOOD_FEELINGS]
bad_ids = [first_piece(w) for w, _ in BAD_FEELINGS]
good_words, bad_words = {w for w, _ in GOOD_FEELINGS}, {w for w, _ in BAD_FEELINGS}
rows_f, seg_f, at_f, pos_f = [], [], [], []
for doc in train_text[:800]:
    for i, sentence in enumerate(doc[1:], start=1):
        words = sentence.rstrip(".").split()
        hit = [w for w in words if w in good_words | bad_words]
        if not hit:
            continue
        ids, segments = build_pair_inputs(tokenizer.encode(doc[i - 1]), tokenizer.encode(sentence), cls_id, sep_id, MAX_LEN)
        at = len(ids) - 1 - ids[::-1].index(first_piece(hit[0]))  # the feeling word, in sentence B
        ids[at] = mask_id
        rows_f.append(ids)
        seg_f.append(segments)
        at_f.append(at)
        pos_f.append((hit[0] in good_words) != ("not" in words))  # "was not happy" is a bad feeling
with torch.no_grad():
    logits = model(pad_rows(rows_f, pad_id), pad_rows(seg_f, 0), pad_rows([[1] * len(r) for r in rows_f], 0)).mlm_logits
log_p = logits[torch.arange(len(rows_f)), torch.tensor(at_f)].log_softmax(-1)  # (N, |V|)
says_good = log_p[:, good_ids].logsumexp(-1) > log_p[:, bad_ids].logsumexp(-1)
feel_acc = float((says_good == torch.tensor(pos_f)).float().mean())
feel_mass = float(log_p[:, good_ids + bad_ids].logsumexp(-1).exp().mean())
feel_se = math.sqrt(0.25 / len(rows_f))
print(ch.tr(f"  感受句：{len(rows_f)} 个；六个感受词上的概率 {feel_mass:.2f}；情感判断正确率 {feel_acc:.1%}"
            f"（标准误 {feel_se:.1%}）；总是回答 'good' 的得分为 {sum(pos_f) / len(pos_f):.1%}；模型回答 'good' 的比例为 "
            f"{float(says_good.float().mean()):.1%}",
            f"  feeling sentences: {len(rows_f)}; probability on the six feeling words {feel_mass:.2f}; sentiment right {feel_acc:.1%} "
            f"(SE {feel_se:.1%}); always answering 'good' scores {sum(pos_f) / len(pos_f):.1%}; the model answers 'good' "
            f"{float(says_good.float().mean()):.1%} of the time"))
examples = {}
for judgement in ("good", "bad"):
    examples[judgement] = fill_mask(f"The food was very {judgement}.", "She was happy.", "happy")
    print(f"  {f'The food was very {judgement}. | She was ___.':<42} {top(examples[judgement][0])}")
shift = 0.5 * float((examples["good"][0] - examples["bad"][0]).abs().sum())
print(ch.tr(f"  'good' → 'bad' 只移动了 {shift:.3f} 的概率（总变差距离）",
            f"  'good' → 'bad' moves {shift:.3f} of the probability (total variation)"))
ch.check(ch.tr("感受探针在好与坏之间是平衡的", "the feeling probes are balanced between good and bad"),
         abs(sum(pos_f) / len(pos_f) - 0.5) < 0.1, ch.tr(f"{len(pos_f)} 个中 {sum(pos_f)} 个为好", f"{sum(pos_f)} good of {len(pos_f)}"))

_, attn, ids = examples["good"]
fig, ax = plt.subplots(figsize=(8, 2.2))
im = ax.imshow(attn.numpy(), cmap="viridis", aspect="auto", vmin=0)
ax.set_xticks(range(len(ids)), [tokenizer.id_to_token(i).lstrip("▁") for i in ids], rotation=45, fontsize=8)
ax.set_yticks(range(attn.shape[0]), [ch.tr(f"头 {h}", f"head {h}") for h in range(attn.shape[0])])
ax.set_title(ch.tr("最后一层：'[CLS] The food was very good. [SEP] She was ___ . [SEP]' 中空位在看哪里",
                   "last layer: where the blank looks in '[CLS] The food was very good. [SEP] She was ___ . [SEP]'"), fontsize=9)
fig.colorbar(im, ax=ax)
ch.savefig(fig, "mask_attention")

# %% [markdown] lang="zh"
# 感受词拿到了很大一部分概率，但哪一种感受却与饭菜无关：模型（几乎）每次都偏向好的感受，所以它
# “答对”的频率大约就是好感受出现的频率——抛硬币也能做得一样好——而把 "good" 换成 "bad" 几乎不改变
# 预测。注意力图说明了原因：最后一层从空位出发，看的是它自己附近的词，而不是越过句子去看 "good"。
# 把不同句子中的两个词联系起来，要比局部模式晚得多才能学会。在本章之外，我们把同一个模型训练了
# 20,000 步（约 10 分钟 CPU 时间，每段包含两三个句子）：MLM 准确率达到 84%，NSP 达到 96%，而感受
# 仍然停留在随机水平（748 个中 49.5%）。真正的 BERT 预训练要让 256 条、每条 512 个词元的序列跑上
# 一百万步，模型也要大 700 倍。**预训练教会的是目标函数所奖励的东西，并且按从易到难的顺序学会**；
# ch10 将测量这个小模型的知识对评论分类有多大价值。

# %% [markdown] lang="en"
# The feeling words get much of the probability, but which feeling does not depend on the meal:
# the model gives the good feelings the edge (almost) every time, so it is "right" about as often as
# good feelings occur — a coin would do as well — and "good" → "bad" hardly moves the
# prediction. The attention map shows why: from the blank, the last layer looks at its own
# neighbourhood, not across to "good". Relating two words in different sentences is learnt much
# later than local patterns. Outside this chapter we trained the same model for 20,000 steps
# (about 10 CPU-minutes, with segments of two or three sentences): MLM accuracy reached 84% and
# NSP 96%, and the feelings were still at chance (49.5% of 748). Real BERT pretraining runs a
# million steps of 256 sequences of 512 tokens through a model 700 times larger.
# **Pretraining teaches what the objective rewards, in the order it is easiest to learn**;
# ch10 measures what this tiny model's knowledge is worth for classifying reviews.

# %% [markdown] lang="zh"
# ## 7. 保存预训练模型
#
# 权重（safetensors）、`config.json`（采用 Hugging Face 的字段名）和分词器以原子方式写入本章输出
# 目录下的 `pretrained/`；`pretrained.json` 记录训练配方，ch10 据此判断已保存的模型是否就是它自己会
# 训练出来的那个。任何 minibert 输出头都可以加载它：
# `BertForSequenceClassification.from_pretrained(folder, id2label=...)` 保留编码器和池化层，并新建
# 一个分类器。

# %% [markdown] lang="en"
# ## 7. Saving the pretrained model
#
# The weights (safetensors), `config.json` (Hugging Face field names) and the tokenizer go to
# `pretrained/` in this chapter's output folder, written atomically; `pretrained.json` records the
# recipe, so ch10 can check that a saved model is the one it would train itself. Any minibert head
# loads it: `BertForSequenceClassification.from_pretrained(folder, id2label=...)` keeps the encoder
# and the pooler and starts a new classifier.

# %%
saved = save_checkpoint(ch.out / "pretrained", model, config.to_dict(), tokenizer)
(ch.out / "pretrained.json").write_text(json.dumps(RECIPE, indent=1) + "\n", encoding="utf-8")
reloaded = BertForPreTraining.from_pretrained(saved).eval()
probe = data("val", 0)
with torch.no_grad():
    ch.check_close(ch.tr("保存的模型重新加载后给出相同的 MLM logits", "the saved model gives the same MLM logits when loaded back"),
                   reloaded(**probe).mlm_logits,
                   model(**probe).mlm_logits, atol=1e-6)
    classifier = BertForSequenceClassification.from_pretrained(saved, id2label={0: "neg", 1: "pos"}).eval()
    ch.check_close(ch.tr("由它构建的分类器从相同的编码器起步", "a classifier built from it starts with the same encoder"),
                   classifier.bert(probe["input_ids"], probe["token_type_ids"], probe["attention_mask"]).last_hidden_state,
                   model.bert(probe["input_ids"], probe["token_type_ids"], probe["attention_mask"]).last_hidden_state, atol=1e-6)
print(ch.tr(f"  已保存到 {saved}：{sorted(p.name for p in saved.iterdir())}", f"  saved to {saved}: {sorted(p.name for p in saved.iterdir())}"))

# %% [markdown] lang="zh"
# ## 8. 换一份语料：从笔记里学会褒贬
#
# §6 表明，在世界的故事上预训练的模型并不知道哪些评价是好的。原因不在模型，而在**语料**：故事中，
# 一个评价和它引起的感受隔着一句话，而且评价常带否定和转折。随书数据里还有另一份无标签文本：
# 8,000 条短**笔记**（`data/notes_en.txt`），每条两句，每句用 "and" 连接两个同一褒贬的形容词，
# 并说出它们引起的感受：
#
#     At Lucky Cinema, the movie was marvellous and fantastic, so I was happy.
#
# 笔记用到 164 个表达评价的形容词，其中 127 个从不出现在故事和 `reviews_*` 评论里（它们也是 ch10
# 的“短评”所用的词）。"A and B" 连接的两个形容词褒贬相同（Hatzivassiloglou 与 McKeown，1997），
# 句末的感受又点明了褒贬：要预测被遮住的 "happy"，或被遮住的 "marvellous"，模型就得知道哪些词是
# 好的。这就是预训练能从无标签文本中学到的东西——前提是文本里确实写着它。
#
# 配方与 §5 有四处不同，每一处都是在 `bench/` 中测量后才定下来的（见 bench/README.md）：
#
# * **分词器有 1,200 个词元**，在故事和笔记上训练：§1 的 700 个词元会把许多形容词拆成几段（见下面的
#   计数），而一个被拆开的词，它的一段可以由另一段猜出来，用不着理解上下文；
# * **恒定学习率 2e-3**（30 步预热之后），没有余弦衰减；
# * **遮住 30% 的词元**，而不是 15%：每一步有更多的感受词要预测；
# * 批次大小 128，750 步（在两核 CPU 上约 50 秒）。
#
# 学习的过程很特别：MLM 损失先停在一个平台上，然后**突然下降**——那正是模型学会把空位与前面的
# 形容词联系起来的时刻。平台有多长取决于种子：批次为 64 时，5 个种子中有一个要到 1,500 步以后才下降；
# 批次 128、750 步（句对总数与之相同，但每一步的梯度更稳）在我们测过的每个种子上都学会了（bench/README.md）。

# %% [markdown] lang="en"
# ## 8. Another corpus: learning good from bad from notes
#
# §6 showed that the model pretrained on the world's stories does not know which judgements are
# good. The reason is not the model but the **corpus**: in a story a judgement and the feeling it
# causes are a sentence apart, and judgements are often negated or contrasted. The bundled data
# holds another unlabelled text: 8,000 short **notes** (`data/notes_en.txt`), two sentences each,
# each joining two adjectives of one sentiment with "and" and naming the feeling they caused:
#
#     At Lucky Cinema, the movie was marvellous and fantastic, so I was happy.
#
# The notes use 164 adjectives of opinion, 127 of which never occur in the stories or in the
# `reviews_*` reviews (they are the words of ch10's *short reviews*). Two adjectives joined by
# "and" share their sentiment (Hatzivassiloglou and McKeown, 1997), and the feeling at the end
# names it: to predict a masked "happy", or a masked "marvellous", the model has to know which
# words are good. This is what pretraining can learn from unlabelled text — provided the text says it.
#
# The recipe differs from §5's in four ways, each settled by measurements in `bench/` (see
# bench/README.md):
#
# * **a tokenizer of 1,200 pieces**, trained on the stories and the notes: §1's 700 pieces split
#   many adjectives into several (counted below), and one piece of a split word can be guessed
#   from the other without understanding the context;
# * **a constant learning rate of 2e-3** (after 30 warm-up steps), no cosine decay;
# * **30% of the tokens masked**, not 15%: more feelings to predict per step;
# * batches of 128, 750 steps (about 50 s on two CPU cores).
#
# The learning has a peculiar shape: the MLM loss sits on a plateau, then **drops suddenly** —
# the moment the model learns to relate the blank to the adjectives before it. How long the
# plateau lasts depends on the seed: with batches of 64, one seed in five had not dropped after
# 1,500 steps; batches of 128 for 750 steps (as many pairs, steadier gradients) learnt it on every
# seed we measured (bench/README.md).

# %%
from minibert.recipes import notes_recipe, pretrain_on_notes, train_notes_tokenizer  # noqa: E402
from minitransformer.data import load_world_notes  # noqa: E402
from minitransformer.data.world_lexicon import OPINION_WORDS  # noqa: E402
from minitransformer.data.world_opinions import sample_note  # noqa: E402

notes = load_world_notes("en")
print(ch.tr(f"  {len(notes):,} 条笔记，{sum(len(d) for d in notes):,} 个句子；前两条：",
            f"  {len(notes):,} notes, {sum(len(d) for d in notes):,} sentences; the first two:"))
for doc in notes[:2]:
    for sentence in doc:
        print(f"    {sentence}")
opinion = sorted({a.en for group in OPINION_WORDS.values() for a in group})
NOTES = notes_recipe(ch.fast)  # minibert.recipes.NOTES_RECIPE; with --fast 40 steps of 16 pairs
notes_tokenizer = train_notes_tokenizer(NOTES, "en")
split = {name: sum(len(t.encode("a " + w)) > 2 for w in opinion) for name, t in (("700", tokenizer), ("1200", notes_tokenizer))}
print(ch.tr(f"  {len(opinion)} 个评价形容词中被拆成几段的：§1 的 700 词元分词器 {split['700']} 个，1,200 词元的分词器 {split['1200']} 个",
            f"  opinion adjectives split into several pieces, of {len(opinion)}: {split['700']} by §1's 700-piece tokenizer, "
            f"{split['1200']} by the 1,200-piece one"))
ch.check(ch.tr("1,200 词元的分词器让每个评价形容词保持完整", "the 1,200-piece tokenizer keeps every opinion adjective whole"),
         split["1200"] == 0, ch.tr(f"{split['1200']} 个被拆开", f"{split['1200']} split"))

notes_folder, notes_history = pretrain_on_notes(ch.out, NOTES, lang="en", seed=ch.seed_for(0), tokenizer=notes_tokenizer)
notes_model = BertForPreTraining.from_pretrained(notes_folder).eval()
notes_train = [r for r in notes_history if r["split"] == "train"]
notes_val = [r for r in notes_history if r["split"] == "val"]
print(ch.tr("   步数   MLM 损失  MLM 准确率  NSP 准确率（验证集）", "   step   MLM loss  MLM acc   NSP acc   (validation)"))
for r in notes_val:
    print(f"  {r['step']:5d}   {r['mlm_loss']:8.3f}  {r['mlm_acc']:7.1%}   {r['nsp_acc']:7.1%}")

# %% [markdown] lang="zh"
# 下面用同样的方式考一考两个模型：在没见过的笔记里遮住感受词，看 MLM 输出头把更多概率给了好的感受
# （happy、pleased、glad）还是坏的感受（sad、angry、disappointed）。"总是回答好" 只能得 50% 左右。

# %% [markdown] lang="en"
# Now quiz both models the same way: in notes they have never seen, mask the feeling and ask
# whether the MLM head gives more probability to the good feelings (happy, pleased, glad) or to the
# bad ones (sad, angry, disappointed). Always answering "good" scores about 50%.

# %%
def feeling_quiz(bert, tok, n=300):
    """Share of ``n`` fresh notes whose masked feeling the MLM head puts on the right side (good vs bad),
    and the (probability of good, text) of the first three."""
    good = [tok.encode("a " + w)[1] for w, _ in GOOD_FEELINGS]
    bad = [tok.encode("a " + w)[1] for w, _ in BAD_FEELINGS]
    rng = random.Random(20260 + ch.seed)  # notes the pretraining never saw (another generator)
    rows, segs, at, truth, texts = [], [], [], [], []
    for _ in range(n):
        note = sample_note(rng)
        first = note.sentences()[0].text("en")
        ids = tok.encode(first)
        k = max(i for i, t in enumerate(ids) if t in good + bad)  # the feeling, one piece
        ids[k] = tok.mask_id
        row, seg = build_pair_inputs(ids, tok.encode(note.sentences()[1].text("en")), tok.cls_id, tok.sep_id, MAX_LEN)
        rows.append(row)
        segs.append(seg)
        at.append(k + 1)  # after [CLS]
        truth.append(note.parts[0].adjectives[0].positive)
        texts.append(first)
    with torch.no_grad():
        logits = bert(pad_rows(rows, tok.pad_id), pad_rows(segs, 0), pad_rows([[1] * len(r) for r in rows], 0)).mlm_logits
    p = logits[torch.arange(n), torch.tensor(at)].softmax(-1)
    p_good = p[:, good].sum(-1) / (p[:, good].sum(-1) + p[:, bad].sum(-1))
    acc = float(((p_good > 0.5) == torch.tensor(truth)).float().mean())
    return acc, [(float(p_good[i]), texts[i]) for i in range(3)]


quiz = {name: feeling_quiz(bert, tok) for name, bert, tok in
        (("§5", model, tokenizer), ("§8", notes_model, notes_tokenizer))}
for name, (acc, shown) in quiz.items():
    print(ch.tr(f"  {name} 的模型：300 条新笔记中感受判断正确 {acc:.1%}", f"  {name}'s model: feeling right in {acc:.1%} of 300 fresh notes"))
    for p_good, text in shown:
        print(f"      P(good) = {p_good:.2f}   {text}")

fig, ax = plt.subplots(figsize=(7, 3.3))
ax.plot([r["step"] for r in notes_train], [r["mlm_loss"] for r in notes_train], lw=1, label=ch.tr("训练", "train"))
ax.plot([r["step"] for r in notes_val], [r["mlm_loss"] for r in notes_val], "o-", label=ch.tr("验证", "validation"))
ax.set(xlabel=ch.tr("步数", "step"), ylabel=ch.tr("MLM 损失", "MLM loss"),
       title=ch.tr("在笔记上预训练：平台，然后突然下降", "pretraining on the notes: a plateau, then a sudden drop"))
ax.legend(fontsize=8)
ch.savefig(fig, "notes_pretraining_curve")
if not ch.fast:
    ch.check_value(ch.tr("在笔记上预训练的模型知道哪些形容词是好的：新笔记的感受判断正确率",
                         "the model pretrained on the notes knows which adjectives are good (feeling right on fresh notes)"),
                   quiz["§8"][0], low=0.8, detail=ch.tr(f"§5 的模型：{quiz['§5'][0]:.1%}", f"§5's model: {quiz['§5'][0]:.1%}"))
print(ch.tr(f"  已保存到 {notes_folder}（ch10 §4 用它）", f"  saved to {notes_folder} (ch10 §4 uses it)"))

# %% [markdown] lang="zh"
# ## 小结
#
# * NSP 句对 `[CLS] A [SEP] B [SEP]` 及其片段编号：正负各半，负样本来自另一篇文档；
# * BERT 的掩码规则 15% · 80/10/10，在 100,000 多个词元上与闭式解对照测量；动态掩码；
# * MLM 和 NSP 两个输出头及其损失，都从随机水平（ln|V|、ln 2）起步；
# * 用共享训练器预训练了一个 15.8 万参数的 BERT：两个损失都在下降，两个准确率都远高于随机水平
#   ——同时也测量了约 600 步训练所能教会的东西的局限；
# * 同一个架构在笔记上预训练，学会了哪些形容词是好的：预训练学到什么，取决于语料里写着什么。
#
# 对原文预训练任务列表的更正：**MLM 和 NSP 是任务；BERT 是模型。**
# 下一章 ch10 将微调这个模型来给评论分类，并对它进行评估。

# %% [markdown] lang="en"
# ## What we built
#
# * NSP pairs `[CLS] A [SEP] B [SEP]` with segment ids: 50/50, negatives from another document;
# * BERT's masking rule, 15% · 80/10/10, measured against its closed forms over 100,000+ tokens;
#   dynamic masking;
# * the MLM and NSP heads and losses, starting at chance (ln|V|, ln 2);
# * a 158k-parameter BERT pretrained with the shared trainer: both losses fall, both accuracies
#   rise well above chance — and a measured limit of what ~600 steps teach;
# * the same architecture pretrained on the notes, which learns which adjectives are good: what
#   pretraining learns depends on what the corpus says.
#
# The article's list of pretraining tasks, corrected: **MLM and NSP are the tasks; BERT is the model.**
# Next, ch10 fine-tunes this model to classify reviews and evaluates it.

# %%
ch.done()
