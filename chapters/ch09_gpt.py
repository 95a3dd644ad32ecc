# %% [markdown] lang="zh"
# # 第 9 章 · 预训练 GPT：因果语言模型（对应文章 §3.2.3 预训练、§3.2.4 生成任务）
#
# 文章 §3.2.3 说预训练是*自监督*的（self-supervised）：标签由文本自身提供。文中列出的是 BERT
# 的两个任务 MLM 和 NSP。GPT 用的是另一个经典任务，也是最简单的一个：**预测下一个词元**。
# 一个句子 x_0 … x_T 的概率为
#
#     p(x_0 … x_T) = Π_t p(x_{t+1} | x_0 … x_t)
#
# 训练的目标就是让其中每个因子都尽可能大：
#
#     L = −(1/N) Σ_t log p_θ(x_{t+1} | x_0 … x_t)        （交叉熵，N = 预测的个数）
#
# 本章实现这个目标以及与之相关的一切，并逐步检验：
#
# 1. **错位一格**——输入 x_0 … x_{T−1}，目标 x_1 … x_T——以及损失，与对手工错位后的 logits
#    调用 `F.cross_entropy` 的结果对照；
# 2. **因果掩码**（causal mask），以及它带来的性质：改动后面的词元，绝不会改变前面位置的 logits；
# 3. 用共享的训练器在自带的双语语料上**预训练**一个很小的 GPT；把困惑度（perplexity）与均匀分布
#    （|V|）和一元模型（unigram）两个基线比较；
# 4. **解码**：贪心解码（greedy decoding）、温度（temperature）、top-k 采样和 top-p（核采样，
#    nucleus sampling），并排比较；
# 5. **KV 缓存**：生成的词元与重新计算前缀完全相同，而且明显更快。
#
# **更正。** 文章 §7.3 把《Generating Sentences from a Continuous Space》列为 GPT 论文，
# 但它并不是：那是 Bowman 等人（2016）的论文，用 LSTM 搭建了一个句子上的*变分自编码器*
# （variational autoencoder，VAE），不是 GPT 论文。GPT 系列的论文是 Radford 等人（2018）的
# 《Improving Language Understanding by Generative Pre-Training》（GPT）、Radford 等人（2019）的
# 《Language Models are Unsupervised Multitask Learners》（GPT-2，文章对它的引用是正确的），
# 以及 Brown 等人（2020）的《Language Models are Few-Shot Learners》（GPT-3）。

# %% [markdown] lang="en"
# # Chapter 9 · Pretraining GPT — the causal language model (Article §3.2.3 pretraining, §3.2.4 generation tasks)
#
# The article's §3.2.3 says pretraining is *self-supervised*: the text itself provides the
# labels. It lists BERT's two tasks, MLM and NSP. GPT uses the other classic one, and the simplest:
# **predict the next token**. A sentence x_0 … x_T has probability
#
#     p(x_0 … x_T) = Π_t p(x_{t+1} | x_0 … x_t)
#
# and the model is trained to make every factor large:
#
#     L = −(1/N) Σ_t log p_θ(x_{t+1} | x_0 … x_t)        (cross-entropy, N = number of predictions)
#
# In this chapter we build that objective and everything around it, and check each step:
#
# 1. the **shift by one** — inputs x_0 … x_{T−1}, targets x_1 … x_T — and the loss, against
#    `F.cross_entropy` on hand-shifted logits;
# 2. the **causal mask**, and the property it buys: changing a later token never changes an earlier logit;
# 3. **pretraining** a tiny GPT on the bundled bilingual corpus with the shared trainer; perplexity
#    against the uniform (|V|) and unigram baselines;
# 4. **decoding**: greedy, temperature, top-k and top-p (nucleus) sampling, side by side;
# 5. the **KV cache**: the same tokens as recomputing the prefix, measurably faster.
#
# **A correction to the article.** §7.3 lists "Generating Sentences from a Continuous Space" under
# GPT papers. It is not one: it is Bowman et al. (2016), a *variational autoencoder* (VAE) over
# sentences built from LSTMs. The GPT papers are Radford et al. (2018) "Improving Language
# Understanding by Generative Pre-Training" (GPT), Radford et al. (2019) "Language Models are
# Unsupervised Multitask Learners" (GPT-2, which the article lists correctly) and Brown et al.
# (2020) "Language Models are Few-Shot Learners" (GPT-3).

# %%
import math
import time

import torch
import torch.nn.functional as F

from chapters.book import Chapter, plt
from minigpt.config import GPTConfig
from minigpt.model import GPT, IGNORE_INDEX, next_token_targets
from minigpt.train import causal_lm_loss, encode_documents, split_text
from minitransformer.batches import by_split, random_window_batches
from minitransformer.data import GPT_SPECIALS, SentencePieceTokenizer, load_text, world_path
from minitransformer.metrics import perplexity
from minitransformer.trainer import Trainer, TrainConfig

ch = Chapter("ch09_gpt")

# %% [markdown] lang="zh"
# ## 1. 错位一格
#
# 取一个长为 T + 1 个词元的窗口。模型读入前 T 个词元，并在每个位置 t 预测紧随其后的那个词元：
#
#     inputs   x_0 x_1 … x_{T−1}
#     targets  x_1 x_2 … x_T
#
# 所以一个窗口一次就给出 T 个训练样本，每个位置一个。下面用字符来演示。

# %% [markdown] lang="en"
# ## 1. The shift by one
#
# Take a window of T + 1 tokens. The model reads the first T and, at every position t, predicts
# the token that comes next:
#
#     inputs   x_0 x_1 … x_{T−1}
#     targets  x_1 x_2 … x_T
#
# So one window gives T training examples at once, one per position. Here it is with characters.

# %%
text = "Anna went to Paris."
print(ch.tr("  位置 :", "  position :"), " ".join(f"{t:>2}" for t in range(len(text) - 1)))
print(ch.tr("  输入 :", "  input    :"), " ".join(f"{c!s:>2}" for c in text[:-1]))
print(ch.tr("  目标 :", "  target   :"), " ".join(f"{c!s:>2}" for c in text[1:]))

# %% [markdown] lang="zh"
# 两种约定，同一个目标。Hugging Face 的 `GPT2LMHeadModel(labels=ids)` 接收 T 个词元，在内部完成
# 错位；nanoGPT（以及我们训练器用的 `random_window_batches`）则截取 T + 1 个词元，交出**已经
# 错好位**的目标。我们的 `GPT.forward(idx, targets)` 遵循 nanoGPT 的约定，`next_token_targets(ids)`
# 则由一个普通序列生成错位后的目标（最后一个位置的下一个词元在窗口之外，记为 −100：忽略）。
# 只错位一次——绝不能错两次。

# %% [markdown] lang="en"
# Two conventions, one objective. Hugging Face's `GPT2LMHeadModel(labels=ids)` takes the T tokens
# and shifts inside; nanoGPT (and our trainer's `random_window_batches`) cuts T + 1 tokens and hands
# over targets that are **already shifted**. Our `GPT.forward(idx, targets)` follows nanoGPT, and
# `next_token_targets(ids)` makes the shifted targets from a plain sequence (the last position,
# whose next token is outside the window, gets −100: ignored). Shift exactly once — never twice.

# %% [markdown] lang="zh"
# ### 练习 9.1 — 因果语言模型损失
#
# **`causal_lm_loss_ex`** · ★★ · 2 分 · 约 20 分钟
#
# **题目：** 因果语言模型损失：位置 t 预测第 t+1 个词，即用 logits[:, :-1] 与 idx[:, 1:] 计算交叉
# 熵并取平均。
#
# **提示：** 计算交叉熵之前把两者展平为 (B·(T−1), V) 和 (B·(T−1),)；只错开一次。
#
# **不可调用：** `model.next_token_loss`, `model.next_token_targets`,
# `train.causal_lm_loss`（`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch09`
#
# 实现 `causal_lm_loss_ex(logits, idx)`：`logits` (B, T, V) 是模型对词元 `idx` (B, T)（未错位）的
# 输出。返回从位置 t 预测 `idx[:, t+1]` 的平均交叉熵，平均范围是有下一个词元的 B·(T − 1) 个位置。
# 检查时会与 `F.cross_entropy` 对照，并与一个闭式解对照：若 logits 给正确的下一个词元多出 m 的
# 间隔（margin），损失为 ln(1 + (V − 1)·e^(−m))。

