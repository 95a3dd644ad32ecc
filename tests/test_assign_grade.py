"""The assignment workflow end to end, per exercise: the untouched student version scores 0 (with a
NotImplementedError message), the reference scores full marks, a deliberately wrong solution is
caught, and a solution that delegates to a forbidden function scores 0 with a message naming the
call — while the same delegation passes when the tripwires are off, so it is the tripwire and not
the check that refuses it. Then the tripwire's loopholes, and the grader's subprocesses (syntax
errors, endless loops, missing files).

Most cases call ``run_one.grade`` in this process — the very function each grader subprocess
runs — so the suite stays fast; one test drives the real CLI with its subprocesses and time limit.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chapters.assign.exercises import EXERCISES
from chapters.assign.markers import BEGIN_SOLUTION, END_SOLUTION
from chapters.assign.run_one import grade
from chapters.assign.student import build_student_version

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = REPO / "chapters"

# One plausible mistake per exercise: the body that replaces the reference solution.
WRONG = {
    "precision_recall_f1": """
        tp = sum(1 for t, p in zip(y_true, y_pred) if t == positive and p == positive)
        n_pred = sum(1 for p in y_pred if p == positive)
        n_true = sum(1 for t in y_true if t == positive)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_true if n_true else 0.0
        acc = sum(1 for t, p in zip(y_true, y_pred) if t == p) / len(y_true)
        f1 = 2 * acc * recall / (acc + recall) if acc + recall else 0.0  # the article's F1: from accuracy
        return precision, recall, f1
    """,
    "mlm_masking": """
        selected = torch.rand(input_ids.shape, generator=generator) < 0.15  # may select [CLS], [SEP], [PAD]
        labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
        inputs = torch.where(selected, torch.full_like(input_ids, mask_id), input_ids)
        return inputs, labels
    """,
    "nsp_pairs": """
        a = docs[doc_idx][sent_idx]
        if rng.random() < 0.5:
            return list(a), list(docs[doc_idx][sent_idx + 1]), True
        d = rng.randrange(len(docs))  # may pick the same document, even the true next sentence
        return list(a), list(rng.choice(docs[d])), False
    """,
    "causal_lm_loss": """
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), idx.reshape(-1))  # no shift
    """,
    "causal_mask": """
        return torch.ones(T, T, dtype=torch.bool).tril(-1)  # shifted by one: a token cannot see itself
    """,
    "top_k_top_p": """
        out = logits.clone()
        if top_k is not None and top_k < out.size(-1):
            kth = out.topk(top_k + 1, dim=-1).values[..., -1:]  # keeps k + 1 tokens
            out = out.masked_fill(out < kth, float("-inf"))
        return out
    """,
    "kv_cache_step": """
        k = k_new if cache_k is None else torch.cat([cache_k, k_new], dim=2)
        v = v_new if cache_v is None else torch.cat([cache_v, v_new], dim=2)
        w = torch.softmax(q_new @ k.transpose(-2, -1) / math.sqrt(q_new.size(-1)), -1)  # no causal mask
        return w @ v, k, v
    """,
    "bio_entities": """
        spans, start, etype = [], None, None
        for i, tag in enumerate(tags):
            if tag.startswith("B-") or tag == "O":
                if start is not None:
                    spans.append((etype, start, i))
                start, etype = (i, tag[2:]) if tag != "O" else (None, None)
        return spans  # drops I- without B- and the entity open at the end
    """,
    "align_labels": """
        return [-100 if w is None else word_labels[w] for w in word_ids]  # labels every subword
    """,
    "prompt_target": """
        seq = list(src_ids) + [sep_id] + list(tgt_ids) + [eot_id]
        labels = [-100] * (len(src_ids) + 1) + list(tgt_ids)  # first label one position late, eot dropped
        return seq[:-1], labels
    """,
    "bert_param_count": """
        h = hidden
        return (vocab_size + max_positions + type_vocab_size) * h + layers * (12 * h * h) + h * h  # no biases, no LayerNorm
    """,
    "gpt2_param_count": """
        c = n_embd
        return (2 * vocab_size + block_size) * c + n_layer * (12 * c * c + 13 * c) + 2 * c  # tied head counted twice
    """,
    "embedding_lookup": """
        return weight[ids.clamp(0, weight.size(0) - 1)]  # silently clamps bad ids instead of refusing them
    """,
    "attention_masks": """
        s = q @ k.transpose(-2, -1)  # forgot to divide by sqrt(d_k)
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        return torch.softmax(s, -1) @ v
    """,
    "attention_backward": """
        p = torch.softmax(q @ k.transpose(-2, -1) / q.size(-1) ** 0.5, -1)
        dv = p.transpose(-2, -1) @ do
        ds = do @ v.transpose(-2, -1)  # skipped the softmax backward
        return ds @ k, ds.transpose(-2, -1) @ q, dv
    """,
    "split_heads": """
        b, t, c = x.shape
        return x.reshape(b, n_heads, t, c // n_heads)  # reshape without transpose mixes positions
    """,
    "merge_heads": """
        b, h, t, d = x.shape
        return x.reshape(b, t, h * d)  # forgot to bring T back before H
    """,
    "layernorm_forward": """
        mu = x.mean(-1, keepdim=True)
        var = x.var(-1, keepdim=True, unbiased=True)  # unbiased variance: not LayerNorm
        return gamma * (x - mu) / torch.sqrt(var + eps) + beta
    """,
    "layernorm_backward": """
        mu = x.mean(-1, keepdim=True)
        rstd = 1 / torch.sqrt(((x - mu) ** 2).mean(-1, keepdim=True) + eps)
        xhat = (x - mu) * rstd
        dims = tuple(range(dy.dim() - 1))
        return dy * gamma * rstd, (dy * xhat).sum(dims), dy.sum(dims)  # ignores dμ and dσ²
    """,
    "gelu": """
        return torch.relu(x)
    """,
    "feed_forward": """
        return torch.relu(x @ w1.T + b1) @ w2.T + b2  # ReLU instead of GELU
    """,
    "sinusoidal_table": """
        pos = torch.arange(max_len, dtype=torch.float64)[:, None]
        omega = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
        return torch.cat([torch.sin(pos * omega), torch.cos(pos * omega)], dim=-1)  # two halves, not interleaved
    """,
    "rope": """
        d = x.size(-1)
        theta = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
        angle = positions.double()[:, None] * theta
        a, b = x[..., 0::2], x[..., 1::2]  # neighbouring pairs (2i, 2i + 1): the other convention
        out = torch.empty_like(x)
        out[..., 0::2] = a * angle.cos() - b * angle.sin()
        out[..., 1::2] = a * angle.sin() + b * angle.cos()
        return out
    """,
    "encoder_block": """
        x = norm1(x + self_attn(x))  # post-LN whatever norm_first says
        return norm2(x + feed_forward(x))
    """,
    "teacher_forcing": """
        length = max(len(y) for y in targets) + 1
        tgt_in = torch.tensor([[bos_id] + list(y) + [pad_id] * (length - 1 - len(y)) for y in targets])
        labels = torch.tensor([list(y) + [eos_id] + [pad_id] * (length - 1 - len(y)) for y in targets])
        src_mask = src != pad_id
        logits = model.decode(tgt_in, model.encode(src, src_mask), src_mask)
        return nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1))  # padding counted
    """,
    "greedy_decode": """
        src_mask = src != pad_id
        memory = model.encode(src, src_mask)
        seq = torch.full((src.size(0), 1), bos_id, dtype=torch.long)
        for _ in range(max_new_tokens):  # never stops early, never pads after [EOS]
            nxt = model.decode(seq, memory, src_mask)[:, -1].argmax(-1)
            seq = torch.cat([seq, nxt[:, None]], dim=1)
        return seq[:, 1:]
    """,
    "integrated_gradients": """
        alphas = torch.arange(m, dtype=x.dtype) / m  # a left Riemann sum instead of the midpoints
        path = (baseline + alphas[:, None, None] * (x - baseline)).detach().requires_grad_(True)
        (grads,) = torch.autograd.grad(f(path).sum(), path)
        return ((x - baseline) * grads.mean(0, keepdim=True)).sum(-1)[0]
    """,
    "sentence_embedding": """
        pooled = last_hidden_state.mean(1)  # the padding is averaged in
        return pooled / pooled.norm(dim=-1, keepdim=True)
    """,
    "albert_param_count": """
        c = config
        H, F, E = c.hidden_size, c.intermediate_size, c.embedding_size
        block = 4 * (H * H + H) + 2 * H * F + F + H + 4 * H
        embeddings = (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) * E + 2 * E + E * H + H
        return embeddings + c.num_hidden_layers * block + H * H + H  # every layer counted: the sharing ignored
    """,
}

# Per exercise: a solution that hands the work to a forbidden function, the name the message must
# give, and whether that delegation is correct (it then passes once the tripwires are off).
DELEGATE = {
    "embedding_lookup": ("""
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= weight.size(0)):
            raise ValueError("id out of range")
        return F.embedding(ids, weight)
    """, "torch.nn.functional.embedding", True),
    "attention_masks": ("""
        return scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
    """, "minitransformer.attention.scaled_dot_product_attention", True),
    "attention_backward": ("""
        scale = 1.0 / math.sqrt(q.size(-1))
        s = scale * (q @ k.transpose(-2, -1))
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        return attention_backward(q, k, v, torch.softmax(s, dim=-1), do, scale)
    """, "minitransformer.backward.attention_backward", True),
    "split_heads": ("""
        return split_heads(x, n_heads)
    """, "minitransformer.attention.split_heads", True),
    "merge_heads": ("""
        return merge_heads(x)
    """, "minitransformer.attention.merge_heads", True),
    "layernorm_forward": ("""
        return F.layer_norm(x, (x.size(-1),), gamma, beta, eps)
    """, "torch.nn.functional.layer_norm", True),
    "layernorm_backward": ("""
        _, xhat, rstd = layer_norm_forward(x, gamma, torch.zeros_like(gamma), eps)
        return layer_norm_backward(dy, xhat, rstd, gamma)
    """, "minitransformer.backward.layer_norm_backward", True),
    "gelu": ("""
        return F.gelu(x)
    """, "torch.nn.functional.gelu", True),
    "feed_forward": ("""
        return F.linear(F.gelu(F.linear(x, w1, b1)), w2, b2)
    """, "torch.nn.functional.linear", True),
    "sinusoidal_table": ("""
        return sinusoidal_table(max_len, d_model).double()
    """, "minitransformer.positions.sinusoidal_table", True),
    "rope": ("""
        cos, sin = rope_angles(positions, x.size(-1))
        return apply_rope(x, cos.to(x.dtype), sin.to(x.dtype))
    """, "minitransformer.positions.rope_angles", True),
    "encoder_block": ("""
        from minitransformer.blocks import sublayer_connection
        x, _ = sublayer_connection(x, norm1, lambda h: (self_attn(h), None), nn.Identity(), norm_first)
        return sublayer_connection(x, norm2, lambda h: (feed_forward(h), None), nn.Identity(), norm_first)[0]
    """, "minitransformer.blocks.sublayer_connection", True),
    "teacher_forcing": ("""
        length = max(len(y) for y in targets) + 1
        tgt_in = torch.tensor([[bos_id] + list(y) + [pad_id] * (length - 1 - len(y)) for y in targets])
        labels = torch.tensor([list(y) + [eos_id] + [pad_id] * (length - 1 - len(y)) for y in targets])
        return model(src, tgt_in, labels)[1]
    """, "minitransformer.transformer.Seq2SeqTransformer.forward", True),
    "greedy_decode": ("""
        return model.greedy_decode(src, bos_id, eos_id, max_new_tokens)
    """, "minitransformer.transformer.Seq2SeqTransformer.greedy_decode", True),
    "nsp_pairs": ("""
        return make_nsp_pair(docs, doc_idx, sent_idx, rng)
    """, "minibert.pretraining.make_nsp_pair", True),
    "mlm_masking": ("""
        return mlm_mask_tokens(input_ids, special_mask, vocab_size, special_ids, mask_id, generator)
    """, "minibert.pretraining.mlm_mask_tokens", True),
    "causal_lm_loss": ("""
        from minigpt.model import next_token_loss
        return next_token_loss(logits, next_token_targets(idx))
    """, "minigpt.model.next_token_targets", True),
    "causal_mask": ("""
        return causal_mask(T)
    """, "minitransformer.attention.causal_mask", True),
    "top_k_top_p": ("""
        out = logits if top_k is None else top_k_filter(logits, top_k)
        return out if top_p is None else top_p_filter(out, top_p)
    """, "minigpt.generate.top_", True),
    "kv_cache_step": ("""
        from minitransformer.attention import scaled_dot_product_attention
        k = k_new if cache_k is None else torch.cat([cache_k, k_new], dim=2)
        v = v_new if cache_v is None else torch.cat([cache_v, v_new], dim=2)
        return scaled_dot_product_attention(q_new, k, v, is_causal=True), k, v
    """, "minitransformer.attention.scaled_dot_product_attention", True),
    "precision_recall_f1": ("""
        labels = sorted(set(y_true) | set(y_pred) | {positive}, key=str)
        s = precision_recall_f1(list(y_true), list(y_pred), labels=labels).per_class[positive]
        return s.precision, s.recall, s.f1
    """, "minitransformer.metrics.precision_recall_f1", True),
    "bio_entities": ("""
        return get_entities(list(tags))
    """, "minitransformer.metrics.get_entities", True),
    "align_labels": ("""
        from minibert.finetune import align_word_labels
        out, previous = [], None
        for w in word_ids:
            pieces = [[0]] if w != previous else [[0, 0]]  # a continuation is the second piece of a word
            out.append(-100 if w is None else align_word_labels(pieces, [word_labels[w]], 2)[1][-1])
            previous = w
        return out
    """, "minibert.finetune.align_word_labels", True),
    "prompt_target": ("""
        seq = torch.tensor([list(src_ids) + [sep_id] + list(tgt_ids) + [eot_id]])
        targets = next_token_targets(seq)[0, :-1].tolist()
        return seq[0, :-1].tolist(), [-100] * len(src_ids) + targets[len(src_ids):]
    """, "minigpt.model.next_token_targets", True),
    "bert_param_count": ("""
        return count_bert_parameters(BertConfig(vocab_size=vocab_size, max_position_embeddings=max_positions,
                                                type_vocab_size=type_vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                                                num_attention_heads=1, intermediate_size=intermediate))
    """, "minibert.config.count_bert_parameters", True),
    "gpt2_param_count": ("""
        return gpt_param_count(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=1,
                                         n_embd=n_embd))
    """, "minigpt.config.gpt_param_count", True),
    "integrated_gradients": ("""
        alphas = torch.linspace(0.0, 1.0, m, dtype=x.dtype)
        path = (baseline + alphas[:, None, None] * (x - baseline)).detach().requires_grad_(True)
        (grads,) = torch.autograd.grad(f(path).sum(), path)
        return ((x - baseline)[0] * torch.trapezoid(grads, alphas, dim=0)).sum(-1)
    """, "torch.trapezoid", False),  # the trapezoid rule is not the m-point midpoint rule the check asks for
    "sentence_embedding": ("""
        return torch.nn.functional.normalize(mean_pool(last_hidden_state, attention_mask), dim=-1)
    """, "minibert.pretrained.mean_pool", True),
    "albert_param_count": ("""
        with torch.device("meta"):
            return sum(p.numel() for p in AlbertModel(config).parameters())
    """, "minibert.albert.AlbertModel", True),
}


def solution_span(lines: list[str], function: str) -> tuple[int, int, str]:
    """Indices of the BEGIN/END SOLUTION lines inside ``def function`` and the marker's indentation."""
    start = next(i for i, l in enumerate(lines) if l.startswith(f"def {function}("))
    begin = next(i for i in range(start, len(lines)) if lines[i].strip() == BEGIN_SOLUTION)
    end = next(i for i in range(begin, len(lines)) if lines[i].strip() == END_SOLUTION)
    return begin, end, lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]


