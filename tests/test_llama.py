"""The Llama / Qwen decoder (minigpt.llama) and its parts (minitransformer.modern) against
PyTorch and Hugging Face: tiny random LlamaForCausalLM, Qwen2ForCausalLM and Qwen3ForCausalLM
built here and saved to a temp folder (nothing downloaded).

- RMSNorm equals torch.nn.RMSNorm and passes gradcheck (float64);
- logits and the hidden states of every layer equal Hugging Face's within 1e-5 (float32), through
  the explicit attention formula and through PyTorch's kernel;
- KV-cache generation (grouped heads) equals recomputing the whole prefix, token for token, and
  Hugging Face's greedy generate;
- exact parameter counts at the published sizes, counted on the meta device;
- Llama 3's scaled RoPE frequencies equal Hugging Face's;
- refused inputs: heads that do not divide, a folder of another family, an unsupported RoPE.
"""
import json

import pytest
import torch
from transformers import (GPT2Config, GPT2LMHeadModel, LlamaConfig as HFLlamaConfig, LlamaForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

from minigpt.llama import PUBLISHED, Llama, LlamaConfig, llama_param_count
from minitransformer.attention import KVCache
from minitransformer.modern import GroupedQueryAttention, RMSNorm, SwiGLU, llama3_inv_freq, repeat_kv, rms_norm, silu

V, T = 97, 64
TOL = 1e-5
TINY = dict(vocab_size=V, hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=T, rms_norm_eps=1e-6, rope_theta=10000.0,
            bos_token_id=None, eos_token_id=None, pad_token_id=None)
FAMILIES = {
    "llama": lambda: LlamaForCausalLM(HFLlamaConfig(**TINY, tie_word_embeddings=False)),
    "llama-bias-tied": lambda: LlamaForCausalLM(HFLlamaConfig(**TINY, attention_bias=True, mlp_bias=True,
                                                              tie_word_embeddings=True)),
    # Llama 3.1+'s RoPE frequencies; L₀ = 64 puts the head's 4 wavelengths (6, 63, 628, 6283) in
    # all three bands (kept, smoothed, slowed)
    "llama3-rope": lambda: LlamaForCausalLM(HFLlamaConfig(**{**TINY, "max_position_embeddings": 2 * T}, rope_parameters=dict(
        rope_type="llama3", rope_theta=10000.0, factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
        original_max_position_embeddings=64))),
    "qwen2": lambda: Qwen2ForCausalLM(Qwen2Config(**TINY, tie_word_embeddings=True)),
    "qwen3": lambda: Qwen3ForCausalLM(Qwen3Config(**{**TINY, "num_key_value_heads": 1}, head_dim=16,
                                                  tie_word_embeddings=False)),
}


def hf_model(name, seed=0):
    torch.manual_seed(seed)
    model = FAMILIES[name]()
    with torch.no_grad():  # far from the init, so every weight (a wrong bias, a wrong norm) shows
        for key, p in model.named_parameters():
            p.normal_(1.0 if key.endswith("norm.weight") else 0.0, 0.2 if p.dim() == 1 else 0.15)
    return model.eval()


def ids(b=2, t=17, seed=1):
    return torch.randint(0, V, (b, t), generator=torch.Generator().manual_seed(seed))


def max_err(a, b):
    return (a - b).abs().max().item()


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("llama")
    for name in FAMILIES:
        hf_model(name).save_pretrained(root / name)
    return root


# ----------------------------------------------------------------------------- parts


def test_rms_norm_matches_torch_and_gradcheck():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 16)
    ours, ref = RMSNorm(16, eps=1e-6), torch.nn.RMSNorm(16, eps=1e-6)
    with torch.no_grad():
        ours.weight.normal_()
        ref.weight.copy_(ours.weight)
    assert max_err(ours(x), ref(x)) < 1e-6
    x64 = torch.randn(2, 4, 8, dtype=torch.float64, requires_grad=True)
    w64 = torch.randn(8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, w: rms_norm(a, w, 1e-6), (x64, w64))
    with pytest.raises(ValueError, match="last dimension 16"):
        ours(torch.randn(2, 8))


