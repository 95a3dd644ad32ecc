# %% [markdown] lang="zh"
# # 第 14 章 可解释性：观察一个微调过的 BERT 的内部（文章 §3.3.2、§8.3、§9 Q6）
#
# 关于可解释性（interpretability），文章说了三件事：
#
# * §3.3.2 和 §8.3：预训练模型和微调后的模型都难以解释（“可解释性差”）——这是对的；
# * §6.2：它们“模型可解释性强”——这是**错的**，而且与上面两节自相矛盾（第 11 章在文章说这句话的地方做了更正）；
# * §9 Q6：可以通过可视化，以及通过“注意力机制，展示模型关注到的关键信息”来解释模型——这**只对了一半**：注意力图很容易画出来，但注意力权重（attention weight）并不能衡量一个词元对预测有多重要。
#
# 本章在随书附带的评论数据上训练一个小型的 BERT 情感分类器（在这些评论中，否定词和 “but” 决定了标签），然后从三个角度观察它的内部：
#
# 1. **注意力图**，逐层、逐头地画出来；
# 2. **梯度 × 输入**（gradient × input）显著性，先在线性模型上检查它，那里它有闭式解 w ⊙ x；
# 3. **积分梯度**（integrated gradients），它给出的归因（attribution）之和等于 f(x) − f(基线)（我们会检查这一点），以及**遮挡**（occlusion）：去掉一个词元，度量输出的变化；
#
# 然后度量注意力能告诉我们什么、不能告诉我们什么：一个人为构造的例子，其中得到最多注意力的词元毫无贡献；在整个测试集上，注意力排序与另外两种方法的排序之间的秩相关；以及 Jain & Wallace（2019）的实验：打乱注意力，看预测是否改变。
#
# **更正：** 预训练模型并非“可解释性强”；注意力权重也不等于解释（第 5 节用实验说明这一点）。

# %% [markdown] lang="en"
# # Chapter 14 · Interpretability: looking inside a fine-tuned BERT (Article §3.3.2, §8.3, §9 Q6)
#
# The article says three things about interpretability:
#
# * §3.3.2 and §8.3: pretrained and fine-tuned models are hard to interpret ("可解释性差") — true;
# * §6.2: they are "highly interpretable" ("模型可解释性强") — **wrong**, and contradicted by the two
#   sections above (ch11 corrects it where it is said);
# * §9 Q6: interpret them by visualisation and by "attention, which shows the key information the
#   model attends to" (注意力机制，展示模型关注到的关键信息) — **only half right**: attention maps are
#   easy to draw, but an attention weight is not a measure of how much a token mattered.
#
# In this chapter we train a small BERT sentiment classifier on the bundled reviews (where
# negation and "but" decide the label) and look inside it three ways:
#
# 1. **attention maps**, every layer and head;
# 2. **gradient × input** saliency, checked on a linear model where it has a closed form w ⊙ x;
# 3. **integrated gradients**, whose attributions add up to f(x) − f(baseline) (checked), and
#    **occlusion** (remove a token, measure the change);
#
# and then measure what attention does and does not tell: a constructed case where the most
# attended token contributes nothing, rank correlations between attention and the other two over
# the test set, and the experiment of Jain & Wallace (2019): scramble the attention and see whether
# the prediction changes.
#
# **Correction:** pretrained models are not "highly interpretable", and attention weights are not an
# explanation either (section 5 shows it by experiment).

# %%
import copy
import math

import torch

from chapters.book import Chapter, plt
from minibert import BertConfig, BertForSequenceClassification
from minibert.evaluate import predict_ids
from minibert.finetune import encode_classification, finetune, label_vocab
from minitransformer.attention import merge_heads, split_heads
from minitransformer.data import BERT_SPECIALS, SentencePieceTokenizer, load_world_reviews
from minitransformer.trainer import TrainConfig

ch = Chapter("ch14_interpretability")

# %% [markdown] lang="zh"
# ## 1. 训练一个要观察的分类器
#
# 玩具世界中的评论是按规则打标签的（见 `data/README.md`）：形容词的极性决定标签，`not` 会把它反转；在 `but` 之后（以及 `although` 句中的主句里），由第二个分句决定标签。词袋（bag of words）模型能达到 68% 的准确率。一个 2 层、宽度 64 的 BERT，用共享的训练器从头训练几秒钟，就能做得好得多——可见它学到了一些关于 `not` 和 `but` 的东西。学到了什么，又学在了哪里？这就是本章要问的问题。

# %% [markdown] lang="en"
# ## 1. A classifier to look into
#
# The reviews of the toy world are labelled by rules (`data/README.md`): an adjective's polarity,
# flipped by `not`; after `but` (and in the main clause after `although`) the second clause decides.
# A bag of words reaches 68 %. A 2-layer BERT of width 64, trained from scratch for a few seconds
# with the shared trainer, does much better — so it has learnt something about `not` and `but`.
# What, and where? That is the question of this chapter.

# %%
train, val, test = (load_world_reviews("en", split) for split in ("train", "val", "test"))
if ch.fast:  # fewer reviews, the same code
    train, val, test = train[:640], val[:64], test[:64]
tokenizer = SentencePieceTokenizer.train([ex.text for ex in train], 400, specials=BERT_SPECIALS)
labels = label_vocab("classify", train)
encoded = {name: encode_classification(data, tokenizer, labels, 64) for name, data in
           (("train", train), ("val", val), ("test", test))}
