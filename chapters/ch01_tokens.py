# %% [markdown] lang="zh"
# # 第 1 章 · 数据准备：从文本到词元、编号和向量（原文 §3.2.1）
#
# 原文 §3.2.1 说明了预训练模型需要什么样的数据：**预训练（pretraining）需要海量无标注文本**，
# **微调（fine-tuning）只需少量标注数据**。可是无论哪一种，模型都读不懂文字本身，文本必须先变成数字：
#
#     文本  →  词元  →  编号  →  向量
#     "Anna lives in Paris."  →  ▁Anna ▁lives ▁in ▁Paris .  →  五个整数  →  一张 (5, C) 的浮点数表
#
# 本章用随书附带的中英双语数据搭起这条流水线，并比较四种把文本切分成词元（token）的方法：
# 按字符切分、sentencepiece 的 BPE、sentencepiece 的 unigram，以及 BERT 的 WordPiece。
# 比较的指标有四个：每句的词元数、词表（vocabulary）大小、未知词元的个数，以及
# decode(encode(x)) 能否原样还原 x。随后介绍特殊词元（[PAD] [UNK] [CLS] [SEP] [MASK]、
# <|endoftext|>），最后完成从编号到向量的一步：`nn.Embedding` 查表，等价于独热（one-hot）向量
# 乘以一个权重矩阵。

# %% [markdown] lang="en"
# # Chapter 1 · Data preparation — from text to tokens, ids and vectors (Article §3.2.1)
#
# §3.2.1 says what data a pretrained model needs: **a lot of unlabelled text for pretraining**
# and **a little labelled data for fine-tuning**. Before a model can read either, text has to
# become numbers:
#
#     text  →  tokens  →  ids  →  vectors
#     "Anna lives in Paris."  →  ▁Anna ▁lives ▁in ▁Paris .  →  five integers  →  a (5, C) table of floats
#
# In this chapter we build that pipeline on the bundled English / Chinese data and compare four
# ways of cutting text into tokens — characters, sentencepiece BPE, sentencepiece unigram and
# BERT's WordPiece — by tokens per sentence, vocabulary size, unknown tokens and whether
# decode(encode(x)) gives x back. Then the special tokens ([PAD] [UNK] [CLS] [SEP] [MASK],
# <|endoftext|>) and the last step, ids → vectors: an `nn.Embedding` lookup is a one-hot vector
# times a weight matrix.

# %%
from collections import Counter

import torch
import torch.nn as nn
import torch.nn.functional as F

from chapters.book import Chapter, plt
from minibert.wordpiece import WordPieceTokenizer, basic_tokenize
from minitransformer.data import (
    BERT_SPECIALS, GPT_SPECIALS, CharTokenizer, SentencePieceTokenizer, load_tokenizer, load_world_documents,
    load_world_ner, load_world_reviews, load_world_translation,
)

ch = Chapter("ch01_tokens")

# %% [markdown] lang="zh"
# ## 1. 随书数据：无标注数据与标注数据
#
# `data/` 目录里是一个小型的、程序生成的双语“世界”（见 `data/README.md`）。这些文件的划分
# 恰好对应 §3.2.1 的说法：
#
# * **无标注数据**：`world_en.txt`、`world_zh.txt`，共 3,300 篇文档，每行一句，用于预训练
#   （BERT 的掩码语言模型，GPT 的下一个词元预测）；
# * **标注数据**：`reviews_{en,zh}.*.tsv`（文本 + pos/neg 情感标签）、`ner_{en,zh}.*.conll`
#   （每个词元一个标签）和 `translation.*.tsv`（英文句子及其中文译文），用于微调和评估。
#
# `world_zh.txt` 的第 k 行是 `world_en.txt` 第 k 行的译文。标注文件中的验证集和测试集样本
# 都不会出现在无标注文本里，因此预训练阶段永远见不到测试句子。

# %% [markdown] lang="en"
# ## 1. The bundled data: unlabelled and labelled
#
# `data/` holds a small generated bilingual world (see `data/README.md`). Its files split exactly
# as §3.2.1 describes:
#
# * **unlabelled** — `world_en.txt`, `world_zh.txt`: 3,300 documents, one sentence per line, for
#   pretraining (masked language modelling for BERT, next-token prediction for GPT);
# * **labelled** — `reviews_{en,zh}.*.tsv` (text + pos/neg), `ner_{en,zh}.*.conll` (a tag per
#   token) and `translation.*.tsv` (English + its Chinese), for fine-tuning and evaluation.
#
# Line k of `world_zh.txt` translates line k of `world_en.txt`. No validation or test item of
# the labelled files occurs in the unlabelled text, so pretraining never sees a test sentence.

# %%
docs = {lang: load_world_documents(lang) for lang in ("en", "zh")}
sentences = {lang: [s for d in docs[lang] for s in d] for lang in ("en", "zh")}
reviews = load_world_reviews("en", "train")
ner = load_world_ner("zh", "train")
pairs_test = load_world_translation("test")
print(ch.tr(f"  无标注数据：{len(docs['en'])} 篇文档，每种语言 {len(sentences['en'])} 句",
            f"  unlabelled: {len(docs['en'])} documents, {len(sentences['en'])} sentences per language"))
print(f"    en: {sentences['en'][0]!r}\n    zh: {sentences['zh'][0]!r}")
print(ch.tr(f"  标注数据：{len(reviews)} 条训练评论，例如 {reviews[1].text!r} -> {reviews[1].label}",
            f"  labelled: {len(reviews)} training reviews, e.g. {reviews[1].text!r} -> {reviews[1].label}"))
