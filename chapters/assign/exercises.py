"""The graded exercises: where each lives, its points, difficulty and time, its statement and hint
in Chinese and English, and what it forbids.

An exercise is a top-level function in a chapter whose body sits between ### BEGIN SOLUTION and
### END SOLUTION, checked by the chapter's own ``check_<function>`` (references nobody here wrote).

``replaces`` names the library functions the exercise writes again (the student version must not
import them before the exercise); ``forbids`` adds the PyTorch built-ins and other shortcuts the
exercise asks the student to write by hand. While the check runs, a call from the student's code
to any of them fails the exercise (``chapters/assign/tripwire.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

#: the library packages of this repository (a name under them is a "library" name)
LIBRARY_PACKAGES = ("minitransformer", "minibert", "minigpt")

AUTOGRAD = (
    "torch.autograd.grad", "torch.autograd.backward", "torch.Tensor.backward",
    "torch.autograd.functional.vjp", "torch.autograd.functional.jacobian", "torch.autograd.functional.jvp",
    "torch.func.vjp", "torch.func.grad", "torch.func.grad_and_value", "torch.func.jacrev", "torch.func.jacfwd",
    "torch.func.jvp",
)
TORCH_LAYER_NORM = (
    "torch.nn.functional.layer_norm", "torch.layer_norm", "torch.native_layer_norm", "torch.ops.aten.layer_norm",
    "torch.ops.aten.native_layer_norm", "torch.nn.LayerNorm", "torch.nn.functional.group_norm", "torch.group_norm",
    "torch.nn.GroupNorm", "torch.nn.functional.instance_norm", "torch.nn.functional.batch_norm",
)
TORCH_ATTENTION = (
    "torch.nn.functional.scaled_dot_product_attention", "torch.ops.aten.scaled_dot_product_attention",
    "torch._scaled_dot_product_attention_math", "torch.nn.functional.multi_head_attention_forward",
    "torch.nn.MultiheadAttention",
)
COUNTING = ("torch.nn.Module.parameters", "torch.nn.Module.named_parameters", "torch.nn.Module.state_dict",
            "torch.nn.TransformerEncoderLayer")


@dataclass(frozen=True)
class Exercise:
    id: str
    chapter: str  # file name under chapters/
    function: str  # the function the student writes
    check: str  # the chapter's check function, called with the student's function
    points: int
    minutes: int  # estimated time a student needs
    stars: int  # difficulty, 1 (★) to 3 (★★★)
    en: str
    zh: str
    hint_en: str
    hint_zh: str
    replaces: tuple[str, ...] = ()
    forbids: tuple[str, ...] = ()

    @property
    def refused(self) -> tuple[str, ...]:
        """Every name a call to which fails the exercise."""
        return tuple(dict.fromkeys(self.replaces + self.forbids))

    @property
    def difficulty(self) -> str:
        return "★" * self.stars

    @property
    def chapter_key(self) -> str:
        """'ch02' for 'ch02_attention.py'."""
        return self.chapter[:4]


EXERCISES: list[Exercise] = [
    Exercise(
        "embedding_lookup", "ch01_tokens.py", "embedding_lookup", "check_embedding_lookup", 1, 10, 1,
        "Look up token vectors: weight[ids] for a (V, C) table, the same as one-hot(ids) @ weight; "
        "refuse ids outside [0, V) with a ValueError.",
        "实现词向量查表：对 (V, C) 的嵌入矩阵取 weight[ids]，等价于 one-hot(ids) @ weight；"
        "若 id 超出 [0, V) 则抛出 ValueError。",
        "Index the table with the id tensor (weight[ids]) so the gradient reaches it; check the range first — "
        "a negative id would silently index from the end.",
        "直接用 id 张量索引嵌入矩阵（weight[ids]），梯度才能传回；先检查取值范围——负数 id 会悄悄从末尾取行。",
        forbids=("torch.nn.functional.embedding", "torch.embedding", "torch.ops.aten.embedding", "torch.nn.Embedding"),
    ),
    Exercise(
        "attention_masks", "ch02_attention.py", "masked_attention", "check_masked_attention", 3, 30, 2,
        "Write scaled dot-product attention softmax(QKᵀ/√d_k)V with a boolean mask (True = may attend) "
        "and an optional causal mask. A query whose every key is masked must output zeros, not NaN.",
        "实现缩放点积注意力 softmax(QKᵀ/√d_k)V，支持布尔掩码（True 表示可以关注）和因果掩码；"
        "若某个查询的所有键都被遮住，输出应为零向量而不是 NaN。",
        "Build one boolean 'allowed' matrix (the causal triangle AND the mask), put −∞ where it is False, and zero "
        "the rows where nothing is allowed both before and after the softmax.",
        "先合成一个布尔矩阵 allowed（因果下三角 与 掩码 取“与”），False 处填 −∞；对一个键都看不到的行，"
        "在 softmax 之前和之后都置零。",
        replaces=("minitransformer.attention.scaled_dot_product_attention", "minitransformer.attention.sdpa_fast",
                  "minitransformer.attention.masked_softmax"),
        forbids=TORCH_ATTENTION + ("minitransformer.attention.MultiHeadAttention",),
    ),
    Exercise(
        "attention_backward", "ch02_attention.py", "attention_backward_by_hand", "check_attention_backward_by_hand",
        3, 45, 3,
        "Derive and write the backward pass of attention: given dO, return dQ, dK, dV "
        "(dV = PᵀdO, dP = dO Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ and dK scaled by 1/√d_k).",
        "推导并实现注意力的反向传播：已知 dO，求 dQ、dK、dV（dV = PᵀdO，dP = dO Vᵀ，"
        "dS = P ⊙ (dP − rowsum(dP ⊙ P))，dQ 与 dK 乘以 1/√d_k）。",
        "Recompute P with the forward formulas first, then apply the five formulas in order; the row sum in dS is "
        "over the keys (the last axis), with keepdim=True.",
        "先按前向公式重新算出 P，再依次套用五个公式；dS 里的行和是对键（最后一维）求和，要 keepdim=True。",
        replaces=("minitransformer.backward.attention_backward", "minitransformer.backward.AttentionFunction",
                  "minitransformer.backward.softmax_backward"),
        forbids=AUTOGRAD,
    ),
    Exercise(
        "split_heads", "ch03_multihead.py", "split_heads_ex", "check_split_heads_ex", 1, 10, 1,
        "Split (B, T, C) into (B, H, T, C/H): head h takes channels h·C/H to (h+1)·C/H.",
        "把 (B, T, C) 拆成 (B, H, T, C/H)：第 h 个头取第 h·C/H 到 (h+1)·C/H 个通道。",
        "First view the channels as (H, C/H) per token, then swap the T and H axes.",
        "先把每个词元的通道看成 (H, C/H)，再交换 T 轴和 H 轴。",
        replaces=("minitransformer.attention.split_heads",),
    ),
    Exercise(
        "merge_heads", "ch03_multihead.py", "merge_heads_ex", "check_merge_heads_ex", 1, 10, 1,
        "Merge (B, H, T, C/H) back into (B, T, C), the heads' outputs side by side.",
        "把 (B, H, T, C/H) 合并回 (B, T, C)，各头的输出按通道依次拼接。",
        "Bring T back before H, then flatten the last two axes; a transposed tensor needs reshape "
        "(or contiguous().view).",
        "先把 T 轴换回 H 轴前面，再展平最后两维；转置后的张量要用 reshape（或 contiguous().view）。",
        replaces=("minitransformer.attention.merge_heads",),
    ),
    Exercise(
        "layernorm_forward", "ch04_layernorm_ffn.py", "layer_norm_forward_ex", "check_layer_norm_forward_ex", 2, 15, 1,
        "LayerNorm over the last axis: γ ⊙ (x − μ)/√(σ² + ε) + β with the biased variance (divide by C) "
        "and ε inside the square root.",
        "在最后一维上做层归一化：γ ⊙ (x − μ)/√(σ² + ε) + β，方差用有偏估计（除以 C），ε 放在根号内。",
        "Take the mean and the variance over dim=-1 with keepdim=True so they broadcast back; torch.var divides "
        "by C − 1 unless told otherwise.",
        "均值和方差都在 dim=-1 上求，并设 keepdim=True 以便广播；torch.var 默认除以 C − 1。",
        replaces=("minitransformer.layers.layer_norm", "minitransformer.layers.LayerNorm",
                  "minitransformer.backward.layer_norm_forward", "minitransformer.backward.LayerNormFunction"),
        forbids=TORCH_LAYER_NORM,
    ),
    Exercise(
        "layernorm_backward", "ch04_layernorm_ffn.py", "layer_norm_backward_ex", "check_layer_norm_backward_ex",
        3, 40, 3,
        "Write LayerNorm's backward pass: return dx, dγ, dβ given dy. Remember that μ and σ² depend on every x_j.",
        "实现层归一化的反向传播：已知 dy，返回 dx、dγ、dβ。注意 μ 和 σ² 都依赖于每个 x_j。",
        "With r = 1/√(σ² + ε), x̂ = (x − μ)·r and g = dy·γ: dx = r·(g − mean(g) − x̂·mean(g·x̂)); dγ and dβ sum "
        "over every axis but the last.",
        "记 r = 1/√(σ² + ε)，x̂ = (x − μ)·r，g = dy·γ：dx = r·(g − mean(g) − x̂·mean(g·x̂))；"
        "dγ 与 dβ 在除最后一维外的所有维度上求和。",
        replaces=("minitransformer.backward.layer_norm_backward", "minitransformer.backward.LayerNormFunction"),
        forbids=AUTOGRAD + ("torch.ops.aten.native_layer_norm_backward",),
    ),
    Exercise(
        "gelu", "ch04_layernorm_ffn.py", "gelu_ex", "check_gelu_ex", 1, 10, 1,
        "GELU(x) = x·Φ(x) = ½x(1 + erf(x/√2)), the exact (erf) form Hugging Face's BERT uses (Google's original BERT code uses the tanh approximation).",
        "实现 GELU(x) = x·Φ(x) = ½x(1 + erf(x/√2))，即 Hugging Face 的 BERT 使用的精确（erf）形式（谷歌原版 BERT 代码用的是 tanh 近似）。",
        "torch.erf is the error function; √2 is math.sqrt(2.0).",
        "torch.erf 就是误差函数；√2 写作 math.sqrt(2.0)。",
        replaces=("minitransformer.layers.gelu",),
        forbids=("torch.nn.functional.gelu", "torch.ops.aten.gelu", "torch.nn.GELU"),
    ),
    Exercise(
        "feed_forward", "ch04_layernorm_ffn.py", "feed_forward_ex", "check_feed_forward_ex", 1, 10, 1,
        "The position-wise feed-forward layer FFN(x) = W₂·GELU(W₁x + b₁) + b₂ (weights as nn.Linear stores them).",
        "实现逐位置前馈层 FFN(x) = W₂·GELU(W₁x + b₁) + b₂（权重按 nn.Linear 的存储方式）。",
        "nn.Linear stores W as (out_features, in_features), so a layer is x @ W.T + b; the GELU is the exact one "
        "of exercise 4.3.",
        "nn.Linear 的权重形状是 (out_features, in_features)，所以一层是 x @ W.T + b；激活函数用练习 4.3 的精确 GELU。",
        replaces=("minitransformer.layers.FeedForward",),
        forbids=("torch.nn.functional.linear", "torch.nn.Linear"),
    ),
    Exercise(
        "sinusoidal_table", "ch05_positions.py", "sinusoidal_table_ex", "check_sinusoidal_table_ex", 1, 15, 1,
        "Build the sinusoidal position table PE of shape (max_len, d_model) in float64: PE[pos, 2i] = sin(pos·ω_i), "
        "PE[pos, 2i+1] = cos(pos·ω_i) with ω_i = 10000^(−2i/d_model); refuse an odd d_model with a ValueError.",
        "构造形状为 (max_len, d_model) 的正弦位置编码表 PE（float64）：PE[pos, 2i] = sin(pos·ω_i)，"
        "PE[pos, 2i+1] = cos(pos·ω_i)，其中 ω_i = 10000^(−2i/d_model)；d_model 为奇数时抛出 ValueError。",
        "A (max_len, 1) column of positions times a (1, d/2) row of frequencies gives every angle at once; "
        "fill the even columns with sin and the odd ones with cos (pe[:, 0::2] = ...).",
        "位置做成 (max_len, 1) 的列、频率做成 (1, d/2) 的行，相乘即得全部角度；偶数列填 sin，奇数列填 cos"
        "（pe[:, 0::2] = ...）。",
        replaces=("minitransformer.positions.sinusoidal_table", "minitransformer.positions.SinusoidalPositionalEncoding"),
    ),
    Exercise(
        "rope", "ch05_positions.py", "rope_ex", "check_rope_ex", 2, 25, 2,
        "Apply rotary position embedding to x (..., T, d): the vector at position m = positions[t] has each channel "
        "pair (i, i + d/2) rotated by the angle m·θ_i, θ_i = 10000^(−2i/d): (a, b) → (a·cos − b·sin, a·sin + b·cos). "
        "Return a new tensor of x's shape.",
        "对 x (..., T, d) 施加旋转位置编码：位于位置 m = positions[t] 的向量，把每一对通道 (i, i + d/2) 旋转角度 m·θ_i，"
        "θ_i = 10000^(−2i/d)：(a, b) → (a·cos − b·sin, a·sin + b·cos)。返回与 x 形状相同的新张量。",
        "Split the last axis into halves a = x[..., :d/2] and b = x[..., d/2:]; the angles form a (T, d/2) table "
        "that broadcasts over the leading axes; torch.cat the two rotated halves.",
        "把最后一维拆成两半 a = x[..., :d/2]、b = x[..., d/2:]；角度是一张 (T, d/2) 的表，可在前面的维度上广播；"
        "最后用 torch.cat 拼回两半。",
        replaces=("minitransformer.positions.apply_rope", "minitransformer.positions.rope_angles",
                  "minitransformer.positions.rotate_half", "minitransformer.positions.RotaryEmbedding"),
    ),
    Exercise(
        "encoder_block", "ch06_encoder.py", "encoder_block_ex", "check_encoder_block_ex", 2, 20, 2,
        "Wire one encoder block from its sublayers, given as callables (B, T, C) → (B, T, C): self_attn, "
        "feed_forward, norm1, norm2. Post-LN (norm_first=False, BERT): x = norm1(x + self_attn(x)), then "
        "x = norm2(x + feed_forward(x)); pre-LN (norm_first=True): x = x + self_attn(norm1(x)), then "
        "x = x + feed_forward(norm2(x)).",
        "用给定的子层搭出一个编码器层，子层都是 (B, T, C) → (B, T, C) 的可调用对象：self_attn、feed_forward、norm1、"
        "norm2。后置层归一化（norm_first=False，BERT）：x = norm1(x + self_attn(x))，再 x = norm2(x + feed_forward(x))；"
        "前置层归一化（norm_first=True）：x = x + self_attn(norm1(x))，再 x = x + feed_forward(norm2(x))。",
        "Two residual sublayers, one after the other; the variants differ only in whether the LayerNorm wraps the "
        "sum or the sublayer's input.",
        "两个残差子层依次相接；两种写法的唯一区别是层归一化作用在“求和之后”还是“子层的输入上”。",
        replaces=("minitransformer.blocks.sublayer_connection", "minitransformer.blocks.EncoderBlock"),
        forbids=("torch.nn.TransformerEncoderLayer", "torch.nn.TransformerEncoder", "minitransformer.transformer.Encoder"),
    ),
    Exercise(
        "teacher_forcing", "ch07_seq2seq.py", "teacher_forcing_loss_ex", "check_teacher_forcing_loss_ex", 2, 25, 2,
        "The teacher-forcing loss of an encoder-decoder: for each target y (a list of ids) the decoder reads "
        "[BOS] y₁ … y_n and must predict y₁ … y_n [EOS]. Pad the batch with pad_id, encode src once "
        "(src_mask = src != pad_id), decode every position in one call, and return the cross-entropy averaged over "
        "every real target token (padding ignored).",
        "编码器-解码器的教师强制损失：对每个目标序列 y（id 列表），解码器读入 [BOS] y₁ … y_n，要预测 y₁ … y_n [EOS]。"
        "用 pad_id 把一批补齐，源句只编码一次（src_mask = src != pad_id），一次调用解码所有位置，"
        "返回在所有真实目标词元上平均的交叉熵（忽略填充）。",
        "tgt_in and labels are one list shifted by one: [BOS] + y and y + [EOS]. "
        "F.cross_entropy(..., ignore_index=pad_id) averages over the labels that are not padding.",
        "tgt_in 与 labels 是错开一位的同一序列：[BOS] + y 与 y + [EOS]。"
        "F.cross_entropy(..., ignore_index=pad_id) 只在非填充的标签上取平均。",
        replaces=("minitransformer.transformer.Seq2SeqTransformer.forward",),
    ),
    Exercise(
        "greedy_decode", "ch07_seq2seq.py", "greedy_decode_ex", "check_greedy_decode_ex", 2, 25, 2,
        "Greedy decoding without a cache: encode src once, start every row from [BOS], and at each step append the "
        "argmax of model.decode(prefix, memory, src_mask)[:, -1]. A row that has produced [EOS] gets pad_id from "
        "then on; stop when every row has finished or after max_new_tokens steps. Return the new tokens "
        "(B, steps), [BOS] excluded.",
        "不带缓存的贪心解码：源句只编码一次，每行从 [BOS] 开始，每一步把 model.decode(prefix, memory, src_mask)[:, -1] "
        "的 argmax 接到前缀后面。某行生成 [EOS] 之后一律填 pad_id；所有行都结束或走满 max_new_tokens 步时停止。"
        "返回新生成的词元 (B, 步数)，不含 [BOS]。",
        "Keep a boolean vector done; before appending, masked_fill the new tokens of finished rows with pad_id, "
        "then update done with (token == eos_id).",
        "维护一个布尔向量 done；接上新词元之前，用 masked_fill 把已结束行的新词元换成 pad_id，"
        "再用 (token == eos_id) 更新 done。",
        replaces=("minitransformer.transformer.Seq2SeqTransformer.greedy_decode",),
    ),
    Exercise(
        "nsp_pairs", "ch08_bert_pretraining.py", "nsp_pair_ex", "check_nsp_pair_ex", 2, 20, 2,
        "Sample an NSP pair: with probability ½ the true next sentence (is_next=True), otherwise a random sentence "
        "from another document (never the true next one).",
        "采样 NSP 句对：以 ½ 的概率取真正的下一句（is_next=True），否则从另一篇文档中随机取一句（绝不是真正的下一句）。",
        "Draw the other document with rng.randrange(len(docs) − 1) and skip doc_idx by adding 1 when the draw "
        "reaches it; every random number must come from rng.",
        "用 rng.randrange(len(docs) − 1) 抽另一篇文档，抽到的编号不小于 doc_idx 时加 1 跳过它；所有随机数都必须来自 rng。",
        replaces=("minibert.pretraining.make_nsp_pair",),
    ),
    Exercise(
        "mlm_masking", "ch08_bert_pretraining.py", "mlm_mask_ex", "check_mlm_mask_ex", 3, 30, 3,
        "BERT's MLM corruption: select 15% of the non-special tokens; of those, 80% become [MASK], 10% a random "
        "ordinary (never special) token, 10% stay. Labels hold the original id at selected positions, -100 elsewhere.",
        "BERT 的 MLM 遮盖规则：在非特殊符号中选 15%；其中 80% 换成 [MASK]，10% 换成随机的普通词（绝不是特殊符号），"
        "10% 保持不变。标签在被选位置为原 id，其余为 -100。",
        "One uniform number per position selects (< 0.15, and not special); a second one splits the selected into "
        "80 / 10 / 10; draw random ids from a tensor of the ordinary ids only.",
        "每个位置用一个均匀随机数决定是否选中（< 0.15 且不是特殊符号）；再用第二个随机数把选中的分成 80 / 10 / 10；"
        "随机替换的 id 只从普通 id 组成的张量里抽。",
        replaces=("minibert.pretraining.mlm_mask_tokens",),
    ),
    Exercise(
        "causal_lm_loss", "ch09_gpt.py", "causal_lm_loss_ex", "check_causal_lm_loss_ex", 2, 20, 2,
        "The causal-LM loss: position t predicts token t+1, so compare logits[:, :-1] with idx[:, 1:] "
        "by cross-entropy, averaged over all predicted positions.",
        "因果语言模型损失：位置 t 预测第 t+1 个词，即用 logits[:, :-1] 与 idx[:, 1:] 计算交叉熵并取平均。",
        "Flatten both to (B·(T−1), V) and (B·(T−1),) before the cross-entropy; shift exactly once.",
        "计算交叉熵之前把两者展平为 (B·(T−1), V) 和 (B·(T−1),)；只错开一次。",
        replaces=("minigpt.model.next_token_loss",),
        forbids=("minigpt.model.next_token_targets", "minigpt.train.causal_lm_loss"),
    ),
    Exercise(
        "causal_mask", "ch09_gpt.py", "causal_mask_ex", "check_causal_mask_ex", 1, 5, 1,
        "Build the (T, T) boolean causal mask: query i may see key j exactly when j ≤ i.",
        "构造 (T, T) 布尔因果掩码：当且仅当 j ≤ i 时，查询 i 可以看到键 j。",
        "Compare a column of query positions with a row of key positions (torch.arange), or take a lower triangle.",
        "用查询位置的列与键位置的行（torch.arange）比较，或者取下三角。",
        replaces=("minitransformer.attention.causal_mask",),
        forbids=("torch.nn.Transformer.generate_square_subsequent_mask",),
    ),
    Exercise(
        "top_k_top_p", "ch09_gpt.py", "top_k_top_p_ex", "check_top_k_top_p_ex", 2, 25, 2,
        "Filter logits for sampling: keep the k largest (top-k), then the smallest set of most probable tokens "
        "whose probability reaches p (top-p, always keeping the top token); -inf elsewhere.",
        "为采样过滤 logits：先保留最大的 k 个（top-k），再保留概率累计达到 p 的最小高概率集合"
        "（top-p，始终保留最高的那个）；其余置为 -inf。",
        "For top-p, sort descending, softmax, and drop a token when the mass *before* it already reaches p; "
        "scatter the decision back to the original order.",
        "做 top-p 时先降序排序再 softmax；若某个词之前的累计概率已达到 p 就丢掉它；再把结果 scatter 回原来的顺序。",
        replaces=("minigpt.generate.top_k_filter", "minigpt.generate.top_p_filter"),
    ),
    Exercise(
        "kv_cache_step", "ch09_gpt.py", "kv_cache_step_ex", "check_kv_cache_step_ex", 2, 25, 3,
        "One generation step with a KV cache: append the new keys and values, then attend from the new queries "
        "to every cached position (causal, aligned to the end). Return the output and the grown cache.",
        "带 KV 缓存的一步生成：把新的键和值追加进缓存，再让新查询对所有已缓存位置做因果注意力"
        "（与序列末尾对齐）；返回输出和扩展后的缓存。",
        "New query i sits at absolute position T_past + i, so it may see keys j ≤ T_past + i: shift the causal "
        "triangle by the cache length.",
        "第 i 个新查询的绝对位置是 T_past + i，所以它能看到 j ≤ T_past + i 的键：把因果三角按缓存长度平移。",
        replaces=("minitransformer.attention.KVCache",),
        forbids=("minitransformer.attention.causal_mask", "minitransformer.attention.merge_masks",
                 "minitransformer.attention.scaled_dot_product_attention", "minitransformer.attention.sdpa_fast"),
    ),
    Exercise(
        "precision_recall_f1", "ch10_classification.py", "precision_recall_f1_ex", "check_precision_recall_f1_ex",
        2, 15, 1,
        "Precision, recall and F1 for one class: P = TP/(TP+FP), R = TP/(TP+FN), F1 = 2PR/(P+R) — the harmonic "
        "mean of precision and recall, not of accuracy; 0 when a denominator is 0.",
        "计算某一类的精确率、召回率和 F1：P = TP/(TP+FP)，R = TP/(TP+FN)，F1 = 2PR/(P+R)——"
        "是精确率与召回率的调和平均，而不是准确率；分母为 0 时取 0。",
        "Count TP, FP and FN in one pass over zip(y_true, y_pred); guard every division.",
        "遍历一次 zip(y_true, y_pred) 数出 TP、FP、FN；每个除法都先判断分母。",
        replaces=("minitransformer.metrics.precision_recall_f1", "minitransformer.metrics.prf_from_counts"),
        forbids=("minitransformer.metrics.classification_report", "sklearn.metrics.precision_recall_fscore_support",
                 "sklearn.metrics.precision_score", "sklearn.metrics.recall_score", "sklearn.metrics.f1_score"),
    ),
    Exercise(
        "bio_entities", "ch11_ner.py", "bio_entities_ex", "check_bio_entities_ex", 2, 20, 2,
        "Extract (type, start, end) entity spans from IOB2 tags, end exclusive; an I-X with no open X entity "
        "starts one (the conlleval/seqeval rule), and an entity still open at the end is closed.",
        "从 IOB2 标签中抽取实体区间 (type, start, end)，end 不含；没有同类实体在前的 I-X 开启一个新实体"
        "（conlleval/seqeval 规则），句末仍未结束的实体在句末闭合。",
        "Keep the open entity's (type, start); close it at O, at B-, at an I- of another type, and after the loop.",
        "记住当前未闭合实体的 (type, start)；遇到 O、B-、另一类型的 I- 时闭合它，循环结束后也要闭合。",
        replaces=("minitransformer.metrics.get_entities",),
        forbids=("seqeval.metrics.sequence_labeling.get_entities",),
    ),
    Exercise(
        "align_labels", "ch11_ner.py", "align_labels_ex", "check_align_labels_ex", 1, 15, 1,
        "Align word-level NER labels to subwords: the first subword of each word gets its label, "
        "later subwords and special tokens get -100 (ignored by the loss).",
        "把词级 NER 标签对齐到子词：每个词的第一个子词取该词标签，其余子词和特殊符号取 -100（损失忽略）。",
        "A subword starts a word when its word id is not None and differs from the previous position's.",
        "若某个子词的词编号不是 None 且与前一个位置的不同，它就是一个词的第一个子词。",
        replaces=("minibert.finetune.align_word_labels",),
        forbids=("minibert.finetune.encode_ner",),
    ),
    Exercise(
        "prompt_target", "ch12_gpt_translation.py", "prompt_target_example_ex", "check_prompt_target_example_ex",
        1, 15, 1,
        "Build one training example of decoder-only translation: s = src + [sep] + tgt + [eot]; return "
        "(input_ids, labels) with input_ids = s[:-1] and labels[t] = s[t+1] where s[t+1] belongs to tgt + [eot], "
        "−100 over the prompt.",
        "为仅解码器的翻译构造一个训练样本：s = src + [sep] + tgt + [eot]；返回 (input_ids, labels)，"
        "其中 input_ids = s[:-1]；若 s[t+1] 属于 tgt + [eot] 则 labels[t] = s[t+1]，提示部分为 −100。",
        "The first kept label sits at the <sep> position (it predicts the first target token); the last one is "
        "<|endoftext|>.",
        "第一个保留的标签在 <sep> 的位置（它预测第一个目标词元）；最后一个标签是 <|endoftext|>。",
        forbids=("minigpt.model.next_token_targets",),
    ),
    Exercise(
        "bert_param_count", "ch13_pretrained_models.py", "bert_parameter_count_ex", "check_bert_parameter_count_ex",
        1, 20, 2,
        "Count BertModel's parameters in closed form: embeddings and their LayerNorm, each encoder layer, the pooler.",
        "用公式计算 BertModel 的参数量：嵌入层及其 LayerNorm、每个编码器层、池化层。",
        "A Linear(a, b) has a·b + b numbers, a LayerNorm over H has 2H; the feed-forward width is its own size.",
        "Linear(a, b) 有 a·b + b 个参数，H 维的层归一化有 2H 个；前馈层宽度是单独的参数，不一定是 4H。",
        replaces=("minibert.config.count_bert_parameters",),
        forbids=("minibert.model.BertModel", "minibert.heads.BertForPreTraining") + COUNTING,
    ),
    Exercise(
        "gpt2_param_count", "ch13_pretrained_models.py", "gpt2_parameter_count_ex", "check_gpt2_parameter_count_ex",
        1, 15, 1,
        "Count GPT-2's parameters in closed form: token and position tables, blocks, final LayerNorm; "
        "the output layer is tied to the token table and counts once.",
        "用公式计算 GPT-2 的参数量：词表与位置表、各层、最后的 LayerNorm；输出层与词表共享权重，只算一次。",
        "Each block is 12C² + 13C (attention 4C² + 4C, MLP 8C² + 5C, two LayerNorms 4C); add the final LayerNorm.",
        "每个块是 12C² + 13C（注意力 4C² + 4C，MLP 8C² + 5C，两个层归一化 4C）；再加上最后的层归一化。",
        replaces=("minigpt.config.gpt_param_count",),
        forbids=("minigpt.model.GPT",) + COUNTING,
    ),
    Exercise(
        "integrated_gradients", "ch14_interpretability.py", "integrated_gradients_ex", "check_integrated_gradients_ex",
        2, 30, 2,
        "Integrated gradients with an m-point midpoint rule: IG_t = Σ_h (x − x′)_{t,h} · (1/m) Σ_k "
        "∂f/∂x_{t,h}(x′ + α_k (x − x′)), α_k = (k + ½)/m. f maps a batch of inputs (N, T, H) to N numbers; "
        "x and the baseline x′ are (1, T, H). Return the T attributions.",
        "用 m 点中点法计算积分梯度：IG_t = Σ_h (x − x′)_{t,h} · (1/m) Σ_k ∂f/∂x_{t,h}(x′ + α_k (x − x′))，"
        "α_k = (k + ½)/m。f 把一批输入 (N, T, H) 映射为 N 个数；x 与基线 x′ 的形状都是 (1, T, H)。返回 T 个归因值。",
        "Put the m path points in one batch (m, T, H) with requires_grad, take torch.autograd.grad(f(path).sum(), "
        "path), average over the m points, multiply by (x − x′) and sum over H.",
        "把路径上的 m 个点放进一个批次 (m, T, H) 并设 requires_grad，求 torch.autograd.grad(f(path).sum(), path)，"
        "在 m 个点上取平均，乘以 (x − x′) 后在 H 上求和。",
        forbids=("torch.trapezoid", "torch.trapz", "torch.cumulative_trapezoid", "captum.attr.IntegratedGradients"),
    ),
    Exercise(
        "sentence_embedding", "ch15_pretrained_bert.py", "sentence_embedding_ex", "check_sentence_embedding_ex",
        1, 10, 1,
        "Sentence embeddings as sentence-transformers makes them: the mean of the real tokens' vectors "
        "(attention_mask 1, padding excluded), divided by its L2 norm. last_hidden_state (B, T, H) and "
        "attention_mask (B, T) of 0/1 → (B, H).",
        "按 sentence-transformers 的做法计算句向量：对真实词元（attention_mask 为 1，排除填充）的向量取平均，"
        "再除以它的 L2 范数。last_hidden_state (B, T, H)、attention_mask (B, T)（取值 0/1）→ (B, H)。",
        "Turn the mask into a float weight (B, T, 1), sum h·m over T and divide by Σm; then divide by the norm "
        "(keepdim=True).",
        "把掩码变成浮点权重 (B, T, 1)，在 T 上对 h·m 求和并除以 Σm；再除以范数（keepdim=True）。",
        replaces=("minibert.pretrained.mean_pool", "minibert.pretrained.sentence_embeddings"),
        forbids=("torch.nn.functional.normalize",),
    ),
    Exercise(
        "albert_param_count", "ch16_bert_family.py", "albert_parameter_count_ex", "check_albert_parameter_count_ex",
        2, 20, 2,
        "AlbertModel's parameters (pooler included) by formula: the three embedding tables of width E and their "
        "LayerNorm, the projection E → H, one block per shared group, the pooler. The argument is an `AlbertConfig`.",
        "用公式计算 ALBERT 主体（含池化层）的参数量：宽度为 E 的三张嵌入表及其层归一化、从 E 到 H 的投影、每个共享组"
        "的一个块，以及池化层。输入是一个 ALBERT 的配置对象。",
        "Linear(a, b) has a·b + b parameters, a LayerNorm 2 × its width; the blocks stored are num_hidden_groups, not "
        "num_hidden_layers — the number of layers does not appear in the formula at all.",
        "一个 a 维到 b 维的线性层有 a·b + b 个参数，层归一化的参数是其宽度的两倍；存下来的块数等于共享组的个数，"
        "而不是层数——层数根本不出现在公式里。",
        forbids=("minibert.albert.AlbertModel", "minibert.albert.AlbertForPreTraining", "minibert.albert.AlbertForMaskedLM")
        + COUNTING,
    ),
]


def by_id(exercise_id: str) -> Exercise:
    """The exercise called ``exercise_id``; ValueError listing the ids otherwise."""
    for e in EXERCISES:
        if e.id == exercise_id:
            return e
    raise ValueError(f"unknown exercise {exercise_id!r}; expected one of {[e.id for e in EXERCISES]}")


def chapter_files() -> list[str]:
    """The chapter files that hold exercises, in order."""
    return sorted({e.chapter for e in EXERCISES})


def is_library_name(name: str) -> bool:
    return name.split(".")[0] in LIBRARY_PACKAGES


def markdown_table() -> str:
    """The exercises as the Markdown table of docs/teaching.md (generated from this registry)."""
    rows = ["| id | chapter | function | difficulty | points | est. minutes | refuses (this repository / PyTorch and others) |",
            "|---|---|---|---|---|---|---|"]
    for e in EXERCISES:
        lib = sum(is_library_name(n) for n in e.refused)
        rows.append(f"| {e.id} | {e.chapter_key} | `{e.function}` | {e.difficulty} | {e.points} | {e.minutes} | "
                    f"{lib} / {len(e.refused) - lib} |")
    total_points, total_minutes = sum(e.points for e in EXERCISES), sum(e.minutes for e in EXERCISES)
    rows.append(f"| **{len(EXERCISES)} exercises** | {len(chapter_files())} chapters | | | **{total_points}** | "
                f"**{total_minutes}** | |")
    return "\n".join(rows)