config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=256, max_position_embeddings=64, id2label=dict(enumerate(labels.labels)))
model = BertForSequenceClassification(config)
steps = ch.steps(300, 10)
finetune(model, tokenizer, "classify", encoded["train"], encoded["val"],
         TrainConfig(out_dir=str(ch.out / "run"), max_steps=steps, batch_size=32, lr=2e-3, min_lr=1e-4, warmup_steps=min(20, steps // 5),
                     weight_decay=0.01, eval_interval=0, log_interval=50, checkpoint_interval=-1, progress=False, overwrite=True, seed=ch.seed_for(0)))
model.eval()
pred = predict_ids(model, encoded["test"], tokenizer.pad_id)
accuracy = sum(p == e["label"] for p, e in zip(pred, encoded["test"])) / len(pred)
n_params = sum(p.numel() for p in model.parameters())
print(ch.tr(f"  {n_params:,} 个参数，训练 {steps} 步；测试准确率 {accuracy:.1%}（标签 {labels.labels}）",
            f"  {n_params:,} parameters, {steps} steps; test accuracy {accuracy:.1%} (labels {labels.labels})"))
if not ch.fast:
    # low 0.75, not 0.85: over seeds 0-4 the test accuracy spreads from 0.85 to 1.00 (bench/README.md)
    ch.check_value(ch.tr("分类器远远好于词袋模型（68%）：测试准确率", "the classifier beats a bag of words (68%) by far: test accuracy"),
                   accuracy, low=0.75)

# the review we look into: "not" and "but" in it, short, and (in default mode) classified right
POS = labels.encode("pos")
candidates = [i for i, ex in enumerate(test) if " not " in ex.text and " but " in ex.text and len(encoded["test"][i]["input_ids"]) <= 18]
chosen = next((i for i in candidates if pred[i] == encoded["test"][i]["label"]), candidates[0])
review, ids = test[chosen], torch.tensor([encoded["test"][chosen]["input_ids"]])
pieces = [tokenizer.id_to_token(i) for i in ids[0].tolist()]
print(ch.tr(f"  评论：{review.text!r}——标签 {review.label}，预测为 {labels.decode(pred[chosen])}",
            f"  review: {review.text!r} — label {review.label}, predicted {labels.decode(pred[chosen])}"))
print(ch.tr("  子词：", "  pieces:"), " ".join(pieces))

# %% [markdown] lang="zh"
# ## 2. 注意力图
#
# 设置 `output_attentions=True` 后，模型为每一层返回所有头的权重 softmax(QKᵀ/√d_k)，形状为 (B, heads, T, T)：第 i 行表示查询词元 i 如何把注意力分配到各个键上。首先我们要确认这些确实是模型计算的数字：从第 0 层的输入出发，手工重新计算这一层的注意力。

# %% [markdown] lang="en"
# ## 2. Attention maps
#
# `output_attentions=True` returns, for each layer, the weights softmax(QKᵀ/√d_k) of every head:
# (B, heads, T, T), row i = how query token i spreads its attention over the keys. First we make
# sure these are the numbers the model computes: recompute layer 0 from its input by hand.

# %%
with torch.no_grad():
    out = model(ids, output_attentions=True, output_hidden_states=True)
    attentions = [a[0] for a in out.attentions]  # L × (heads, T, T)
    layer0 = model.bert.encoder.layers[0].self_attn
    x0 = out.hidden_states[0]  # the embeddings' output, the input of layer 0: (1, T, H)
    q, k = split_heads(layer0.q_proj(x0), layer0.n_heads), split_heads(layer0.k_proj(x0), layer0.n_heads)
    by_hand = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(layer0.head_dim), dim=-1)[0]
ch.check_close(ch.tr("手工重算的第 0 层注意力 == output_attentions", "layer-0 attention recomputed by hand == output_attentions"),
               by_hand, attentions[0], atol=1e-6)
ch.check_close(ch.tr("每一行注意力权重之和都为 1", "every attention row sums to 1"), torch.stack(attentions).sum(-1), torch.ones(len(attentions), *attentions[0].shape[:2]),
               atol=1e-5)

n_layers, n_heads = len(attentions), attentions[0].size(0)
fig, axes = plt.subplots(n_layers, n_heads, figsize=(3 * n_heads, 3.1 * n_layers), sharex=True, sharey=True,
                         gridspec_kw=dict(wspace=0.05, hspace=0.15))
for l in range(n_layers):
    for h in range(n_heads):
        axes[l, h].imshow(attentions[l][h].numpy(), cmap="viridis", vmin=0, vmax=1)
        axes[l, h].set_title(ch.tr(f"第 {l} 层，第 {h} 个头", f"layer {l}, head {h}"), fontsize=9)
for ax in axes[:, 0]:  # shared axes: the labels show on the outer panels only
    ax.set_yticks(range(len(pieces)), pieces, fontsize=7)
for ax in axes[-1]:
    ax.set_xticks(range(len(pieces)), pieces, rotation=90, fontsize=7)
fig.suptitle(ch.tr(f"注意力权重（行：查询，列：键）—— {review.text!r}",
                   f"attention weights (rows: queries, columns: keys) — {review.text!r}"), fontsize=9)
ch.savefig(fig, "attention_maps")
cls_last = attentions[-1][:, 0]  # (heads, T): what [CLS] looks at in the last layer
for h in range(n_heads):
    top = cls_last[h].topk(3).indices.tolist()
    print(ch.tr(f"  最后一层，第 {h} 个头：[CLS] 最关注的是 ", f"  last layer, head {h}: [CLS] attends most to ") + ", ".join(f"{pieces[j]!r} {cls_last[h, j]:.2f}" for j in top))

