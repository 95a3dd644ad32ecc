# %% [markdown] lang="zh"
# # 第 10 章 · 微调与评估：微调 BERT 给评论分类，并度量它（原文 §3.2.4、§3.2.5、§4.3、§5.2）
#
# 原文在 §4.3 和 §5.2 中微调（fine-tuning）`BertForSequenceClassification`，并在 §3.2.5 中评估它。
# 本章用我们的 minibert 和 ch08 预训练的小 BERT 做同样的事：
#
# 1. 任务：随书玩具世界中 2,400 / 300 / 300 条英文评论，标签为 `pos` 或 `neg`；
# 2. **原文 §5.2 的代码，修正到能够运行**——每一处修改都加以解释；
# 3. **评估**（§3.2.5）：准确率（accuracy）、精确率（precision，又称查准率）、召回率（recall，又称
#    查全率）、F1 值——给出正确的定义——以及混淆矩阵（confusion matrix）；
# 4. **微调需要多少标注？**（§3.3.2）——用 32、128 和 2,400 条标注评论比较预训练模型与从零训练的
#    模型，并比较冻结编码器（线性探针）与全部微调。
#
# **更正原文。**
#
# * §3.2.5：“F1值：准确率和召回率的调和平均值”。F1 值是**精确率**与召回率的调和平均，
#   F1 = 2PR/(P + R)，而不是准确率与召回率的调和平均。第 3 节给出一个例子，两个公式分别得到 0.44
#   和 0.56。
# * §5.2：代码无法运行（没有导入 `torch`，没有定义 `device`，“批次”是未成批的 Python 列表，`AdamW`
#   从 transformers 导入），而且评估部分只打印 logits，既没有损失也没有指标。第 2 节修正了它。
# * §3.3.2 先说微调“需要大量标注数据”，同一行里又说“只需少量”。第 4 节测量我们的模型需要多少标注，
#   以及由什么决定。

# %% [markdown] lang="en"
# # Chapter 10 · Fine-tuning and evaluation — fine-tuning BERT to classify reviews, and measuring it (Article §3.2.4, §3.2.5, §4.3, §5.2)
#
# The article fine-tunes `BertForSequenceClassification` in §4.3 and §5.2 and evaluates it in
# §3.2.5. In this chapter we do the same with our minibert and the tiny BERT pretrained in ch08:
#
# 1. the task: 2,400 / 300 / 300 English reviews of the bundled world, `pos` or `neg`;
# 2. **the article's §5.2 code, corrected so that it runs** — each fix explained;
# 3. **evaluation** (§3.2.5): accuracy, precision, recall, F1 — defined correctly — and the
#    confusion matrix;
# 4. **how many labels does fine-tuning need?** (§3.3.2) — pretrained vs from scratch with 32,
#    128 and 2,400 labelled reviews, and a frozen encoder (linear probe) vs full fine-tuning.
#
# **Corrections to the article.**
#
# * §3.2.5: "F1值：准确率和召回率的调和平均值" (F1: the harmonic mean of accuracy and recall). F1 is the
#   harmonic mean of **precision** and recall, F1 = 2PR/(P + R), not of accuracy. Section 3 shows a
#   case where the two formulas give 0.44 and 0.56.
# * §5.2: the code does not run (no `torch`, no `device`, unbatched Python lists, `AdamW` from
#   transformers) and its evaluation prints logits without a loss or a metric. Section 2 fixes it.
# * §3.3.2 says fine-tuning "needs a lot of labelled data", then in the same line "needs a little".
#   Section 4 measures how many labels our models need, and what decides it.

# %%
import json
import logging
import math
import random
import statistics

import torch
from torch.utils.data import DataLoader

from chapters.book import Chapter, plt
from minibert import BertConfig, BertForPreTraining, BertForSequenceClassification
from minibert.finetune import collate, encode_classification, label_vocab
from minibert.hf import load_tokenizer_from
from minibert.pretraining import PretrainingData, pretraining_loss, tokenize_documents
from minibert.recipes import find_pretrained
from minitransformer.checkpoint import save_checkpoint
from minitransformer.data import BERT_SPECIALS, Example, SentencePieceTokenizer, load_world_documents, load_world_reviews
from minitransformer.metrics import accuracy, confusion_matrix, format_report
from minitransformer.trainer import TrainConfig, Trainer

ch = Chapter("ch10_classification")  # --seed N changes every seed below (ch.seed_for), --threads N torch's threads

# %% [markdown] lang="zh"
# ## 1. 任务与预训练模型
#
# 评论来自随书的玩具世界（`data/reviews_en.*.tsv`），对象是餐馆、酒店、电影院等，每条标注为 `pos`
# 或 `neg`。标签由评价的最后一个分句决定：“The food was not good, but the service was very fast.”
# 是 **pos**——只看词袋是不够的（`data/README.md`）。验证集和测试集的评论都没有出现在预训练文本中。
#
# 预训练模型就是 ch08 的小 BERT（2 层、宽度 64、约 600 步 MLM + NSP）。如果 ch08 已经运行过，并且
# 它保存的配方与这里一致，就直接复用它保存的模型；否则本章自己预训练同一个模型（相同的划分、分词器、
# 数据和设置），并保存下来供下次使用。

# %% [markdown] lang="en"
# ## 1. The task and the pretrained model
#
# Reviews of restaurants, hotels, cinemas… from the bundled world (`data/reviews_en.*.tsv`), each
# labelled `pos` or `neg`. The label is carried by the last clause of the judgement:
# "The food was not good, but the service was very fast." is **pos** — a bag of words is not
# enough (`data/README.md`). No validation or test review occurs in the pretraining text.
#
# The pretrained model is ch08's tiny BERT (2 layers, width 64, ~600 steps of MLM + NSP). If ch08
# has run, its saved model is reused when its recipe matches; otherwise this chapter pretrains
# the same model itself (the same split, tokenizer, data and settings) and keeps it for next time.

# %%
MAX_LEN = 64
GAP_BOUND = 0.05  # §4's check at 128 labels: pretrained − scratch, mean of 3 subsets; measured 0.21 ± 0.04, min 0.14
# over 5 seeds (bench/README.md, "ch08 and ch10 across seeds, with the notes")
RECIPE = dict(chapter="ch08 tiny BERT v1", vocab_size=700, max_len=MAX_LEN, n_val_docs=100, split_seed=0,
              hidden_size=64, layers=2, heads=2, intermediate_size=256, steps=ch.steps(600, 40), batch_size=32, lr=5e-3,
              warmup=ch.steps(30, 8), eval_every=ch.steps(100, 20), eval_batches=ch.steps(16, 2), seed=ch.seed)  # as in ch08


