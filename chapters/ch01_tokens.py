# %% [markdown]
# # Chapter 1 · 数据准备 — from text to tokens, ids and vectors (Article §3.2.1)
#
# §3.2.1 says what data a pretrained model needs: **a lot of unlabelled text for pretraining**
# (预训练：海量无标签数据) and **a little labelled data for fine-tuning** (微调：少量标注数据).
# Before a model can read either, text has to become numbers:
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
#
# 本章：把文本变成模型能读的数字——分词、编号、查嵌入表，并比较四种分词器。

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

ch = Chapter(__file__)

# %% [markdown]
# ## 1. The bundled data: unlabelled and labelled (无标签数据与标注数据)
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
print(f"  unlabelled: {len(docs['en'])} documents, {len(sentences['en'])} sentences per language")
print(f"    en: {sentences['en'][0]!r}\n    zh: {sentences['zh'][0]!r}")
print(f"  labelled: {len(reviews)} training reviews, e.g. {reviews[1].text!r} -> {reviews[1].label}")
print(f"            {len(ner)} Chinese NER sentences, e.g. " + " ".join(f"{t}/{g}" for t, g in zip(ner[0].tokens[:6], ner[0].tags[:6])))
print(f"            {len(pairs_test)} test translation pairs, e.g. {pairs_test[0]}")

ch.check("world_en.txt and world_zh.txt align line by line",
         [len(d) for d in docs["en"]] == [len(d) for d in docs["zh"]], f"{len(sentences['en'])} sentences each")
unlabelled = set(sentences["en"]) | set(sentences["zh"])
held_out = [e.text for split in ("val", "test") for lang in ("en", "zh") for e in load_world_reviews(lang, split)]
held_out += [s for pair in pairs_test for s in pair]
ch.check("no held-out review or test translation occurs in the unlabelled text",
         not any(t in unlabelled for t in held_out), f"{len(held_out)} held-out texts checked")

# %% [markdown]
# ## 2. Four tokenizers (四种分词器)
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

# %% [markdown]
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
    print(f"  {lang}: {n_base} specials and characters, {len(vocab) - n_base} merges; first merges: {vocab[n_base:n_base + 8]}")

wp = tokenizers["en"]["wordpiece"]
wp.save(ch.out / "wordpiece_en_saved")
ch.check("WordPiece tokenizer saves and loads back (load_tokenizer)",
         load_tokenizer(ch.out / "wordpiece_en_saved").encode("Anna lives in Paris.") == wp.encode("Anna lives in Paris."))

# %% [markdown]
# The same sentence through each tokenizer:

# %%
examples = {"en": "Wang Fang had dinner at Sun Restaurant.", "zh": "王芳在太阳餐厅吃了晚饭。"}
KINDS = ("char", "bpe", "unigram", "wordpiece")
for lang, text in examples.items():
    print(f"  {text}")
    for kind in KINDS:
        toks = tokenizers[lang][kind].tokenize(text)
        print(f"    {kind:9s} {len(toks):2d} tokens: " + " ".join(toks))

# %% [markdown]
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
print(f"  text:   {text!r}")
print(f"  tokens: {bpe.tokenize(text)}")
print(f"  ids:    {ids}")
print(f"  back:   {bpe.decode(ids)!r}")
ch.check("tokens ↔ ids: id_to_token and token_to_id are inverse on the sentence",
         [bpe.token_to_id(bpe.id_to_token(i)) for i in ids] == ids and bpe.decode(ids) == text)

# %% [markdown]
# ## 3. Tokens per sentence, vocabulary, unknowns, round trip (长度、词表、未知词、可逆性)
#
# We measure on the 400 test pairs of `translation.test.tsv` (text no tokenizer was trained on).
# Round trip means `decode(encode(x)) == x` exactly.