# %% [markdown] lang="en"
# ### Exercise 9.1 — the causal-LM loss
#
# **`causal_lm_loss_ex`** · ★★ · 2 points · ~20 min
#
# **Task:** The causal-LM loss: position t predicts token t+1, so compare logits[:, :-1] with
# idx[:, 1:] by cross-entropy, averaged over all predicted positions.
#
# **Hint:** Flatten both to (B·(T−1), V) and (B·(T−1),) before the cross-entropy; shift exactly
# once.
#
# **Not allowed:** `model.next_token_loss`, `model.next_token_targets`,
# `train.causal_lm_loss` (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch09`
#
# Write `causal_lm_loss_ex(logits, idx)`: `logits` (B, T, V) are the model's outputs for the
# tokens `idx` (B, T) (not shifted). Return the mean cross-entropy of predicting `idx[:, t+1]` from
# position t, over the B·(T − 1) positions that have a next token. Checked against
# `F.cross_entropy` and against a closed form: logits that put margin m on the right next token
# have loss ln(1 + (V − 1)·e^(−m)).

# %%
def causal_lm_loss_ex(logits, idx):
    """L = −mean_{b, t < T−1} log softmax(logits[b, t])[idx[b, t+1]]. logits: (B, T, V), idx: (B, T)."""
    ### BEGIN SOLUTION
    v = logits.size(-1)
    pred = logits[:, :-1, :].reshape(-1, v)  # positions 0..T-2 predict ...
    target = idx[:, 1:].reshape(-1)  # ... tokens 1..T-1
    return -torch.log_softmax(pred, dim=-1).gather(1, target[:, None]).mean()
    ### END SOLUTION


def check_causal_lm_loss_ex(impl):
    """Compare with F.cross_entropy on hand-shifted logits (float64, atol 1e-10) and with the closed
    form ln(1 + (V−1)e^(−m)) for logits that put margin m on the next token."""
    g = torch.Generator().manual_seed(0)
    b, t, v = 3, 7, 11
    idx = torch.randint(0, v, (b, t), generator=g)
    logits = torch.randn(b, t, v, generator=g, dtype=torch.float64)
    got = impl(logits, idx)
    if not isinstance(got, torch.Tensor) or got.dim() != 0:
        raise AssertionError(ch.tr(f"期望一个标量张量，实际得到 {getattr(got, 'shape', type(got).__name__)}",
                                   f"expected a scalar tensor, received {getattr(got, 'shape', type(got).__name__)}"))
    want = F.cross_entropy(logits[:, :-1].reshape(-1, v), idx[:, 1:].reshape(-1))
    err = float((got - want).abs())
    if not err <= 1e-10:
        raise AssertionError(ch.tr(f"随机 logits：得到 {float(got):.6f}，而 F.cross_entropy 在 logits[:, :-1] 和 idx[:, 1:] 上为 "
                                   f"{float(want):.6f}——位置 t 预测的是 idx[:, t+1]：去掉最后一个 logit 和第一个词元"
                                   "（恰好错开一位），再对 B·(T−1) 个预测取平均",
                                   f"random logits: {float(got):.6f} vs F.cross_entropy on logits[:, :-1] and idx[:, 1:] "
                                   f"{float(want):.6f} — position t predicts idx[:, t+1]: drop the last logit and the "
                                   "first token (shift by exactly one), then average over B·(T−1) predictions"))
    m = 6.0  # a "perfect" model: logit m on the true next token, 0 elsewhere
    perfect = torch.zeros(b, t, v, dtype=torch.float64)
    perfect[:, :-1].scatter_(-1, idx[:, 1:, None], m)
    closed = math.log(1 + (v - 1) * math.exp(-m))
    got_perfect = float(impl(perfect, idx))
    if abs(got_perfect - closed) > 1e-10:
        raise AssertionError(ch.tr(f"以间隔 {m:g} 预测出下一个词元的模型：损失为 {got_perfect:.4f}，期望 "
                                   f"ln(1 + (V−1)e^(−m)) = {closed:.4f}——目标序列错位的方向反了，或者根本没有错位",
                                   f"a model that predicts the next token with margin {m:g}: loss {got_perfect:.4f}, expected "
                                   f"ln(1 + (V−1)e^(−m)) = {closed:.4f} — the targets are shifted by one the wrong way or not at all"))
    return ch.tr(f"与 F.cross_entropy 一致（误差 {err:.1e}），也符合闭式解 ln(1 + (V−1)e^(−m)) = {closed:.4f}",
                 f"matches F.cross_entropy (err {err:.1e}) and the closed form ln(1 + (V−1)e^(−m)) = {closed:.4f}")


ch.verify(check_causal_lm_loss_ex, causal_lm_loss_ex)

# %% [markdown] lang="zh"
# 一个随机初始化的小 GPT，用三种方式计算损失——再把练习 9.1 作为第四种。

# %% [markdown] lang="en"
# A tiny random GPT, and the loss three ways — then exercise 9.1 as a fourth.

# %%
V, T = 50, 12
tiny = GPT(GPTConfig(block_size=32, vocab_size=V, n_layer=2, n_head=2, n_embd=32)).eval()
ids = torch.randint(0, V, (3, T + 1))  # (B, T+1) one window per row
with torch.no_grad():
    logits, loss_model = tiny(ids, next_token_targets(ids))  # (B, T+1, V), scalar
    by_hand = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))  # shift by hand
    _, loss_windows = tiny(ids[:, :-1], ids[:, 1:])  # the trainer's convention: labels = chunk[:, 1:]
targets = next_token_targets(ids)
ch.show("ids", ids, "(B, T+1)")
ch.show("logits", logits, "(B, T+1, V)")
ch.check(ch.tr("next_token_targets：targets[:, t] = ids[:, t+1]，最后一个位置被忽略",
               "next_token_targets: targets[:, t] = ids[:, t+1], last position ignored"),
         torch.equal(targets[:, :-1], ids[:, 1:]) and bool((targets[:, -1] == IGNORE_INDEX).all()))
ch.check_close(ch.tr("模型的损失 == F.cross_entropy(logits[:, :-1], ids[:, 1:])（手工错位）",
                     "model loss == F.cross_entropy(logits[:, :-1], ids[:, 1:]) (shift by hand)"), loss_model, by_hand, atol=1e-6)
ch.check_close(ch.tr("长 T+1 的窗口（输入 chunk[:, :-1]，标签 chunk[:, 1:]）给出同样的损失",
                     "windows of T+1 (inputs chunk[:, :-1], labels chunk[:, 1:]) give the same loss"),
               loss_windows, F.cross_entropy(tiny(ids[:, :-1])[0].reshape(-1, V), ids[:, 1:].reshape(-1)), atol=1e-6)
ch.check_value(ch.tr("初始化时损失 ≈ ln|V|（近乎均匀的猜测）", "at initialisation the loss is ≈ ln|V| (a near-uniform guess)"),
               float(loss_model),  # 3.90 ± 0.03 over seeds
               low=math.log(V) - 0.2, high=math.log(V) + 0.2, detail=f"ln {V} = {math.log(V):.3f}")
ch.check_close(ch.tr("练习 9.1 == 模型自己算出的损失", "exercise 9.1 == the model's own loss"),
               causal_lm_loss_ex(logits, ids), loss_model, atol=1e-6)

# %% [markdown] lang="zh"
# ## 2. 因果掩码
#
# 预测 x_{t+1} 时不能看到 x_{t+1} 本身——否则模型会直接抄答案，损失降到零，却什么也没学到。
# 因此每个注意力层都只让查询 i 看到 j ≤ i 的键：这是一个下三角的布尔掩码（True 表示可以关注）。
# 由于每一层都遵守它，位置 t 的 logits 只取决于 x_0 … x_t。我们直接检验这一点：改动位置 t 之后
# 的词元，再作比较。

# %% [markdown] lang="en"
# ## 2. The causal mask
#
# Predicting x_{t+1} must not look at x_{t+1} — otherwise the model would copy its answer and the
# loss would drop to zero while it learns nothing. Each attention layer therefore lets query i see
# keys j ≤ i only: a lower-triangular boolean mask (True = may attend). Because every layer obeys
# it, the logits at position t depend on x_0 … x_t alone. We test that directly: change the tokens
# after position t and compare.

# %% [markdown] lang="zh"
# ### 练习 9.2 — 因果掩码
#
# **`causal_mask_ex`** · ★ · 1 分 · 约 5 分钟
#
# **题目：** 构造 (T, T) 布尔因果掩码：当且仅当 j ≤ i 时，查询 i 可以看到键 j。
#
# **提示：** 用查询位置的列与键位置的行（torch.arange）比较，或者取下三角。
#
# **不可调用：** `attention.causal_mask`,
# `nn.Transformer.generate_square_subsequent_mask`（`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch09`
#
# 实现 `causal_mask_ex(T)`：返回一个 (T, T) 的**布尔**张量，查询 i 可以关注键 j 的地方为 True，
# 即 j ≤ i（也就是含对角线的下三角）。检查时会与 `torch.tril` 以及
# `F.scaled_dot_product_attention(is_causal=True)` 的结果对照。