def pretrain_tiny_bert(out_dir, recipe):
    """ch08 §1-§5 in one function: split the world's documents, train the tokenizer, pretrain the tiny
    BERT with MLM + NSP on the shared Trainer, save it to ``out_dir/pretrained`` (+ ``pretrained.json``)."""
    docs = load_world_documents("en")
    order = list(range(len(docs)))
    random.Random(recipe["split_seed"]).shuffle(order)
    val_text = [docs[i] for i in order[:recipe["n_val_docs"]]]
    train_text = [docs[i] for i in order[recipe["n_val_docs"]:]]
    tokenizer = SentencePieceTokenizer.train(["\n".join(d) for d in train_text], recipe["vocab_size"], specials=BERT_SPECIALS)
    data = PretrainingData({"train": tokenize_documents(train_text, tokenizer), "val": tokenize_documents(val_text, tokenizer)},
                           tokenizer, batch_size=recipe["batch_size"], max_len=recipe["max_len"], seed=ch.seed_for(0))
    ch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=recipe["hidden_size"], num_hidden_layers=recipe["layers"],
                        num_attention_heads=recipe["heads"], intermediate_size=recipe["intermediate_size"],
                        max_position_embeddings=recipe["max_len"], hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForPreTraining(config)
    train_config = TrainConfig(out_dir=str(out_dir / "pretraining_run"), max_steps=recipe["steps"], batch_size=recipe["batch_size"],
                               lr=recipe["lr"], min_lr=recipe["lr"] / 10, warmup_steps=recipe["warmup"], weight_decay=0.01,
                               betas=(0.9, 0.98), eval_interval=0, log_interval=10, checkpoint_interval=-1, progress=False, overwrite=True, seed=ch.seed_for(0))
    Trainer(model, train_config, data, loss_fn=pretraining_loss, model_config=config.to_dict(), tokenizer=tokenizer).fit()
    saved = save_checkpoint(out_dir / "pretrained", model, config.to_dict(), tokenizer)
    (out_dir / "pretrained.json").write_text(json.dumps(recipe, indent=1) + "\n", encoding="utf-8")
    return saved


PRETRAINED = find_pretrained([ch.out.parent / "ch08_bert_pretraining", ch.out], RECIPE, "pretrained")
if PRETRAINED is None:
    print(ch.tr("  没有找到与配方一致的 ch08 预训练模型：在这里预训练它（ch08 §5）",
                "  no matching pretrained model from ch08: pretraining it here (ch08 §5)"))
    PRETRAINED = pretrain_tiny_bert(ch.out, RECIPE)
print(ch.tr(f"  预训练模型：{PRETRAINED}", f"  pretrained model: {PRETRAINED}"))
tokenizer = load_tokenizer_from(PRETRAINED)
pad_id = tokenizer.pad_id

train_ex, val_ex, test_ex = (load_world_reviews("en", split) for split in ("train", "val", "test"))
labels = label_vocab("classify", train_ex)  # neg = 0, pos = 1 (sorted)
ID2LABEL = dict(enumerate(labels.labels))
print(ch.tr(f"  {len(train_ex)} / {len(val_ex)} / {len(test_ex)} 条评论；标签 {ID2LABEL}；"
            f"训练集中有 {sum(e.label == 'pos' for e in train_ex)} 条 pos",
            f"  {len(train_ex)} / {len(val_ex)} / {len(test_ex)} reviews; labels {ID2LABEL}; "
            f"{sum(e.label == 'pos' for e in train_ex)} pos in training"))
for e in train_ex[:3]:
    print(f"    {e.label}: {e.text}")
ch.check(ch.tr("标签为 neg = 0、pos = 1", "labels are neg = 0, pos = 1"), labels.labels == ("neg", "pos"))
ch.check(ch.tr("测试集是均衡的，所以随机水平为 50%", "the test set is balanced (so 50% is chance)"),
         abs(sum(e.label == "pos" for e in test_ex) / len(test_ex) - 0.5) < 0.05,
         ch.tr(f"{len(test_ex)} 条中 {sum(e.label == 'pos' for e in test_ex)} 条 pos", f"{sum(e.label == 'pos' for e in test_ex)} pos of {len(test_ex)}"))

# %% [markdown] lang="zh"
# ## 2. 原文 §5.2 的代码，修正版
#
# 下面逐行重现原文的训练循环，只是用 minibert 代替了 transformers。必须修改的地方有：
#
# 1. **从未导入 `torch`，也从未定义 `device`**——循环的第一行就会出错。我们导入 torch，并在有 GPU
#    时把 `device` 设为 GPU。
# 2. **`from transformers import AdamW`**——transformers 自带的 AdamW 被标记为弃用多年，并已在
#    v4.50.0（2025 年 3 月）中移除；应当使用 `torch.optim.AdamW`。
# 3. **所谓“批次”其实是单个样本，而且是 Python 列表。** `encode_data` 返回由 Python 列表和整数组成
#    的 `(ids, mask, label)` 元组的列表；`for batch in train_dataset` 每次只取一个样本，而
#    `t.to(device)` 作用在列表（以及整数标签）上会出错；即使转成张量，一个样本也只是一维的一行，而
#    不是 (B, T) 的批次。使用带 `collate_fn`（对每个批次做填充）的 `DataLoader`，就能得到 (B, T)
#    的张量。
# 4. **评估之后没有在轮次循环里调用 `model.train()`**——在原文中无害（它只在最后评估一次），但一旦
#    每个轮次都评估就必不可少：训练时 dropout 必须打开，度量时必须关闭（`model.eval()`），而
#    `torch.no_grad()` 省去计算图。
# 5. **评估部分打印的是原始 logits**，而“输出”展示的却是标签（`[5, 0, 1, 2, ...]`，对两个类别来说
#    不可能出现）。预测应为 `logits.argmax(-1)`，而评估需要一个数：测试损失和准确率。
# 6. 打印的“loss”是最后一个批次的损失；我们打印整个轮次的平均值。
#
# 学习率取 1e-3 而不是 2e-5：后者适合 1.1 亿参数的 bert-base，对我们 16 万参数的模型来说小得多。

# %% [markdown] lang="en"
# ## 2. The article's §5.2 code, corrected
#
# The article's loop, line by line, with our minibert in place of transformers. What had to change:
#
# 1. **`torch` is never imported and `device` never defined** — the loop's first line would fail.
#    We import torch and set `device` to the GPU if there is one.
# 2. **`from transformers import AdamW`** — transformers deprecated its own AdamW for years and
#    removed it in v4.50.0 (March 2025); `torch.optim.AdamW` is the one to use.
# 3. **The "batches" are single examples, as Python lists.** `encode_data` returns a list of
#    `(ids, mask, label)` tuples of Python lists and ints; `for batch in train_dataset` takes one
#    example at a time, and `t.to(device)` fails on a list (and on the int label); turned into
#    tensors, one example is a 1-D row, not a (B, T) batch. A `DataLoader` with a `collate_fn` that
#    pads each batch gives (B, T) tensors.
# 4. **No `model.train()` inside the epoch loop after evaluating** — harmless in the article (it
#    evaluates once at the end), essential once we evaluate every epoch: dropout must be on when
#    training and off (`model.eval()`) when measuring, and `torch.no_grad()` skips the graph.
# 5. **The evaluation prints raw logits** while the "output" shows labels (`[5, 0, 1, 2, ...]`,
#    impossible for two classes). A prediction is `logits.argmax(-1)`, and an evaluation needs a
#    number: the test loss and accuracy.
# 6. The printed "loss" was the last batch's; we print the epoch's mean.
#
# The learning rate is 1e-3, not 2e-5: that is right for a 110M-parameter bert-base, far too
# small for our 160k-parameter model.

# %%
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # fix 1


def encode_data(texts, label_names, tokenizer, max_len=MAX_LEN):
    """[CLS] text [SEP] ids (first max_len − 2 tokens kept) and the label id, one dict per example."""
    return encode_classification([Example(t, y) for t, y in zip(texts, label_names)], tokenizer, labels, max_len)