def with_body(chapter_text: str, function: str, body: str) -> str:
    lines = chapter_text.splitlines(keepends=True)
    begin, end, indent = solution_span(lines, function)
    new = textwrap.indent(textwrap.dedent(body).strip("\n") + "\n", indent)
    return "".join(lines[:begin]) + new + "".join(lines[end + 1 :])


def student_file(tmp_path: Path, ex, body: str, text: str | None = None) -> Path:
    """The reference chapter with ``body`` as the exercise's solution, written under tmp_path."""
    path = tmp_path / ex.chapter
    source = text if text is not None else (CHAPTERS / ex.chapter).read_text(encoding="utf-8")
    path.write_text(with_body(source, ex.function, body), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    build_student_version(out)
    return out


def test_every_exercise_has_a_wrong_and_a_delegating_solution():
    ids = sorted(e.id for e in EXERCISES)
    assert sorted(WRONG) == ids and sorted(DELEGATE) == ids
    assert len(EXERCISES) == len(set(ids)) >= 28


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.id)
def test_untouched_student_version_scores_zero_with_a_clear_message(student_dir, ex):
    result = grade(str(student_dir / ex.chapter), str(CHAPTERS / ex.chapter), ex)
    assert result["status"] == "failed"
    assert "NotImplementedError" in result["message"] and ex.function in result["message"]


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.id)
def test_reference_solution_passes(ex):
    result = grade(str(CHAPTERS / ex.chapter), str(CHAPTERS / ex.chapter), ex)
    assert result["status"] == "passed", result


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.id)
def test_wrong_solution_is_caught(tmp_path, ex):
    result = grade(str(student_file(tmp_path, ex, WRONG[ex.id])), str(CHAPTERS / ex.chapter), ex)
    assert result["status"] == "failed", (ex.id, result)
    assert "forbids" not in result["message"], result  # caught by the check itself, not by a tripwire


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.id)
def test_delegating_to_a_forbidden_function_scores_zero_and_names_the_call(tmp_path, ex):
    body, name, correct = DELEGATE[ex.id]
    path = student_file(tmp_path, ex, body)
    result = grade(str(path), str(CHAPTERS / ex.chapter), ex)
    assert result["status"] == "failed", result
    assert f"{ex.function}() calls {name}" in result["message"], result
    assert any(n.startswith(name) for n in ex.refused)
    unguarded = grade(str(path), str(CHAPTERS / ex.chapter), ex, enforce=False)
    if correct:  # the same code passes without the tripwires: the tripwire, not the check, refuses it
        assert unguarded["status"] == "passed", unguarded
    else:
        assert unguarded["status"] == "failed" and "forbids" not in unguarded["message"], unguarded