def test_swiglu_and_repeat_kv():
    torch.manual_seed(0)
    ff, x = SwiGLU(8, 12), torch.randn(2, 3, 8)
    expect = ff.down_proj(torch.nn.functional.silu(ff.gate_proj(x)) * ff.up_proj(x))
    assert max_err(ff(x), expect) < 1e-6 and max_err(silu(x), torch.nn.functional.silu(x)) < 1e-6
    kv = torch.randn(2, 3, 5, 4)  # (B, H_kv, T, d)
    rep = repeat_kv(kv, 2)  # (B, 6, T, d): query head h reads kv head h // 2
    assert rep.shape == (2, 6, 5, 4) and all(torch.equal(rep[:, h], kv[:, h // 2]) for h in range(6))


def test_heads_that_do_not_divide_are_refused():
    msg = r"num_attention_heads divisible by num_key_value_heads, received num_attention_heads=14, num_key_value_heads=4"
    with pytest.raises(ValueError, match=msg):
        LlamaConfig(hidden_size=896, num_attention_heads=14, num_key_value_heads=4)
    with pytest.raises(ValueError, match=msg):
        GroupedQueryAttention(896, 14, 4, 64, max_len=16)


def test_gqa_cache_holds_grouped_heads_and_matches_full_pass():
    torch.manual_seed(0)
    for use_sdpa in (False, True):
        attn = GroupedQueryAttention(32, 8, 2, 4, max_len=32, qk_norm=True, use_sdpa=use_sdpa).eval()
        x = torch.randn(2, 10, 32)
        full = attn(x)
        cache = KVCache()
        steps = [attn(x[:, :6], cache)] + [attn(x[:, t : t + 1], cache) for t in range(6, 10)]
        assert cache.k.shape == (2, 2, 10, 4)  # H_kv = 2 heads stored, not 8
        assert max_err(torch.cat(steps, dim=1), full) < 1e-5


# ----------------------------------------------------------------------------- Hugging Face parity


@pytest.mark.parametrize("use_sdpa", [False, True], ids=["explicit", "sdpa"])
@pytest.mark.parametrize("name", list(FAMILIES))
def test_logits_and_every_hidden_state_match_hf(hf_dirs, name, use_sdpa):
    ref = hf_model(name)
    ours = Llama.from_pretrained(hf_dirs / name, use_sdpa=use_sdpa).eval()
    assert ours.config.model_type == ref.config.model_type
    assert ours.num_parameters() == ref.num_parameters()
    x = ids()
    with torch.no_grad():
        out = ref(x, output_hidden_states=True)
        logits, _ = ours(x)
        layers = ours.layer_outputs(x)
    assert out.logits.abs().max() > 1.0  # not trivially small
    assert max_err(logits, out.logits) < TOL
    # HF: (embeddings, block 1, ..., block L-1, final norm(block L))
    ours_states = layers[:-1] + [ours.model.norm(layers[-1])]
    assert len(out.hidden_states) == len(ours_states) == ours.config.num_hidden_layers + 1
    for i, (a, b) in enumerate(zip(ours_states, out.hidden_states)):
        assert max_err(a, b) < TOL, f"hidden state {i}"


def test_llama3_rope_frequencies_match_hf():
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    config = FAMILIES["llama3-rope"]().config
    theirs, _ = ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    ours = llama3_inv_freq(8, 10000.0, 8.0, 1.0, 4.0, 64)
    plain = 10000.0 ** (-torch.arange(0, 8, 2, dtype=torch.float64) / 8)
    assert max_err(ours.float(), theirs) < 1e-7
    assert ours[0] == plain[0] and 1 < plain[1] / ours[1] < 8 and torch.allclose(plain[2:] / ours[2:], torch.tensor(8.0, dtype=torch.float64))


@pytest.mark.parametrize("name", ["llama", "llama3-rope", "qwen3"])
def test_kv_cache_generation_equals_recomputing_the_prefix(hf_dirs, name):
    ours = Llama.from_pretrained(hf_dirs / name)
    x = ids(b=2, t=5, seed=3)
    cached = ours.generate(x, 30, greedy=True, use_cache=True)
    recomputed = ours.generate(x, 30, greedy=True, use_cache=False)
    assert torch.equal(cached, recomputed)
    # sampling: the same tokens under the same seed
    a = ours.generate(x, 20, temperature=0.9, top_k=20, top_p=0.95, generator=torch.Generator().manual_seed(7))
    b = ours.generate(x, 20, temperature=0.9, top_k=20, top_p=0.95, use_cache=False,
                      generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    theirs = hf_model(name).generate(x, max_new_tokens=30, do_sample=False, pad_token_id=0)
    assert torch.equal(cached, theirs)


# ----------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("name, count", [("Qwen2.5-0.5B", 494_032_768), ("Qwen3-0.6B", 596_049_920),
                                         ("Llama-3.2-1B", 1_235_814_400)])
def test_parameter_counts_at_published_sizes(name, count):
    assert llama_param_count(PUBLISHED[name]) == count


# ----------------------------------------------------------------------------- refused inputs


def test_another_family_names_found_expected_and_keys(hf_dirs, tmp_path):
    with pytest.raises(ValueError, match=r"found a 'qwen2' checkpoint.*expected 'qwen3'.*missing keys \[.*q_norm"
                                         r".*unexpected keys \[.*q_proj\.bias"):
        Llama.from_pretrained(hf_dirs / "qwen2", family="qwen3")
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=V, n_positions=T)).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(ValueError, match=r"found a 'gpt2' checkpoint.*expected \('llama', 'qwen2', 'qwen3'\).*"
                                         r"missing keys \[.*model\.embed_tokens\.weight.*unexpected keys \[.*attn\.c_attn"):
        Llama.from_pretrained(tmp_path / "gpt2")
    # config says qwen3, the weights are a Llama's: the loader names the missing QK-norm weights
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "model.safetensors").write_bytes((hf_dirs / "llama" / "model.safetensors").read_bytes())
    cfg = json.loads((hf_dirs / "llama" / "config.json").read_text())
    (tmp_path / "mixed" / "config.json").write_text(json.dumps({**cfg, "model_type": "qwen3"}))
    with pytest.raises(ValueError, match=r"missing keys \[.*q_norm\.weight"):
        Llama.from_pretrained(tmp_path / "mixed")


def test_unsupported_configs_are_refused(hf_dirs, tmp_path):
    base = json.loads((hf_dirs / "llama" / "config.json").read_text())
    (tmp_path / "model.safetensors").write_bytes((hf_dirs / "llama" / "model.safetensors").read_bytes())
    for change, match in [({"rope_parameters": {"rope_type": "yarn", "rope_theta": 5e5, "factor": 32.0}}, "yarn"),
                          ({"rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5, "factor": 32.0}}, "low_freq"),
                          ({"hidden_act": "gelu"}, "silu"), ({"use_sliding_window": True}, "sliding")]:
        (tmp_path / "config.json").write_text(json.dumps({**base, **change}))
        with pytest.raises(ValueError, match=match):
            Llama.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="family: expected one of"):
        Llama.from_pretrained(hf_dirs / "llama", family="mistral")