print(ch.tr(f"            {len(ner)} 个中文命名实体识别句子，例如 ",
            f"            {len(ner)} Chinese NER sentences, e.g. ")
      + " ".join(f"{t}/{g}" for t, g in zip(ner[0].tokens[:6], ner[0].tags[:6])))
print(ch.tr(f"            {len(pairs_test)} 个测试翻译句对，例如 {pairs_test[0]}",
            f"            {len(pairs_test)} test translation pairs, e.g. {pairs_test[0]}"))

ch.check(ch.tr("world_en.txt 与 world_zh.txt 逐行对齐", "world_en.txt and world_zh.txt align line by line"),
         [len(d) for d in docs["en"]] == [len(d) for d in docs["zh"]],
         ch.tr(f"各 {len(sentences['en'])} 句", f"{len(sentences['en'])} sentences each"))
unlabelled = set(sentences["en"]) | set(sentences["zh"])
held_out = [e.text for split in ("val", "test") for lang in ("en", "zh") for e in load_world_reviews(lang, split)]
held_out += [s for pair in pairs_test for s in pair]
ch.check(ch.tr("留出的评论和测试译文都没有出现在无标注文本中",
               "no held-out review or test translation occurs in the unlabelled text"),
         not any(t in unlabelled for t in held_out),
         ch.tr(f"检查了 {len(held_out)} 条留出文本", f"{len(held_out)} held-out texts checked"))

# %% [markdown] lang="zh"
# ## 2. 四种分词器
#
# * **按字符**：每个字符一个词元。词表极小，序列很长；对中文来说一个汉字本身就有意义，对英文
#   来说单个字母则没有。
# * **BPE**（字节对编码，byte-pair encoding；GPT-2、RoBERTa 使用）：从字符出发，反复把**出现
#   最频繁的相邻词元对合并**成一个新词元，直到词表填满。
# * **unigram**（sentencepiece 的一元语言模型；T5、ALBERT 使用）：从大量候选片段出发，反复**删去
#   对语料似然损失最小的片段**；切分一段文本时，取概率最大的那种切法。
# * **WordPiece**（BERT 使用）：先切成单词（每个汉字单独算一个词），转成小写，再对每个词从左到右
#   贪心地切出词表里最长的片段；词内部的片段写作 `##piece`。
#
# BPE 和 unigram 由 sentencepiece（一个不是本书编写的库）训练。它用 `▁` 标记词的开头，因此空格
# 在编码、解码的往返中不会丢失。所有分词器（tokenizer）都只在无标注文本上训练。
# 使用 `--fast` 时只用前 2,000 句训练。

# %% [markdown] lang="en"
# ## 2. Four tokenizers
#
# * **characters** — one token per character. Tiny vocabulary, long sequences; for Chinese a
#   character is already a meaningful unit, for English it is not.
# * **BPE** (byte-pair encoding, GPT-2, RoBERTa) — start from characters and repeatedly *merge the
#   most frequent adjacent pair* into a new token until the vocabulary is full.
# * **unigram** (sentencepiece, T5, ALBERT) — start from many candidate pieces and repeatedly
#   *drop the pieces whose loss hurts the corpus likelihood least*; a text is cut into its most
#   probable segmentation.
# * **WordPiece** (BERT) — split into words first (and each Chinese character into a word of its
#   own), lower-case, then cut each word greedily into the longest vocabulary pieces; a piece
#   inside a word is written `##piece`.
#
# sentencepiece (a library nobody here wrote) trains BPE and unigram. It marks a word start with
# `▁`, so spaces survive the round trip. We train every tokenizer on the unlabelled text only.
# With `--fast` we train on the first 2,000 sentences.

# %%
n_train = ch.steps(len(sentences["en"]), 2000)
train_text = {lang: sentences[lang][:n_train] for lang in ("en", "zh")}
VOCAB = 500  # asked of BPE, unigram and WordPiece; an upper bound: a small corpus may give fewer

tokenizers = {lang: {} for lang in ("en", "zh")}
for lang in ("en", "zh"):
    tokenizers[lang]["char"] = CharTokenizer.train(train_text[lang], specials=BERT_SPECIALS)
    for kind in ("bpe", "unigram"):
        tokenizers[lang][kind] = SentencePieceTokenizer.train(train_text[lang], VOCAB, model_type=kind)

# %% [markdown] lang="zh"
# ### 在这里学一个 WordPiece 词表
#
# BERT 的分词器（`minibert.wordpiece.WordPieceTokenizer`）读取一个 `vocab.txt`，每行一个词元。
# Google 从未公开生成 BERT 词表的代码；Hugging Face 的 `tokenizers` 库用 BPE 的办法学习词表，
# 我们也这样做：先按 BERT 的基本分词（转小写、切开标点、每个汉字单独成词）统计词频，从字符出发
# （词首字符记作 `c`，词内字符记作 `##c`），反复把出现最频繁的相邻词元对加入词表，成为新词元。
# （WordPiece 的原始论文 Schuster & Nakajima 2012 则按合并后语料似然的提升来给词元对排序，
# 约为 count(ab) / (count(a)·count(b))。）
#
# WordPiece 与 BPE 的真正区别在**编码**：BPE 按顺序重放它学到的合并规则，WordPiece 则一次又一次
# 地从左边取出词表中最长的片段（见 `minibert/wordpiece.py` 的第 2 阶段）。