# %% [markdown] lang="en"
# ### Exercise 9.2 — the causal mask
#
# **`causal_mask_ex`** · ★ · 1 point · ~5 min
#
# **Task:** Build the (T, T) boolean causal mask: query i may see key j exactly when j ≤ i.
#
# **Hint:** Compare a column of query positions with a row of key positions (torch.arange), or
# take a lower triangle.
#
# **Not allowed:** `attention.causal_mask`,
# `nn.Transformer.generate_square_subsequent_mask` (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch09`
#
# Write `causal_mask_ex(T)`: a (T, T) **boolean** tensor, True where query i may attend to key j,
# i.e. j ≤ i (the lower triangle, diagonal included). Checked against `torch.tril` and against
# `F.scaled_dot_product_attention(is_causal=True)`.

# %%
def causal_mask_ex(T):
    """(T, T) bool, True where j <= i (query i may see key j)."""
    ### BEGIN SOLUTION
    i = torch.arange(T).unsqueeze(1)  # (T, 1)
    j = torch.arange(T).unsqueeze(0)  # (1, T)
    return j <= i
    ### END SOLUTION


def check_causal_mask_ex(impl):
    """Compare with torch.ones(T, T).tril() (T = 1..6) and attention through the mask with
    F.scaled_dot_product_attention(is_causal=True) (float64, atol 1e-12)."""
    for t in range(1, 7):
        got = impl(t)
        if not isinstance(got, torch.Tensor) or got.dtype != torch.bool:
            raise AssertionError(ch.tr(f"T={t}：期望一个 torch.bool 张量（True 表示可以关注），实际得到 "
                                       f"{getattr(got, 'dtype', type(got).__name__)}",
                                       f"T={t}: expected a torch.bool tensor (True = may attend), received "
                                       f"{getattr(got, 'dtype', type(got).__name__)}"))
        want = torch.ones(t, t, dtype=torch.bool).tril()
        if got.shape != want.shape:
            raise AssertionError(ch.tr(f"T={t}：期望形状 {tuple(want.shape)}，实际得到 {tuple(got.shape)}",
                                       f"T={t}: expected shape {tuple(want.shape)}, received {tuple(got.shape)}"))
        if not torch.equal(got, want):
            if torch.equal(got, want.T):
                hint = ch.tr("掩码被转置了：第 i 行是查询，第 j 列是键", "it is transposed: row i is the query, column j the key")
            elif torch.equal(got, torch.ones(t, t, dtype=torch.bool).tril(-1)):
                hint = ch.tr("缺了对角线：词元可以关注它自己（j = i）", "the diagonal is missing: a token may attend to itself (j = i)")
            elif torch.equal(got, torch.ones(t, t, dtype=torch.bool).tril(1)):
                hint = ch.tr("错开了一位：查询 i 看到了键 i+1，也就是未来的词元",
                             "shifted by one: query i sees key i+1, a future token")
            else:
                hint = ch.tr("恰好在 j <= i 处为 True", "True exactly where j <= i")
            raise AssertionError(ch.tr(f"T={t}：掩码错误——{hint}", f"T={t}: wrong mask — {hint}"))
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4, generator=g, dtype=torch.float64) for _ in range(3))
    err = float((F.scaled_dot_product_attention(q, k, v, attn_mask=impl(5))
                 - F.scaled_dot_product_attention(q, k, v, is_causal=True)).abs().max())
    if not err <= 1e-12:
        raise AssertionError(ch.tr(f"用这个掩码算出的注意力与 is_causal=True 相差 {err:.1e}",
                                   f"attention with this mask differs from is_causal=True by {err:.1e}"))
    return ch.tr(f"T = 1..6 都等于 torch.tril；用它算出的注意力 == F.scaled_dot_product_attention(is_causal=True)，误差 {err:.1e}",
                 f"T = 1..6 equal torch.tril; attention through it == F.scaled_dot_product_attention(is_causal=True), err {err:.1e}")


ch.verify(check_causal_mask_ex, causal_mask_ex)

# %%
from minitransformer.attention import causal_mask  # the library's version (exercise 9.2)

print("  causal_mask(6):\n" + "\n".join("    " + " ".join(str(int(b)) for b in row) for row in causal_mask(6)))
ch.check(ch.tr("causal_mask(T) 是下三角（含对角线）", "causal_mask(T) is the lower triangle (diagonal included)"),
         torch.equal(causal_mask(T), torch.ones(T, T, dtype=torch.bool).tril()))
x = ids[:, :T]
cut = 7
x_changed = x.clone()
x_changed[:, cut:] = (x[:, cut:] + 1 + torch.randint(0, V - 1, x[:, cut:].shape)) % V  # every later token differs
with torch.no_grad():
    before, after = tiny(x)[0], tiny(x_changed)[0]  # (B, T, V)
ch.check_close(ch.tr(f"改动第 {cut} 个及之后的词元，位置 0…{cut - 1} 的 logits 不变",
                     f"changing tokens {cut}… leaves the logits at positions 0…{cut - 1} unchanged"),
               after[:, :cut], before[:, :cut], atol=1e-5)
moved = float((after[:, cut:] - before[:, cut:]).abs().amax(-1).min())
ch.check_value(ch.tr(f"……而每个 ≥ {cut} 的位置的 logits 都会变（最小变化量）", f"… and changes the logits at every position ≥ {cut} (smallest change)"),
               moved, low=1e-3)

# %% [markdown] lang="zh"
# ## 3. 在自带语料（无标签文本）上预训练
#
# 数据：`data/world_en.txt` 和 `data/world_zh.txt`，即自带的双语玩具世界（故事和评论，每行一句）。
# 与 nanoGPT 的做法一样，每个文件的前 90% 用于训练，后 10% 用于验证。分词器是 1000 个子词的
# sentencepiece BPE，在两个训练部分上学得：常见的英文单词成为一个子词（`▁Paris`），常见的中文
# 字串也是（`坐火车去了`），`[UNK]` 和 `<|endoftext|>` 的 id 分别是 0 和 1。因此下面的困惑度都是
# *按 BPE 词元*计算的。
#
# 模型：2 个前置层归一化的层、4 个头、宽度 96、窗口长 64 个词元。训练循环：
# `minitransformer.trainer.Trainer`（AdamW、预热 + 余弦学习率调度、梯度裁剪），数据来自
# `random_window_batches`，它截取 T + 1 个词元，返回 §1 中所说的错位标签。

# %% [markdown] lang="en"
# ## 3. Pretraining on the bundled corpus
#
# The data: `data/world_en.txt` and `data/world_zh.txt`, the bundled bilingual toy world
# (stories and reviews, one sentence per line). As nanoGPT does, the first 90% of each file
# trains and the last 10% validates. The tokenizer is sentencepiece BPE with 1000 pieces, learned
# on the two training parts: frequent English words become one piece (`▁Paris`), frequent Chinese
# character runs too (`坐火车去了`), and `[UNK]`, `<|endoftext|>` are ids 0 and 1. Perplexities
# below are therefore *per BPE token*.
#
# The model: 2 pre-LN blocks, 4 heads, 96 wide, windows of 64 tokens. The loop:
# `minitransformer.trainer.Trainer` (AdamW, warmup + cosine schedule, gradient clipping) fed by
# `random_window_batches`, which cuts T + 1 tokens and returns the shifted labels of §1.

# %%
parts = [split_text(load_text(world_path(f"world_{lang}.txt"))) for lang in ("en", "zh")]  # (train, val) per file
if ch.fast:  # a small slice of each part: --fast only tests the code
    parts = [(train[:40_000], val[:10_000]) for train, val in parts]
tok = SentencePieceTokenizer.train([train for train, _ in parts], 1000, "bpe", specials=GPT_SPECIALS)
train_ids = encode_documents(tok, [train for train, _ in parts])  # 1-D stream, files joined by <|endoftext|>
val_ids = encode_documents(tok, [val for _, val in parts])
ch.show("train_ids", train_ids, ch.tr("一维词元流", "1-D stream"))
ch.show("val_ids", val_ids, ch.tr("每个文件的最后 10%", "the last 10% of each file"))
print(ch.tr(f"  |V| = {tok.vocab_size} 个子词", f"  |V| = {tok.vocab_size} pieces"))
for sentence in ("Anna went to Tokyo by train.", "安娜坐火车去了东京。"):
    print(f"  {sentence!r} → {tok.tokenize(sentence)}")