# ----------------------------------------------------------------------------- loopholes

EX = {e.id: e for e in EXERCISES}
FORMULA_ATTENTION = """
    s = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    allowed = torch.ones(s.shape[-2:], dtype=torch.bool)
    if is_causal:
        allowed = allowed.tril()
    if mask is not None:
        allowed = allowed & mask
    s = s.masked_fill(~allowed, float("-inf"))
    dead = ~allowed.any(-1, keepdim=True)
    return torch.softmax(s.masked_fill(dead, 0.0), -1).masked_fill(dead, 0.0) @ v
"""


@pytest.mark.parametrize("case,ex_id,body,name", [
    ("the exact call of the issue", "attention_masks",
     "return scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)",
     "minitransformer.attention.scaled_dot_product_attention"),
    ("PyTorch's kernel under another module name", "attention_masks",
     "import torch.nn.functional as G\nreturn G.scaled_dot_product_attention(q, k, v, attn_mask=mask)",
     "torch.nn.functional.scaled_dot_product_attention"),
    ("the C binding behind F", "attention_masks",
     "return torch._C._nn.scaled_dot_product_attention(q, k, v, attn_mask=mask)",
     "torch.nn.functional.scaled_dot_product_attention"),
    ("an aten op", "layernorm_forward",
     "return torch.ops.aten.layer_norm(x, [x.size(-1)], gamma, beta, eps)", "torch.ops.aten.layer_norm"),
    ("a module instead of the function", "layernorm_forward",
     "ln = torch.nn.LayerNorm(x.size(-1), eps=eps, dtype=x.dtype)\nreturn ln(x) * gamma + beta", "torch.nn.LayerNorm"),
    ("the library's module", "layernorm_forward",
     "from minitransformer.layers import LayerNorm as L\nreturn L(x.size(-1), eps)(x) * gamma + beta",
     "minitransformer.layers.LayerNorm"),
    ("autograd for a backward pass", "layernorm_backward",
     "with torch.enable_grad():\n"
     "    xr, gr = x.clone().requires_grad_(), gamma.clone().requires_grad_()\n"
     "    y = layer_norm_forward_ex(xr, gr, torch.zeros_like(gamma), eps)\n"
     "    dx, dg = torch.autograd.grad((y * dy).sum(), (xr, gr))\n"
     "return dx, dg, dy.sum(tuple(range(dy.dim() - 1)))", "torch.autograd.grad"),
    ("Tensor.backward", "attention_backward",
     "with torch.enable_grad():\n"
     "    qr, kr, vr = (t.clone().requires_grad_() for t in (q, k, v))\n"
     "    (masked_attention(qr, kr, vr, mask) * do).sum().backward()\n"
     "return qr.grad, kr.grad, vr.grad", "torch.Tensor.backward"),
    ("a forbidden call swallowed by except BaseException, then the right answer", "attention_masks",
     "try:\n    F.scaled_dot_product_attention(q, k, v)\nexcept BaseException:\n    pass\n" + FORMULA_ATTENTION,
     "torch.nn.functional.scaled_dot_product_attention"),
    ("a forbidden call on another thread", "gelu",
     "from concurrent.futures import ThreadPoolExecutor\nwith ThreadPoolExecutor(1) as pool:\n"
     "    return pool.submit(torch.nn.functional.gelu, x).result()",
     "torch.nn.functional.gelu"),
    ("code run through exec", "gelu", "ns = {'x': x}\nexec('import torch\\ny = torch.nn.functional.gelu(x)', ns)\nreturn ns['y']",
     "torch.nn.functional.gelu"),
    ("counting the parameters of a built model", "gpt2_param_count",
     "with torch.device('meta'):\n"
     "    m = GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=1, n_embd=n_embd))\n"
     "return sum(p.numel() for p in m.parameters())", "minigpt.model.GPT"),
])
def test_delegation_loopholes_are_closed(tmp_path, case, ex_id, body, name):
    ex = EX[ex_id]
    result = grade(str(student_file(tmp_path, ex, body)), str(CHAPTERS / ex.chapter), ex)
    assert result["status"] == "failed" and f"calls {name}" in result["message"], (case, result)