# %% [markdown] lang="en"
# ### A WordPiece vocabulary, learnt here
#
# BERT's tokenizer (`minibert.wordpiece.WordPieceTokenizer`) reads a `vocab.txt`, one token per
# line. Google never published the code that made BERT's vocabulary. Hugging Face's `tokenizers`
# learns one the BPE way, which is what we do: count words after BERT's basic tokenization
# (lower-case, punctuation split off, one word per Chinese character), start from the characters
# (`c` at a word start, `##c` inside a word) and repeatedly add the most frequent adjacent pair as
# a new token. (The original WordPiece paper, Schuster & Nakajima 2012, ranks pairs by how much
# they raise the likelihood of the corpus, ≈ count(ab) / (count(a)·count(b)), instead.)
#
# What makes WordPiece different from BPE is the *encoding*: BPE replays its merges in order,
# WordPiece takes the longest vocabulary piece from the left, again and again (stage 2 in
# `minibert/wordpiece.py`).

# %%
def word_counts(texts):
    """Counts of BERT basic-tokenized words (each distinct space-separated chunk tokenized once)."""
    chunks = Counter(chunk for t in texts for chunk in t.split())
    counts = Counter()
    for chunk, n in chunks.items():
        for w in basic_tokenize(chunk):
            counts[w] += n
    return counts


def learn_wordpiece_vocab(counts, vocab_size):
    """Specials, then the characters (c and ##c), then merged pairs, most frequent first, until
    ``vocab_size`` tokens or every word is one token. Ties go to the alphabetically smaller pair.
    Returns (vocab, number of tokens before the first merge)."""
    splits = {w: [w[0]] + ["##" + c for c in w[1:]] for w in counts}
    vocab = list(BERT_SPECIALS.values()) + sorted({p for s in splits.values() for p in s})
    n_base = len(vocab)
    while len(vocab) < vocab_size:
        pair_n = Counter()
        for w, pieces in splits.items():
            for pair in zip(pieces, pieces[1:]):
                pair_n[pair] += counts[w]
        if not pair_n:
            break  # every word is a single token
        best = min(pair_n, key=lambda ab: (-pair_n[ab], ab))
        merged = best[0] + best[1][2:]  # "di" + "##nner" -> "dinner"; "##in" + "##g" -> "##ing"
        vocab.append(merged)
        for w, pieces in splits.items():
            i, out = 0, []
            while i < len(pieces):
                if i + 1 < len(pieces) and (pieces[i], pieces[i + 1]) == best:
                    out.append(merged)
                    i += 2
                else:
                    out.append(pieces[i])
                    i += 1
            splits[w] = out
    return vocab, n_base


for lang in ("en", "zh"):
    vocab, n_base = learn_wordpiece_vocab(word_counts(train_text[lang]), VOCAB)
    vocab_file = ch.out / f"wordpiece_{lang}" / "vocab.txt"
    vocab_file.parent.mkdir(parents=True, exist_ok=True)
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizers[lang]["wordpiece"] = WordPieceTokenizer.from_file(vocab_file)
    print(ch.tr(f"  {lang}：{n_base} 个特殊词元和字符，{len(vocab) - n_base} 次合并；最早的几次合并：{vocab[n_base:n_base + 8]}",
                f"  {lang}: {n_base} specials and characters, {len(vocab) - n_base} merges; first merges: {vocab[n_base:n_base + 8]}"))

wp = tokenizers["en"]["wordpiece"]
wp.save(ch.out / "wordpiece_en_saved")
ch.check(ch.tr("WordPiece 分词器可以保存并重新加载（load_tokenizer）",
               "WordPiece tokenizer saves and loads back (load_tokenizer)"),
         load_tokenizer(ch.out / "wordpiece_en_saved").encode("Anna lives in Paris.") == wp.encode("Anna lives in Paris."))

# %% [markdown] lang="zh"
# 同一个句子分别交给每种分词器：

# %% [markdown] lang="en"
# The same sentence through each tokenizer:

# %%
examples = {"en": "Wang Fang had dinner at Sun Restaurant.", "zh": "王芳在太阳餐厅吃了晚饭。"}
KINDS = ("char", "bpe", "unigram", "wordpiece")
for lang, text in examples.items():
    print(f"  {text}")
    for kind in KINDS:
        toks = tokenizers[lang][kind].tokenize(text)
        print(ch.tr(f"    {kind:9s} {len(toks):2d} 个词元：", f"    {kind:9s} {len(toks):2d} tokens: ") + " ".join(toks))

# %% [markdown] lang="zh"
# 有两点值得注意。第一，sentencepiece 只在空格处划分单词，而中文没有空格，所以它学到的中文 BPE
# 片段会跨越词的边界（如 `吃了晚饭`）。第二，在这么小的语料上，sentencepiece 的 unigram 训练器
# 保留的长片段很少：英文只得到约 300 个片段，虽然我们要求的是 500 个（要求 1,000 个结果也一样）。
# 可见 `vocab_size` 只是一个上限。
#
# 下面用 BPE 把整条流水线在一个句子上走一遍：文本 → 词元 → 编号，再还原回来。