BLOCK, BATCH = 64, ch.steps(32, 8)
config = GPTConfig(block_size=BLOCK, vocab_size=tok.vocab_size, n_layer=2, n_head=4, n_embd=96)
ch.manual_seed(0)
model = GPT(config)
steps = ch.steps(150, 6)
train_config = TrainConfig(
    out_dir=str(ch.out / "pretrain"), max_steps=steps, batch_size=BATCH, lr=6e-3, min_lr=6e-4,
    warmup_steps=ch.steps(20, 2), eval_interval=ch.steps(30, 6), eval_steps=ch.steps(8, 1), log_interval=ch.steps(10, 2),
    checkpoint_interval=-1, progress=False, perplexity=True, overwrite=True, seed=ch.seed_for(0),
)
get_batch = by_split(train=random_window_batches(train_ids, BLOCK, BATCH, seed=ch.seed_for(0)),
                     val=random_window_batches(val_ids, BLOCK, BATCH, seed=ch.seed_for(0)))
print(ch.tr(f"  {model.num_parameters():,} 个参数；训练 {steps} 步，每步 {BATCH}×{BLOCK} 个词元",
            f"  {model.num_parameters():,} parameters; {steps} steps of {BATCH}×{BLOCK} tokens"))
t0 = time.perf_counter()
trainer = Trainer(model, train_config, get_batch, loss_fn=causal_lm_loss)
history = trainer.fit()
print(ch.tr(f"  训练用时 {time.perf_counter() - t0:.1f} s", f"  trained in {time.perf_counter() - t0:.1f} s"))

# %% [markdown] lang="zh"
# **困惑度**（perplexity）就是 exp(loss)：模型的不确定程度，相当于在多少个等可能的选项之间
# 猜测。两个基线都有闭式解：在词表上均匀猜测，损失为 ln|V|，困惑度为 |V|；**一元模型**（unigram，
# 只用训练文本中的词元频率，完全不看上下文）的困惑度为 exp(−mean log p(x))。

# %% [markdown] lang="en"
# **Perplexity** is exp(loss): the number of equally likely choices the model is as
# uncertain as. Two baselines, both closed forms: a uniform guess over the vocabulary has loss
# ln|V| and perplexity |V|; a **unigram** model (token frequencies of the training text, no
# context at all) has perplexity exp(−mean log p(x)).

# %%
val_rows = [r for r in history if r["split"] == "val"]
train_rows = [r for r in history if r["split"] == "train"]
val_loss = val_rows[-1]["loss"]
ppl = perplexity(val_loss)
counts = torch.bincount(train_ids, minlength=tok.vocab_size).double() + 1.0  # add-one smoothing
unigram_ppl = perplexity(-float(torch.log(counts / counts.sum())[val_ids].mean()))
print(ch.tr(f"  验证损失 {val_rows[0]['loss']:.3f} → {val_loss:.3f} 奈特/词元",
            f"  validation loss {val_rows[0]['loss']:.3f} → {val_loss:.3f} nats per token"))
print(ch.tr(f"  困惑度：模型 {ppl:.2f}   一元模型 {unigram_ppl:.1f}   均匀分布 |V| = {tok.vocab_size}",
            f"  perplexity: model {ppl:.2f}   unigram {unigram_ppl:.1f}   uniform |V| = {tok.vocab_size}"))
ch.check(ch.tr("训练器报告的困惑度 == exp(验证损失)", "trainer's perplexity == exp(val loss)"),
         abs(val_rows[-1]["perplexity"] - math.exp(val_loss)) < 1e-9 * ppl)
ch.check_value(ch.tr("第 0 步的困惑度 ≈ |V|（均匀猜测）：困惑度 / |V|", "perplexity at step 0 ≈ |V| (the uniform guess): perplexity / |V|"),
               val_rows[0]["perplexity"] / tok.vocab_size,
               low=0.9, high=1.1, detail=f"{val_rows[0]['perplexity']:.1f} vs {tok.vocab_size}")
ch.check_value(ch.tr("训练后的困惑度低于均匀分布基线 |V|", "trained perplexity is below the uniform baseline |V|"),
               ppl, high=tok.vocab_size)
if not ch.fast:
    ch.check_value(ch.tr("……而且远低于一元模型基线（模型用上了上下文）：困惑度 / 一元模型困惑度",
                         "… and well below the unigram baseline (the model uses the context): perplexity / unigram perplexity"),
                   ppl / unigram_ppl, high=1 / 3, detail=f"{ppl:.2f} vs {unigram_ppl:.1f}")

# shifting twice — predicting x_{t+2} from x_0..x_t — is the bug §1 warned about; measured on validation windows
batch = get_batch("val", 0)
with torch.no_grad():
    model.eval()
    _, right = model(batch["input_ids"], batch["labels"])
    _, twice = model(batch["input_ids"][:, :-1], batch["labels"][:, 1:])  # targets two ahead
    _, none = model(batch["input_ids"], batch["input_ids"])  # "predict the current token"
print(ch.tr(f"  目标错位一次的损失 {float(right):.3f}，错位两次 {float(twice):.3f}，不错位 {float(none):.3f}",
            f"  loss with targets shifted once {float(right):.3f}, twice {float(twice):.3f}, not at all {float(none):.3f}"))
if not ch.fast:  # after a few steps (--fast) the model knows little more than token frequencies
    ch.check_value(ch.tr("模型学会了预测下一个词元：把目标错位两次，损失会高得多（多出的奈特数）",
                         "the model has learned the next token: shifting the targets twice costs much more (extra nats)"),
                   float(twice) - float(right), low=1.0,
                   detail=ch.tr(f"{float(right):.2f} vs {float(twice):.2f} 奈特", f"{float(right):.2f} vs {float(twice):.2f} nats"))
    ch.check_value(ch.tr("……完全不错位也是如此（多出的奈特数）", "… and so does not shifting them at all (extra nats)"),
                   float(none) - float(right), low=1.0,
                   detail=ch.tr(f"{float(right):.2f} vs {float(none):.2f} 奈特", f"{float(right):.2f} vs {float(none):.2f} nats"))

fig, ax = plt.subplots(figsize=(7, 3.8))
ax.plot([r["step"] for r in train_rows], [r["loss"] for r in train_rows],
        label=ch.tr("训练（每个记录区间的均值）", "train (mean of each log interval)"))
ax.plot([r["step"] for r in val_rows], [r["loss"] for r in val_rows], "o-", label=ch.tr("验证", "validation"))
ax.axhline(math.log(tok.vocab_size), color="k", ls="--", lw=1,
           label=ch.tr(f"均匀分布：ln |V| = ln {tok.vocab_size}", f"uniform: ln |V| = ln {tok.vocab_size}"))
ax.axhline(math.log(unigram_ppl), color="gray", ls=":", lw=1.5, label=ch.tr("一元模型（词元频率）", "unigram (token frequencies)"))
ax.set(xlabel=ch.tr("优化器步数", "optimizer step"), ylabel=ch.tr("交叉熵（奈特/词元）", "cross-entropy (nats per token)"),
       title=ch.tr(f"GPT 预训练，BPE 词元；验证集困惑度 {ppl:.2f}", f"GPT pretraining, BPE tokens; val perplexity {ppl:.2f}"))
ax.legend(fontsize=8)
ch.savefig(fig, "pretraining_loss")

# %% [markdown] lang="zh"
# ## 4. 解码策略：贪心、温度、top-k、top-p
#
# 模型给出的是下一个词元的概率分布；生成文本就是从中挑一个词元，接到后面，如此重复。常用的
# 几个旋钮都作用在最后一个位置的 logits z 上：
#
# * **贪心解码**——取 argmax z。结果是确定的，但容易陷入循环；
# * **温度** τ——从 softmax(z / τ) 中采样：τ < 1 使分布更尖锐，τ > 1 使分布更平坦，τ → 0 即为贪心；
# * **top-k**——只保留最大的 k 个 logits，其余置为 −∞，再重新归一化；
# * **top-p（核采样）**——把概率从大到小排好 π₁ ≥ π₂ ≥ …，保留总和 ≥ p 的*最短*前缀。一个词元
#   被保留的条件是它**之前**的累计概率仍 < p，所以越过 p 的那个词元也会保留，而概率最高的词元
#   总会保留。
#
# 两者同时使用时，先做 top-k，再对剩下的、重新归一化后的词元做 top-p（`minigpt` 和 Hugging Face
# 都是这样做的）。

