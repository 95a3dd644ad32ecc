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
]