# %% [markdown] lang="en"
# Two things to notice. sentencepiece cuts text into words at spaces only, and Chinese has none:
# its Chinese BPE pieces run across word boundaries (`吃了晚饭`, "ate dinner"). And on this small
# corpus sentencepiece's unigram trainer keeps few long pieces: it stopped at ~300 English pieces
# although we asked for 500 (asking for 1,000 gives the same) — `vocab_size` is an upper bound.
#
# The whole pipeline on one sentence, with BPE: text → tokens → ids, and back.

# %%
bpe = tokenizers["en"]["bpe"]
text = "Anna lives in Paris."
ids = bpe.encode(text)
print(ch.tr(f"  文本：{text!r}", f"  text:   {text!r}"))
print(ch.tr(f"  词元：{bpe.tokenize(text)}", f"  tokens: {bpe.tokenize(text)}"))
print(ch.tr(f"  编号：{ids}", f"  ids:    {ids}"))
print(ch.tr(f"  还原：{bpe.decode(ids)!r}", f"  back:   {bpe.decode(ids)!r}"))
ch.check(ch.tr("词元 ↔ 编号：在这个句子上 id_to_token 与 token_to_id 互为逆映射",
               "tokens ↔ ids: id_to_token and token_to_id are inverse on the sentence"),
         [bpe.token_to_id(bpe.id_to_token(i)) for i in ids] == ids and bpe.decode(ids) == text)

# %% [markdown] lang="zh"
# ## 3. 每句词元数、词表、未知词元与可还原性
#
# 我们在 `translation.test.tsv` 的 400 个测试句对上度量（这些文本没有参与任何分词器的训练）。
# “完全还原”指 `decode(encode(x)) == x` 严格成立。

# %% [markdown] lang="en"
# ## 3. Tokens per sentence, vocabulary, unknowns, round trip
#
# We measure on the 400 test pairs of `translation.test.tsv` (text no tokenizer was trained on).
# Round trip means `decode(encode(x)) == x` exactly.

# %%
test_text = {"en": [en for en, _ in pairs_test], "zh": [zh for _, zh in pairs_test]}
stats, lengths = {}, {}
print(ch.tr("  " + " " * 13 + "  词表" + "      词元/句" + "  [UNK]" + "    完全还原",
            f"  {'':13s}{'vocab':>6s} {'tokens/sent':>12s} {'[UNK]':>6s} {'round trip':>11s}"))
for lang in ("en", "zh"):
    for kind in KINDS:
        tok = tokenizers[lang][kind]
        ids = [tok.encode(t) for t in test_text[lang]]
        lengths[lang, kind] = [len(i) for i in ids]
        n_unk = sum(i.count(tok.unk_id) for i in ids)
        exact = sum(tok.decode(i) == t for i, t in zip(ids, test_text[lang]))
        stats[lang, kind] = dict(vocab=tok.vocab_size, mean=sum(lengths[lang, kind]) / len(ids), unk=n_unk, exact=exact)
        s = stats[lang, kind]
        print(f"  {lang} {kind:10s}{s['vocab']:6d} {s['mean']:12.1f} {s['unk']:6d} {exact:6d}/{len(ids)}")

for lang in ("en", "zh"):
    for kind in ("char", "bpe", "unigram"):
        ch.check(ch.tr(f"{lang} {kind}：每个测试句都满足 decode(encode(x)) == x",
                       f"{lang} {kind}: decode(encode(x)) == x for every test sentence"),
                 stats[lang, kind]["exact"] == len(test_text[lang]))
    ch.check_value(ch.tr(f"{lang}：BPE 需要的词元比字符少（BPE 与字符的每句词元数之比）",
                         f"{lang}: BPE needs fewer tokens than characters (BPE / characters per sentence)"),
                   stats[lang, "bpe"]["mean"] / stats[lang, "char"]["mean"], high=1.0,
                   detail=ch.tr(f"每句 {stats[lang, 'bpe']['mean']:.1f} 对 {stats[lang, 'char']['mean']:.1f}",
                                f"{stats[lang, 'bpe']['mean']:.1f} vs {stats[lang, 'char']['mean']:.1f} per sentence"))
ch.check_value(ch.tr("英文按字符切分的词元数约是 BPE 片段的 4 倍（字符数 / BPE 片段数）",
                     "English characters: ~4× more tokens than BPE pieces (characters / BPE)"),
               stats["en", "char"]["mean"] / stats["en", "bpe"]["mean"], low=2.5)
ch.check(ch.tr("中文 WordPiece = 每个字一个词元（BERT 把每个汉字单独切开）",
               "Chinese WordPiece = one token per character (BERT splits every 汉字 off)"),
         lengths["zh", "wordpiece"] == lengths["zh", "char"])

# %% [markdown] lang="zh"
# 只有 WordPiece 无法还原原文：BERT 的基本分词器会转小写（bert-base-**uncased**）、去掉重音符号、
# 在标点两侧加空格，而 `decode` 又用空格把单词连起来，所以还原出来的是**规范化之后**的文本。
# 这对分类或序列标注没有影响，对生成任务（GPT）却不行。这正是 GPT-2 采用字节级 BPE
# （`minigpt/bpe.py`）的原因：它能一字不差地拼出任意字符串。

# %% [markdown] lang="en"
# WordPiece is the only one that does not round-trip: BERT's basic tokenizer lower-cases
# (bert-base-**uncased**), strips accents and puts spaces around punctuation, and `decode` joins
# words with spaces. What comes back is the *normalised* text. For classification or tagging
# that is fine; for generation (GPT) it is not, which is why GPT-2 uses a byte-level BPE
# (`minigpt/bpe.py`) that can spell any string exactly.