def test_a_forbidden_function_captured_as_a_default_argument_still_trips(tmp_path):
    ex = EX["gelu"]
    text = (CHAPTERS / ex.chapter).read_text(encoding="utf-8").replace("def gelu_ex(x):", "def gelu_ex(x, _g=F.gelu):")
    result = grade(str(student_file(tmp_path, ex, "return _g(x)", text)), str(CHAPTERS / ex.chapter), ex)
    assert result["status"] == "failed" and "calls torch.nn.functional.gelu" in result["message"], result


def test_reaching_behind_a_tripwire_by_introspection_is_refused(tmp_path):
    """A tripwire keeps the original in its closure; a file that reaches into closures, frames or the
    garbage collector is refused before its check runs."""
    ex = EX["gelu"]
    for body in ("return F.gelu.__closure__[1].cell_contents(x)",
                 "import gc\nreturn next(o for o in gc.get_objects() if getattr(o, '__name__', '') == 'gelu')(x)",
                 "return getattr(F.gelu, '__wrapped__')(x)"):
        result = grade(str(student_file(tmp_path, ex, body)), str(CHAPTERS / ex.chapter), ex)
        assert result["status"] == "failed" and "introspection of functions and frames is not allowed" in result["message"], result


def test_the_function_must_be_defined_in_the_students_file(tmp_path):
    ex = EX["split_heads"]
    text = (CHAPTERS / ex.chapter).read_text(encoding="utf-8") + "\nfrom minitransformer.attention import split_heads as split_heads_ex\n"
    path = tmp_path / ex.chapter
    path.write_text(text, encoding="utf-8")
    result = grade(str(path), str(CHAPTERS / ex.chapter), ex)
    assert result["status"] == "failed" and "must be a function defined in" in result["message"], result


