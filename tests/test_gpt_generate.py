"""Generation: the KV cache gives the same tokens as recomputing the prefix (greedy and seeded
sampling, also past block_size); top-k and top-p never draw a token outside the kept set, checked
against a closed-form computation; prompts longer than block_size; stop tokens; bad arguments.
"""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt import GPT, GPTConfig, next_token, top_k_filter, top_p_filter


def model(block_size=16, seed=0, **paths) -> GPT:
    torch.manual_seed(seed)
    m = GPT(GPTConfig(block_size=block_size, vocab_size=40, n_layer=2, n_head=4, n_embd=32, **paths))
    with torch.no_grad():  # larger weights than GPT-2's init: peaked, input-dependent distributions
        for p in m.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.3)
    return m.eval()


def prompt(b=2, t=5, seed=1):
    return torch.randint(0, 40, (b, t), generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- the KV cache


@pytest.mark.parametrize("paths", [{}, dict(use_sdpa=False, fused=False)], ids=["kernels", "explicit"])
def test_kv_cache_greedy_equals_recomputing_the_prefix_even_past_block_size(paths):
    m = model(block_size=16, **paths)
    idx = prompt()
    cached = m.generate(idx, 30, greedy=True, use_cache=True)  # 5 + 30 > 16: the window slides
    recomputed = m.generate(idx, 30, greedy=True, use_cache=False)
    assert cached.shape == (2, 35)
    assert torch.equal(cached, recomputed)
    assert torch.equal(cached[:, :5], idx)
    assert len(set(cached[:, 5:].flatten().tolist())) >= 3  # not one token repeated
    assert not torch.equal(cached[0, 5:], cached[1, 5:])  # the rows depend on their prompts


@pytest.mark.parametrize("kw", [dict(temperature=1.0), dict(temperature=0.7, top_k=10), dict(temperature=1.3, top_p=0.8)])
def test_kv_cache_sampling_equals_recomputing_under_a_fixed_seed(kw):
    m = model(block_size=24)
    idx = prompt()
    a = m.generate(idx, 25, use_cache=True, generator=torch.Generator().manual_seed(7), **kw)
    b = m.generate(idx, 25, use_cache=False, generator=torch.Generator().manual_seed(7), **kw)
    c = m.generate(idx, 25, use_cache=True, generator=torch.Generator().manual_seed(8), **kw)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)  # the seed does matter


def test_cache_really_feeds_one_token_per_step(monkeypatch):
    m = model(block_size=32)
    lengths = []
    original = m.hidden_states

    def spy(idx, caches=None):
        lengths.append((idx.size(1), caches is not None))
        return original(idx, caches)

    monkeypatch.setattr(m, "hidden_states", spy)
    m.generate(prompt(t=6), 5, greedy=True, use_cache=True)
    assert lengths == [(6, True)] + [(1, True)] * 4
    lengths.clear()
    m.generate(prompt(t=6), 3, greedy=True, use_cache=False)
    assert lengths == [(6, False), (7, False), (8, False)]


def test_generate_restores_training_mode_and_stops_at_the_stop_token():
    m = model().train()
    idx = prompt(b=1)
    free = m.generate(idx, 12, greedy=True)
    assert m.training
    stop = free[0, 8].item()  # the 4th new token
    first = free[0, 5:].tolist().index(stop)
    stopped = m.generate(idx, 12, greedy=True, stop_token=stop)
    assert stopped.shape[1] == 5 + first + 1
    assert stopped[0, -1].item() == stop
    assert torch.equal(stopped, free[:, : 5 + first + 1])


def test_prompt_longer_than_block_size_is_cropped_with_a_warning():
    m = model(block_size=16)
    long = prompt(b=1, t=20)
    with pytest.warns(UserWarning, match="longer than block_size=16"):
        out = m.generate(long, 4, greedy=True)
    assert torch.equal(out[:, :16], long[:, -16:])
    assert out.shape == (1, 20)
    assert torch.equal(out, m.generate(long[:, -16:], 4, greedy=True))