# %% [markdown] lang="zh"
# 这些图很有启发性：少数几个词元，常常是 `not` 和它后面的形容词，吸引了大部分注意力。但一张图显示的是某一层从哪里*读取*信息，而不是这次读取对预测起了什么作用：被加权平均的值向量可能大也可能小，后面的层和残差连接可能用上这个结果，也可能不用。要回答“这个词元对预测有多重要？”，我们需要把预测本身纳入考虑的方法。
#
# ## 3. 梯度 × 输入
#
# 设 f 为模型对其预测类别的间隔（margin），f = logit_pred − logit_other，把它看作词向量 x_t 的函数（x_t 是按输入从词元表中取出的行；位置向量和片段向量保持不变）。词元 t 的显著性（saliency）为
#
#     s_t = Σ_h x_{t,h} · ∂f/∂x_{t,h}
#
# 对**线性**模型 f(x) = w·x + b，梯度就是 w，因此 s = w ⊙ x 精确成立，且 Σ s = f(x) − f(0)：各词元的归因之和等于输出从全零输入到 x 的变化。我们先检查这一点。

# %% [markdown] lang="en"
# The maps are suggestive: a few tokens, often `not` and the adjective after it, draw most of the
# attention. But a map shows where one layer *reads from*, not what the reading did to the
# prediction: the value vectors it averages may be large or small, the next layers and the
# residual path may use the result or not. To ask "how much did this token matter for the prediction?" we need methods
# that involve the prediction.
#
# ## 3. Gradient × input
#
# Let f be the model's margin for its predicted class, f = logit_pred − logit_other, seen as a
# function of the word vectors x_t (the rows of the token table picked by the input; the position
# and segment vectors stay as they are). The saliency of token t is
#
#     s_t = Σ_h x_{t,h} · ∂f/∂x_{t,h}
#
# For a **linear** model f(x) = w·x + b the gradient is w, so s = w ⊙ x exactly, and Σ s = f(x) − f(0):
# the attributions add up to the change of the output from the all-zero input. We check that first.