# %% [markdown] lang="en"
# ## 4. Decoding: greedy, temperature, top-k, top-p
#
# The model gives a distribution over the next token; generating text means picking one, appending
# it, and repeating. The usual knobs, applied to the last position's logits z:
#
# * **greedy** — argmax z. Deterministic, and prone to loops;
# * **temperature** τ — sample from softmax(z / τ): τ < 1 sharpens, τ > 1 flattens, τ → 0 is greedy;
# * **top-k** — keep the k largest logits, set the rest to −∞, renormalise;
# * **top-p (nucleus)** — sort the probabilities π₁ ≥ π₂ ≥ …, keep the *smallest* prefix whose total
#   is ≥ p. A token is kept when the mass **before** it is still < p, so the token that crosses p is
#   kept, and the top token always is.
#
# With both, top-k comes first and top-p works on the renormalised survivors (as `minigpt` and
# Hugging Face do).

# %% [markdown] lang="zh"
# ### 练习 9.3 — top-k 与 top-p 过滤
#
# **`top_k_top_p_ex`** · ★★ · 2 分 · 约 25 分钟
#
# **题目：** 为采样过滤 logits：先保留最大的 k 个（top-k），再保留概率累计达到 p 的最小高概率集合
# （top-p，始终保留最高的那个）；其余置为 -inf。
#
# **提示：** 做 top-p 时先降序排序再 softmax；若某个词之前的累计概率已达到 p 就丢掉它；再把结果
# scatter 回原来的顺序。
#
# **不可调用：** `generate.top_k_filter`, `generate.top_p_filter`
# （`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch09`
#
# 实现 `top_k_top_p_ex(logits, top_k=None, top_p=None)`：logits (..., V) → 同样的 logits，但在保留
# 集合之外为 −∞（保留下来的 logits 值不变，输入不被修改）。参数为 `None` 时跳过相应的过滤；两者
# 都给出时，先做 top-k，再对重新归一化后剩下的词元做 top-p。检查函数使用的几个分布，其保留集合
# 都是手工算出来的。

# %% [markdown] lang="en"
# ### Exercise 9.3 — top-k and top-p filtering
#
# **`top_k_top_p_ex`** · ★★ · 2 points · ~25 min
#
# **Task:** Filter logits for sampling: keep the k largest (top-k), then the smallest set of
# most probable tokens whose probability reaches p (top-p, always keeping the top token); -inf
# elsewhere.
#
# **Hint:** For top-p, sort descending, softmax, and drop a token when the mass *before* it
# already reaches p; scatter the decision back to the original order.
#
# **Not allowed:** `generate.top_k_filter`, `generate.top_p_filter`
# (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch09`
#
# Write `top_k_top_p_ex(logits, top_k=None, top_p=None)`: logits (..., V) → the same logits with
# −∞ outside the kept set (kept logits unchanged, the input not modified). `None` skips a filter;
# with both, apply top-k first and top-p to the renormalised survivors. The check uses
# distributions whose kept sets are worked out by hand.