# %%
x = "Wang Fang had dinner at Sun Restaurant."
back = wp.decode(wp.encode(x))
print(f"  {x!r} -> {back!r}")
normalised_ok = all(wp.decode(wp.encode(t)) == " ".join(basic_tokenize(t)) for t in test_text["en"])
ch.check(ch.tr("WordPiece：decode(encode(x)) 得到的是转小写、切开标点后的文本，而不是 x",
               "WordPiece: decode(encode(x)) == the lower-cased, punctuation-split text, not x"),
         normalised_ok and back != x and back == "wang fang had dinner at sun restaurant .")

# %% [markdown] lang="zh"
# ### 未知词元（未登录词）
#
# 训练时从未见过的字符没有编号。字符分词器把它映射成 [UNK]；sentencepiece 把一串连续的未知字符
# 合并成一个 [UNK]（李明 → 一个词元）；无论哪种，decode 都无法把它还原。WordPiece 会先去掉重音
# （Zoë → zoe，不再是未知词，但也不再是 Zoë），仍然拼不出来的单词则**整个词变成一个 [UNK]**
# （Østerbro：Ø 无法分解）。设置 `byte_fallback=True` 后，sentencepiece 会把没见过的字符拆成
# 它的 UTF-8 字节（`<0xE2>` …），代价是多出 256 个编号：从此没有未知词元，任何文本都能完全还原。
# 英文分词器读中文时只会看到一串未知词元——这也是多语言模型要在所有语言上共同训练一个词表的
# 原因之一。

# %% [markdown] lang="en"
# ### Unknown tokens
#
# A character never seen in training has no id. The character tokenizer maps it to [UNK];
# sentencepiece folds a run of unknown characters into one [UNK] (李明 → one token); either way
# decode cannot give it back. WordPiece first strips accents (Zoë → zoe, no longer unknown but no
# longer Zoë), and a word it still cannot spell becomes **one [UNK] for the whole word** (Østerbro:
# Ø does not decompose). With `byte_fallback=True`, sentencepiece spells an unseen character as
# its UTF-8 bytes (`<0xE2>` …) at the cost of 256 extra ids: no unknown token, and the round trip
# holds for any text. An English tokenizer meets Chinese as nothing but unknowns — one reason
# multilingual models train one vocabulary on all their languages.

# %%
strange = "Zoë met 李明 in Østerbro ☕."
for kind in KINDS:
    toks = tokenizers["en"][kind].tokenize(strange)
    print(f"  en {kind:9s} [UNK] × {toks.count('[UNK]')}: " + " ".join(toks))
bytes_bpe = SentencePieceTokenizer.train(train_text["en"], VOCAB + 256, model_type="bpe", byte_fallback=True)
ids = bytes_bpe.encode(strange)
print(ch.tr("  en bpe+字节回退：", "  en bpe+bytes: ") + " ".join(bytes_bpe.tokenize(strange)))
ch.check(ch.tr("WordPiece：含未知字符的单词整体变成一个 [UNK]；重音会先被去掉",
               "WordPiece: a word with an unknown character is one [UNK]; accents are stripped first"),
         wp.tokenize("Østerbro") == ["[UNK]"] and wp.tokenize("Zoë") == wp.tokenize("zoe"))
ch.check(ch.tr("不开字节回退的 sentencepiece：没见过的字符变成 [UNK]",
               "sentencepiece without byte fallback: unseen characters become [UNK]"),
         tokenizers["en"]["bpe"].unk_id in tokenizers["en"]["bpe"].encode(strange)
         and tokenizers["en"]["bpe"].decode(tokenizers["en"]["bpe"].encode(strange)) != strange)
ch.check(ch.tr("设置 byte_fallback=True：没有 [UNK]，且能完全还原", "with byte_fallback=True: no [UNK] and an exact round trip"),
         bytes_bpe.unk_id not in ids and bytes_bpe.decode(ids) == strange,
         ch.tr(f"{len(ids)} 个词元", f"{len(ids)} tokens"))
zh_as_en = tokenizers["en"]["char"].encode(examples["zh"])
ch.check(ch.tr("英文字符分词器读中文时只得到未知词元", "the English character tokenizer reads Chinese as unknowns only"),
         all(i == tokenizers["en"]["char"].unk_id for i in zh_as_en), f"{len(zh_as_en)} × [UNK]")

# %% [markdown] lang="zh"
# ## 4. 特殊词元
#
# 本书的每个词表都把特殊词元放在最前面，所以它们的编号是固定的：
# BERT 为 **[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4**，GPT 为 **[UNK]=0 <|endoftext|>=1**。
#
# * [CLS] 位于每个 BERT 输入的开头；它最后一层的隐状态送入池化层（pooler），用于下一句预测（NSP）
#   和分类。
# * [SEP] 标记每个片段的结尾；句对写成 `[CLS] A [SEP] B [SEP]`，片段编号（`token_type_ids`）
#   对 A 为 0，对 B 为 1。
# * [MASK] 代替掩码语言模型要求模型预测的大部分词元：被选中的 15 % 词元中，80 % 换成 [MASK]，
#   10 % 换成随机词元，10 % 保持不变（§3.2.3，第 8 章）。
# * [PAD] 把一批句子填充（padding）到同一长度；`attention_mask`（1 表示真实词元）让注意力不去看它。
# * <|endoftext|> 在 GPT 单一的词元流中分隔不同文档。GPT-2 根本没有 [PAD]。