# %%
ch.manual_seed(0)
w, b0, x_lin = torch.randn(6, dtype=torch.float64), torch.tensor(0.7, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
x_req = x_lin.clone().requires_grad_(True)
(grad,) = torch.autograd.grad(w @ x_req + b0, x_req)
ch.check_close(ch.tr("线性模型：梯度 × 输入 == w ⊙ x（闭式解）", "linear model: gradient × input == w ⊙ x (closed form)"),
               grad * x_lin, w * x_lin, atol=1e-15)
ch.check_close(ch.tr("线性模型：Σ 梯度 × 输入 == f(x) − f(0)", "linear model: Σ gradient × input == f(x) − f(0)"),
               (grad * x_lin).sum(), (w @ x_lin + b0) - b0, atol=1e-12)

# %% [markdown] lang="zh"
# 对 BERT，我们在词元表上注册一个前向钩子（forward hook），用我们自己的张量替换词向量（钩子的返回值会替换词元表的输出），这样就能对它们求梯度，或者让它们沿一条路径移动。

# %% [markdown] lang="en"
# For BERT we replace the word vectors with our own tensor through a forward hook on the token
# table (the hook's return value replaces the table's output), so that we can take gradients
# with respect to them, or move them along a path.

# %%
word_table = model.bert.embeddings.word_embeddings


def margin(model, ids, vectors, target):
    """f = logit[target] − logit[other] for each row of ``vectors`` (N, T, H), used as the word vectors of ``ids`` (1, T)."""
    handle = model.bert.embeddings.word_embeddings.register_forward_hook(lambda module, inputs, output: vectors)
    try:
        logits = model(ids.expand(vectors.size(0), -1)).logits  # (N, 2)
    finally:
        handle.remove()
    return logits[:, target] - logits[:, 1 - target]  # (N,)


target = int(out.logits.argmax(-1))
with torch.no_grad():
    x = word_table(ids)  # (1, T, H)
    f_x = margin(model, ids, x, target)
ch.check_close(ch.tr("用钩子换入模型自己的词向量后的前向传播 == model(ids)",
                     "the hooked forward pass with the model's own word vectors == model(ids)"), f_x,
               out.logits[:, target] - out.logits[:, 1 - target], atol=1e-6)
x_req = x.clone().requires_grad_(True)
(grad,) = torch.autograd.grad(margin(model, ids, x_req, target).sum(), x_req)
grad_x_input = (grad * x).sum(-1)[0]  # (T,)

# the gradient itself, against central finite differences in float64 along a random direction
model64 = copy.deepcopy(model).double()
x64 = x.double()
d = torch.randn_like(x64)
d = d / d.norm()  # a unit direction
x64_req = x64.clone().requires_grad_(True)
(g64,) = torch.autograd.grad(margin(model64, ids, x64_req, target).sum(), x64_req)
eps = 1e-5
with torch.no_grad():
    fd = (margin(model64, ids, x64 + eps * d, target) - margin(model64, ids, x64 - eps * d, target)) / (2 * eps)
ch.check_close(ch.tr("∂f/∂x · d == 中心有限差分 (f(x+εd) − f(x−εd)) / 2ε，float64",
                     "∂f/∂x · d == central finite difference (f(x+εd) − f(x−εd)) / 2ε, float64"), (g64 * d).sum(), fd[0], atol=1e-8)

# %% [markdown] lang="zh"
# ## 4. 积分梯度，以及“加起来等于”是什么意思
#
# 对非线性的 f，梯度 × 输入加起来并不等于什么特别的量：x 处的梯度说明的是一个*很小*的改变会带来什么，而不是去掉这个词元带来了什么。积分梯度（Sundararajan 等，2017）沿着从基线 x' 到 x 的直线路径对梯度取平均：
#
#     IG_t = Σ_h (x − x')_{t,h} · ∫₀¹ ∂f/∂x_{t,h}(x' + α(x − x')) dα
#
# 由微积分基本定理，**Σ_t IG_t = f(x) − f(x')**（完备性，completeness）。我们的基线 x' 把评论中各词元的词向量置零（词元表中 [PAD] 那一行也是零），而保留 [CLS] 和 [SEP]。积分用 m 个点上的中点法则求和来近似，其误差以 1/m² 的速度下降。**遮挡**则是直接的对应物：f(x) − f(把词元 t 的向量置零后的 x)。

# %% [markdown] lang="en"
# ## 4. Integrated gradients, and what "adds up" means
#
# For a non-linear f, gradient × input does not add up to anything in particular: the gradient
# at x says what a *small* change would do, not what removing the token did. Integrated gradients
# (Sundararajan et al. 2017) average the gradient along the straight path from a baseline x' to x:
#
#     IG_t = Σ_h (x − x')_{t,h} · ∫₀¹ ∂f/∂x_{t,h}(x' + α(x − x')) dα
#
# and by the fundamental theorem of calculus **Σ_t IG_t = f(x) − f(x')** (completeness). Our
# baseline x' sets the word vectors of the review's tokens to zero (the [PAD] row of the table is
# zero too) and keeps [CLS] and [SEP]. The integral is a midpoint sum over m points, whose error
# falls like 1/m². **Occlusion** is the direct counterpart: f(x) − f(x with token t's vector zeroed).

# %% [markdown] lang="zh"
# ### 练习 14.1：积分梯度
#
# **`integrated_gradients_ex`** · ★★ · 2 分 · 约 30 分钟
#
# **题目：** 用 m 点中点法计算积分梯度：IG_t = Σ_h (x − x′)_{t,h} · (1/m) Σ_k ∂f/∂x_{t,h}(x′ + α_k (x − x′))，α_k = (k + ½)/m。f 把一批输入 (N, T, H) 映射为 N 个数；x 与基线 x′ 的形状都是 (1, T, H)。返回 T 个归因值。
#
# **提示：** 把路径上的 m 个点放进一个批次 (m, T, H) 并设 requires_grad，求 torch.autograd.grad(f(path).sum(), path)，在 m 个点上取平均，乘以 (x − x′) 后在 H 上求和。
#
# **不可调用：** `torch.trapezoid`、`torch.trapz`、`torch.cumulative_trapezoid`、`captum.attr.IntegratedGradients`（`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch14`
#
# 编写 `integrated_gradients_ex(f, x, baseline, m)`：`f` 接受一批输入 (N, T, H)，返回 N 个数（在这里就是每一行的间隔）；`x` 和 `baseline` 的形状都是 (1, T, H)。用 m 个点上的中点法则计算归因 IG_t，返回形状为 (T,) 的张量。检查程序使用的函数，其积分都有已知的闭式解——对 f = Σ sin(x)，甚至连 m 点中点和本身都有闭式解。

# %% [markdown] lang="en"
# ### Exercise 14.1 — integrated gradients
#
# **`integrated_gradients_ex`** · ★★ · 2 points · ~30 min
#
# **Task:** Integrated gradients with an m-point midpoint rule: IG_t = Σ_h (x − x′)_{t,h} ·
# (1/m) Σ_k ∂f/∂x_{t,h}(x′ + α_k (x − x′)), α_k = (k + ½)/m. f maps a batch of inputs (N, T, H) to
# N numbers; x and the baseline x′ are (1, T, H). Return the T attributions.
#
# **Hint:** Put the m path points in one batch (m, T, H) with requires_grad, take
# torch.autograd.grad(f(path).sum(), path), average over the m points, multiply by (x − x′) and
# sum over H.
#
# **Not allowed:** `torch.trapezoid`, `torch.trapz`, `torch.cumulative_trapezoid`,
# `captum.attr.IntegratedGradients` (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch14`
#
# Write `integrated_gradients_ex(f, x, baseline, m)`: `f` takes a batch of inputs (N, T, H) and
# returns N numbers (here: the margin of each row); `x` and `baseline` are (1, T, H). Return the
# attributions IG_t, shape (T,), with the midpoint rule over m points. The check uses functions
# whose integrals are known in closed form — for f = Σ sin(x) even the exact m-point midpoint sum.

# %%
def integrated_gradients_ex(f, x, baseline, m):
    """IG_t = Σ_h (x − x′)_{t,h} · mean_k ∂f/∂x_{t,h}(x′ + α_k (x − x′)), α_k = (k + ½)/m. -> (T,)."""
    ### BEGIN SOLUTION
    alphas = (torch.arange(m, dtype=x.dtype) + 0.5) / m  # (m,) midpoints
    path = (baseline + alphas[:, None, None] * (x - baseline)).detach().requires_grad_(True)  # (m, T, H)
    (grads,) = torch.autograd.grad(f(path).sum(), path)
    return ((x - baseline) * grads.mean(0, keepdim=True)).sum(-1)[0]  # (T,)
    ### END SOLUTION


def check_integrated_gradients_ex(impl):
    """Closed forms, float64: a linear f (IG = (x − x′)·w exactly, any m), a quadratic f (the midpoint rule is
    exact: IG = a·(x² − x′²)), and f = Σ sin(x), whose m-point midpoint sum has the closed form
    d·cos(x′ + d/2)·sin(d/2) / (m·sin(d/(2m))), d = x − x′."""
    g = torch.Generator().manual_seed(0)
    t, h = 5, 3
    x = torch.randn(1, t, h, generator=g, dtype=torch.float64)
    base = 0.5 * torch.randn(1, t, h, generator=g, dtype=torch.float64)
    w = torch.randn(t, h, generator=g, dtype=torch.float64)
    a = torch.randn(t, h, generator=g, dtype=torch.float64)
    d = x - base
    cases = [(ch.tr("线性函数 f = Σ w·x，m = 3", "linear f = Σ w·x, m = 3"), lambda v: (v * w).sum((1, 2)) + 0.3, 3,
              (d * w).sum(-1)[0],
              ch.tr("把平均梯度乘以 (x − baseline)，再在最后一维上求和",
                    "multiply the averaged gradient by (x − baseline), then sum over the last axis")),
             (ch.tr("二次函数 f = Σ a·x²，m = 4", "quadratic f = Σ a·x², m = 4"), lambda v: (a * v ** 2).sum((1, 2)), 4,
              (a * (x ** 2 - base ** 2)).sum(-1)[0],
              ch.tr("中点法则：α_k = (k + ½)/m，k = 0 … m − 1（不是 k/m）",
                    "the midpoint rule: α_k = (k + ½)/m for k = 0 … m − 1 (not k/m)")),
             (ch.tr("f = Σ sin(x)，m = 7", "f = Σ sin(x), m = 7"), lambda v: torch.sin(v).sum((1, 2)), 7,
              (d * torch.cos(base + d / 2) * torch.sin(d / 2) / (7 * torch.sin(d / 14))).sum(-1)[0],
              ch.tr("在从基线到 x 的直线路径上取 m 个中点，对这些点处的梯度求平均",
                    "average the gradients at the m midpoints of the straight path from the baseline to x"))]
    worst = 0.0
    for case, f, m, want, hint in cases:
        got = impl(f, x, base, m)
        if not isinstance(got, torch.Tensor) or got.shape != (t,):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise AssertionError(ch.tr(f"{case}：期望每个词元一个归因值，形状为 ({t},)，实际得到 {shape}",
                                       f"{case}: expected one attribution per token, shape ({t},), received {shape}"))
        err = float((got - want).abs().max())
        if not err <= 1e-10:
            raise AssertionError(ch.tr(f"{case}：与闭式解的最大绝对误差为 {err:.1e}——{hint}",
                                       f"{case}: max abs err {err:.1e} vs the closed form — {hint}"))
        worst = max(worst, err)
    f = cases[2][1]
    total = float(impl(f, x, base, 256).sum())
    delta = float(f(x) - f(base))
    if not abs(total - delta) <= 1e-4:
        raise AssertionError(ch.tr(f"完备性：m = 256 时 Σ_t IG_t = {total:.6f}，期望 ≈ f(x) − f(x′) = {delta:.6f}",
                                   f"completeness: Σ_t IG_t = {total:.6f} with m = 256, expected ≈ f(x) − f(x′) = {delta:.6f}"))
    return ch.tr(f"线性、二次和正弦三种情形都等于各自的闭式解（最大绝对误差 {worst:.1e}）；Σ IG ≈ f(x) − f(x′)",
                 f"linear, quadratic and sine cases equal their closed forms (max abs err {worst:.1e}); Σ IG ≈ f(x) − f(x′)")


ch.verify(check_integrated_gradients_ex, integrated_gradients_ex)

# %%
def integrated_gradients(model, ids, x, baseline, target, m):
    """IG per token (T,) with an m-point midpoint rule (exercise 14.1), and f(x) − f(baseline)."""
    ig = integrated_gradients_ex(lambda v: margin(model, ids, v, target), x, baseline, m)
    with torch.no_grad():
        delta = margin(model, ids, x, target) - margin(model, ids, baseline, target)
    return ig, float(delta[0])


def occlusion(model, ids, x, target):
    """f(x) − f(x with the word vector of token t set to zero), for each t."""
    with torch.no_grad():
        removed = x.repeat(ids.size(1), 1, 1)  # (T, T, H): row t has token t removed
        removed[torch.arange(ids.size(1)), torch.arange(ids.size(1))] = 0.0
        return margin(model, ids, x, target) - margin(model, ids, removed, target)  # (T,)


def content_baseline(x):
    base = x.clone()
    base[:, 1:-1] = 0.0  # keep [CLS] (first) and [SEP] (last)
    return base


M = 64
ig, delta = integrated_gradients(model, ids, x, content_baseline(x), target, M)
occ = occlusion(model, ids, x, target)
sum_ig, sum_grad_x_input = float(ig.sum()), float(grad_x_input.sum())
print(ch.tr(f"  f(x) − f(x') = {delta:.4f}；Σ IG (m={M}) = {sum_ig:.4f}；Σ 梯度 × 输入 = {sum_grad_x_input:.4f}",
            f"  f(x) − f(x') = {delta:.4f}; Σ IG (m={M}) = {sum_ig:.4f}; Σ gradient × input = {sum_grad_x_input:.4f}"))
ch.check(ch.tr("IG 给 [CLS] 和 [SEP] 的归因为零（它们的基线就是它们自己）", "IG gives [CLS] and [SEP] nothing (their baseline is themselves)"),
         float(ig[0]) == 0.0 and float(ig[-1]) == 0.0)
ch.check_value(ch.tr("完备性：Σ_t IG_t ≈ f(x) − f(x')（m = 64）：|Σ IG − Δf| / Σ|IG|",
                     "completeness: Σ_t IG_t ≈ f(x) − f(x') (m = 64): |Σ IG − Δf| / Σ|IG|"),
               abs(float(ig.sum()) - delta) / float(ig.abs().sum()), high=0.01,
               detail=ch.tr(f"误差 {abs(float(ig.sum()) - delta):.1e}，Σ|IG| {float(ig.abs().sum()):.2f}",
                            f"error {abs(float(ig.sum()) - delta):.1e}, Σ|IG| {float(ig.abs().sum()):.2f}"))
ms = [2, 4, 8, 16, 32, 64, 128]
errors = [abs(float(integrated_gradients(model, ids, x, content_baseline(x), target, m)[0].sum()) - delta) for m in ms]
ch.check_value(ch.tr("中点法则的误差随 m 增大而减小（m = 128 时的误差 / m = 4 时的误差）",
                     "the midpoint rule's error falls as m grows (error at m = 128 / at m = 4)"), errors[-1] / errors[1], high=1.0,
               detail=" ".join(f"{e:.1e}" for e in errors))
x_lin0 = torch.zeros_like(x_lin)
lin_ig = (x_lin - x_lin0) * w  # the path integral of a constant gradient
ch.check_close(ch.tr("线性模型：IG == 梯度 × 输入 == w ⊙ x", "linear model: IG == gradient × input == w ⊙ x"), lin_ig, w * x_lin, atol=1e-15)

# %% [markdown] lang="zh"
# ## 5. 注意力不等于解释
#
# ### 5.1 一个人为构造的例子
#
# 一个注意力头，一个查询，四个键。查询与键 0 匹配得很好，所以词元 0 几乎得到了全部注意力——但它的值向量是零，所以它毫无贡献。词元 3 得到的注意力很少，值却很大，它决定了输出 f = u · Σ_j a_j v_j。在这里，词元 j 的贡献恰好是 a_j (u · v_j)（f 对值向量是线性的）。

# %% [markdown] lang="en"
# ## 5. Attention is not explanation
#
# ### 5.1 A constructed case
#
# One attention head, one query, four keys. The query matches key 0 strongly, so token 0 gets
# almost all the attention — but its value vector is zero, so it contributes nothing. Token 3
# gets little attention and a large value, and decides the output f = u · Σ_j a_j v_j. The
# contribution of token j is exactly a_j (u · v_j) here (f is linear in the values).

# %%
q_toy = torch.tensor([2.0, 0.0])
k_toy = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, -1.0], [0.5, 0.0]])
v_toy = torch.tensor([[0.0, 0.0], [0.3, 0.1], [-0.2, 0.4], [30.0, 5.0]])
u_toy = torch.tensor([1.0, 0.5])
a_toy = torch.softmax(k_toy @ q_toy / math.sqrt(2), dim=-1)
contribution = a_toy * (v_toy @ u_toy)
f_toy = u_toy @ (a_toy @ v_toy)
print(ch.tr("  注意力       ", "  attention    ") + "  ".join(f"{v:.3f}" for v in a_toy.tolist()))
print(ch.tr("  贡献         ", "  contribution ") + "  ".join(f"{v:.3f}" for v in contribution.tolist()) + f"   (f = {float(f_toy):.3f})")
ch.check_close(ch.tr("各词元的贡献之和等于 f", "the contributions add up to f"), contribution.sum(), f_toy, atol=1e-6)
ch.check(ch.tr("得到最多注意力的词元毫无贡献；几乎没被注意的词元却决定了 f",
               "the most attended token contributes nothing; a barely attended one decides f"),
         int(a_toy.argmax()) == 0 and float(contribution[0]) == 0.0 and int(contribution.abs().argmax()) == 3
         and float(a_toy[0]) > 0.75 and float(a_toy[3]) < 0.15,
         ch.tr(f"词元 0：注意力 {a_toy[0]:.2f}，贡献 0；词元 3：注意力 {a_toy[3]:.2f}，贡献 {contribution[3]:.2f}",
               f"token 0: attention {a_toy[0]:.2f}, contribution 0; token 3: attention {a_toy[3]:.2f}, contribution {contribution[3]:.2f}"))

