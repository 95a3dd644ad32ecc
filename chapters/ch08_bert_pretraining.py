# %% [markdown]
# # Chapter 8 · 预训练 — BERT's two pretraining tasks, MLM and NSP (Article §3.2.3)
#
# The article's §3.2.3 names the pretraining tasks in one line each. In this chapter we build both
# from the data up, measure that they do what the paper says, and pretrain a tiny BERT with them:
#
# 1. the corpus and its tokenizer (unlabelled text, article §3.2.1 数据准备);
# 2. **NSP** (下一句预测): `[CLS] A [SEP] B [SEP]`, segment ids, 50% true next sentence, 50% a
#    sentence of another document — never the true next one;
# 3. **MLM** (掩码语言模型): select 15% of the ordinary tokens; of those 80% → `[MASK]`,
#    10% → a random token, 10% unchanged — measured over more than 100,000 draws;
#    *dynamic* masking: a new mask every time a sentence comes back;
# 4. the two heads and their losses, and what a model that knows nothing scores (ln|V|, 50%);
# 5. a tiny BERT pretrained with the shared `Trainer`, its four curves against chance, and a look
#    at what it learnt; the model is saved for ch10 (fine-tuning).
#
# **A correction to the article.** §3.2.3 lists three "常见的预训练任务": MLM, NSP and "双向编码器
# （BERT）". BERT is not a task: it is the **model** — the bidirectional Transformer encoder of ch06.
# MLM and NSP are the two tasks BERT is pretrained on (Devlin et al., 2019, §3.1).
# 更正：BERT 是模型（双向 Transformer 编码器），不是预训练任务；BERT 的预训练任务是 MLM 和 NSP。

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

ch = Chapter(__file__)

# %% [markdown]
# ## 1. The corpus and the tokenizer (无标签数据)
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
print(f"  {len(train_docs)} training documents, {n_sent} sentences, {n_tok} tokens ({n_tok / n_sent:.1f} per sentence); "
      f"{len(val_docs)} held out")
print(f"  vocabulary |V| = {V}; special ids {dict(zip(BERT_SPECIALS.values(), SPECIAL_IDS))}")
print("  a document:\n" + "\n".join(f"    {s}" for s in train_text[0][:4]))
print(f"  its third sentence as pieces: {tokenizer.tokenize(train_text[0][2])}")

ch.check("special tokens [PAD] [UNK] [CLS] [SEP] [MASK] are ids 0-4",
         [tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id] == [0, 1, 2, 3, 4])
sample = [s for d in train_text[:200] for s in d]
ch.check("decode(encode(s)) == s for every sentence of 200 documents", all(tokenizer.decode(tokenizer.encode(s)) == s for s in sample),
         f"{len(sample)} sentences")
ch.check("the training text never produces [UNK]", all(tokenizer.unk_id not in s for d in train_docs for s in d))
words = sorted({w for d in train_text for s in d for w in re.findall(r"[A-Za-z]+", s)})
ch.check("every word of the training text is a single piece", all(len(tokenizer.encode("a " + w)) == 2 for w in words),
         f"{len(words)} distinct words")

# %% [markdown]
# ## 2. Next-sentence prediction (下一句预测, NSP)
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