# %% [markdown] lang="en"
# ## 4. Special tokens
#
# Special tokens come first in every vocabulary here, so their ids are fixed:
# BERT's **[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4**, GPT's **[UNK]=0 <|endoftext|>=1**.
#
# * [CLS] starts every BERT input; its final hidden state feeds the pooler (NSP, classification).
# * [SEP] ends each segment; a sentence pair is `[CLS] A [SEP] B [SEP]`, with segment ids
#   (`token_type_ids`) 0 for A and 1 for B.
# * [MASK] stands in for most of the tokens that masked language modelling asks the model to
#   predict: of the 15 % chosen, 80 % become [MASK], 10 % a random token and 10 % stay as they
#   are (§3.2.3, ch08).
# * [PAD] fills a batch to one length; the `attention_mask` (1 = real token) keeps attention off it.
# * <|endoftext|> separates documents in GPT's single token stream. GPT-2 has no [PAD] at all.

# %%
bert_tok = tokenizers["en"]["bpe"]
print(ch.tr("  BERT 特殊词元：", "  BERT specials:"), {t: bert_tok.token_to_id(t) for t in BERT_SPECIALS.values()})
ch.check(ch.tr("BERT 的特殊词元为 [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4",
               "BERT specials are [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4"),
         [bert_tok.pad_id, bert_tok.unk_id, bert_tok.cls_id, bert_tok.sep_id, bert_tok.mask_id] == [0, 1, 2, 3, 4])


def bert_pair(tok, a, b, max_len):
    """[CLS] a [SEP] b [SEP], padded to max_len: (input_ids, token_type_ids, attention_mask)."""
    ids_a, ids_b = tok.encode(a), tok.encode(b)
    ids = [tok.cls_id] + ids_a + [tok.sep_id] + ids_b + [tok.sep_id]
    types = [0] * (len(ids_a) + 2) + [1] * (len(ids_b) + 1)
    n_pad = max_len - len(ids)
    return ids + [tok.pad_id] * n_pad, types + [0] * n_pad, [1] * len(ids) + [0] * n_pad


a, b = "Anna lives in Paris.", "She is a doctor."
input_ids, token_type_ids, attention_mask = bert_pair(bert_tok, a, b, 20)
print(ch.tr("  词元：          ", "  tokens:        "), " ".join(bert_tok.id_to_token(i) for i in input_ids))
print("  input_ids:     ", input_ids)
print("  token_type_ids:", token_type_ids)
print("  attention_mask:", attention_mask)
ch.check(ch.tr("一个 BERT 句对：[CLS] 在最前，有两个 [SEP]，填充位置被掩码遮住",
               "a BERT pair: [CLS] first, two [SEP], padding masked out"),
         input_ids[0] == 2 and input_ids.count(3) == 2
         and all(m == (i != 0) for i, m in zip(input_ids, attention_mask)))
masked = bert_tok.encode("Anna lives in [MASK].")
print("  'Anna lives in [MASK].' ->", " ".join(bert_tok.id_to_token(i) for i in masked))
ch.check(ch.tr("文本中写出的 [MASK] 是一个词元，编号为 4", "[MASK] written in the text is one token with id 4"),
         masked.count(bert_tok.mask_id) == 1)

gpt_tok = SentencePieceTokenizer.train(train_text["en"], VOCAB, specials=GPT_SPECIALS)
stream_docs = ["\n".join(d) for d in docs["en"][:3]]
stream = gpt_tok.encode("<|endoftext|>".join(stream_docs) + "<|endoftext|>")
print(ch.tr(f"  GPT 特殊词元：[UNK]={gpt_tok.unk_id} <|endoftext|>={gpt_tok.eot_id}，[PAD]={gpt_tok.pad_id}",
            f"  GPT specials: [UNK]={gpt_tok.unk_id} <|endoftext|>={gpt_tok.eot_id}, [PAD]={gpt_tok.pad_id}"))
print(ch.tr(f"  3 篇文档 -> 一条 {len(stream)} 个编号的词元流，结尾是 ... ",
            f"  3 documents -> one stream of {len(stream)} ids, ending ... ")
      + " ".join(gpt_tok.id_to_token(i) for i in stream[-4:]))
ch.check(ch.tr("<|endoftext|> 是一个词元（编号 1），每篇文档一个；GPT 没有 [PAD]",
               "<|endoftext|> is one token (id 1), once per document; GPT has no [PAD]"),
         gpt_tok.eot_id == 1 and stream.count(1) == 3 and gpt_tok.pad_id is None)
ch.check(ch.tr("词元流解码后还原出原来的文档", "the stream decodes back to the documents"),
         gpt_tok.decode(stream).split("<|endoftext|>")[:3] == stream_docs)

# %% [markdown] lang="zh"
# ## 5. 从编号到向量：嵌入表
#
# 模型的第一层是一张形状为 (V, C) 的表 `W`：每个词元编号对应一行，共 C 个数。
# 查表 `W[ids]` 与用这些编号的独热向量去乘 W 完全相同：
#
#     e_i = onehot(id_i) · W          onehot: (T, V),  W: (V, C)  →  (T, C)
#
# 所以嵌入层（embedding）可以看作“输入为独热向量、不带偏置的线性层”；也正因如此，只有一批数据
# 中出现过的编号所对应的行才会得到梯度（gradient）：∂L/∂W = onehot(ids)ᵀ · ∂L/∂E。
# `padding_idx` 让 [PAD] 那一行始终为零，并且永远不更新。