# %% [markdown] lang="zh"
# ### 5.2 在训练好的模型上，遍历测试集
#
# 对每条测试评论，我们用三种方式给它的词元（不含 [CLS] 和 [SEP]）排序：按最后一层从 [CLS] 出发、对各头取平均的注意力（人们通常画的就是这张图），按 |IG|，以及按 |遮挡|；然后用斯皮尔曼（Spearman）秩相关系数 ρ 比较这些排序（1 表示顺序完全相同，0 表示毫不相关）。

# %% [markdown] lang="en"
# ### 5.2 On the trained model, over the test set
#
# For each test review we rank its tokens (not [CLS]/[SEP]) three ways — by the last layer's
# attention from [CLS] averaged over heads (the map people usually draw), by |IG|, and by
# |occlusion| — and compare the rankings with Spearman's ρ (1 = the same order, 0 = unrelated).

# %%
def spearman(a, b):
    """Spearman's rank correlation ρ: the Pearson correlation of the ranks (no ties expected)."""
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


# closed form for a permutation of 1..n: ρ = 1 − 6 Σ d² / (n (n² − 1))
ch.check_close(ch.tr("手工例子上 spearman == 1 − 6Σd²/(n(n²−1))", "spearman == 1 − 6Σd²/(n(n²−1)) on a hand case"), spearman(torch.tensor([1., 2, 3, 4, 5]), torch.tensor([2., 1, 4, 3, 5])),
               1 - 6 * 4 / (5 * 24), atol=1e-12)

