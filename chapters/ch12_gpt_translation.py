# %% [markdown]
# # Chapter 12 · 生成任务微调 — a GPT that translates English into Chinese (Article §3.2.4 微调, §6.3 机器翻译)
#
# The article's §3.2.4 lists two ways to fine-tune: a classifier on top (分类任务), and for
# generation (生成任务) "sequence-to-sequence fine-tuning with labelled data"; §6.3 names machine
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

ch = Chapter(__file__)

# %% [markdown]
# ## 1. One sequence per pair (把翻译对拼成一个序列)
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
print(f"  |V| = {tok.vocab_size}, <sep> = {SEP}, <|endoftext|> = {EOT}; pairs: "
      + ", ".join(f"{k} {len(v)}" for k, v in pairs.items()))
en, zh = pairs["train"][0]
print(f"  {en!r} → {tok.tokenize(en)}")
print(f"  {zh!r} → {tok.tokenize(zh)}")
# (Chinese character runs take many of the 1000 merges, so rarer English words stay in pieces.)
ch.check("the tokenizer round-trips every test sentence (no [UNK])",
         all(tok.decode(tok.encode(s)) == s and tok.unk_id not in tok.encode(s) for pair in pairs["test"] for s in pair))

# %% [markdown]
# The sequence is s = source + `<sep>` + target + `<|endoftext|>`. As in ch09 the inputs are
# s[:−1] and position t is trained to predict s[t+1] — but a label is kept only where s[t+1]
# belongs to the target part; everywhere else it is −100, the value `F.cross_entropy` ignores.
# Note *where* the first kept label sits: at the `<sep>` position, which predicts the first
# Chinese token. And the last one is `<|endoftext|>`: without it the model never learns to stop.
#
# ### Exercise 12.1 — inputs and labels for one pair
#
# **`prompt_target_example_ex`** · ★ · 1 分 point · 约 ~15 分钟 min
#
# **中文：** 为仅解码器的翻译构造一个训练样本：s = src + [sep] + tgt + [eot]；返回 (input_ids,
# labels)，其中 input_ids = s[:-1]；若 s[t+1] 属于 tgt + [eot] 则 labels[t] = s[t+1]，提示部分为
# −100。
#
# **English:** Build one training example of decoder-only translation: s = src + [sep] + tgt +
# [eot]; return (input_ids, labels) with input_ids = s[:-1] and labels[t] = s[t+1] where s[t+1]
# belongs to tgt + [eot], −100 over the prompt.
#
# **提示：** 第一个保留的标签在 <sep> 的位置（它预测第一个目标词元）；最后一个标签是 <|endoftext|>
# 。
#
# **Hint:** The first kept label sits at the <sep> position (it predicts the first target token);
# the last one is <|endoftext|>.
#
# **不可调用 Not allowed:** `model.next_token_targets` (`python -m chapters.assign list`)
#
# 自查 Self-check: `python -m chapters.assign check ch12`
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
        raise AssertionError(f"expected a pair (input_ids, labels), received {type(got).__name__}")
    inputs, labels = as_list(got[0]), as_list(got[1])
    if inputs != [10, 11, 12, 1, 20, 21]:
        raise AssertionError(f"src [10, 11, 12], tgt [20, 21], sep 1, eot 2: input_ids {inputs}, expected "
                             "[10, 11, 12, 1, 20, 21] — the sequence src + [sep] + tgt + [eot] without its last token")
    want = [-100, -100, -100, 20, 21, 2]
    if labels != want:
        hint = ("the <sep> position must predict the first target token" if labels[3:4] != [20] else
                "the last label is <|endoftext|> (the model must learn to stop)" if labels[-1:] != [2] else
                "labels are the *next* tokens: shifted by one, -100 wherever the next token is in the prompt")
        raise AssertionError(f"src [10, 11, 12], tgt [20, 21], sep 1, eot 2: labels {labels}, expected {want} — {hint}")
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        n_src, n_tgt = (int(n) for n in torch.randint(1, 9, (2,), generator=g))
        src = torch.randint(3, 50, (n_src,), generator=g).tolist()
        tgt = torch.randint(3, 50, (n_tgt,), generator=g).tolist()
        inputs, labels = (as_list(x) for x in impl(src, tgt, 1, 2))
        seq = src + [1] + tgt + [2]
        if inputs != seq[:-1] or len(labels) != len(seq) - 1:
            raise AssertionError(f"src of {n_src}, tgt of {n_tgt} tokens: expected {len(seq) - 1} inputs and labels, "
                                 f"received {len(inputs)} and {len(labels)}")
        if labels[:n_src] != [-100] * n_src or labels[n_src:] != tgt + [2]:
            raise AssertionError(f"src of {n_src}, tgt of {n_tgt} tokens: labels {labels} — -100 for the first "
                                 f"{n_src} positions, then the target tokens and <|endoftext|>")
    return "a pair worked out by hand and 20 random ones: prompt masked with -100, first label at <sep>, last = eot"