# %%
test_text = {"en": [en for en, _ in pairs_test], "zh": [zh for _, zh in pairs_test]}
stats, lengths = {}, {}
print(f"  {'':13s}{'vocab':>6s} {'tokens/sent':>12s} {'[UNK]':>6s} {'round trip':>11s}")
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
        ch.check(f"{lang} {kind}: decode(encode(x)) == x for every test sentence",
                 stats[lang, kind]["exact"] == len(test_text[lang]))
    ch.check_value(f"{lang}: BPE needs fewer tokens than characters (BPE / characters per sentence)",
                   stats[lang, "bpe"]["mean"] / stats[lang, "char"]["mean"], high=1.0,
                   detail=f"{stats[lang, 'bpe']['mean']:.1f} vs {stats[lang, 'char']['mean']:.1f} per sentence")
ch.check_value("English characters: ~4× more tokens than BPE pieces (characters / BPE)",
               stats["en", "char"]["mean"] / stats["en", "bpe"]["mean"], low=2.5)
ch.check("Chinese WordPiece = one token per character (BERT splits every 汉字 off)",
         lengths["zh", "wordpiece"] == lengths["zh", "char"])

# %% [markdown]
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
ch.check("WordPiece: decode(encode(x)) == the lower-cased, punctuation-split text, not x",
         normalised_ok and back != x and back == "wang fang had dinner at sun restaurant .")

# %% [markdown]
# ### Unknown tokens (未登录词)
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
print("  en bpe+bytes: " + " ".join(bytes_bpe.tokenize(strange)))
ch.check("WordPiece: a word with an unknown character is one [UNK]; accents are stripped first",
         wp.tokenize("Østerbro") == ["[UNK]"] and wp.tokenize("Zoë") == wp.tokenize("zoe"))
ch.check("sentencepiece without byte fallback: unseen characters become [UNK]",
         tokenizers["en"]["bpe"].unk_id in tokenizers["en"]["bpe"].encode(strange)
         and tokenizers["en"]["bpe"].decode(tokenizers["en"]["bpe"].encode(strange)) != strange)
ch.check("with byte_fallback=True: no [UNK] and an exact round trip", bytes_bpe.unk_id not in ids and bytes_bpe.decode(ids) == strange,
         f"{len(ids)} tokens")
zh_as_en = tokenizers["en"]["char"].encode(examples["zh"])
ch.check("the English character tokenizer reads Chinese as unknowns only",
         all(i == tokenizers["en"]["char"].unk_id for i in zh_as_en), f"{len(zh_as_en)} × [UNK]")

# %% [markdown]
# ## 4. Special tokens (特殊标记)
#
# Special tokens come first in every vocabulary here, so their ids are fixed:
# BERT's **[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4**, GPT's **[UNK]=0 <|endoftext|>=1**.
#
# * [CLS] starts every BERT input; its final hidden state feeds the pooler (NSP, classification).
# * [SEP] ends each segment; a sentence pair is `[CLS] A [SEP] B [SEP]`, with segment ids
#   (`token_type_ids`) 0 for A and 1 for B.
# * [MASK] replaces the tokens masked language modelling asks the model to predict (§3.2.3).
# * [PAD] fills a batch to one length; the `attention_mask` (1 = real token) keeps attention off it.
# * <|endoftext|> separates documents in GPT's single token stream. GPT-2 has no [PAD] at all.