n_reviews = ch.steps(100, 8)
rho = {"attention vs occlusion": [], "IG vs occlusion": [], "attention vs IG": []}
points = []
for e in encoded["test"][:n_reviews]:
    r_ids = torch.tensor([e["input_ids"]])
    with torch.no_grad():
        r_out = model(r_ids, output_attentions=True)
        r_x = word_table(r_ids)
    r_target = int(r_out.logits.argmax(-1))
    r_ig, _ = integrated_gradients(model, r_ids, r_x, content_baseline(r_x), r_target, M)
    r_occ = occlusion(model, r_ids, r_x, r_target)
    r_att = r_out.attentions[-1][0, :, 0].mean(0)  # (T,)
    inner = slice(1, r_ids.size(1) - 1)
    att, igs, occs = r_att[inner], r_ig[inner].abs(), r_occ[inner].abs()
    rho["attention vs occlusion"].append(spearman(att, occs))
    rho["IG vs occlusion"].append(spearman(igs, occs))
    rho["attention vs IG"].append(spearman(att, igs))
    points += list(zip((att / att.sum()).tolist(), (igs / igs.sum().clamp_min(1e-12)).tolist()))
mean_rho = {k: sum(v) / len(v) for k, v in rho.items()}
RHO_ZH = {"attention vs occlusion": "注意力与遮挡", "IG vs occlusion": "IG 与遮挡", "attention vs IG": "注意力与 IG"}  # Chinese output
print(ch.tr(f"  {n_reviews} 条测试评论，平均 Spearman ρ：" + "，".join(f"{RHO_ZH[k]} {v:.2f}" for k, v in mean_rho.items()),
            f"  {n_reviews} test reviews, mean Spearman ρ: " + ", ".join(f"{k} {v:.2f}" for k, v in mean_rho.items())))