ch.verify(check_prompt_target_example_ex, prompt_target_example_ex)


def encode_pair(en, zh):
    return prompt_target_example_ex(tok.encode(en), tok.encode(zh), SEP, EOT)


examples = {split: [encode_pair(e, z) for e, z in ps] for split, ps in pairs.items()}
inputs0, labels0 = examples["train"][0]
print("  token      label")
for t, (i, y) in enumerate(zip(inputs0, labels0)):
    print(f"  {tok.id_to_token(i)!s:<12} {'−100 (ignored)' if y == IGNORE_INDEX else tok.id_to_token(y)}")
lengths = [len(x) for split in examples.values() for x, _ in split]
n_prompt = sum(y == IGNORE_INDEX for _, ys in examples["train"] for y in ys)
n_all = sum(len(ys) for _, ys in examples["train"])
print(f"  sequence length: mean {sum(lengths) / len(lengths):.1f}, max {max(lengths)} tokens; "
      f"{n_prompt / n_all:.0%} of the training positions are prompt (masked)")

# %% [markdown]
# **Why mask the prompt?** (为什么不对提示部分计算损失)
#
# * At test time the English sentence is *given*. Predicting it is not the task; a loss on it
#   spends the model's capacity (and the gradient) on modelling English.
# * It would dominate the number we watch: well over half of the positions are prompt, and the next
#   English word ("which city?", "which friend?") is genuinely uncertain, while the Chinese is
#   nearly determined by the English. §7 below measures both parts.
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
ch.check_close("loss with −100 labels == mean cross-entropy over the target positions only", masked, target_only, atol=1e-12)
(grad,) = torch.autograd.grad(masked, logits)
ch.check("prompt positions receive exactly zero gradient", bool((grad[~keep] == 0).all()) and bool((grad[keep] != 0).any()),
         f"{int((~keep).sum())} masked positions, {int(keep.sum())} scored")

# %% [markdown]
# ## 2. Batches: right-padding without an attention mask (右侧填充)
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
ch.check(f"every sequence fits in block_size = {BLOCK}", max(lengths) <= BLOCK, f"longest {max(lengths)} tokens")
probe = GPT(config).eval()
short, long = examples["train"][1], max(examples["train"][:50], key=lambda e: len(e[0]))
batch = collate([short, long])
with torch.no_grad():
    alone = probe(torch.tensor([short[0]]))[0][0]  # (T_short, V)
    padded = probe(batch["input_ids"])[0][0, : len(short[0])]  # the same row, padded on the right
ch.check_close("a right-padded row gives the same logits at its real positions as alone", padded, alone, atol=1e-5)

# %% [markdown]
# ## 3. Pretraining on unlabelled bilingual text (预训练)
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
print(f"  pretraining: val perplexity {pre_rows[0]['perplexity']:.0f} → {pre_rows[-1]['perplexity']:.2f} per token "
      f"(uniform: {V}) in {time.perf_counter() - t0:.1f} s")
language_model = copy.deepcopy(pretrained).eval()  # kept as it is now, for §6
ch.check_value("pretraining lowers the validation perplexity below |V| (and below step 0's): perplexity / min(|V|, step 0)",
               pre_rows[-1]["perplexity"] / min(V, pre_rows[0]["perplexity"]), high=1.0,
               detail=f"{pre_rows[-1]['perplexity']:.2f} vs |V| = {V}, {pre_rows[0]['perplexity']:.0f} at step 0")

# %% [markdown]
# ## 4. Fine-tuning: from the pretrained GPT, and from scratch (微调)
#
# Two identical architectures, the same batches, the same schedule and number of steps; one
# starts from the pretrained weights, the other from random ones (the same seed as the pretrained
# model's initialisation). The validation loss is the masked one: target tokens only.

# %%
FT_STEPS = ch.steps(120, 6)


def fine_tune(model, name):
    trainer = Trainer(model, TrainConfig(
        out_dir=str(ch.out / name), max_steps=FT_STEPS, batch_size=32, warmup_steps=ch.steps(15, 1),
        eval_interval=ch.steps(20, 6), eval_steps=ch.steps(4, 1), **TRAIN),
        by_split(train=pair_batches("train", 32, seed=ch.seed_for(0)), val=pair_batches("val", 32, seed=ch.seed_for(0))), loss_fn=causal_lm_loss)
    t0 = time.perf_counter()
    rows = [r for r in trainer.fit() if r["split"] == "val"]
    print(f"  {name:>10}: val loss (target tokens) {rows[0]['loss']:.3f} → {rows[-1]['loss']:.3f} "
          f"in {time.perf_counter() - t0:.1f} s")
    return rows