# %%
def top_k_top_p_ex(logits, top_k=None, top_p=None):
    """Logits with -inf outside the top-k, then outside the nucleus (smallest prefix with mass >= p)."""
    ### BEGIN SOLUTION
    out = logits.clone()
    if top_k is not None and top_k < out.size(-1):
        kth = out.topk(top_k, dim=-1).values[..., -1:]  # (..., 1)
        out = out.masked_fill(out < kth, float("-inf"))
    if top_p is not None:
        sorted_logits, order = out.sort(dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs
        drop = torch.zeros_like(mass_before, dtype=torch.bool).scatter(-1, order, mass_before >= top_p)
        out = out.masked_fill(drop, float("-inf"))
    return out
    ### END SOLUTION


def check_top_k_top_p_ex(impl):
    """Kept sets worked out by hand on two rows with probabilities {0.4, 0.3, 0.15, 0.1, 0.05} in
    different orders (and one row where renormalising after top-k matters); kept logits unchanged."""
    probs = torch.tensor([[0.05, 0.40, 0.10, 0.30, 0.15],
                          [0.30, 0.05, 0.15, 0.40, 0.10]], dtype=torch.float64)
    logits = torch.log(probs) + torch.tensor([[1.0], [-2.0]], dtype=torch.float64)  # a shift per row changes nothing
    # the kept tokens, by probability: sorted 0.40, 0.30, 0.15, 0.10, 0.05 with mass before 0, .40, .70, .85, .95
    cases = [
        (None, None, (0.40, 0.30, 0.15, 0.10, 0.05), ch.tr("不做过滤时保留全部词元", "no filter keeps everything")),
        (2, None, (0.40, 0.30), ch.tr("top-k = 2 恰好保留 2 个（不是 k+1 个）", "top-k = 2 keeps exactly 2 (not k+1)")),
        (1, None, (0.40,), ch.tr("top-k = 1 只保留 argmax", "top-k = 1 keeps the argmax")),
        (9, None, (0.40, 0.30, 0.15, 0.10, 0.05), ch.tr("top-k ≥ V 时保留全部词元", "top-k ≥ V keeps everything")),
        (None, 0.65, (0.40, 0.30), ch.tr("top-p = 0.65：0.30 也要保留——它之前的累积概率（0.40）< p；"
                                         "越过 p 的那个词元属于核（nucleus）",
                                         "top-p = 0.65: keep 0.30 too — the mass before it (0.40) is < p; "
                                         "the token that crosses p belongs to the nucleus")),
        (None, 0.75, (0.40, 0.30, 0.15), ch.tr("top-p = 0.75：0.15 之前的累积概率为 0.70 < p，所以保留 3 个词元",
                                               "top-p = 0.75: mass before 0.15 is 0.70 < p, so 3 tokens")),
        (None, 0.30, (0.40,), ch.tr("top-p = 0.30：概率最高的词元单独就已达到 p（而且它总会被保留）",
                                    "top-p = 0.30: the top token alone already reaches p (and is always kept)")),
        (3, 0.80, (0.40, 0.30), ch.tr("先 top-k = 3，再在重新归一化后的 0.40/0.85、0.30/0.85、0.15/0.85 上做 top-p = 0.80："
                                      "第三个之前的累积概率为 0.82 ≥ p——top-k 之后要重新归一化",
                                      "top-k = 3 then top-p = 0.80 on the renormalised 0.40/0.85, 0.30/0.85, "
                                      "0.15/0.85: the mass before the third is 0.82 ≥ p — renormalise after top-k")),
    ]
    before = logits.clone()
    for top_k, top_p, kept_probs, hint in cases:
        got = impl(logits, top_k, top_p)
        if not torch.equal(logits, before):
            raise AssertionError(ch.tr("输入的 logits 被原地修改了；应返回一个新张量",
                                       "the input logits were modified in place; return a new tensor"))
        if not isinstance(got, torch.Tensor) or got.shape != logits.shape:
            raise AssertionError(ch.tr(f"top_k={top_k}，top_p={top_p}：期望形状 {tuple(logits.shape)}，实际得到 "
                                       f"{getattr(got, 'shape', type(got).__name__)}",
                                       f"top_k={top_k}, top_p={top_p}: expected shape {tuple(logits.shape)}, received "
                                       f"{getattr(got, 'shape', type(got).__name__)}"))
        want_kept = torch.zeros_like(probs, dtype=torch.bool)
        for p in kept_probs:
            want_kept |= (probs - p).abs() < 1e-12
        got_kept = torch.isfinite(got)
        extra = got_kept & ~want_kept
        if bool(extra.any()) and not torch.equal(got[extra], logits[extra]):
            raise AssertionError(ch.tr(f"top_k={top_k}，top_p={top_p}：被过滤掉的 logits 必须是 -inf（而不是一个很大的"
                                       "负数），保留的 logits 不变",
                                       f"top_k={top_k}, top_p={top_p}: filtered-out logits must be -inf (not a large "
                                       "negative number), kept ones unchanged"))
        if not torch.equal(got_kept, want_kept):
            n_got = got_kept.sum(-1).tolist()
            raise AssertionError(ch.tr(f"top_k={top_k}，top_p={top_p}：每行保留了 {n_got} 个词元，期望 "
                                       f"{len(kept_probs)} 个（概率为 {kept_probs}）——{hint}",
                                       f"top_k={top_k}, top_p={top_p}: kept {n_got} tokens per row, expected "
                                       f"{len(kept_probs)} (probabilities {kept_probs}) — {hint}"))
        if bool((got[~got_kept] != float("-inf")).any()):
            raise AssertionError(ch.tr(f"top_k={top_k}，top_p={top_p}：被过滤掉的 logits 必须是 -inf",
                                       f"top_k={top_k}, top_p={top_p}: filtered-out logits must be -inf"))
        if not torch.equal(got[got_kept], logits[got_kept]):
            raise AssertionError(ch.tr(f"top_k={top_k}，top_p={top_p}：保留的 logits 必须保持原值（不要对 logits 本身"
                                       "重新归一化；softmax 会做这件事）",
                                       f"top_k={top_k}, top_p={top_p}: kept logits must keep their values (no renormalising "
                                       "of the logits themselves; softmax does that)"))
    return ch.tr(f"{len(cases)} 种情形（top-k、top-p、两者兼用、最高概率词元、越过阈值的词元），保留集合均为手工推算",
                 f"{len(cases)} cases (top-k, top-p, both, top token, crossing token), kept sets worked out by hand")


ch.verify(check_top_k_top_p_ex, top_k_top_p_ex)

# %%
from minigpt.generate import top_k_filter, top_p_filter  # the library's versions (exercise 9.3)

zz = torch.randn(4, 100) * 3
for k_, p_ in [(10, None), (None, 0.8), (20, 0.9)]:
    lib = zz if k_ is None else top_k_filter(zz, k_)
    lib = lib if p_ is None else top_p_filter(lib, p_)
    ch.check(ch.tr(f"练习 == minigpt 的 top_k_filter → top_p_filter（k={k_}，p={p_}）",
                   f"exercise == minigpt's top_k_filter → top_p_filter (k={k_}, p={p_})"),
             torch.equal(top_k_top_p_ex(zz, k_, p_), lib))

prompt = "One day, Anna went to"
p_ids = torch.tensor([tok.encode(prompt)])
with torch.no_grad():
    z = model(p_ids)[0][0, -1]  # (V,) logits for the next token
probs = torch.softmax(z, -1)
top = probs.topk(8)
print(ch.tr(f"  在 {prompt!r} 之后，模型预期：", f"  after {prompt!r} the model expects: ")
      + ", ".join(f"{tok.id_to_token(int(i))!r} {float(p):.2f}" for p, i in zip(*top)))
temps = [0.5, 1.0, 2.0]
ent = [float(-(torch.softmax(z / tt, -1) * torch.log_softmax(z / tt, -1)).sum()) for tt in temps]
ch.check(ch.tr("温度越高，熵越大", "higher temperature, higher entropy"), ent[0] < ent[1] < ent[2],
         " < ".join(f"{e:.2f}" for e in ent) + ch.tr(" 奈特", " nats"))
ch.check(ch.tr("τ → 0 时全部概率集中在 argmax 上（贪心）", "τ → 0 puts all the mass on the argmax (greedy)"),
         float(torch.softmax(z / 1e-3, -1).max()) > 0.999)
kept_k = torch.isfinite(top_k_filter(z, 5))
ch.check(ch.tr("top_k_filter(z, 5) 恰好保留最大的 5 个", "top_k_filter(z, 5) keeps exactly the 5 largest"),
         int(kept_k.sum()) == 5 and bool(kept_k[z.topk(5).indices].all()))
kept_p = torch.isfinite(top_p_filter(z, 0.9))
n_p = int(kept_p.sum())
sorted_p = probs.sort(descending=True).values
ch.check(ch.tr("top_p_filter(z, 0.9) 保留概率和 ≥ 0.9 的最短前缀", "top_p_filter(z, 0.9) keeps the smallest prefix with mass ≥ 0.9"),
         float(sorted_p[:n_p].sum()) >= 0.9 - 1e-6 and float(sorted_p[: n_p - 1].sum()) < 0.9 + 1e-6,  # float32 sums
         ch.tr(f"{n_p} 个词元，概率和 {float(sorted_p[:n_p].sum()):.3f}（去掉最后一个：{float(sorted_p[:n_p - 1].sum()):.3f}）",
               f"{n_p} tokens, mass {float(sorted_p[:n_p].sum()):.3f} (without the last: {float(sorted_p[:n_p - 1].sum()):.3f})"))

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
order = probs.argsort(descending=True)[:20]
pieces = [tok.id_to_token(int(i)).replace("▁", "␣") for i in order]  # ␣: the piece starts a word
labels = [p if all(c.isascii() or c == "␣" for c in p) else f"#{int(i)}" for p, i in zip(pieces, order)]  # no CJK font assumed
for k, tt in enumerate(temps):
    axes[0].bar([i + (k - 1) * 0.27 for i in range(20)], torch.softmax(z / tt, -1)[order], width=0.27, label=f"τ = {tt}")
axes[0].set_xticks(range(20), labels, rotation=60, fontsize=8)
axes[0].set(title=ch.tr(f"{prompt!r} 之后的下一个词元", f"next token after {prompt!r}"), ylabel=ch.tr("概率", "probability"))
axes[0].legend()
cum = torch.cumsum(sorted_p, 0)[:40]
axes[1].step(range(1, 41), cum, where="mid", label=ch.tr("累计概率（已排序）", "cumulative probability (sorted)"))
axes[1].axhline(0.9, color="C1", ls="--", lw=1, label="top-p = 0.9")
axes[1].axvline(n_p, color="C1", lw=1)
axes[1].axvline(5, color="C2", ls=":", lw=1.5, label="top-k = 5")
axes[1].set(xlabel=ch.tr("保留的词元数（概率从高到低）", "tokens kept (most probable first)"), ylim=(0, 1.02),
            title=ch.tr(f"核采样 p = 0.9 保留 {n_p} 个词元", f"nucleus p = 0.9 keeps {n_p} tokens"))
axes[1].legend(fontsize=8)
ch.savefig(fig, "sampling_distributions")

# %% [markdown] lang="zh"
# 下面是从相同提示（prompt）出发生成的样本，并排放在一起（设定了随机种子，所以可以复现）。贪心
# 解码只给出一个固定的字符串，而且很容易陷入循环（一个空行接一个空行）。采样的结果各不相同；在
# τ = 1.5 时，不太可能的长尾得到了足够的概率，于是会出现残缺的单词，以及说到一半换了语言的句子
# （两种语言共用一个词表和同一段上下文）。top-k 和 top-p 在保留多样性的同时切掉了这条长尾。

# %% [markdown] lang="en"
# Now the samples, side by side, from the same prompts (seeded, so they repeat). Greedy is one
# fixed string and easily falls into a loop (blank line after blank line). Sampling varies; at
# τ = 1.5 the unlikely tail gets enough mass to produce broken words and sentences that switch
# language half-way (both languages share one vocabulary and one context). Top-k and top-p cut
# that tail off while keeping the variety.

# %%
N_NEW = ch.steps(32, 8)
settings = [(ch.tr("贪心", "greedy"),
             dict(greedy=True)), ("τ = 0.7", dict(temperature=0.7)), ("τ = 1.0", dict(temperature=1.0)),
            ("τ = 1.5", dict(temperature=1.5)), ("top-k = 5", dict(top_k=5)), ("top-p = 0.9", dict(top_p=0.9))]
for text_prompt in ["Anna went to", "安娜"]:
    x0 = torch.tensor([tok.encode(text_prompt)])
    print(ch.tr(f"\n  提示 {text_prompt!r}，生成 {N_NEW} 个新词元（⏎ = 换行）：", f"\n  prompt {text_prompt!r}, {N_NEW} new tokens (⏎ = newline):"))
    for name, kw in settings:
        out = model.generate(x0, N_NEW, generator=torch.Generator().manual_seed(ch.seed_for(1)), **kw)
        print(f"  {name:>12} | {tok.decode(out[0].tolist()).replace(chr(10), '⏎')}")  # prompt + continuation

x0 = torch.tensor([tok.encode("Anna went to")])
greedy = model.generate(x0, 20, greedy=True)
manual = x0
with torch.no_grad():
    for _ in range(20):  # greedy by hand: argmax of the last logits, append, repeat
        manual = torch.cat([manual, model(manual)[0][:, -1:].argmax(-1)], dim=1)
ch.check(ch.tr("generate(greedy=True) == 取 argmax、接上、重复（手写）", "generate(greedy=True) == argmax, append, repeat (by hand)"),
         torch.equal(greedy, manual))
ch.check(ch.tr("top_k = 1 的采样 == 贪心", "top_k = 1 sampling == greedy"),
         torch.equal(model.generate(x0, 20, top_k=1, generator=torch.Generator().manual_seed(ch.seed_for(5))), greedy))
s1 = model.generate(x0, 20, temperature=1.0, generator=torch.Generator().manual_seed(ch.seed_for(3)))
s2 = model.generate(x0, 20, temperature=1.0, generator=torch.Generator().manual_seed(ch.seed_for(3)))
ch.check(ch.tr("设定了种子的生成器使采样完全可复现", "a seeded generator makes sampling repeat exactly"), torch.equal(s1, s2))

# %% [markdown] lang="zh"
# ## 5. KV 缓存
#
# 生成第 t + 1 个词元只需要最后一个位置的 logits。它的查询要关注**所有**之前词元的键和值——但
# 多亏了因果掩码，这些键和值一旦算出就不会再变（后面的词元影响不了前面的词元；见 §2）。所以每一
# 层都可以把它们存起来：
#
#     第 1 步（预填充，prefill）：运行整个提示，保存每一层的 K、V     (B, H, T_prompt, hs)
#     第 n 步：只运行最新的词元；追加它的 k、v；关注已保存的键和值
#
# 这样每一步只需让一个词元穿过模型，而不是整个前缀。代价是内存：每个序列需要
# 2（K 和 V）× L 层 × T 个词元 × C 个数——对 GPT-2 small（L = 12，C = 768），T = 1024、float32 时，
# 每个序列为 2·12·1024·768·4 字节 = 75.5 MB。
#
# 首先验证：把词元分段送入、经过缓存得到的 logits，与一次完整前向计算的结果相同。

# %% [markdown] lang="en"
# ## 5. The KV cache
#
# Generating token t + 1 needs the last position's logits only. Its query attends to the keys and
# values of **all** earlier tokens — but thanks to the causal mask those never change once
# computed (a later token cannot influence an earlier one; §2). So each layer can keep them:
#
#     step 1 (prefill): run the whole prompt, store K, V of every layer     (B, H, T_prompt, hs)
#     step n:           run the newest token only; append its k, v; attend to the stored ones
#
# A step then pushes one token through the model instead of the whole prefix. The price is memory:
# 2 (K and V) × L layers × T tokens × C numbers per sequence — for GPT-2 small (L = 12, C = 768)
# at T = 1024 in float32, 2·12·1024·768·4 bytes = 75.5 MB per sequence.
#
# First: feeding the tokens in pieces through the cache gives the same logits as one full pass.

# %%
xs = torch.tensor([tok.encode("Anna went to Paris by train.\n安娜坐火车去了巴黎。")])  # (1, T)
PREFILL = 5
with torch.no_grad():
    full = model(xs)[0]  # (1, T, V)
    caches = model.new_caches()  # one KVCache per block
    pieces = [model(xs[:, :PREFILL], caches=caches)[0]]  # prefill: the first tokens in one pass
    for t in range(PREFILL, xs.size(1)):
        pieces.append(model(xs[:, t : t + 1], caches=caches)[0])  # then one token at a time
ch.check_close(ch.tr(f"先预填充 {PREFILL} 个词元，再经 KV 缓存逐个送入 {xs.size(1) - PREFILL} 个 == 一次完整的前向计算",
                     f"prefill {PREFILL} tokens, then {xs.size(1) - PREFILL} one at a time through the KV cache == one full forward pass"),
               torch.cat(pieces, dim=1), full, atol=1e-5)
n_cached = sum(c.k.numel() + c.v.numel() for c in caches)
ch.check(ch.tr("缓存大小 = 2 · L · B · T · C 个数", "cache size = 2 · L · B · T · C numbers"),
         n_cached == 2 * config.n_layer * 1 * xs.size(1) * config.n_embd,
         f"{n_cached} = 2·{config.n_layer}·1·{xs.size(1)}·{config.n_embd}")
ch.check(ch.tr("GPT-2 small 在 T = 1024 时：每个序列 2·12·1024·768·4 字节 ≈ 75.5 MB（float32）",
               "GPT-2 small at T = 1024: 2·12·1024·768·4 bytes ≈ 75.5 MB per sequence (float32)"),
         abs(2 * 12 * 1024 * 768 * 4 / 1e6 - 75.5) < 0.05)

for name, kw in [(ch.tr("贪心解码", "greedy"), dict(greedy=True)),
                 (ch.tr("设定种子的采样（τ = 1，top-p = 0.95）", "seeded sampling (τ = 1, top-p = 0.95)"), dict(top_p=0.95))]:
    a = model.generate(x0, ch.steps(40, 16), use_cache=True, generator=torch.Generator().manual_seed(ch.seed_for(7)), **kw)
    b = model.generate(x0, ch.steps(40, 16), use_cache=False, generator=torch.Generator().manual_seed(ch.seed_for(7)), **kw)
    ch.check(ch.tr(f"{name}：用 KV 缓存 == 重新计算前缀（词元相同）", f"{name}: with the KV cache == recomputing the prefix (same tokens)"),
             torch.equal(a, b))

# %% [markdown] lang="zh"
# ### 练习 9.4 — 带 KV 缓存的一步
#
# **`kv_cache_step_ex`** · ★★★ · 2 分 · 约 25 分钟
#
# **题目：** 带 KV 缓存的一步生成：把新的键和值追加进缓存，再让新查询对所有已缓存位置做因果注意力
# （与序列末尾对齐）；返回输出和扩展后的缓存。
#
# **提示：** 第 i 个新查询的绝对位置是 T_past + i，所以它能看到 j ≤ T_past + i 的键：把因果三角按
# 缓存长度平移。
#
# **不可调用：** `attention.KVCache`, `attention.causal_mask`, `attention.merge_masks`,
# `attention.scaled_dot_product_attention`, `attention.sdpa_fast`
# （`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch09`
#
# 为一组注意力头实现 `kv_cache_step_ex(q_new, k_new, v_new, cache_k, cache_v)`：`q_new, k_new,
# v_new` (B, H, T_new, hs) 属于最新的 T_new 个词元，`cache_k, cache_v` (B, H, T_past, hs) 属于之前
# 的词元（第一步之前为 `None`）。返回 `(out, cache_k, cache_v)`：新词元的因果注意力输出
# (B, H, T_new, hs)，以及追加了新键和新值的缓存。新词元 i（在新词元中从 0 开始编号）可以看到
# j ≤ T_past + i 的键——当 T_new > 1 且缓存非空时尤其要注意这一点。检查函数把一个序列分块送入，
# 并与在整个序列上调用 `F.scaled_dot_product_attention(is_causal=True)` 的结果比较。

# %% [markdown] lang="en"
# ### Exercise 9.4 — one step with a KV cache
#
# **`kv_cache_step_ex`** · ★★★ · 2 points · ~25 min
#
# **Task:** One generation step with a KV cache: append the new keys and values, then attend
# from the new queries to every cached position (causal, aligned to the end). Return the output
# and the grown cache.
#
# **Hint:** New query i sits at absolute position T_past + i, so it may see keys j ≤ T_past + i:
# shift the causal triangle by the cache length.
#
# **Not allowed:** `attention.KVCache`, `attention.causal_mask`, `attention.merge_masks`,
# `attention.scaled_dot_product_attention`, `attention.sdpa_fast`
# (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch09`
#
# Write `kv_cache_step_ex(q_new, k_new, v_new, cache_k, cache_v)` for one attention head group:
# `q_new, k_new, v_new` (B, H, T_new, hs) belong to the T_new newest tokens, `cache_k, cache_v`
# (B, H, T_past, hs) to the earlier ones (`None` before the first step). Return
# `(out, cache_k, cache_v)`: the causal attention output of the new tokens (B, H, T_new, hs) and
# the caches with the new keys and values appended. A new token i (0-based among the new ones)
# may see keys j ≤ T_past + i — mind this when T_new > 1 and the cache is not empty. The check
# feeds a sequence in chunks and compares with `F.scaled_dot_product_attention(is_causal=True)`
# over the whole sequence.

# %%
def kv_cache_step_ex(q_new, k_new, v_new, cache_k, cache_v):
    """Append (k_new, v_new) to the cache, then causal attention of q_new over all cached keys."""
    ### BEGIN SOLUTION
    k = k_new if cache_k is None else torch.cat([cache_k, k_new], dim=2)  # (B, H, T_past + T_new, hs)
    v = v_new if cache_v is None else torch.cat([cache_v, v_new], dim=2)
    t_new, t_all = q_new.size(2), k.size(2)
    scores = q_new @ k.transpose(-2, -1) / math.sqrt(q_new.size(-1))  # (B, H, T_new, T_all)
    i = torch.arange(t_new).unsqueeze(1) + (t_all - t_new)  # absolute position of each new query
    j = torch.arange(t_all).unsqueeze(0)
    scores = scores.masked_fill(j > i, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v, k, v
    ### END SOLUTION


def check_kv_cache_step_ex(impl):
    """Feed 8 tokens in chunks of 3, 1, 2, 1, 1 and compare every output with
    F.scaled_dot_product_attention(q, k, v, is_causal=True) over the whole sequence (float64, atol 1e-10)."""
    g = torch.Generator().manual_seed(0)
    b, h, t, hs = 2, 3, 8, 4
    q, k, v = (torch.randn(b, h, t, hs, generator=g, dtype=torch.float64) for _ in range(3))
    want = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, hs)
    cache_k = cache_v = None
    start = 0
    worst = 0.0
    for size in (3, 1, 2, 1, 1):
        end = start + size
        got = impl(q[:, :, start:end], k[:, :, start:end], v[:, :, start:end], cache_k, cache_v)
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            raise AssertionError(ch.tr(f"期望一个元组 (out, cache_k, cache_v)，实际得到 {type(got).__name__}",
                                       f"expected a tuple (out, cache_k, cache_v), received {type(got).__name__}"))
        out, cache_k, cache_v = got
        where = ch.tr(f"位置 {start}..{end - 1} 上的 {size} 个词元（之前已缓存 {start} 个）",
                      f"chunk of {size} token(s) at positions {start}..{end - 1} ({start} cached before it)")
        for name, got_c, want_c in (("cache_k", cache_k, k[:, :, :end]), ("cache_v", cache_v, v[:, :, :end])):
            if not isinstance(got_c, torch.Tensor) or got_c.shape != want_c.shape or not torch.equal(got_c, want_c):
                received = getattr(got_c, "shape", type(got_c).__name__)
                raise AssertionError(ch.tr(f"{where}：{name} 应存放词元 0..{end - 1} 的键/值，形状为 "
                                           f"{tuple(want_c.shape)}，实际得到 {received}"
                                           "——沿时间轴（dim 2）把新的键/值追加在后面",
                                           f"{where}: {name} should hold the keys/values of tokens 0..{end - 1}, shape "
                                           f"{tuple(want_c.shape)}, received {received}"
                                           " — append the new ones along the time axis (dim 2)"))
        if not isinstance(out, torch.Tensor) or out.shape != (b, h, size, hs):
            raise AssertionError(ch.tr(f"{where}：期望 out 的形状为 {(b, h, size, hs)}，实际得到 "
                                       f"{getattr(out, 'shape', type(out).__name__)}",
                                       f"{where}: expected out of shape {(b, h, size, hs)}, received "
                                       f"{getattr(out, 'shape', type(out).__name__)}"))
        err = float((out - want[:, :, start:end]).abs().max())
        if not err <= 1e-10:
            hint = (ch.tr("要同时关注缓存的键和新的键（先追加）；新词元 i 位于位置 T_past + i，能看到 j <= T_past + i 的键"
                          "——因果掩码要右下对齐（当 T_q != T_k 时，F.scaled_dot_product_attention 的 is_causal 是左上对齐的）",
                          "attend to the cached keys and the new ones (append first); new token i sits at position "
                          "T_past + i and sees keys j <= T_past + i — the causal mask is aligned bottom-right "
                          "(F.scaled_dot_product_attention's is_causal aligns it top-left when T_q != T_k)")
                    if start > 0 else
                    ch.tr("把分数乘以 1/√hs，并遮住块内的未来词元（j > i）",
                          "scale the scores by 1/√hs and mask the future tokens inside the chunk (j > i)"))
            raise AssertionError(ch.tr(f"{where}：与完整因果注意力的最大绝对误差为 {err:.1e}——{hint}",
                                       f"{where}: max abs err {err:.1e} vs full causal attention — {hint}"))
        worst = max(worst, err)
        start = end
    return ch.tr(f"8 个词元按 3,1,2,1,1 分块输入 == F.scaled_dot_product_attention(is_causal=True)，最大绝对误差 {worst:.1e}",
                 f"8 tokens in chunks 3,1,2,1,1 == F.scaled_dot_product_attention(is_causal=True), max abs err {worst:.1e}")


ch.verify(check_kv_cache_step_ex, kv_cache_step_ex)

# %%
from minitransformer.attention import KVCache  # the library's version (exercise 9.4)

lib_cache = KVCache()
k1, v1 = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4)
k2, v2 = torch.randn(1, 2, 1, 4), torch.randn(1, 2, 1, 4)
_, ck, cv = kv_cache_step_ex(torch.randn(1, 2, 3, 4), k1, v1, None, None)
_, ck, cv = kv_cache_step_ex(torch.randn(1, 2, 1, 4), k2, v2, ck, cv)
lib_cache.update(k1, v1)
lib_k, lib_v = lib_cache.update(k2, v2)
ch.check(ch.tr("两次更新后，练习的缓存 == minitransformer.attention.KVCache",
               "exercise cache == minitransformer.attention.KVCache after two updates"),
         torch.equal(ck, lib_k) and torch.equal(cv, lib_v))