def test_generate_rejects_bad_arguments():
    m = model()
    with pytest.raises(ValueError, match=r"token ids in \[0, 40\)"):
        m.generate(torch.tensor([[3, 40]]), 2)
    with pytest.raises(ValueError, match="temperature"):
        m.generate(prompt(), 2, temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        m.generate(prompt(), 2, top_k=0)
    with pytest.raises(ValueError, match="top_p"):
        m.generate(prompt(), 2, top_p=1.5)
    with pytest.raises(ValueError, match="max_new_tokens"):
        m.generate(prompt(), -1)
    with pytest.raises(ValueError, match="stop_token"):
        m.generate(prompt(), 2, stop_token=99)


# ----------------------------------------------------------------------------- top-k / top-p


def kept_top_k(logits: list[float], k: int) -> set[int]:
    """Closed form: the indices of the k largest values (no ties in the tests' logits)."""
    return set(sorted(range(len(logits)), key=lambda i: -logits[i])[:k])


def kept_top_p(probs: list[float], p: float) -> set[int]:
    """Closed form: walk the tokens from most to least probable, adding each, until the total reaches p."""
    kept, total = set(), 0.0
    for i in sorted(range(len(probs)), key=lambda i: -probs[i]):
        kept.add(i)
        total += probs[i]
        if total >= p:
            break
    return kept


def draws(logits: torch.Tensor, n: int, **kw) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return next_token(logits.expand(n, -1), generator=g, **kw).squeeze(1)  # (n,)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_top_k_never_draws_outside_the_k_largest(k):
    logits = torch.randn(30, generator=torch.Generator().manual_seed(5)) * 0.5
    drawn = draws(logits, 20_000, top_k=k)
    assert set(drawn.tolist()) == kept_top_k(logits.tolist(), k)  # each kept token appears, no other


@pytest.mark.parametrize("p, size", [(0.2, 1), (0.5, 2), (0.7, 3), (0.9, 5), (0.99, 7)])
def test_top_p_never_draws_outside_the_nucleus(p, size):
    probs = [0.08, 0.35, 0.02, 0.15, 0.25, 0.05, 0.10]  # shuffled on purpose
    logits = torch.log(torch.tensor(probs))
    kept = kept_top_p(probs, p)
    assert len(kept) == size
    drawn = draws(logits, 20_000, top_p=p)
    assert set(drawn.tolist()) == kept
    # and inside the nucleus the probabilities are renormalised: frequency ≈ π_i / Σ_kept π
    mass = sum(probs[i] for i in kept)
    for i in kept:
        freq = (drawn == i).float().mean().item()
        assert abs(freq - probs[i] / mass) < 0.015


# distinct logits at least 0.01 apart: no ties, so "the most probable tokens" is well defined
LOGITS = st.lists(st.integers(-500, 500), min_size=2, max_size=40, unique=True).map(lambda xs: [x / 100 for x in xs])


@settings(max_examples=60, deadline=None)
@given(LOGITS, st.floats(0.01, 0.99))
def test_top_p_keeps_the_smallest_set_reaching_p(values, p):
    logits = torch.tensor(values, dtype=torch.float64)
    probs = torch.softmax(logits, dim=-1)
    kept = torch.isfinite(top_p_filter(logits, p))
    assert kept[probs.argmax()]  # the top token always stays
    assert probs[kept].sum() >= p - 1e-12  # reaches p ...
    assert probs[kept].sum() - probs[kept].min() < p + 1e-12  # ... and dropping its least likely token would not
    assert probs[kept].min() >= probs[~kept].max() if (~kept).any() else True  # the most probable ones


@settings(max_examples=60, deadline=None)
@given(LOGITS, st.integers(1, 50))
def test_top_k_keeps_exactly_min_k_v_largest(values, k):
    logits = torch.tensor(values, dtype=torch.float64)
    kept = torch.isfinite(top_k_filter(logits, k))
    assert kept.sum().item() == min(k, len(values))
    assert set(torch.nonzero(kept).flatten().tolist()) == kept_top_k(values, min(k, len(values)))


def test_filters_leave_kept_logits_unchanged_and_work_on_batches():
    logits = torch.randn(4, 25, generator=torch.Generator().manual_seed(6))
    for out in (top_k_filter(logits, 5), top_p_filter(logits, 0.6)):
        keep = torch.isfinite(out)
        assert torch.equal(out[keep], logits[keep])
        assert keep.any(dim=-1).all()
    for row in range(4):
        probs = torch.softmax(logits[row], -1).tolist()
        got = set(torch.nonzero(torch.isfinite(top_p_filter(logits, 0.6)[row])).flatten().tolist())
        assert got == kept_top_p(probs, 0.6)


def test_greedy_is_argmax_and_temperature_scales_logits():
    logits = torch.tensor([[0.1, 2.0, -1.0]])
    assert next_token(logits, greedy=True).item() == 1
    # temperature T: probabilities ∝ exp(logit / T); T -> small concentrates on the argmax
    drawn = next_token(logits.expand(5000, -1), temperature=0.05, generator=torch.Generator().manual_seed(0))
    assert drawn.eq(1).all()
    drawn = next_token(logits.expand(20000, -1), temperature=2.0, generator=torch.Generator().manual_seed(0))
    expected = torch.softmax(logits[0] / 2.0, -1)
    freq = torch.bincount(drawn.flatten(), minlength=3).float() / 20000
    assert (freq - expected).abs().max() < 0.015
    assert math.isclose(expected.sum().item(), 1.0, rel_tol=1e-6)


def test_the_continuation_keeps_the_space_a_sentencepiece_decode_of_new_tokens_alone_drops():
    """SentencePiece decodes a leading '▁excellent' as 'excellent' (no space) when it starts the
    list; after the prompt's 'and' it must print ' excellent' ('andexcellent' before the fix)."""
    from minigpt.sample import continuation

    class SentencePieceLike:
        pieces = ["▁and", "▁excellent", "ly"]

        def decode(self, ids):
            return "".join(self.pieces[i] for i in ids).replace("▁", " ").lstrip(" ")

    tok = SentencePieceLike()
    assert tok.decode([1]) == "excellent"  # the neighbour-free decode that lost the space
    assert continuation(tok, tok.decode([0]), [0], [1]) == " excellent"
    assert continuation(tok, tok.decode([0]), [0], [1, 2]) == " excellently"
    assert continuation(tok, tok.decode([0]), [0], [2]) == "ly"