# %%
bert_tok = tokenizers["en"]["bpe"]
print("  BERT specials:", {t: bert_tok.token_to_id(t) for t in BERT_SPECIALS.values()})
ch.check("BERT specials are [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4",
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
print("  tokens:        ", " ".join(bert_tok.id_to_token(i) for i in input_ids))
print("  input_ids:     ", input_ids)
print("  token_type_ids:", token_type_ids)
print("  attention_mask:", attention_mask)
ch.check("a BERT pair: [CLS] first, two [SEP], padding masked out",
         input_ids[0] == 2 and input_ids.count(3) == 2
         and all(m == (i != 0) for i, m in zip(input_ids, attention_mask)))
masked = bert_tok.encode("Anna lives in [MASK].")
print("  'Anna lives in [MASK].' ->", " ".join(bert_tok.id_to_token(i) for i in masked))
ch.check("[MASK] written in the text is one token with id 4", masked.count(bert_tok.mask_id) == 1)

gpt_tok = SentencePieceTokenizer.train(train_text["en"], VOCAB, specials=GPT_SPECIALS)
stream_docs = ["\n".join(d) for d in docs["en"][:3]]
stream = gpt_tok.encode("<|endoftext|>".join(stream_docs) + "<|endoftext|>")
print(f"  GPT specials: [UNK]={gpt_tok.unk_id} <|endoftext|>={gpt_tok.eot_id}, [PAD]={gpt_tok.pad_id}")
print(f"  3 documents -> one stream of {len(stream)} ids, ending ... " + " ".join(gpt_tok.id_to_token(i) for i in stream[-4:]))
ch.check("<|endoftext|> is one token (id 1), once per document; GPT has no [PAD]",
         gpt_tok.eot_id == 1 and stream.count(1) == 3 and gpt_tok.pad_id is None)
ch.check("the stream decodes back to the documents", gpt_tok.decode(stream).split("<|endoftext|>")[:3] == stream_docs)

# %% [markdown]
# ## 5. ids → vectors: the embedding table (词嵌入)
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
ch.show("embedding table W", emb.weight, "(V, C)")
ch.show("vectors", vectors, "(B, T, C)")
one_hot = F.one_hot(ids_t, V).float()  # (1, T, V)
ch.check_close("nn.Embedding(ids) == one_hot(ids) @ W", vectors, one_hot @ emb.weight, atol=1e-7)
ch.check("the [PAD] row is zero (padding_idx)", bool((vectors[0, torch.tensor(attention_mask) == 0] == 0).all()))

d_out = torch.randn_like(vectors)
(vectors * d_out).sum().backward()
ch.check_close("∂L/∂W == one_hot(ids)ᵀ @ ∂L/∂E (except the [PAD] row)",
               emb.weight.grad[1:], (one_hot[0].T @ d_out[0])[1:], atol=1e-6)
used = set(input_ids) - {bert_tok.pad_id}
rows_with_grad = set(torch.nonzero(emb.weight.grad.abs().sum(1)).flatten().tolist())
ch.check("only the rows of the ids in the batch get gradient", rows_with_grad == used,
         f"{len(rows_with_grad)} of {V} rows")

# %% [markdown]
# ### Exercise 1.1 — the embedding lookup (查嵌入表)
#
# **`embedding_lookup`** · ★ · 1 分 point · 约 ~10 分钟 min
#
# **中文：** 实现词向量查表：对 (V, C) 的嵌入矩阵取 weight[ids]，等价于 one-hot(ids) @ weight；若
# id 超出 [0, V) 则抛出 ValueError。
#
# **English:** Look up token vectors: weight[ids] for a (V, C) table, the same as one-hot(ids) @
# weight; refuse ids outside [0, V) with a ValueError.
#
# **提示：** 直接用 id 张量索引嵌入矩阵（weight[ids]），梯度才能传回；先检查取值范围——负数 id 会悄
# 悄从末尾取行。
#
# **Hint:** Index the table with the id tensor (weight[ids]) so the gradient reaches it; check the
# range first — a negative id would silently index from the end.
#
# **不可调用 Not allowed:** `F.embedding`, `torch.embedding`, `torch.ops.aten.embedding`,
# `nn.Embedding` (`python -m chapters.assign list`)
#
# 自查 Self-check: `python -m chapters.assign check ch01`
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

# %% [markdown]
# ## 6. Sequence lengths, English vs Chinese (序列长度)
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
axes[0].set(ylabel="tokens per sentence", title="mean length, 400 test sentences")
axes[0].legend()
for ax, lang in zip(axes[1:], ("en", "zh")):
    top = max(max(lengths[lang, k]) for k in KINDS)
    for kind in KINDS:  # dashed: on Chinese, WordPiece's curve lies exactly on the characters'
        ax.hist(lengths[lang, kind], bins=range(0, top + 2), histtype="step", lw=1.5, ls="--" if kind == "wordpiece" else "-",
                label=f"{kind} (V={stats[lang, kind]['vocab']})")
    ax.set(xlabel="tokens per sentence", ylabel="sentences", title=f"{lang}: length distribution")
    ax.legend(fontsize=8)
ch.savefig(fig, "tokens_per_sentence")

# %% [markdown]
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