if not ch.fast:
    ch.check_value(ch.tr("IG 给出的词元排序比注意力更接近遮挡（ρ IG 与遮挡 − ρ 注意力与遮挡）",
                         "IG ranks tokens much more like occlusion than attention does (ρ IG vs occlusion − ρ attention vs occlusion)"),
                   mean_rho["IG vs occlusion"] - mean_rho["attention vs occlusion"], low=0.05,  # 0.12 … 0.53 over seeds 0-4
                   detail=f"ρ {mean_rho['IG vs occlusion']:.2f} vs {mean_rho['attention vs occlusion']:.2f}")

# %% [markdown] lang="zh"
# ### 5.3 打乱注意力（Jain & Wallace 2019）
#
# 如果注意力权重*就是*解释，那么换一组权重就应该得到另一个预测。我们把最后一层的注意力——这一层 [CLS] 那一行的输出经过池化层直接送入分类器——替换成 (a) 均匀的权重，以及 (b) 模型自己的权重但把键随机置换；其余一切保持不变，统计有多少预测发生了改变。

# %% [markdown] lang="en"
# ### 5.3 Scrambling the attention (Jain & Wallace 2019)
#
# If the attention weights *were* the explanation, other weights should give another prediction.
# We replace the last layer's attention — the layer whose [CLS] row goes through the pooler
# straight to the classifier — by (a) uniform weights and (b) the model's own weights with the keys
# randomly permuted, keep everything else, and count how many predictions change.

# %%
def scrambled_attention(mha, mode, generator):
    """A forward for ``mha`` that computes its weights as usual, then makes them uniform or permutes the keys."""
    original = mha.forward

    def forward(query, key_value=None, attention_mask=None, *args, **kwargs):
        _, w = original(query, key_value, attention_mask, None, False, True)  # need_weights=True: (B, heads, T_q, T)
        w = torch.full_like(w, 1.0 / w.size(-1)) if mode == "uniform" else w[..., torch.randperm(w.size(-1), generator=generator)]
        # a classifier's last layer asks only for the [CLS] row: queries (B, 1, C), keys and values every token
        v = split_heads(mha.v_proj(query if key_value is None else key_value), mha.n_heads)  # (B, heads, T, hs)
        return mha.out_proj(merge_heads(w @ v)), None
    return forward


last = model.bert.encoder.layers[-1].self_attn
MODE_ZH = {"uniform": "换成均匀权重", "permuted": "键被随机置换"}  # for the Chinese output
scramble_set = encoded["test"][: ch.steps(len(encoded["test"]), 16)]
changed = {}
for mode in ("uniform", "permuted"):
    generator = torch.Generator().manual_seed(ch.seed_for(0))
    flips = 0
    for e in scramble_set:
        r_ids = torch.tensor([e["input_ids"]])  # one review at a time: no padding to keep out of the permutation
        with torch.no_grad():
            before = int(model(r_ids).logits.argmax(-1))
            last.forward = scrambled_attention(last, mode, generator)
            try:
                after = int(model(r_ids).logits.argmax(-1))
            finally:
                del last.forward  # back to the class's forward
        flips += before != after
    changed[mode] = flips / len(scramble_set)
    print(ch.tr(f"  最后一层注意力{MODE_ZH[mode]}：{changed[mode]:.0%} 的预测发生改变",
                f"  last-layer attention {mode}: {changed[mode]:.0%} of the predictions change"))
if not ch.fast:
    for mode in ("uniform", "permuted"):  # at least one prediction changes, fewer than half do
        ch.check_value(ch.tr(f"打乱最后一层的注意力后，大多数预测不变，但也有一些改变（{MODE_ZH[mode]}：改变的比例）",
                             f"most predictions survive scrambled last-layer attention, some do not ({mode}: fraction changed)"),
                       changed[mode], low=1 / len(scramble_set), high=0.5)

# %% [markdown] lang="zh"
# 这说明了什么，又有哪些局限：
#
# * 对大多数评论，换一组注意力权重得到的预测并不改变，所以画出来的权重不可能是预测的*那个*原因（Jain & Wallace 2019，*Attention is not Explanation*）；
# * 但并非所有评论都如此：对一些评论，权重是有影响的。Wiegreffe & Pinter（2019，*Attention is not not Explanation*）指出，注意力能否“解释”取决于我们要求解释做到什么；公平的检验应当重新训练模型，而不是只改动一层。注意力可以作为一项证据，但必须用预测来检验；
# * 基于梯度的方法也有自己的局限：它们依赖于基线（IG），并且可能有噪声或出现饱和（梯度 × 输入）；Adebayo 等（2018，*Sanity Checks for Saliency Maps*）表明，有些显著图在模型权重被随机化之后几乎不变。
#
# 因此，对文章 §9 Q6 的回答是：可视化，当然可以——但在把这幅图称为解释之前，要先用模型的输出检验它（遮挡、完备性、干预实验）。