n_train = ch.steps(len(train_ex), 256)
train_dataset = encode_data([e.text for e in train_ex[:n_train]], [e.label for e in train_ex[:n_train]], tokenizer)
test_dataset = encode_data([e.text for e in test_ex], [e.label for e in test_ex], tokenizer)
pad_batch = lambda items: collate(items, pad_id)  # noqa: E731  pads to the longest row of the batch
train_loader = DataLoader(train_dataset, batch_size=32, shuffle=True, collate_fn=pad_batch,  # fix 3
                          generator=torch.Generator())
test_loader = DataLoader(test_dataset, batch_size=100, collate_fn=pad_batch)
epochs = ch.steps(4, 1)  # 2 were too few: from scratch, one seed in five was still at 0.67 (bench/README.md)


def train_and_evaluate(model, epochs, name):
    """The article's loop, fixed: ``epochs`` passes over train_loader, a test evaluation after each.
    Returns [(train loss, test loss, test accuracy) per epoch] and the last test predictions."""
    model.to(device)
    train_loader.generator.manual_seed(ch.seed_for(0))  # the same batches for every model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)  # fix 2
    log = []
    for epoch in range(epochs):
        model.train()  # fix 4: dropout on
        total, n = 0.0, 0
        for batch in train_loader:
            batch = {k: v.to(device) for k, v in batch.items()}  # input_ids, attention_mask (B, T); labels (B,)
            outputs = model(**batch)
            loss = outputs.loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            total, n = total + loss.item() * len(batch["labels"]), n + len(batch["labels"])
        model.eval()  # fix 4: dropout off
        test_loss, correct, predictions = 0.0, 0, []
        with torch.no_grad():  # fix 4: no graph
            for batch in test_loader:
                batch = {k: v.to(device) for k, v in batch.items()}
                outputs = model(**batch)
                pred = outputs.logits.argmax(-1)  # fix 5: a label per review, not logits
                test_loss += outputs.loss.item() * len(pred)
                correct += int((pred == batch["labels"]).sum())
                predictions += pred.tolist()
        log.append((total / n, test_loss / len(test_dataset), correct / len(test_dataset)))
        print(ch.tr(f"  {name}：第 {epoch + 1} 轮，训练损失 {log[-1][0]:.4f}，测试损失 {log[-1][1]:.4f}，"
                    f"测试准确率 {log[-1][2]:.4f}",
                    f"  {name}: epoch {epoch + 1}, train loss {log[-1][0]:.4f}, test loss {log[-1][1]:.4f}, "
                    f"test accuracy {log[-1][2]:.4f}"))  # fix 6
    return log, predictions


ch.manual_seed(0)
model = BertForSequenceClassification.from_pretrained(PRETRAINED, id2label=ID2LABEL, hidden_dropout_prob=0.1)
log, predictions = train_and_evaluate(model, epochs, ch.tr("预训练模型", "pretrained"))
print(ch.tr(f"  前 10 条测试评论的预测：{predictions[:10]}（真实标签 {[d['label'] for d in test_dataset[:10]]}）",
            f"  predictions for the first 10 test reviews: {predictions[:10]} (gold {[d['label'] for d in test_dataset[:10]]})"))

# %% [markdown] lang="zh"
# 作为对照，用同一个循环从随机权重开始训练——架构和批次都相同，配置也与预训练模型的完全一样，只有
# 权重不同：

# %% [markdown] lang="en"
# For comparison, the same loop from random weights — the same architecture and batches, and a
# config identical to the pretrained one's except for the weights:

# %%
config_scratch = BertConfig.from_dict({**json.loads((PRETRAINED / "config.json").read_text(encoding="utf-8")),
                                       "id2label": ID2LABEL, "hidden_dropout_prob": 0.1})
ch.manual_seed(0)
log_scratch, _ = train_and_evaluate(BertForSequenceClassification(config_scratch), epochs, ch.tr("从零训练", "from scratch"))

first = next(iter(train_loader))
ch.show(ch.tr("DataLoader 给出的一个批次：input_ids", "a batch from the DataLoader: input_ids"), first["input_ids"],
        ch.tr("(B, T)，用 [PAD] = 0 填充", "(B, T), padded with [PAD] = 0"))
ch.check(ch.tr("预测是类别编号 0/1，每条测试评论一个", "predictions are class ids 0/1, one per test review"),
         len(predictions) == len(test_dataset) and set(predictions) <= {0, 1})
try:
    model(torch.tensor(train_dataset[0]["input_ids"], device=device))  # what the article's loop hands the model: one 1-D row
    one_row_fails = False
except ValueError as e:
    one_row_fails = True
    print(ch.tr(f"  像原文循环那样输入未成批的一行：ValueError: {e}", f"  one unbatched row, as in the article's loop: ValueError: {e}"))
ch.check(ch.tr("原文那种未成批的一维输入会被拒绝，并给出清楚的错误信息（修改 3）",
               "the article's unbatched 1-D input is refused with a clear error (fix 3)"), one_row_fails)
if not ch.fast:
    ch.check_value(ch.tr("修正后的循环能够训练：从零训练、使用全部 2,400 条评论的模型能给测试集分类",
                         "the corrected loop trains: the model from scratch, on all 2,400 reviews, classifies the test set"),
                   log_scratch[-1][2], low=0.8,
                   detail=ch.tr(f"训练损失 {log_scratch[0][0]:.3f} → {log_scratch[-1][0]:.3f}",
                                f"train loss {log_scratch[0][0]:.3f} → {log_scratch[-1][0]:.3f}"))
    print(ch.tr(f"  同样训练 {epochs} 轮后的预训练模型：测试准确率 {log[-1][2]:.3f}"
                f"（对 {sum(predictions) / len(predictions):.0%} 的测试评论预测为 'pos'）——见下文",
                f"  the pretrained model after the same {epochs} epochs: test accuracy {log[-1][2]:.3f} "
                f"(predicts 'pos' for {sum(predictions) / len(predictions):.0%} of the test reviews) — see below"))

# %% [markdown] lang="zh"
# **预训练模型反而比从零训练的模型学得更慢。** 使用同一个循环、同样的批次，ch08 的小 BERT 最终远远
# 落后于从随机权重开始的模型（在某些种子下，它仍然对大多数评论预测同一个类别）；不同种子下的波动
# 见 `bench/README.md`。这不是循环或模型的错误：minibert 的 BERT 与 Hugging Face 的给出相同的 logits
# （tests/test_bert_hf.py）。这是*负迁移*（negative transfer）：在约 600 步 MLM + NSP 中，模型学到的
# 是服务于 NSP 的特征（句子里提到了哪些人、地点和场所），而对情感一无所知；因此它的 `[CLS]` 向量在
# 不同评论之间变化很大，而变化的方向与标签毫无关系（下面测量两条评论 `[CLS]` 向量之间的余弦相似度）。
# 分类器先去拟合这些方向，需要更多步才能找到情感。下面的单元格在任何微调之前测量这种离散程度；
# `bench/README.md`（“ch10 across seeds”）给出了第 2 节在五个种子上的准确率，
# `bench/bert_pretrain_lr_toy.py` 则展示了在 ch08 的学习率下，这个 MLM 从上下文中学会一个情感词有
# 多慢。真正学到了情感的预训练模型（第 15 章的 all-MiniLM-L6-v2）则在少量标注下明显胜过从零训练。