# %% [markdown] lang="en"
# ## 5. ids → vectors: the embedding table
#
# The model's first layer is a table `W` of shape (V, C): one row of C numbers per token id.
# Looking up `W[ids]` is the same as multiplying the one-hot vectors of the ids by W:
#
#     e_i = onehot(id_i) · W          onehot: (T, V),  W: (V, C)  →  (T, C)
#
# That is why an embedding layer is "a linear layer without bias on one-hot inputs", and why
# only the rows of the ids in a batch receive gradient: ∂L/∂W = onehot(ids)ᵀ · ∂L/∂E.
# `padding_idx` keeps the [PAD] row at zero and never updates it.

# %%
V, C = bert_tok.vocab_size, 16
emb = nn.Embedding(V, C, padding_idx=bert_tok.pad_id)
ids_t = torch.tensor([input_ids])  # (B=1, T=20)
vectors = emb(ids_t)  # (1, T, C)
ch.show("input_ids", ids_t, "(B, T)")
ch.show(ch.tr("嵌入表 W", "embedding table W"), emb.weight, "(V, C)")
ch.show("vectors", vectors, "(B, T, C)")
one_hot = F.one_hot(ids_t, V).float()  # (1, T, V)
ch.check_close(ch.tr("nn.Embedding(ids) 等于 one_hot(ids) @ W", "nn.Embedding(ids) == one_hot(ids) @ W"),
               vectors, one_hot @ emb.weight, atol=1e-7)
ch.check(ch.tr("[PAD] 那一行为零（padding_idx）", "the [PAD] row is zero (padding_idx)"),
         bool((vectors[0, torch.tensor(attention_mask) == 0] == 0).all()))

d_out = torch.randn_like(vectors)
(vectors * d_out).sum().backward()
ch.check_close(ch.tr("∂L/∂W == one_hot(ids)ᵀ @ ∂L/∂E（[PAD] 行除外）", "∂L/∂W == one_hot(ids)ᵀ @ ∂L/∂E (except the [PAD] row)"),
               emb.weight.grad[1:], (one_hot[0].T @ d_out[0])[1:], atol=1e-6)
used = set(input_ids) - {bert_tok.pad_id}
rows_with_grad = set(torch.nonzero(emb.weight.grad.abs().sum(1)).flatten().tolist())
ch.check(ch.tr("只有这批数据中出现的编号所在的行得到梯度", "only the rows of the ids in the batch get gradient"),
         rows_with_grad == used,
         ch.tr(f"{V} 行中的 {len(rows_with_grad)} 行", f"{len(rows_with_grad)} of {V} rows"))

# %% [markdown] lang="zh"
# ### 练习 1.1 — 查嵌入表
#
# **`embedding_lookup`** · ★ · 1 分 · 约 10 分钟
#
# **题目：** 实现词向量查表：对 (V, C) 的嵌入矩阵取 weight[ids]，等价于 one-hot(ids) @ weight；若
# id 超出 [0, V) 则抛出 ValueError。
#
# **提示：** 直接用 id 张量索引嵌入矩阵（weight[ids]），梯度才能传回；先检查取值范围——负数 id 会悄
# 悄从末尾取行。
#
# **不可调用：** `F.embedding`, `torch.embedding`, `torch.ops.aten.embedding`, `nn.Embedding`
# （`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch01`
#
# 编写 `embedding_lookup(ids, weight)`：输入 ids（任意形状，int64）和 weight (V, C)，返回形状为
# (*ids.shape, C) 的向量，即按 id 从 `weight` 中取出的行；梯度必须能传回 `weight`。id 超出
# [0, V) 时抛出 `ValueError`。检查程序会与 `F.embedding` 比较结果。

# %% [markdown] lang="en"
# ### Exercise 1.1 — the embedding lookup
#
# **`embedding_lookup`** · ★ · 1 point · ~10 min
#
# **Task:** Look up token vectors: weight[ids] for a (V, C) table, the same as one-hot(ids) @
# weight; refuse ids outside [0, V) with a ValueError.
#
# **Hint:** Index the table with the id tensor (weight[ids]) so the gradient reaches it; check the
# range first — a negative id would silently index from the end.
#
# **Not allowed:** `F.embedding`, `torch.embedding`, `torch.ops.aten.embedding`,
# `nn.Embedding` (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch01`
#
# Write `embedding_lookup(ids, weight)`: ids (any shape, int64) and weight (V, C) → vectors of
# shape (*ids.shape, C), the rows of `weight` picked by the ids; gradients must reach `weight`.
# Raise `ValueError` for an id outside [0, V). The check compares with `F.embedding`.

# %%
def embedding_lookup(ids, weight):
    """weight[ids]: (..., ) int ids, (V, C) table -> (..., C). ValueError for an id outside [0, V)."""
    ### BEGIN SOLUTION
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= weight.size(0)):
        raise ValueError(f"ids: expected values in [0, {weight.size(0)}), received {int(ids.min())}..{int(ids.max())}")
    return weight[ids]  # (..., C)
    ### END SOLUTION