def test_the_check_may_still_use_what_the_student_may_not(tmp_path):
    """The references (F.scaled_dot_product_attention, torch.autograd.grad, nn.TransformerEncoderLayer...)
    are forbidden to the student but called by the checks: the tripwires let those calls through, and
    every original is back in place afterwards."""
    import torch
    import torch.nn.functional as F

    before = (F.scaled_dot_product_attention, torch.autograd.grad, torch.Tensor.backward, torch.nn.LayerNorm.__init__)
    for ex_id in ("attention_masks", "attention_backward", "layernorm_backward", "encoder_block"):
        ex = EX[ex_id]
        assert grade(str(CHAPTERS / ex.chapter), str(CHAPTERS / ex.chapter), ex)["status"] == "passed"
    assert (F.scaled_dot_product_attention, torch.autograd.grad, torch.Tensor.backward, torch.nn.LayerNorm.__init__) == before


# ----------------------------------------------------------------------------- the grader's processes


def test_grader_cli_reports_syntax_error_endless_loop_and_missing_file(tmp_path, student_dir):
    """Real subprocesses with a time limit: one exercise broken three ways, the others still graded."""
    by_chapter = {}
    for e in EXERCISES:
        by_chapter.setdefault(e.chapter, []).append(e)
    chapters = sorted(by_chapter)
    syntax, loop, missing = chapters[0], chapters[1], chapters[2]
    work = tmp_path / "work"
    work.mkdir()
    (work / syntax).write_text("def broken(:\n", encoding="utf-8")
    loop_ex = by_chapter[loop][0]
    text = (CHAPTERS / loop).read_text(encoding="utf-8")
    text = with_body(text, loop_ex.function, "while True:\n    pass\n")
    (work / loop).write_text(text, encoding="utf-8")
    only = [by_chapter[syntax][0].id, loop_ex.id, by_chapter[missing][0].id]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "chapters.assign", "grade", str(work), "--timeout", "3", "--only", *only, "--out", str(tmp_path / "g")],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    rows = {r["exercise"]: r for r in json.loads((tmp_path / "g" / "results.json").read_text())["exercises"]}
    assert rows[only[0]]["status"] == "failed" and "does not compile" in rows[only[0]]["message"]
    assert rows[only[1]]["status"] == "timed out"
    assert rows[only[2]]["status"] == "missing" and "missing file" in rows[only[2]]["message"]
    assert all(r["points"] == 0 for r in rows.values())
    csv_text = (tmp_path / "g" / "results.csv").read_text()
    assert csv_text.splitlines()[0].startswith("exercise,chapter,points") and len(csv_text.splitlines()) == 4
    for name in only:
        assert name in proc.stdout


def test_build_refuses_unpaired_markers_with_file_and_line(tmp_path):
    from chapters.assign.markers import MarkerError, build

    src = tmp_path / "src"
    src.mkdir()
    (src / "ch01_x.py").write_text("def f():\n    ### BEGIN SOLUTION\n    return 1\n")
    with pytest.raises(MarkerError, match=r"ch01_x\.py:2: '### BEGIN SOLUTION' is never closed"):
        build(src, tmp_path / "out")
    proc = subprocess.run([sys.executable, "-m", "chapters.assign", "grade", str(tmp_path / "nope")],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "student directory not found" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_grading_every_exercise_of_the_reference_gives_full_marks_within_two_minutes(tmp_path):
    """The whole set through the real CLI (one subprocess per exercise, --jobs 2): all points, < 120 s."""
    import time

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "chapters.assign", "grade", str(CHAPTERS), "--out", str(tmp_path / "g")],
                          capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "g" / "results.json").read_text())
    failed = [r for r in results["exercises"] if r["status"] != "passed"]
    assert not failed and results["total"] == results["max_total"] == sum(e.points for e in EXERCISES), failed
    assert seconds < 120, f"grading all {len(EXERCISES)} exercises took {seconds:.1f} s"