# %% [markdown] lang="en"
# **The pretrained model learns more slowly than the one from scratch.** With the same loop and
# the same batches, ch08's tiny BERT ends far behind the model from random weights (on some
# seeds it still predicts one class for most reviews); the seed spread is in `bench/README.md`. This is not a bug in the loop or the model: minibert's BERT
# gives the same logits as Hugging Face's (tests/test_bert_hf.py). It is *negative transfer*: in ~600 steps of
# MLM + NSP the model learnt features for NSP (which people, places and venues a sentence
# names) and nothing about sentiment, so its `[CLS]` vector varies a lot from review to review
# in directions that have nothing to do with the label (the cosine similarity between two
# reviews' `[CLS]` vectors, measured below). The classifier first fits those
# directions and needs more steps to find the sentiment. The cell below measures that spread
# before any fine-tuning; `bench/README.md` ("ch10 across seeds") gives §2's accuracies over
# five seeds, and `bench/bert_pretrain_lr_toy.py` shows how slowly this MLM learns a sentiment
# word from its context at ch08's learning rate. A pretrained model that did learn sentiment
# (chapter 15's all-MiniLM-L6-v2) clearly beats training from scratch with few labels.


# %%
def cls_similarity(model):
    """Mean cosine similarity between the last-layer [CLS] vectors of two different test reviews."""
    batch = pad_batch(test_dataset[:64])
    model.eval()
    with torch.no_grad():
        h = model.bert(batch["input_ids"], None, batch["attention_mask"]).last_hidden_state[:, 0]  # (64, H)
    sim = torch.nn.functional.cosine_similarity(h[:, None], h[None], dim=-1)  # (64, 64)
    return float((sim.sum() - sim.diagonal().sum()) / (64 * 63))


ch.manual_seed(0)
sim_pre = cls_similarity(BertForSequenceClassification.from_pretrained(PRETRAINED, id2label=ID2LABEL))
sim_rand = cls_similarity(BertForSequenceClassification(config_scratch))
print(ch.tr(f"  两条评论 [CLS] 向量的余弦相似度：预训练模型 {sim_pre:.3f}，随机权重 {sim_rand:.4f}",
            f"  cosine similarity of two reviews' [CLS] vectors: pretrained {sim_pre:.3f}, random weights {sim_rand:.4f}"))
if not ch.fast:  # (with --fast the model is pretrained for 40 steps only)
    ch.check_value(ch.tr("预训练模型的 [CLS] 向量在评论之间的变化远大于随机模型",
                         "the pretrained [CLS] vector varies from review to review far more than a random model's"),
                   sim_rand - sim_pre, low=0.03,  # 0.08–0.37 over 5 seeds; random weights: ~1e-4
                   detail=ch.tr(f"1 − 相似度：{1 - sim_pre:.3f}，对比 {1 - sim_rand:.4f}",
                                f"1 − similarity: {1 - sim_pre:.3f} vs {1 - sim_rand:.4f}"))


# %% [markdown] lang="zh"
# ## 3. 评估指标：准确率、精确率、召回率、F1 值
#
# 对一个我们关心的类别 c（“正类”），在测试集上统计：
#
#     TP = 真实为 c，预测为 c      FP = 真实不是 c，预测为 c      FN = 真实为 c，预测不是 c
#
#     准确率 accuracy    = 预测正确的数目 / 全部预测数目        （所有类别一起算）
#     精确率 precision P = TP / (TP + FP)    被我们判为 c 的评论中，有多少真是 c
#     召回率 recall    R = TP / (TP + FN)    真正是 c 的评论中，我们找出了多少
#     F1 值            = 2PR / (P + R)       **精确率**与召回率的调和平均
#
# 分母为 0 的比值（从未被预测的类别有 TP + FP = 0）按惯例取 0，与 scikit-learn 的 `zero_division=0`
# 相同。
#
# **原文的 F1 是错的。** 原文把 F1 称为准确率与召回率的调和平均。在类别均衡的测试集上、模型又不错时，
# 两个数可能看起来差不多；一旦有稀有类别就不一样了。设有 1,000 条评论，其中 50 条是负面的；某模型
# 把 40 条判为负面，其中 20 条判对：TP = 20、FP = 20、FN = 30、TN = 930。
#
#     accuracy = 950/1000 = 0.95    P = 20/40 = 0.5    R = 20/50 = 0.4
#     F1 = 2·0.5·0.4/0.9 = 4/9 ≈ 0.444         "article F1" = 2·0.95·0.4/1.35 = 76/135 ≈ 0.563
#
# （"article F1" 即按原文公式算出的 F1。）准确率之所以高，是因为几乎所有评论都是正面的；精确率则
# 指出一半的负面判断是错的。F1 必须用精确率才能反映这一点。

# %% [markdown] lang="en"
# ## 3. Evaluation: accuracy, precision, recall, F1
#
# Count, for one class of interest c ("positive"), over the test set:
#
#     TP = true c, predicted c      FP = true not c, predicted c      FN = true c, predicted not c
#
#     accuracy    = correct predictions / all predictions        (all classes together)
#     precision P = TP / (TP + FP)    of the reviews we called c, how many are c
#     recall    R = TP / (TP + FN)    of the reviews that are c, how many we found
#     F1          = 2PR / (P + R)       the harmonic mean of **precision** and recall
#
# A ratio whose denominator is 0 (a class never predicted has TP + FP = 0) is 0 by convention,
# as in scikit-learn's `zero_division=0`.
#
# **The article's F1 is wrong.** It calls F1 the harmonic mean of "准确率" (accuracy) and recall.
# On a balanced test set with a good model the two numbers can look alike; with a rare class they
# do not. Take 1,000 reviews of which 50 are negative, and a model that flags 40 as negative, 20
# of them rightly: TP = 20, FP = 20, FN = 30, TN = 930.
#
#     accuracy = 950/1000 = 0.95    P = 20/40 = 0.5    R = 20/50 = 0.4
#     F1 = 2·0.5·0.4/0.9 = 4/9 ≈ 0.444         "article F1" = 2·0.95·0.4/1.35 = 76/135 ≈ 0.563
#
# The accuracy is high because almost everything is positive; precision says half of the flags
# are wrong. F1 must use precision to show it.

# %% [markdown] lang="zh"
# ### 练习 10.1 — 计算某一类的精确率、召回率和 F1 值
#
# **`precision_recall_f1_ex`** · ★ · 2 分 · 约 15 分钟
#
# **题目：** 计算某一类的精确率、召回率和 F1：P = TP/(TP+FP)，R = TP/(TP+FN)，F1 = 2PR/(P+R)——是精
# 确率与召回率的调和平均，而不是准确率；分母为 0 时取 0。
#
# **提示：** 遍历一次 zip(y_true, y_pred) 数出 TP、FP、FN；每个除法都先判断分母。
#
# **不可调用：** `metrics.precision_recall_f1`, `metrics.prf_from_counts`,
# `metrics.classification_report`, `sklearn.metrics.precision_recall_fscore_support`,
# `sklearn.metrics.precision_score` 等共 7 个（`python -m chapters.assign list`）
#
# 自查：`python -m chapters.assign check ch10`
#
# 编写 `precision_recall_f1_ex(y_true, y_pred, positive)` → `(precision, recall, f1)`，对类别
# `positive` 返回三个浮点数；标签可以是整数或字符串；分母为零时返回 0.0。
# 检查程序使用一些小例子，其答案已在检查代码中手工算出。