# %% [markdown] lang="en"
# What this shows, and its limits:
#
# * for most reviews other attention weights give the same prediction, so the drawn weights
#   cannot be *the* reason for it (Jain & Wallace 2019, *Attention is not Explanation*);
# * but not for all: the weights matter for some reviews, and Wiegreffe & Pinter (2019, *Attention
#   is not not Explanation*) show that whether attention "explains" depends on what one asks of an
#   explanation, and that a fair test retrains the model rather than editing one layer; attention
#   can be one piece of evidence, to be checked against the prediction;
# * gradient methods have their own limits: they depend on the baseline (IG) and can be noisy or
#   saturate (gradient × input); Adebayo et al. (2018, *Sanity Checks for Saliency Maps*) show that
#   some saliency maps barely change when the model's weights are randomised.
#
# So to the article's §9 Q6: visualise, yes — and then test the picture against the model's output
# (occlusion, completeness, interventions) before calling it an explanation.

# %%
fig, axes = plt.subplots(4, 1, figsize=(10, 8), sharex=True)
rows = [(ch.tr("最后一层从 [CLS] 出发的注意力（各头平均）", "attention from [CLS], last layer (mean over heads)"), cls_last.mean(0)),
        (ch.tr("梯度 × 输入", "gradient × input"), grad_x_input),
        (ch.tr(f"积分梯度（m = {M}）", f"integrated gradients (m = {M})"), ig),
        (ch.tr("遮挡：f(x) − f(去掉该词元的 x)", "occlusion: f(x) − f(x without the token)"), occ)]
for ax, (title, values) in zip(axes, rows):
    values = values.detach()
    ax.bar(range(len(pieces)), values.numpy(), color=["tab:red" if v < 0 else "tab:blue" for v in values.tolist()])
    ax.axhline(0, color="k", lw=0.5)
    ax.set_title(title, fontsize=9)
axes[-1].set_xticks(range(len(pieces)), pieces, rotation=60, fontsize=8)
fig.suptitle(f"{review.text!r} → {labels.decode(target)}", fontsize=9)
fig.tight_layout()
ch.savefig(fig, "token_attributions")

fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
axes[0].loglog(ms, [max(e, 1e-12) for e in errors], "o-", label="|Σ IG − (f(x) − f(x'))|")
axes[0].loglog(ms, [errors[0] * (ms[0] / m) ** 2 for m in ms], "k--", lw=1, label="∝ 1/m²")
axes[0].set(xlabel=ch.tr("路径上的点数 m", "points m on the path"), title=ch.tr("积分梯度：完备性", "integrated gradients: completeness"))
axes[0].legend(fontsize=8)
att_share, ig_share = zip(*points) if points else ((), ())
axes[1].scatter(att_share, ig_share, s=6, alpha=0.5)
axes[1].set(xlabel=ch.tr("在 [CLS] 最后一层注意力中所占的份额", "share of [CLS]'s last-layer attention"),
            ylabel=ch.tr("在 |IG| 中所占的份额", "share of |IG|"), title=ch.tr("逐个词元，测试评论", "per token, test reviews"))
axes[2].hist([rho["attention vs occlusion"], rho["IG vs occlusion"]], bins=10, range=(-1, 1),
             label=[ch.tr("注意力与遮挡", "attention vs occlusion"), ch.tr("IG 与遮挡", "IG vs occlusion")])
axes[2].set(xlabel=ch.tr("每条评论的 Spearman ρ", "Spearman ρ per review"), title=ch.tr("与遮挡排序的一致程度", "rank agreement with occlusion"))
axes[2].legend(fontsize=8)
ch.savefig(fig, "attention_vs_attribution")

# %% [markdown] lang="zh"
# ## 本章小结
#
# * 一个小型 BERT 情感分类器，以及它逐层、逐头的注意力图，并用手工计算核对；
# * 梯度 × 输入（对线性模型等于 w ⊙ x），梯度用有限差分核对；
# * 积分梯度：归因之和等于 f(x) − f(x')，误差以 1/m² 的速度下降；
# * 遮挡，以及说明注意力不等于解释的三种方式：一个得到全部注意力却毫无贡献的词元；按注意力得到的排序与遮挡法的一致程度远低于 IG；打乱注意力后仍然不变的预测。
#
# *更正*：§6.2 的“模型可解释性强”是错的（§3.3.2 和 §8.3 自己就这么说）；§9 Q6 所说的“注意力机制展示模型关注到的关键信息”，只有在注意力图经过模型输出的检验之后才成立。

# %% [markdown] lang="en"
# ## What we built
#
# * a small BERT sentiment classifier and its attention maps, layer by layer and head by head,
#   recomputed by hand;
# * gradient × input (= w ⊙ x for a linear model), gradients checked by finite differences;
# * integrated gradients, whose attributions add up to f(x) − f(x'), with an error falling like 1/m²;
# * occlusion, and three ways to see that attention is not explanation: a token with all the
#   attention and no contribution; rankings by attention that agree with occlusion far less than
#   IG's do; predictions that survive scrambled attention.
#
# *Corrections*: §6.2's "模型可解释性强" is wrong (§3.3.2 and §8.3 say so themselves); §9 Q6's
# "attention shows the key information" holds only after the attention picture has been tested
# against the model's output.

# %%
ch.done()