# %% [markdown] lang="zh"
# 能快多少？不用缓存时，第 n 步要让全部 n 个词元穿过每一层（其中的注意力每层开销为 n²），所以
# 生成 N 个词元的开销约为 N²；用了缓存，每一步只让一个词元穿过，总共约为 N（外加对缓存做注意力的
# 开销）。速度只取决于张量形状，所以我们另建一个同样大小、能容纳更长序列的新模型来计时
# （`block_size` 为 320；预训练好的那个模型只到 64），每种方式各跑两次取最快的一次。

# %% [markdown] lang="en"
# How much faster? Without the cache, step n pushes all n tokens through every layer (and the
# attention inside costs n² per layer), so a generation of N tokens costs ~N²; with it, each step
# pushes one token, ~N in all (plus attention over the cache). The speed depends on shapes only,
# so we time a fresh model of the same size with room for longer sequences (`block_size` 320;
# our pretrained one stops at 64), best of two runs each.

# %%
def best_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


timing_model = GPT(GPTConfig(block_size=320, vocab_size=tok.vocab_size, n_layer=2, n_head=4, n_embd=96)).eval()
n_new = ch.steps(200, 16)
start_ids = torch.tensor([tok.encode("Anna went")])
timing_model.generate(start_ids, 4, greedy=True)  # warm-up
t_cache, out_cache = best_time(lambda: timing_model.generate(start_ids, n_new, greedy=True, use_cache=True), ch.steps(2, 1))
t_full, out_full = best_time(lambda: timing_model.generate(start_ids, n_new, greedy=True, use_cache=False), ch.steps(2, 1))
speedup = t_full / t_cache
print(ch.tr(f"  {n_new} 个新词元：重新计算 {n_new / t_full:,.0f} 词元/秒，KV 缓存 {n_new / t_cache:,.0f} 词元/秒 "
            f"→ 加速 {speedup:.1f}×",
            f"  {n_new} new tokens: recompute {n_new / t_full:,.0f} tokens/s, KV cache {n_new / t_cache:,.0f} tokens/s "
            f"→ speed-up {speedup:.1f}×"))
