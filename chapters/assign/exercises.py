"""The graded exercises: where each lives, its points, and its statement in English and Chinese.

An exercise is a top-level function in a chapter whose body sits between ### BEGIN SOLUTION and
### END SOLUTION, checked by the chapter's own ``check_<function>`` (references nobody here wrote).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Exercise:
    id: str
    chapter: str  # file name under chapters/
    function: str  # the function the student writes
    check: str  # the chapter's check function, called with the student's function
    points: int
    minutes: int  # estimated time a student needs
    en: str
    zh: str


EXERCISES: list[Exercise] = [
    Exercise(
        "embedding_lookup", "ch01_tokens.py", "embedding_lookup", "check_embedding_lookup", 1, 10,
        "Look up token vectors: weight[ids] for a (V, C) table, the same as one-hot(ids) @ weight; "
        "refuse ids outside [0, V) with a ValueError.",
        "实现词向量查表：对 (V, C) 的嵌入矩阵取 weight[ids]，等价于 one-hot(ids) @ weight；"
        "若 id 超出 [0, V) 则抛出 ValueError。",
    ),
    Exercise(
        "attention_masks", "ch02_attention.py", "masked_attention", "check_masked_attention", 3, 30,
        "Write scaled dot-product attention softmax(QKᵀ/√d_k)V with a boolean mask (True = may attend) "
        "and an optional causal mask. A query whose every key is masked must output zeros, not NaN.",
        "实现缩放点积注意力 softmax(QKᵀ/√d_k)V，支持布尔掩码（True 表示可以关注）和因果掩码；"
        "若某个查询的所有键都被遮住，输出应为零向量而不是 NaN。",
    ),
    Exercise(
        "attention_backward", "ch02_attention.py", "attention_backward_by_hand", "check_attention_backward_by_hand", 3, 45,
        "Derive and write the backward pass of attention: given dO, return dQ, dK, dV "
        "(dV = PᵀdO, dP = dO Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ and dK scaled by 1/√d_k).",
        "推导并实现注意力的反向传播：已知 dO，求 dQ、dK、dV（dV = PᵀdO，dP = dO Vᵀ，"
        "dS = P ⊙ (dP − rowsum(dP ⊙ P))，dQ 与 dK 乘以 1/√d_k）。",
    ),
    Exercise(
        "split_heads", "ch03_multihead.py", "split_heads_ex", "check_split_heads_ex", 1, 10,
        "Split (B, T, C) into (B, H, T, C/H): head h takes channels h·C/H to (h+1)·C/H.",
        "把 (B, T, C) 拆成 (B, H, T, C/H)：第 h 个头取第 h·C/H 到 (h+1)·C/H 个通道。",
    ),
    Exercise(
        "merge_heads", "ch03_multihead.py", "merge_heads_ex", "check_merge_heads_ex", 1, 10,
        "Merge (B, H, T, C/H) back into (B, T, C), the heads' outputs side by side.",
        "把 (B, H, T, C/H) 合并回 (B, T, C)，各头的输出按通道依次拼接。",
    ),
    Exercise(
        "layernorm_forward", "ch04_layernorm_ffn.py", "layer_norm_forward_ex", "check_layer_norm_forward_ex", 2, 15,
        "LayerNorm over the last axis: γ ⊙ (x − μ)/√(σ² + ε) + β with the biased variance (divide by C) "
        "and ε inside the square root.",
        "在最后一维上做层归一化：γ ⊙ (x − μ)/√(σ² + ε) + β，方差用有偏估计（除以 C），ε 放在根号内。",
    ),
    Exercise(
        "layernorm_backward", "ch04_layernorm_ffn.py", "layer_norm_backward_ex", "check_layer_norm_backward_ex", 3, 40,
        "Write LayerNorm's backward pass: return dx, dγ, dβ given dy. Remember that μ and σ² depend on every x_j.",
        "实现层归一化的反向传播：已知 dy，返回 dx、dγ、dβ。注意 μ 和 σ² 都依赖于每个 x_j。",
    ),
    Exercise(
        "gelu", "ch04_layernorm_ffn.py", "gelu_ex", "check_gelu_ex", 1, 10,
        "GELU(x) = x·Φ(x) = ½x(1 + erf(x/√2)), the exact form BERT uses.",
        "实现 GELU(x) = x·Φ(x) = ½x(1 + erf(x/√2))，即 BERT 使用的精确形式。",
    ),
    Exercise(
        "feed_forward", "ch04_layernorm_ffn.py", "feed_forward_ex", "check_feed_forward_ex", 1, 10,
        "The position-wise feed-forward layer FFN(x) = W₂·GELU(W₁x + b₁) + b₂ (weights as nn.Linear stores them).",
        "实现逐位置前馈层 FFN(x) = W₂·GELU(W₁x + b₁) + b₂（权重按 nn.Linear 的存储方式）。",
    ),
    Exercise(
        "bio_entities", "ch11_ner.py", "bio_entities_ex", "check_bio_entities_ex", 2, 20,
        "Extract (type, start, end) entity spans from IOB2 tags, end exclusive; an I-X with no open X entity "
        "starts one (the conlleval/seqeval rule), and an entity still open at the end is closed.",
        "从 IOB2 标签中抽取实体区间 (type, start, end)，end 不含；没有同类实体在前的 I-X 开启一个新实体"
        "（conlleval/seqeval 规则），句末仍未结束的实体在句末闭合。",
    ),
    Exercise(
        "align_labels", "ch11_ner.py", "align_labels_ex", "check_align_labels_ex", 1, 15,
        "Align word-level NER labels to subwords: the first subword of each word gets its label, "
        "later subwords and special tokens get -100 (ignored by the loss).",
        "把词级 NER 标签对齐到子词：每个词的第一个子词取该词标签，其余子词和特殊符号取 -100（损失忽略）。",
    ),
    Exercise(
        "bert_param_count", "ch13_pretrained_models.py", "bert_parameter_count_ex", "check_bert_parameter_count_ex", 1, 20,
        "Count BertModel's parameters in closed form: embeddings and their LayerNorm, each encoder layer, the pooler.",
        "用公式计算 BertModel 的参数量：嵌入层及其 LayerNorm、每个编码器层、池化层。",
    ),
    Exercise(
        "gpt2_param_count", "ch13_pretrained_models.py", "gpt2_parameter_count_ex", "check_gpt2_parameter_count_ex", 1, 15,
        "Count GPT-2's parameters in closed form: token and position tables, blocks, final LayerNorm; "
        "the output layer is tied to the token table and counts once.",
        "用公式计算 GPT-2 的参数量：词表与位置表、各层、最后的 LayerNorm；输出层与词表共享权重，只算一次。",
    ),
    Exercise(
        "causal_lm_loss", "ch09_gpt.py", "causal_lm_loss_ex", "check_causal_lm_loss_ex", 2, 20,
        "The causal-LM loss: position t predicts token t+1, so compare logits[:, :-1] with idx[:, 1:] "
        "by cross-entropy, averaged over all predicted positions.",
        "因果语言模型损失：位置 t 预测第 t+1 个词，即用 logits[:, :-1] 与 idx[:, 1:] 计算交叉熵并取平均。",
    ),
    Exercise(
        "causal_mask", "ch09_gpt.py", "causal_mask_ex", "check_causal_mask_ex", 1, 5,
        "Build the (T, T) boolean causal mask: query i may see key j exactly when j ≤ i.",
        "构造 (T, T) 布尔因果掩码：当且仅当 j ≤ i 时，查询 i 可以看到键 j。",
    ),
    Exercise(
        "top_k_top_p", "ch09_gpt.py", "top_k_top_p_ex", "check_top_k_top_p_ex", 2, 25,
        "Filter logits for sampling: keep the k largest (top-k), then the smallest set of most probable tokens "
        "whose probability reaches p (top-p, always keeping the top token); -inf elsewhere.",
        "为采样过滤 logits：先保留最大的 k 个（top-k），再保留概率累计达到 p 的最小高概率集合"
        "（top-p，始终保留最高的那个）；其余置为 -inf。",
    ),
    Exercise(
        "kv_cache_step", "ch09_gpt.py", "kv_cache_step_ex", "check_kv_cache_step_ex", 2, 25,
        "One generation step with a KV cache: append the new keys and values, then attend from the new queries "
        "to every cached position (causal, aligned to the end). Return the output and the grown cache.",
        "带 KV 缓存的一步生成：把新的键和值追加进缓存，再让新查询对所有已缓存位置做因果注意力"
        "（与序列末尾对齐）；返回输出和扩展后的缓存。",
    ),
    Exercise(
        "mlm_masking", "ch08_bert_pretraining.py", "mlm_mask_ex", "check_mlm_mask_ex", 3, 30,
        "BERT's MLM corruption: select 15% of the non-special tokens; of those, 80% become [MASK], 10% a random "
        "ordinary (never special) token, 10% stay. Labels hold the original id at selected positions, -100 elsewhere.",
        "BERT 的 MLM 遮盖规则：在非特殊符号中选 15%；其中 80% 换成 [MASK]，10% 换成随机的普通词（绝不是特殊符号），"
        "10% 保持不变。标签在被选位置为原 id，其余为 -100。",
    ),
    Exercise(
        "nsp_pairs", "ch08_bert_pretraining.py", "nsp_pair_ex", "check_nsp_pair_ex", 2, 20,
        "Sample an NSP pair: with probability ½ the true next sentence (is_next=True), otherwise a random sentence "
        "from another document (never the true next one).",
        "采样 NSP 句对：以 ½ 的概率取真正的下一句（is_next=True），否则从另一篇文档中随机取一句（绝不是真正的下一句）。",
    ),
    Exercise(
        "precision_recall_f1", "ch10_classification.py", "precision_recall_f1_ex", "check_precision_recall_f1_ex", 2, 15,
        "Precision, recall and F1 for one class: P = TP/(TP+FP), R = TP/(TP+FN), F1 = 2PR/(P+R) — the harmonic "
        "mean of precision and recall, not of accuracy; 0 when a denominator is 0.",
        "计算某一类的精确率、召回率和 F1：P = TP/(TP+FP)，R = TP/(TP+FN)，F1 = 2PR/(P+R)——"
        "是精确率与召回率的调和平均，而不是准确率；分母为 0 时取 0。",
    ),
]