def check_embedding_lookup(impl):
    """Compare with F.embedding (values and gradient, float64) and the one-hot product; out-of-range ids."""
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(11, 5, generator=g, dtype=torch.float64, requires_grad=True)
    ids = torch.tensor([[3, 0, 10, 3], [7, 7, 1, 2]])  # (B=2, T=4), with repeats
    got = impl(ids, weight)
    want = F.embedding(ids, weight)
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        raise AssertionError(f"expected shape {tuple(want.shape)} (*ids.shape, C), received {shape}")
    err = float((got - want).abs().max().detach())
    if err > 0:
        raise AssertionError(f"max abs err {err:.2e} vs F.embedding: row i of the output is weight[ids[i]]")
    if float((F.one_hot(ids, 11).double() @ weight - got).abs().max().detach()) > 1e-12:
        raise AssertionError("the lookup should equal one_hot(ids) @ weight")
    if not got.requires_grad:
        raise AssertionError("no gradient reaches weight: index the tensor, do not copy through Python numbers")
    dy = torch.randn(want.shape, generator=g, dtype=torch.float64)
    (g_got,) = torch.autograd.grad((got * dy).sum(), weight)
    (g_want,) = torch.autograd.grad((want * dy).sum(), weight)
    if float((g_got - g_want).abs().max()) > 1e-12:
        raise AssertionError("the gradient differs from F.embedding's: a repeated id must add up its gradients")
    if impl(torch.tensor(4), weight).shape != (5,):
        raise AssertionError("a single id (0-d tensor) should give one vector of C numbers")
    for bad in (torch.tensor([11]), torch.tensor([-1])):
        try:
            impl(bad, weight)
        except ValueError:
            continue
        except Exception as e:  # noqa: BLE001 (IndexError etc.)
            raise AssertionError(f"id {int(bad)}: expected ValueError, received {type(e).__name__}") from None
        raise AssertionError(f"id {int(bad)} is outside [0, 11): expected ValueError (negative ids index from the end!)")
    return "values and gradient equal F.embedding and one_hot @ W; shapes (B, T) and (); out-of-range ids rejected"


ch.verify(check_embedding_lookup, embedding_lookup)

# %% [markdown] lang="zh"
# ## 6. 序列长度：英文与中文
#
# 注意力的计算量随序列长度的平方增长，所以每句有多少个词元很重要。英文按字符切分得到的序列
# 约是 BPE 的 4 倍长；汉字本身已接近词，BPE 在中文上能省下的长度就少一些，而 WordPiece 在中文上
# *就是*按字切分。

# %% [markdown] lang="en"
# ## 6. Sequence lengths, English vs Chinese
#
# Attention costs grow with the square of the sequence length, so tokens per sentence matter.
# English characters give ~4× longer sequences than BPE; Chinese characters are already close to
# words, so BPE saves less there, and WordPiece on Chinese *is* character-level.

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
width = 0.38
for j, lang in enumerate(("en", "zh")):
    means = [stats[lang, k]["mean"] for k in KINDS]
    bars = axes[0].bar([i + (j - 0.5) * width for i in range(len(KINDS))], means, width, label=lang)
    axes[0].bar_label(bars, fmt="%.1f", fontsize=7)
axes[0].set_xticks(range(len(KINDS)), KINDS)
axes[0].set(ylabel=ch.tr("每句词元数", "tokens per sentence"),
            title=ch.tr("平均长度，400 个测试句", "mean length, 400 test sentences"))
axes[0].legend()
for ax, lang in zip(axes[1:], ("en", "zh")):
    top = max(max(lengths[lang, k]) for k in KINDS)
    for kind in KINDS:  # dashed: on Chinese, WordPiece's curve lies exactly on the characters'
        ax.hist(lengths[lang, kind], bins=range(0, top + 2), histtype="step", lw=1.5, ls="--" if kind == "wordpiece" else "-",
                label=f"{kind} (V={stats[lang, kind]['vocab']})")
    ax.set(xlabel=ch.tr("每句词元数", "tokens per sentence"), ylabel=ch.tr("句子数", "sentences"),
           title=ch.tr(f"{lang}：长度分布", f"{lang}: length distribution"))
    ax.legend(fontsize=8)
ch.savefig(fig, "tokens_per_sentence")

# %% [markdown] lang="zh"
# ## 小结
#
# * §3.2.1 所说的数据：用于预训练的无标注文档，用于微调的标注评论、标签和译文，以及预训练
#   永远见不到的留出文本；
# * 在英文和中文上实测了四种分词器：按字符（词表小、序列长）、BPE 和 unigram（序列更短，能完全
#   还原）、WordPiece（转小写，不可逆；在中文上按字切分）；
# * 未知字符与字节回退；特殊词元，以及一个经过填充的 BERT 句对；
# * 从编号到向量：查嵌入表就是乘以独热向量，而且只有用到的行才得到梯度。
#
# 下一章（ch02）让这些向量彼此“看见”：注意力（attention）。

# %% [markdown] lang="en"
# ## What we built
#
# * the data of §3.2.1: unlabelled documents for pretraining, labelled reviews / tags / translations
#   for fine-tuning, with held-out text pretraining never sees;
# * four tokenizers on English and Chinese, measured: characters (small vocabulary, long
#   sequences), BPE and unigram (shorter, exact round trip), WordPiece (lower-cased, not
#   reversible; character-level on Chinese);
# * unknown characters and byte fallback; the special tokens and a padded BERT sentence pair;
# * ids → vectors: an embedding lookup is a one-hot product, and only used rows get gradient.
#
# Next: ch02 lets these vectors look at each other — attention.

# %%
ch.done()