# %% [markdown] lang="en"
# ### Exercise 10.1 — precision, recall and F1 for one class
#
# **`precision_recall_f1_ex`** · ★ · 2 points · ~15 min
#
# **Task:** Precision, recall and F1 for one class: P = TP/(TP+FP), R = TP/(TP+FN), F1 =
# 2PR/(P+R) — the harmonic mean of precision and recall, not of accuracy; 0 when a denominator is
# 0.
#
# **Hint:** Count TP, FP and FN in one pass over zip(y_true, y_pred); guard every division.
#
# **Not allowed:** `metrics.precision_recall_f1`, `metrics.prf_from_counts`,
# `metrics.classification_report`, `sklearn.metrics.precision_recall_fscore_support`,
# `sklearn.metrics.precision_score` and 2 more (`python -m chapters.assign list`)
#
# Self-check: `python -m chapters.assign check ch10`
#
# Write `precision_recall_f1_ex(y_true, y_pred, positive)` → `(precision, recall, f1)` as floats
# for the class `positive`; labels may be ints or strings; a zero denominator gives 0.0.
# The check uses small examples whose answers are worked out by hand in its code.

# %%
def precision_recall_f1_ex(y_true, y_pred, positive):
    """(P, R, F1) of class ``positive``: P = TP/(TP+FP), R = TP/(TP+FN), F1 = 2PR/(P+R); 0.0 for 0/0."""
    ### BEGIN SOLUTION
    tp = sum(t == positive and p == positive for t, p in zip(y_true, y_pred))
    fp = sum(t != positive and p == positive for t, p in zip(y_true, y_pred))
    fn = sum(t == positive and p != positive for t, p in zip(y_true, y_pred))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)
    ### END SOLUTION


def check_precision_recall_f1_ex(impl):
    """Hand-worked examples (answers as fractions in the code), then random data against minitransformer.metrics."""
    from minitransformer.metrics import precision_recall_f1  # the reference (the chapter imports it after the exercise)

    cases = [
        # name, y_true, y_pred, positive, (P, R, F1) worked out by hand
        (ch.tr("10 个样本：TP 2，FP 1，FN 2（准确率 0.7）", "10 samples: TP 2, FP 1, FN 2 (accuracy 0.7)"),
         [1, 1, 1, 1, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 1, 0, 0, 0, 0, 0], 1, (2 / 3, 1 / 2, 4 / 7)),
        (ch.tr("稀有类别：1000 个样本中真实为该类的有 50 个，预测为该类的有 40 个，其中 20 个正确（准确率 0.95）",
               "rare class: 50 of 1000 true, 40 flagged, 20 right (accuracy 0.95)"), ["neg"] * 50 + ["pos"] * 950,
         ["neg"] * 20 + ["pos"] * 30 + ["neg"] * 20 + ["pos"] * 930, "neg", (1 / 2, 2 / 5, 4 / 9)),
        (ch.tr("三个类别，字符串标签：TP 1，FP 2，FN 1", "three classes, strings: TP 1, FP 2, FN 1"),
         ["pos", "neg", "neu", "pos", "neu"], ["pos", "pos", "neu", "neg", "pos"], "pos", (1 / 3, 1 / 2, 2 / 5)),
        (ch.tr("从未被预测的类别：精确率 0/0 -> 0", "a class never predicted: precision 0/0 -> 0"),
         ["a", "b", "b", "a"], ["b", "b", "b", "b"], "a", (0.0, 0.0, 0.0)),
        (ch.tr("从未真实出现的类别：召回率 0/0 -> 0", "a class never true: recall 0/0 -> 0"),
         ["a", "b", "b"], ["c", "b", "b"], "c", (0.0, 0.0, 0.0)),
        (ch.tr("完全正确的预测", "perfect predictions"), (0, 1, 1, 0, 1), (0, 1, 1, 0, 1), 1, (1.0, 1.0, 1.0)),
    ]
    for name, t, p, positive, want in cases:
        got = impl(t, p, positive)
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            raise AssertionError(ch.tr(f"{name}：期望一个元组 (precision, recall, f1)，实际得到 {got!r}",
                                       f"{name}: expected a tuple (precision, recall, f1), received {got!r}"))
        for what, g, w in zip(("precision", "recall", "f1"), got, want):
            if not isinstance(g, (int, float)) or isinstance(g, bool) or math.isnan(g) or abs(g - w) > 1e-9:
                hint = {"precision": ch.tr("P = TP / (TP + FP)，没有样本被预测为该类别时为 0",
                                           "P = TP / (TP + FP), 0 when nothing is predicted as the class"),
                        "recall": ch.tr("R = TP / (TP + FN)，该类别从未出现时为 0", "R = TP / (TP + FN), 0 when the class never occurs"),
                        "f1": ch.tr("F1 = 2PR / (P + R)，即精确率与召回率的调和平均（而不是准确率的）",
                                    "F1 = 2PR / (P + R), the harmonic mean of precision and recall (not of accuracy)")}[what]
                raise AssertionError(ch.tr(f"{name}：{what} = {g!r}，期望 {w:.6f}：{hint}",
                                           f"{name}: {what} = {g!r}, expected {w:.6f}: {hint}"))
    rng = random.Random(0)
    for trial in range(20):
        t = [rng.choice("abc") for _ in range(rng.randint(1, 60))]
        p = [rng.choice("abcd") for _ in t]
        reference = precision_recall_f1(t, p, labels=list("abcd")).per_class
        for c in "abcd":
            got, want = impl(t, p, c), reference[c]
            if max(abs(got[0] - want.precision), abs(got[1] - want.recall), abs(got[2] - want.f1)) > 1e-9:
                raise AssertionError(ch.tr(f"随机用例 {trial}，类别 {c!r}：得到 {tuple(round(x, 4) for x in got)}，而 "
                                           f"minitransformer.metrics 给出 ({want.precision:.4f}, {want.recall:.4f}, {want.f1:.4f})",
                                           f"random case {trial}, class {c!r}: {tuple(round(x, 4) for x in got)} vs "
                                           f"minitransformer.metrics ({want.precision:.4f}, {want.recall:.4f}, {want.f1:.4f})"))
    return ch.tr(f"{len(cases)} 个手算用例（含 0/0 和稀有类别），以及 20 个与 minitransformer.metrics 对照的随机用例",
                 f"{len(cases)} hand-worked cases (incl. 0/0 and a rare class) and 20 random ones against minitransformer.metrics")


ch.verify(check_precision_recall_f1_ex, precision_recall_f1_ex)

# %%
from minitransformer.metrics import precision_recall_f1  # the library's version (exercise 10.1)