# %% [markdown]
# ### Exercise 8.1 — an NSP pair (构造下一句预测样本)
#
# **`nsp_pair_ex`** · ★★ · 2 分 points · 约 ~20 分钟 min
#
# **中文：** 采样 NSP 句对：以 ½ 的概率取真正的下一句（is_next=True），否则从另一篇文档中随机取一
# 句（绝不是真正的下一句）。
#
# **English:** Sample an NSP pair: with probability ½ the true next sentence (is_next=True),
# otherwise a random sentence from another document (never the true next one).
#
# **提示：** 用 rng.randrange(len(docs) − 1) 抽另一篇文档，抽到的编号不小于 doc_idx 时加 1 跳过它
# ；所有随机数都必须来自 rng。
#
# **Hint:** Draw the other document with rng.randrange(len(docs) − 1) and skip doc_idx by adding 1
# when the draw reaches it; every random number must come from rng.
#
# **不可调用 Not allowed:** `pretraining.make_nsp_pair` (`python -m chapters.assign list`)
#
# 自查 Self-check: `python -m chapters.assign check ch08`
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
            raise AssertionError(f"expected a tuple (sentence_a, sentence_b, is_next), received {type(out).__name__}")
        a, b, is_next = out
        if list(a) != docs[d][s]:
            raise AssertionError(f"sentence_a must be docs[{d}][{s}] = {docs[d][s]}, received {list(a)}")
        if not isinstance(is_next, bool):
            raise AssertionError(f"is_next must be True or False, received {is_next!r}")
        b = list(b)
        if len(b) != 2 or b[1] != 7 or not (0 <= b[0] // 1000 < len(lengths) and b[0] % 1000 < lengths[b[0] // 1000]):
            raise AssertionError(f"sentence_b must be a sentence of docs, received {b}")
        b_doc, b_pos = divmod(b[0], 1000)
        if is_next:
            n_pos += 1
            if (b_doc, b_pos) != (d, s + 1):
                raise AssertionError(f"is_next=True but sentence_b is docs[{b_doc}][{b_pos}], not the next sentence docs[{d}][{s + 1}]")
            continue
        if b_doc == d:
            detail = "the true next sentence" if b_pos == s + 1 else "another sentence of the same document"
            raise AssertionError(f"is_next=False but sentence_b is docs[{b_doc}][{b_pos}], {detail}: a negative must come "
                                 "from another document, so that it is never the true next sentence")
        from_doc[b_doc] += 1
        positions.add((b_doc, b_pos))
        for e in range(len(lengths)):
            expected[e] += (e != d) / (len(lengths) - 1)
    se = math.sqrt(0.25 / n)
    if abs(n_pos / n - 0.5) > 5 * se:
        raise AssertionError(f"{n_pos / n:.3f} of the pairs are positives; expected 0.5 ± {5 * se:.3f} (5 standard errors)")
    n_neg = n - n_pos
    for e in range(len(lengths)):
        p = expected[e] / n_neg
        if abs(from_doc[e] - expected[e]) > 5 * math.sqrt(n_neg * p * (1 - p)) + 1:
            raise AssertionError(f"document {e} gave {from_doc[e]} negatives, expected about {expected[e]:.0f}: choose the other "
                                 "document uniformly (each with probability 1/(number of documents − 1)), then a sentence in it")
    if len(positions) != sum(lengths):
        raise AssertionError(f"negatives used {len(positions)} of the {sum(lengths)} sentences: every sentence of another document "
                             "should be possible, the first and the last included")
    runs = [[impl(docs, 0, 1, r) for _ in range(20)] for r in (random.Random(5), random.Random(5))]
    if runs[0] != runs[1]:
        raise AssertionError("the same rng seed gave different pairs: draw every random number from rng")
    return f"{n} pairs: {n_pos / n:.3f} positives, every positive the next sentence, every negative from another document"


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
    ch.check(f"{'positive' if is_next else 'negative'} pair: [CLS] A [SEP] B [SEP], segments 0…0 1…1",
             ids == [cls_id, *a, sep_id, *b, sep_id] and seg == [0] * (len(a) + 2) + [1] * (len(b) + 1))

long_a, long_b = list(range(10, 60)), list(range(100, 110))  # 50 and 10 tokens, cut to fit 32 positions
ids, seg = build_pair_inputs(long_a, long_b, cls_id, sep_id, 32)
ch.check("longest-first truncation: A loses tokens until len(A) + len(B) + 3 = 32", len(ids) == 32 and
         ids[1:20] == long_a[:19] and ids[21:31] == long_b, f"A kept {seg.count(0) - 2} of 50 tokens, B all 10")

# %% [markdown]
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
ch.check("NSP: half of the pairs are positives (within 5 standard errors)", abs(share - 0.5) < 5 * se,
         f"{share:.4f} of {n_pairs} pairs, SE {se:.4f}")
ch.check("NSP: every positive B is the true next sentence", wrong_pos == 0, f"{n_pos} positives")
ch.check("NSP: no negative B comes from A's own document (so never the true next sentence)", same_doc_neg == 0,
         f"{n_pairs - n_pos} negatives")
print(f"  …but {text_equal_neg} of {n_pairs - n_pos} negatives ({text_equal_neg / (n_pairs - n_pos):.2%}) happen to have the same "
      "words as the true next sentence (short, common sentences such as 'He was happy.'): label noise NSP must live with")

# %% [markdown]
# ## 3. The masked language model (掩码语言模型, MLM)
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

# %% [markdown]
# ### Exercise 8.2 — BERT's masking rule (实现 80/10/10 掩码)
#
# **`mlm_mask_ex`** · ★★★ · 3 分 points · 约 ~30 分钟 min
#
# **中文：** BERT 的 MLM 遮盖规则：在非特殊符号中选 15%；其中 80% 换成 [MASK]，10% 换成随机的普通
# 词（绝不是特殊符号），10% 保持不变。标签在被选位置为原 id，其余为 -100。
#
# **English:** BERT's MLM corruption: select 15% of the non-special tokens; of those, 80% become
# [MASK], 10% a random ordinary (never special) token, 10% stay. Labels hold the original id at
# selected positions, -100 elsewhere.
#
# **提示：** 每个位置用一个均匀随机数决定是否选中（< 0.15 且不是特殊符号）；再用第二个随机数把选中
# 的分成 80 / 10 / 10；随机替换的 id 只从普通 id 组成的张量里抽。
#
# **Hint:** One uniform number per position selects (< 0.15, and not special); a second one splits
# the selected into 80 / 10 / 10; draw random ids from a tensor of the ordinary ids only.
#
# **不可调用 Not allowed:** `pretraining.mlm_mask_tokens` (`python -m chapters.assign list`)
#
# 自查 Self-check: `python -m chapters.assign check ch08`
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
        raise AssertionError(f"expected a tuple (inputs, labels), received {type(out).__name__}")
    inputs, labels = out
    for name, x in (("inputs", inputs), ("labels", labels)):
        if not isinstance(x, torch.Tensor) or x.shape != ids.shape or x.dtype != torch.long:
            got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise AssertionError(f"{name}: expected a LongTensor of shape {tuple(ids.shape)}, received {got}")
    if not torch.equal(ids, original):
        raise AssertionError("input_ids was modified in place; return new tensors")
    selected = labels != -100
    if bool(selected[special].any()):
        kinds = sorted({("[CLS]", "[SEP]", "[PAD]")[[cls, sep, pad].index(int(i))] for i in ids[special & selected]})
        raise AssertionError(f"special tokens were selected ({', '.join(kinds)}): never select where special_mask is True")
    if not torch.equal(inputs[special], ids[special]):
        raise AssertionError("a [CLS]/[SEP]/[PAD] position was changed: leave special positions alone")
    if not torch.equal(labels[selected], ids[selected]):
        raise AssertionError("labels must hold the original token id at every selected position (and -100 elsewhere)")
    if not torch.equal(inputs[~selected], ids[~selected]):
        raise AssertionError("a token that was not selected (label -100) was changed; the 10% 'unchanged' still get a label")
    n_elig, n_sel = int((~special).sum()), int(selected.sum())
    to_mask = selected & (inputs == mask)
    kept = selected & (inputs == ids)
    other = selected & ~to_mask & ~kept
    if bool(torch.isin(inputs[other], torch.tensor(specials)).any()):
        raise AssertionError("a random replacement was a special token ([PAD]/[UNK]/[CLS]/[SEP]): draw from the ordinary ids only")
    if not bool((inputs[selected] != mask).any()) or not bool(other.any()):
        raise AssertionError("no selected token was replaced by a random id: 10% of the selected must be")
    v_ord = vocab - len(specials)
    rates = [("selected / eligible", n_sel / n_elig, 0.15, n_elig, "select each eligible token with probability 0.15"),
             ("[MASK] / selected", int(to_mask.sum()) / n_sel, 0.8, n_sel,
              "80% of the selected become mask_id, and the random 10% must never draw mask_id"),
             ("another token / selected", int(other.sum()) / n_sel, 0.1 * (1 - 1 / v_ord), n_sel,
              "10% of the selected become a random ordinary id, drawn from the ids that are not special (nor [MASK])"),
             ("unchanged / selected", int(kept.sum()) / n_sel, 0.1 + 0.1 / v_ord, n_sel, "10% of the selected stay as they are")]
    for name, got, want, n, hint in rates:
        se = math.sqrt(want * (1 - want) / n)
        if abs(got - want) > 5 * se:
            raise AssertionError(f"{name} = {got:.4f}, expected {want:.4f} ± {5 * se:.4f} (5 SE over {n} draws): {hint}")
    counts = torch.bincount(inputs[other], minlength=vocab)[5:].double()
    if bool((counts == 0).any()):
        raise AssertionError(f"ids {[i + 5 for i in (counts == 0).nonzero().flatten().tolist()]} were never drawn as random "
                             "replacements: draw uniformly from every ordinary id")
    again = impl(ids, special, vocab, mask, specials, torch.Generator().manual_seed(1))
    other_seed = impl(ids, special, vocab, mask, specials, torch.Generator().manual_seed(2))
    if not (torch.equal(again[0], inputs) and torch.equal(again[1], labels)):
        raise AssertionError("the same generator seed gave different masks: draw every random number from generator")
    if torch.equal(other_seed[1], labels):
        raise AssertionError("another generator seed gave the same masks: use generator for the selection")
    return (f"{n_elig:,} eligible tokens: selected {n_sel / n_elig:.4f}, [MASK] {rates[1][1]:.4f}, other {rates[2][1]:.4f}, "
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
ch.show("inputs, labels", inputs, "(N, T) each")

eligible = ~special
selected = labels != -100
n_elig, n_sel = int(eligible.sum()), int(selected.sum())
n_ordinary = V - len(SPECIAL_IDS)  # V′: the ids a random replacement is drawn from
to_mask = selected & (inputs == mask_id)
unchanged = selected & (inputs == rows)
to_other = selected & ~to_mask & ~unchanged
measured = {"selected / eligible": n_sel / n_elig, "[MASK] / selected": int(to_mask.sum()) / n_sel,
            "other token / selected": int(to_other.sum()) / n_sel, "unchanged / selected": int(unchanged.sum()) / n_sel}
expected = {"selected / eligible": 0.15, "[MASK] / selected": 0.8,
            "other token / selected": 0.1 * (1 - 1 / n_ordinary), "unchanged / selected": 0.1 + 0.1 / n_ordinary}
counts = {"selected / eligible": n_elig}
errors = {}
for name, p in expected.items():
    n = counts.get(name, n_sel)
    errors[name] = math.sqrt(p * (1 - p) / n)
    ch.check(f"MLM: {name} = {p:.4f} (within 5 standard errors)", abs(measured[name] - p) < 5 * errors[name],
             f"measured {measured[name]:.4f} over {n:,} draws, SE {errors[name]:.4f}")
ch.check("MLM: over 100,000 token draws", n_elig >= 100_000, f"{n_elig:,} eligible tokens, {n_sel:,} selected")
ch.check("MLM: [CLS], [SEP] and [PAD] are never selected and never changed",
         bool((labels[special] == -100).all() and (inputs[special] == rows[special]).all()),
         f"{int(special.sum()):,} special/padding positions")
ch.check("MLM: labels hold the original token exactly at the selected positions", torch.equal(labels[selected], rows[selected]))
ch.check("MLM: unselected tokens are left as they were", torch.equal(inputs[~selected], rows[~selected]))
replaced = inputs[to_other]
ch.check("MLM: a random replacement is never a special token", not bool(torch.isin(replaced, torch.tensor(SPECIAL_IDS)).any()),
         f"{replaced.numel()} random replacements")
hist = torch.bincount(replaced, minlength=V)[len(SPECIAL_IDS):].double()  # (V′,) how often each ordinary id was drawn
expect_each = replaced.numel() / n_ordinary  # ≈ uniform (the original id itself is excluded from "other", a 1/V′ effect)
chi2 = float(((hist - expect_each) ** 2 / expect_each).sum())
dof = n_ordinary - 1
ch.check("MLM: random replacements are spread uniformly over the ordinary ids (χ² test)",
         chi2 < dof + 5 * math.sqrt(2 * dof), f"χ² = {chi2:.0f} for {dof} degrees of freedom (mean {dof}, sd {math.sqrt(2 * dof):.0f})")

print("  one row, original / after masking (· = not selected):")
r = int(selected.sum(1).argmax())  # the row with the most selections
for name, row in (("original", rows[r]), ("input", inputs[r])):
    toks = [tokenizer.id_to_token(int(i)) for i, keep in zip(row, attention[r]) if keep]
    print(f"    {name:>8}: " + " ".join(toks))
print("    {:>8}: ".format("label") + " ".join(tokenizer.id_to_token(int(t)) if t != -100 else "·"
                                              for t, keep in zip(labels[r], attention[r]) if keep))

fig, ax = plt.subplots(figsize=(7.5, 3.4))
names = list(expected)
xs = range(len(names))
ax.bar([x - 0.2 for x in xs], [expected[k] for k in names], width=0.4, label="rule (closed form)", color="#bbb")
ax.bar([x + 0.2 for x in xs], [measured[k] for k in names], width=0.4, yerr=[5 * errors[k] for k in names], capsize=4,
       label=f"measured ({n_elig:,} tokens), ±5 SE", color="tab:blue")
for x, k in zip(xs, names):
    ax.text(x + 0.2, measured[k] + 0.03, f"{measured[k]:.3f}", ha="center", fontsize=8)
ax.set_xticks(list(xs), names, fontsize=8)
ax.set(ylim=(0, 1), title="BERT's masking rule: 15% selected; of those 80 / 10 / 10")
ax.legend(fontsize=8)
ch.savefig(fig, "mlm_masking_rates")

# %% [markdown]
# ### Dynamic masking (动态掩码)
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
ch.check("dynamic masking: a token selected in epoch 1 is selected again in epoch 2 with p = 0.15",
         abs(again - 0.15) < 5 * se_again, f"measured {again:.4f} (SE {se_again:.4f}); a static mask would give 1")
print(f"  rows with exactly the same selection in both epochs: {same_rows} of {len(rows)} (mostly short rows with none selected)")

data = PretrainingData({"train": train_docs, "val": val_docs}, tokenizer, batch_size=4, max_len=MAX_LEN, seed=0)
b0, b0_again, b1 = data("train", 0), data("train", 0), data("train", 1)
ch.check("PretrainingData: the same batch index gives the same batch (a pure function of the index)",
         all(torch.equal(b0[k], b0_again[k]) for k in b0))
ch.check("PretrainingData: the next index gives new pairs and new masks", not torch.equal(b0["labels"], b1["labels"]))
for k, v in b0.items():
    ch.show(k, v)

# %% [markdown]
# ## 4. The two heads, their losses, and what chance scores (预训练的两个输出头)
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
# selected positions (`masked_positions_only=True`) gives the same loss for less work.

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
ch.show("mlm_logits (selected only)", out_sel.mlm_logits, "(N selected, |V|)")
ref_mlm = F.cross_entropy(out.mlm_logits.reshape(-1, V), batch["labels"].reshape(-1), ignore_index=-100)
ref_nsp = F.cross_entropy(out.nsp_logits, batch["next_sentence_label"])
ch.check_close("L_MLM == F.cross_entropy(ignore_index=-100)", out.mlm_loss, ref_mlm, atol=1e-6)
ch.check_close("L_NSP == F.cross_entropy", out.nsp_loss, ref_nsp, atol=1e-6)
ch.check_close("masked_positions_only gives the same MLM loss", out_sel.mlm_loss, out.mlm_loss, atol=1e-5)
ch.check_close("library mlm_loss + nsp_loss == the model's loss",
               mlm_loss(out.mlm_logits, batch["labels"]) + nsp_loss(out.nsp_logits, batch["next_sentence_label"]), out.loss, atol=1e-5)
chance = chance_levels(V)
ch.check("at initialisation the MLM loss is ln|V| (a uniform guess)", abs(float(out.mlm_loss) - math.log(V)) < 0.05,
         f"{float(out.mlm_loss):.3f} vs ln {V} = {math.log(V):.3f}")
ch.check("at initialisation the NSP loss is ln 2", abs(float(out.nsp_loss) - math.log(2)) < 0.05,
         f"{float(out.nsp_loss):.3f} vs ln 2 = {math.log(2):.3f}")

# %% [markdown]
# ## 5. Pretraining a tiny BERT (预训练一个小 BERT)
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
print(f"  {n_params:,} parameters; {PRETRAIN['steps']} steps of {PRETRAIN['batch_size']} pairs")
history = trainer.fit()

train_rows = [r for r in history if r["split"] == "train"]
val_rows = [r for r in history if r["split"] == "val"]
print("   step   MLM loss  MLM acc   NSP loss  NSP acc   (validation)")
for r in val_rows:
    print(f"  {r['step']:5d}   {r['mlm_loss']:8.3f}  {r['mlm_acc']:7.1%}   {r['nsp_loss']:8.3f}  {r['nsp_acc']:7.1%}")
print(f"  chance   {chance['mlm_loss']:8.3f}  {chance['mlm_acc']:7.1%}   {chance['nsp_loss']:8.3f}  {chance['nsp_acc']:7.1%}")

fig, axes = plt.subplots(1, 4, figsize=(15, 3.3))
panels = [("mlm_loss", "MLM loss", chance["mlm_loss"], f"ln|V| = {chance['mlm_loss']:.2f}"),
          ("mlm_acc", "MLM accuracy (selected tokens)", chance["mlm_acc"], f"1/|V| = {chance['mlm_acc']:.4f}"),
          ("nsp_loss", "NSP loss", chance["nsp_loss"], "ln 2"), ("nsp_acc", "NSP accuracy", chance["nsp_acc"], "50%")]
for ax, (key, title, level, label) in zip(axes, panels):
    ax.plot([r["step"] for r in train_rows], [r[key] for r in train_rows], lw=1, alpha=0.6, label="train")
    ax.plot([r["step"] for r in val_rows], [r[key] for r in val_rows], "o-", label="validation")
    ax.axhline(level, color="k", ls="--", lw=1, label=f"chance: {label}")
    ax.set(title=title, xlabel="step")
    ax.legend(fontsize=7)
for ax in (axes[1], axes[3]):
    ax.set_ylim(0, 1)
ch.savefig(fig, "pretraining_curves")

last = val_rows[-1]
n_val_pairs = PRETRAIN["eval_batches"] * PRETRAIN["batch_size"]
nsp_se = math.sqrt(0.25 / n_val_pairs)
if ch.fast:
    ch.check("MLM validation loss fell below ln|V| (fast run: a weak bound)", last["mlm_loss"] < chance["mlm_loss"] - 1.0,
             f"{last['mlm_loss']:.3f} vs ln|V| = {chance['mlm_loss']:.3f}")
else:
    ch.check("MLM validation loss fell well below ln|V| (under half)", last["mlm_loss"] < 0.5 * chance["mlm_loss"],
             f"{last['mlm_loss']:.3f} vs ln|V| = {chance['mlm_loss']:.3f}")
    ch.check("MLM validation accuracy is far above 1/|V|", last["mlm_acc"] > 0.25,
             f"{last['mlm_acc']:.1%} vs {chance['mlm_acc']:.2%}")
    ch.check("NSP validation accuracy is clearly above 50% (more than 5 standard errors)", last["nsp_acc"] > 0.5 + 5 * nsp_se,
             f"{last['nsp_acc']:.1%} on {n_val_pairs} held-out pairs, SE {nsp_se:.1%}")

# %% [markdown]
# ## 6. What the tiny model learnt — and what it did not (模型学到了什么)
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


probes = [("Anna lives in Paris.", "One day, Anna went to Tokyo by train.", "train", "means of transport",
           {first_piece(t.split()[1]) for t, _ in TRANSPORT}),
          ("Anna is a doctor.", "Anna lives in Paris.", "Paris", "cities", {first_piece(c.en) for c in CITIES})]
unigram = torch.bincount(torch.tensor([i for d in train_docs for s in d for i in s]), minlength=V).double()
unigram /= unigram.sum()  # how often each token occurs: what a model that ignores the context would guess
for a, text, word, kind, ids in probes:
    probs, _, _ = fill_mask(a, text, word)
    shown_text = text.replace(word, "___")
    mass, prior = float(probs[sorted(ids)].sum()), float(unigram[sorted(ids)].sum())
    print(f"  {shown_text:<42} {top(probs)}   (all {kind}: {mass:.2f}; their share of the corpus {prior:.3f})")
    if not ch.fast:
        ch.check(f"the model fills '{shown_text}' with {kind}, 5× more often than their frequency", mass > 5 * prior,
                 f"probability {mass:.2f} vs frequency {prior:.3f}")

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
print(f"  feeling sentences: {len(rows_f)}; probability on the six feeling words {feel_mass:.2f}; sentiment right {feel_acc:.1%} "
      f"(SE {feel_se:.1%}); always answering 'good' scores {sum(pos_f) / len(pos_f):.1%}; the model answers 'good' "
      f"{float(says_good.float().mean()):.1%} of the time")
examples = {}
for judgement in ("good", "bad"):
    examples[judgement] = fill_mask(f"The food was very {judgement}.", "She was happy.", "happy")
    print(f"  {f'The food was very {judgement}. | She was ___.':<42} {top(examples[judgement][0])}")
shift = 0.5 * float((examples["good"][0] - examples["bad"][0]).abs().sum())
print(f"  'good' → 'bad' moves {shift:.3f} of the probability (total variation)")
ch.check("the feeling probes are balanced between good and bad", abs(sum(pos_f) / len(pos_f) - 0.5) < 0.1,
         f"{sum(pos_f)} good of {len(pos_f)}")

_, attn, ids = examples["good"]
fig, ax = plt.subplots(figsize=(8, 2.2))
im = ax.imshow(attn.numpy(), cmap="viridis", aspect="auto", vmin=0)
ax.set_xticks(range(len(ids)), [tokenizer.id_to_token(i).lstrip("▁") for i in ids], rotation=45, fontsize=8)
ax.set_yticks(range(attn.shape[0]), [f"head {h}" for h in range(attn.shape[0])])
ax.set_title("last layer: where the blank looks in '[CLS] The food was very good. [SEP] She was ___ . [SEP]'", fontsize=9)
fig.colorbar(im, ax=ax)
ch.savefig(fig, "mask_attention")

# %% [markdown]
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

# %% [markdown]
# ## 7. Saving the pretrained model (保存预训练模型)
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
    ch.check_close("the saved model gives the same MLM logits when loaded back", reloaded(**probe).mlm_logits,
                   model(**probe).mlm_logits, atol=1e-6)
    classifier = BertForSequenceClassification.from_pretrained(saved, id2label={0: "neg", 1: "pos"}).eval()
    ch.check_close("a classifier built from it starts with the same encoder",
                   classifier.bert(probe["input_ids"], probe["token_type_ids"], probe["attention_mask"]).last_hidden_state,
                   model.bert(probe["input_ids"], probe["token_type_ids"], probe["attention_mask"]).last_hidden_state, atol=1e-6)
print(f"  saved to {saved}: {sorted(p.name for p in saved.iterdir())}")

# %% [markdown]
# ## What we built
#
# * NSP pairs `[CLS] A [SEP] B [SEP]` with segment ids: 50/50, negatives from another document;
# * BERT's masking rule, 15% · 80/10/10, measured against its closed forms over 100,000+ tokens;
#   dynamic masking;
# * the MLM and NSP heads and losses, starting at chance (ln|V|, ln 2);
# * a 158k-parameter BERT pretrained with the shared trainer: both losses fall, both accuracies
#   rise well above chance — and a measured limit of what ~600 steps teach.
#
# The article's list of pretraining tasks, corrected: **MLM and NSP are the tasks; BERT is the model.**
# Next, ch10 fine-tunes this model to classify reviews and evaluates it.

# %%
ch.done()