ch.check(ch.tr("计时的两次运行：有无缓存生成的词元相同", "timing runs: the same tokens with and without the cache"),
         torch.equal(out_cache, out_full))
if not ch.fast:
    ch.check_value(ch.tr("KV 缓存比重新计算前缀更快（加速比）", "the KV cache is faster than recomputing the prefix (speed-up)"),
                   speedup, low=1.0)

# %% [markdown] lang="zh"
# ## 本章小结
#
# * 因果语言模型的目标：输入 x_0 … x_{T−1}，目标 x_1 … x_T，每个位置一个交叉熵——与对手工错位
#   的 logits 调用 `F.cross_entropy` 的结果相同，初始化时约为 ln|V|；
# * 因果掩码，以及在真实模型上验证的推论：后面的词元绝不会改变前面位置的 logits；
# * 用共享的训练器在无标签双语文本上对一个小 GPT 做自监督预训练（文章 §3.2.3）：验证集困惑度
#   远低于均匀分布 |V| 和一元模型两个基线；
# * 贪心、温度、top-k 和 top-p 解码，以及保留“越过 p 的那个词元”的核采样规则；
# * KV 缓存：生成的词元完全相同（贪心解码和设定种子的采样），每个序列占用 2·L·T·C 个数的内存，
#   并实测了加速比。
#
# 下一步：第 12 章微调这样一个 GPT，让它把英文翻译成中文（文章 §3.2.4 生成任务、§6.3）。

# %% [markdown] lang="en"
# ## What we built
#
# * the causal-LM objective: inputs x_0 … x_{T−1}, targets x_1 … x_T, one cross-entropy per
#   position — equal to `F.cross_entropy` on hand-shifted logits, and ≈ ln|V| at initialisation;
# * the causal mask, and its consequence checked on a real model: later tokens never change
#   earlier logits;
# * self-supervised pretraining (article §3.2.3) of a tiny GPT on unlabelled bilingual text with the
#   shared trainer: validation perplexity far below the uniform |V| and the unigram baselines;
# * greedy, temperature, top-k and top-p decoding, with the nucleus rule that keeps the token that
#   crosses p;
# * the KV cache: identical tokens (greedy and seeded sampling), 2·L·T·C numbers of memory per
#   sequence, and the measured speed-up.
#
# Next: ch12 fine-tunes such a GPT to translate English into Chinese (article §3.2.4 generation
# tasks, §6.3).

# %%
ch.done()