y_true = ["neg"] * 50 + ["pos"] * 950
y_pred = ["neg"] * 20 + ["pos"] * 30 + ["neg"] * 20 + ["pos"] * 930  # 20 TP, 30 FN, 20 FP, 930 TN for "neg"
report = precision_recall_f1(y_true, y_pred, labels=["neg", "pos"])
neg = report.per_class["neg"]
acc = accuracy(y_true, y_pred)
article_f1 = 2 * acc * neg.recall / (acc + neg.recall)
print(ch.tr(f"  准确率 {acc:.3f}；对 'neg'：精确率 {neg.precision:.3f}，召回率 {neg.recall:.3f}，F1 {neg.f1:.3f}；"
            f"原文的“F1”（用准确率与召回率）{article_f1:.3f}",
            f"  accuracy {acc:.3f}; for 'neg': precision {neg.precision:.3f}, recall {neg.recall:.3f}, F1 {neg.f1:.3f}; "
            f"the article's 'F1' (accuracy with recall) {article_f1:.3f}"))
ch.check_close(ch.tr("准确率 = 950/1000", "accuracy = 950/1000"), acc, 950 / 1000, atol=1e-12)
ch.check_close(ch.tr("精确率 = 20/40，召回率 = 20/50：minitransformer.metrics 与手工计数一致",
                     "precision = 20/40, recall = 20/50 (minitransformer.metrics vs hand counts)"), [neg.precision, neg.recall], [0.5, 0.4],
               atol=1e-12)
ch.check_close("F1 = 2PR/(P+R) = 4/9", neg.f1, 4 / 9, atol=1e-12)
ch.check(ch.tr("原文的公式给出另一个数 76/135", "the article's formula gives a different number, 76/135"),
         abs(article_f1 - 76 / 135) < 1e-12 and abs(article_f1 - neg.f1) > 0.1,
         ch.tr(f"{article_f1:.4f}，对比 F1 {neg.f1:.4f}", f"{article_f1:.4f} vs F1 {neg.f1:.4f}"))

# %% [markdown] lang="zh"
# ### 微调后模型的测试得分及其混淆矩阵
#
# 混淆矩阵统计（真实标签，预测标签）对的个数：行是真实标签，列是预测，对角线是模型判对的部分。上面
# 的每个数都可以从它读出来：对 `pos` 而言，TP 是 (pos, pos) 格，FP 是 `pos` 列的其余部分，FN 是
# `pos` 行的其余部分。

# %% [markdown] lang="en"
# ### The fine-tuned model's test scores and its confusion matrix
#
# The confusion matrix counts (true label, predicted label) pairs: rows are the truth, columns the
# prediction, the diagonal is what the model got right. Every number above is read off it:
# for `pos`, TP is the (pos, pos) cell, FP the rest of the `pos` column, FN the rest of the `pos` row.

# %%
gold = [ID2LABEL[d["label"]] for d in test_dataset]
guess = [ID2LABEL[i] for i in predictions]
scores = precision_recall_f1(gold, guess, labels=list(labels.labels))
cm = confusion_matrix(gold, guess, labels=list(labels.labels))  # (2, 2) rows true, columns predicted
print(format_report(scores), end="")
print(ch.tr(f"  准确率 {accuracy(gold, guess):.4f}", f"  accuracy {accuracy(gold, guess):.4f}"))
reference_cm = torch.bincount(torch.tensor([d["label"] for d in test_dataset]) * 2 + torch.tensor(predictions), minlength=4).reshape(2, 2)
ch.check(ch.tr("混淆矩阵 == 对（真实，预测）对做 torch.bincount 的结果", "confusion matrix == torch.bincount of (true, predicted) pairs"),
         bool((torch.as_tensor(cm) == reference_cm).all()),
         f"{cm.tolist()}")
tp, fp, fn = int(cm[1, 1]), int(cm[0, 1]), int(cm[1, 0])
p_pos = tp / (tp + fp) if tp + fp else 0.0
r_pos = tp / (tp + fn) if tp + fn else 0.0
f1_pos = 2 * p_pos * r_pos / (p_pos + r_pos) if p_pos + r_pos else 0.0
ch.check_close(ch.tr("从矩阵数出的 'pos' 精确率、召回率、F1 == precision_recall_f1",
                     "'pos' precision, recall, F1 counted from the matrix == precision_recall_f1"),
               [p_pos, r_pos, f1_pos], [scores.per_class["pos"].precision, scores.per_class["pos"].recall, scores.per_class["pos"].f1],
               atol=1e-12)
ch.check_close(ch.tr("……练习 10.1 的结果也一致", "… and exercise 10.1 agrees"), list(precision_recall_f1_ex(gold, guess, "pos")), [p_pos, r_pos, f1_pos], atol=1e-12)
ch.check_close(ch.tr("准确率 = 迹 / 总数；每条评论一个标签时，微平均的 P = R = F1 = 准确率",
                     "accuracy = trace / total; micro-averaged P = R = F1 = accuracy for one label per review"),
               [float(cm.trace()) / cm.sum(), scores.micro.precision, scores.micro.f1], [accuracy(gold, guess)] * 3, atol=1e-12)

fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.4))
for ax, values, title, fmt in [(axes[0], cm, ch.tr("计数", "counts"), "{:.0f}"),
                               (axes[1], cm / cm.sum(1, keepdims=True),
                                ch.tr("每行除以该行总数（对角线 = 召回率）", "each row / its total (diagonal = recall)"), "{:.2f}")]:
    im = ax.imshow(values, cmap="Blues", vmin=0)
    for i in range(2):
        for j in range(2):
            ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center",
                    color="white" if values[i, j] > values.max() / 2 else "black")
    ax.set_xticks([0, 1], labels.labels)
    ax.set_yticks([0, 1], labels.labels)
    ax.set(xlabel=ch.tr("预测", "predicted"), ylabel=ch.tr("真实", "true"), title=title)
    fig.colorbar(im, ax=ax, shrink=0.8)
fig.suptitle(ch.tr(f"微调后的小 BERT 在 {len(test_dataset)} 条测试评论上（准确率 {accuracy(gold, guess):.3f}）",
                   f"fine-tuned tiny BERT on {len(test_dataset)} test reviews (accuracy {accuracy(gold, guess):.3f})"))
ch.savefig(fig, "confusion_matrix")

# %% [markdown] lang="zh"
# ## 4. 微调需要多少标注数据？
#
# §3.3.2 说微调需要“大量标注数据”，紧接着又说“只需少量”。那就来测量。§2 的评论不适合回答这个问题：
# 它们的标签取决于否定和 "but"，而 §3 表明我们在故事上预训练的模型并不知道哪些评价是好的。这里换成
# 随书数据中的**短评**（`data/short_reviews_en.*.tsv`）：每条只有一个评价，标签就是形容词的褒贬，
# 例如 `We had lunch at Sun Restaurant. The waiters were cheerful.` → pos。短评一共用到 164 个形容词，
# 每个都同样少见：32 条标注只覆盖测试短评所用形容词的五分之一左右，128 条约覆盖一半多。其余的形容词，
# 从零训练的模型从没见过带标签的例子——但 ch08 §8 在笔记上预训练的模型见过它们出现在 "A and B,
# so I was happy" 这样的上下文里。
#
# 对 16、32、64、128、512 条和全部 2,400 条标注（每种大小取三个随机子集，每个子集用不同的种子），
# 用共享的 `Trainer`（`minibert.finetune`；带预热和余弦衰减）以三种方式微调：
#
# * **从零训练**——相同的架构和分词器，随机权重；
# * **预训练后全部微调**——ch08 §8 的权重，训练所有参数；
# * **预训练后冻结编码器**（线性探针，linear probe）——只有池化后 `[CLS]` 向量上的分类器在学习：
#   它衡量的是预训练特征本身已经包含了多少关于情感的信息。
#
# 在 300 条测试短评上，测试准确率的标准误约为 √(0.25/300) ≈ 2.9 个百分点；下图的误差棒是三个子集
# 上的 ± 一个标准差。