ch.manual_seed(0)
scratch = GPT(config)
curves = {"scratch": fine_tune(scratch, "scratch"), "pretrained": fine_tune(pretrained, "pretrained")}
for name, rows in curves.items():
    ch.check_value(f"{name}: fine-tuning lowers the target loss (by, nats)", rows[0]["loss"] - rows[-1]["loss"],
                   low=ch.steps(1.0, 0.1), detail=f"{rows[0]['loss']:.2f} → {rows[-1]['loss']:.2f}")

# %% [markdown]
# ## 5. Translating: greedy decoding with the KV cache (贪心解码)
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
print(f"  translated {len(sources)} test sentences twice in {time.perf_counter() - t0:.1f} s")
few = sources[: ch.steps(60, 8)]
ch.check("greedy translations with the KV cache == recomputing the prefix",
         translate(pretrained, few, use_cache=True) == translate(pretrained, few, use_cache=False), f"{len(few)} sentences")

# %% [markdown]
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
    print(f"  BLEU {name:>17}: {score:5.1f}")
print(f"  (the baseline always answers {most_common!r})")
ch.check("BLEU is between 0 and 100; a perfect copy of the references scores 100",
         all(0 <= s <= 100 for s in scores.values()) and abs(bleu(references) - 100) < 1e-9)
if not ch.fast:
    base = scores["constant baseline"]
    ch.check_value("the fine-tuned GPT translates far better than the trivial baseline: BLEU (pretrained)",
                   scores["pretrained"], low=30.0)
    ch.check_value("… BLEU (pretrained) / BLEU (constant baseline)", scores["pretrained"] / base if base else float("inf"),
                   low=5.0, detail=f"{scores['pretrained']:.1f} vs {base:.1f}")
    ch.check_value("… BLEU (scratch) / BLEU (constant baseline)", scores["scratch"] / base if base else float("inf"),
                   low=2.0, detail=f"{scores['scratch']:.1f} vs {base:.1f}")
    ch.check_value("with the same fine-tuning budget, starting from the pretrained GPT gives higher BLEU (pretrained − scratch)",
                   scores["pretrained"] - scores["scratch"], low=5.0,
                   detail=f"{scores['pretrained']:.1f} vs {scores['scratch']:.1f}")

print()
for i in range(ch.steps(6, 3)):
    print(f"  EN          {sources[i]}\n  reference   {references[i]}\n  scratch     {hyps['scratch'][i]}\n"
          f"  pretrained  {hyps['pretrained'][i]}\n")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 2]})
for name, rows in curves.items():
    axes[0].plot([r["step"] for r in rows], [r["loss"] for r in rows], "o-", label=f"from {name}")
axes[0].set(xlabel="fine-tuning step", ylabel="val cross-entropy, target tokens (nats)",
            title="fine-tuning English → Chinese")
axes[0].legend()
axes[1].bar(range(3), list(scores.values()), color=["gray", "C0", "C1"])
axes[1].set_xticks(range(3), ["constant\nbaseline", "GPT\nfrom scratch", "GPT\npretrained"])
axes[1].set(ylabel="BLEU (Chinese characters)", ylim=(0, 100), title=f"test set, {len(references)} sentences")
for k, s in enumerate(scores.values()):
    axes[1].text(k, s + 2, f"{s:.1f}", ha="center")
ch.savefig(fig, "finetune_translation")

# %% [markdown]
# ## 6. Why the prompt stays unscored, measured (提示部分的损失)
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
print(f"  English positions: {n_en}, mean loss {english_lm:.2f} nats (pretrained LM), {english_ft:.2f} (after fine-tuning)")
print(f"  target positions:  {n_tgt}, mean loss {target_ft:.2f} nats (fine-tuned)")
print(f"  a whole-sequence loss would take ≈ {share:.0%} of its value from the English prompt")
ch.check_close("the model's own loss (labels with −100) == the mean over the target positions", own_loss, target_ft, atol=1e-4)
if not ch.fast:
    ch.check_value("even a model trained on English finds the prompt much harder to predict than the target (loss ratio)",
                   english_lm / target_ft, low=2.0, detail=f"{english_lm:.2f} vs {target_ft:.2f} nats")
    ch.check_value("after target-only fine-tuning the model no longer predicts English as well as after pretraining (extra nats)",
                   english_ft - english_lm, low=0.0,
                   detail=f"{english_ft:.2f} vs {english_lm:.2f} nats (uniform: ln |V| = {math.log(V):.2f})")

# %% [markdown]
# Who meets whom, in which city, is genuinely uncertain in English, and no amount of translation
# skill makes it less so; the Chinese, given the English, is nearly determined. So most of a
# whole-sequence loss would measure how predictable English is, not how well the model translates,
# and most of its gradient would go into modelling English. With the mask the fine-tuned model even
# stops predicting English (its loss there, printed above, is far worse than after pretraining):
# it never has to, the prompt is always given. (Some recipes keep a small weight on the prompt
# instead of zero; the target-only loss is the common default for translation and instruction
# fine-tuning.)
#
# ## 7. Decoder-only vs encoder-decoder (与第 7 章的编码器-解码器比较)
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