# %% [markdown] lang="en"
# ## 4. How many labels does fine-tuning need?
#
# §3.3.2 says fine-tuning needs "a lot of labelled data" and, in the same breath, "a little".
# Measure it. §2's reviews are not the place: their labels depend on negation and "but", and §3
# showed that our model pretrained on the stories does not know which judgements are good. We use
# the bundled **short reviews** instead (`data/short_reviews_en.*.tsv`): one judgement each,
# labelled with its adjective's sentiment, e.g. `We had lunch at Sun Restaurant. The waiters were
# cheerful.` → pos. The short reviews use 164 adjectives, each as rare as any other: 32 labels
# cover about a fifth of the adjectives the test reviews use, 128 a little over half. A model
# trained from scratch has never seen a labelled example of the others — but the model ch08 §8
# pretrained on the notes has seen them in contexts like "A and B, so I was happy".
#
# On 16, 32, 64, 128, 512 and all 2,400 labels (three random subsets of each size, a different
# seed each), fine-tune three ways with the shared `Trainer` (`minibert.finetune`; warm-up,
# cosine decay):
#
# * **from scratch** — the same architecture and tokenizer, random weights;
# * **pretrained, full fine-tuning** — ch08 §8's weights, every parameter trained;
# * **pretrained, frozen encoder** (linear probe) — only the classifier on the pooled `[CLS]`
#   vector learns: it measures what the pretrained features already say about sentiment.
#
# Test accuracy on the 300 test short reviews has a standard error of about √(0.25/300) ≈ 2.9
# points; the error bars below are ± one standard deviation over the three subsets.

# %%
from minibert.recipes import FEW_LABEL_STEPS, few_label_accuracy, notes_recipe, pretrain_on_notes  # noqa: E402
from minitransformer.data import load_world_short_reviews  # noqa: E402

logging.getLogger("minibert").setLevel(logging.ERROR)  # "classifier left randomly initialised" — a new head, as in §2
NOTES = notes_recipe(ch.fast)  # as in ch08 §8
NOTES_RECORD = {**NOTES, "lang": "en", "seed": ch.seed_for(0)}
NOTES_MODEL = find_pretrained([ch.out.parent / "ch08_bert_pretraining", ch.out], NOTES_RECORD, "pretrained_notes")
if NOTES_MODEL is None:
    print(ch.tr("  没有找到与配方一致的 ch08 §8 模型：在这里预训练它", "  no matching model from ch08 §8: pretraining it here"))
    NOTES_MODEL, _ = pretrain_on_notes(ch.out, NOTES, lang="en", seed=ch.seed_for(0))
print(ch.tr(f"  在笔记上预训练的模型：{NOTES_MODEL}", f"  model pretrained on the notes: {NOTES_MODEL}"))
notes_tokenizer = load_tokenizer_from(NOTES_MODEL)
short_train, short_val, short_test = (load_world_short_reviews("en", split) for split in ("train", "val", "test"))
for e in short_train[:3]:
    print(f"    {e.label}: {e.text}")
adjective = lambda text: text.rstrip(".").split()[-1]  # noqa: E731  the last word of a short review
test_words = {adjective(e.text) for e in short_test}
for n in (32, 128):
    covered = [len({adjective(e.text) for e in random.Random(ch.seed_for(k)).sample(short_train, n)} & test_words) / len(test_words)
               for k in range(3)]
    print(ch.tr(f"  {n} 条标注覆盖测试短评所用的 {len(test_words)} 个形容词中的 {statistics.mean(covered):.0%}",
                f"  {n} labels cover {statistics.mean(covered):.0%} of the {len(test_words)} adjectives the test short reviews use"))
short_test_enc = encode_classification(short_test, notes_tokenizer, labels, MAX_LEN)
short_val_enc = encode_classification(short_val[:64], notes_tokenizer, labels, MAX_LEN)  # the Trainer wants one; not used
config_short = BertConfig.from_dict({**json.loads((NOTES_MODEL / "config.json").read_text(encoding="utf-8")),
                                     "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "num_labels": 2})
ALL = len(short_train)
FT_STEPS = FEW_LABEL_STEPS  # batch 16: 120 epochs of 16 … 2 of 2,400 (minibert.recipes)


def fine_tune(n, start, k):
    """Test accuracy after fine-tuning on ``n`` labelled short reviews (subset ``k``); start: scratch | pretrained | frozen."""
    seed = ch.seed_for(k)
    subset = random.Random(seed).sample(short_train, n)
    enc = encode_classification(subset, notes_tokenizer, labels, MAX_LEN)
    ch.manual_seed(k)
    if start == "scratch":
        clf = BertForSequenceClassification(config_short)
    else:
        clf = BertForSequenceClassification.from_pretrained(NOTES_MODEL, id2label=ID2LABEL, hidden_dropout_prob=0.1)
    return few_label_accuracy(clf, notes_tokenizer, enc, short_test_enc, ch.steps(FT_STEPS[n], 10), seed,
                              ch.out / "runs" / f"{start}_{n}_{k}", lr=3e-3 if start == "frozen" else 1e-3,
                              val_enc=short_val_enc, freeze=start == "frozen")


STARTS = ("scratch", "pretrained", "frozen")
SIZES = ch.steps((16, 32, 64, 128, 512, ALL), (32,))
SUBSETS = ch.steps((0, 1, 2), (0,))
results = {(start, n): [fine_tune(n, start, k) for k in SUBSETS] for n in SIZES for start in STARTS}  # test accuracies
stats = {key: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0) for key, v in results.items()}  # (mean, sample std)
START_ZH = {"scratch": "从零训练", "pretrained": "预训练后全部微调", "frozen": "预训练后冻结编码器"}
print(ch.tr("  测试准确率（各子集上的均值 ± 标准差）    ", "  test accuracy (mean ± std over subsets)")
      + "".join(f"{n:>16,d}" for n in SIZES))
for start in STARTS:
    cells = [f"{stats[start, n][0]:.3f} ± {stats[start, n][1]:.3f}" for n in SIZES]
    name = ch.tr(f"{START_ZH[start]}（{start}）", start)
    width = sum(2 if ord(c) >= 0x2E80 else 1 for c in name)  # a Chinese character takes two columns
    print(f"  {name}{' ' * max(39 - width, 0)} " + "".join(f"{c:>16}" for c in cells))

fig, ax = plt.subplots(figsize=(7, 4))
styles = {"scratch": ("tab:gray", "s", ch.tr("从零训练", "from scratch")),
          "pretrained": ("tab:blue", "o", ch.tr("在笔记上预训练（ch08 §8），全部微调", "pretrained on the notes (ch08 §8), full fine-tuning")),
          "frozen": ("tab:orange", "^", ch.tr("预训练，冻结编码器（线性探针）", "pretrained, frozen encoder (linear probe)"))}
for start, (color, marker, label) in styles.items():
    ax.errorbar(SIZES, [stats[start, n][0] for n in SIZES], yerr=[stats[start, n][1] for n in SIZES], marker=marker,
                color=color, label=label, capsize=3)
ax.axhline(0.5, color="k", ls="--", lw=1, label=ch.tr("随机水平（均衡的测试集）", "chance (balanced test set)"))
ax.set_xscale("log")
ax.set_xticks(list(SIZES), [f"{n:,}" for n in SIZES])
ax.minorticks_off()
ax.set(xlabel=ch.tr("有标注的训练短评数", "labelled training short reviews"),
       ylabel=ch.tr("测试准确率（300 条短评）", "test accuracy (300 short reviews)"), ylim=(0.35, 1.02),
       title=ch.tr("需要多少标注？小 BERT，在笔记上预训练 vs 从零训练", "how many labels? tiny BERT pretrained on the notes vs from scratch"))
ax.legend(fontsize=8, loc="lower right")
ch.savefig(fig, "accuracy_vs_labels")

gaps = {n: stats["pretrained", n][0] - stats["scratch", n][0] for n in SIZES}
for n in SIZES:
    print(ch.tr(f"  {n:>5,d} 条标注：预训练 − 从零训练 = {gaps[n]:+.3f}", f"  {n:>5,d} labels: pretrained − scratch = {gaps[n]:+.3f}"))
ch.check(ch.tr("每次运行的测试准确率都在 [0, 1] 之内", "every run gives a test accuracy in [0, 1]"),
         all(0.0 <= a <= 1.0 for v in results.values() for a in v),
         ch.tr(f"{sum(len(v) for v in results.values())} 次运行", f"{sum(len(v) for v in results.values())} runs"))
if not ch.fast:
    ch.check_value(ch.tr("128 条标注：在笔记上预训练的模型远胜从零训练（平均测试准确率之差）",
                         "128 labels: the model pretrained on the notes is far ahead of training from scratch (mean test accuracy gap)"),
                   gaps[128], low=GAP_BOUND,
                   detail=ch.tr(f"预训练 {stats['pretrained', 128][0]:.3f}，从零训练 {stats['scratch', 128][0]:.3f}",
                                f"pretrained {stats['pretrained', 128][0]:.3f}, scratch {stats['scratch', 128][0]:.3f}"))

# %% [markdown] lang="zh"
# **这些数字说明了什么。** 标注很少时，从零训练的模型只认得它见过的那些形容词：32 条标注时它只比随机
# 好一点，128 条时也只有七成左右——测试短评中将近一半的形容词它从没见过带标签的例子。在笔记上预训练
# 的模型从第一批标注开始就远远领先：它在预训练中已经学会了哪些词是好的（ch08 §8），微调只需把这一点
# 接到分类器上。128 条标注时，领先在我们测过的每个种子上都在 13 个百分点以上（只有这一点是本章检查的，
# 阈值 0.05）；32 条标注时，平均领先更多，但随种子变化很大（5 个种子上为 +0.03 到 +0.45，见
# bench/README.md）：有时 32 个例子不足以让 `[CLS]` 上的分类器找到编码器已经知道的东西——冻结编码器的
# 线性探针停在随机水平，说明这些知识在词元的表示里，而不在池化后的 `[CLS]` 向量里。标注越多，两条
# 曲线越接近：有了全部 2,400 条，从零训练的模型也见过了几乎每个形容词。
#
# 而在 §2 的评论上，我们在故事上预训练的模型并没有帮助（§3），因为那份语料没有教会它评价的褒贬。
# **那么，微调需要大量标注数据还是少量？（§3.3.2）** 它需要的数量，取决于任务在*预训练已经教会的
# 东西之外*还要求多少。当预训练学到了任务所依赖的概念时——这里是笔记中形容词的褒贬——少量标注就能
# 走很远；第 15 章用一个真正的预训练 BERT（all-MiniLM-L6-v2）在 §2 那种需要组合的评论上展示了同样的
# 效果。当预训练没有学到这些概念时，微调就是普通的监督学习，需要成千上万条标注。§3.3.2 的两种说法
# 都对，只是针对不同的模型和语料；对一个具体任务而言，答案取决于上面这条曲线——用手头的模型测量
# 出来的曲线。
#
# ## 小结
#
# * 原文 §5.2 的微调循环，修正后实际运行：`torch` 与 `device`、带填充的 `DataLoader`、
#   `torch.optim.AdamW`、训练/评估模式、`torch.no_grad()`、argmax 预测、测试损失与准确率；
# * 准确率、精确率、召回率和 F1 值——F1 是**精确率**与召回率的调和平均——并用一个算例说明原文的
#   公式偏差 0.12；混淆矩阵；
# * 对 §3.3.2 的实测回答：测试准确率随标注数量的变化，分别对从零训练、在笔记上预训练的模型、冻结
#   编码器的预训练模型——以及为什么预训练模型只能在它的预训练语料所教会的范围内提供帮助。

# %% [markdown] lang="en"
# **What the numbers say.** With few labels the model from scratch knows only the adjectives it
# has seen: with 32 labels it is a little better than chance, with 128 around 0.7 — nearly half
# the adjectives of the test reviews it has never seen with a label. The model pretrained on the
# notes is far ahead from the first labels on: pretraining taught it which words are good (ch08
# §8), and fine-tuning only has to connect that to the classifier. At 128 labels the lead was over
# 13 points on every seed we measured (the one thing this chapter checks, bound 0.05); at 32 labels
# it is larger on average but varies a lot with the seed (+0.03 to +0.45 over 5 seeds,
# bench/README.md): 32 examples are sometimes not enough for the classifier on `[CLS]` to find what
# the encoder knows — the frozen encoder's linear probe stays at chance, so the knowledge is in the
# tokens' representations, not in the pooled `[CLS]` vector. The more labels, the closer the
# curves: with all 2,400 the model from scratch has seen nearly every adjective too.
#
# On §2's reviews, our model pretrained on the stories did not help (§3), because that corpus
# did not teach it which judgements are good.
# **So does fine-tuning need a lot of labelled data or a little? (§3.3.2)** It needs as many as
# the task requires *beyond what pretraining already taught*. When pretraining has learnt the
# concepts the task is built on — here, the sentiment of the adjectives in the notes — a few
# labels go a long way; chapter 15 shows the same with a real pretrained BERT
# (all-MiniLM-L6-v2) on reviews like §2's, which need composition. When pretraining has not
# learnt them, fine-tuning is ordinary supervised learning and needs thousands of labels. Both
# halves of §3.3.2 are true, of different models and corpora; what settles it for a task is the
# curve above, measured with the model at hand.
#
# ## What we built
#
# * the article's §5.2 fine-tuning loop, corrected and run: `torch` and `device`, a `DataLoader`
#   with padding, `torch.optim.AdamW`, train/eval modes, `torch.no_grad()`, argmax predictions,
#   test loss and accuracy;
# * accuracy, precision, recall and F1 — F1 the harmonic mean of **precision** and recall — with a
#   worked case where the article's formula is off by 0.12; the confusion matrix;
# * a measured answer to §3.3.2: test accuracy against the number of labels, from scratch, from
#   the model pretrained on the notes, and with its encoder frozen — and why a pretrained model
#   helps only with what its pretraining corpus taught.

# %%
ch.done()
