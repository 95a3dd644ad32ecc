"""GPT-2 checkpoints against Hugging Face's GPT2LMHeadModel (tiny random models built here, nothing
downloaded): logits and loss both ways, .safetensors and .bin, with and without the
``transformer.`` prefix, greedy generation; refused inputs (pickled code, other architectures).

Tolerance: logits 1e-5 absolute (float32), loss 1e-5.
"""
import json
import pickle

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from minigpt import GPT, GPTConfig, next_token_targets
from minitransformer.checkpoint import save_checkpoint
from minitransformer.transformer import Seq2SeqConfig, Seq2SeqTransformer

V, T = 100, 64
TOL = 1e-5


def hf_model(seed=0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(n_layer=2, n_head=4, n_embd=32, vocab_size=V, n_positions=T, bos_token_id=None,
                        eos_token_id=None, pad_token_id=None)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():  # far from the init, so every weight (and a wrong transpose) shows in the logits
        for name, p in model.named_parameters():
            p.normal_(1.0 if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") else 0.0, 0.2)
    return model.eval()


def ids(b=3, t=20, seed=1):
    return torch.randint(0, V, (b, t), generator=torch.Generator().manual_seed(seed))


def max_err(a, b):
    return (a - b).abs().max().item()


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("hf") / "gpt2-tiny"
    hf_model().save_pretrained(path)
    return path


@pytest.mark.parametrize("paths", [{}, dict(use_sdpa=False, fused=False)], ids=["kernels", "explicit"])
def test_from_pretrained_matches_hf_logits_and_loss(hf_dir, paths):
    ref, ours = hf_model(), GPT.from_pretrained(hf_dir, **paths).eval()
    x = ids()
    with torch.no_grad():
        out = ref(x, labels=x)  # HF shifts the labels inside
        logits, loss = ours(x, next_token_targets(x))
    assert out.logits.abs().max() > 1.0  # not trivially small
    assert max_err(logits, out.logits) < TOL
    assert abs(loss.item() - out.loss.item()) < TOL
    assert ours.config == GPTConfig(block_size=T, vocab_size=V, n_layer=2, n_head=4, n_embd=32, dropout=0.0, **paths)


def test_save_pretrained_loads_in_transformers_with_equal_logits(tmp_path):
    torch.manual_seed(3)
    ours = GPT(GPTConfig(block_size=T, vocab_size=V, n_layer=2, n_head=4, n_embd=32, init_std=0.05)).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    ours.save_pretrained(tmp_path / "export")
    ref = GPT2LMHeadModel.from_pretrained(tmp_path / "export").eval()
    x = ids(seed=2)
    with torch.no_grad():
        assert max_err(ref(x).logits, ours(x)[0]) < TOL
    assert ref.config.initializer_range == 0.05  # init_std is GPT2Config's initializer_range
    back = GPT.from_pretrained(tmp_path / "export")
    assert back.config == ours.config
    for (k, a), (k2, b) in zip(ours.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(a, b)


def test_bin_checkpoint_without_prefix_and_with_mask_buffers(tmp_path):
    # the layout of OpenAI's original upload: GPT2Model keys (no "transformer."), causal-mask
    # buffers "h.N.attn.bias", pickled as pytorch_model.bin
    ref = hf_model(seed=4)
    sd = {k.removeprefix("transformer."): v for k, v in ref.state_dict().items() if k != "lm_head.weight"}
    for i in range(2):
        sd[f"h.{i}.attn.bias"] = torch.tril(torch.ones(T, T)).view(1, 1, T, T)
    ref.config.save_pretrained(tmp_path)
    torch.save(sd, tmp_path / "pytorch_model.bin")
    ours = GPT.from_pretrained(tmp_path).eval()
    x = ids(seed=5)
    with torch.no_grad():
        assert max_err(ours(x)[0], ref(x).logits) < TOL


def test_greedy_generation_matches_hf_generate(hf_dir):
    ref, ours = hf_model(), GPT.from_pretrained(hf_dir)
    x = ids(b=2, t=6, seed=6)
    theirs = ref.generate(x, max_new_tokens=20, do_sample=False, pad_token_id=0)
    assert torch.equal(ours.generate(x, 20, greedy=True), theirs)


def test_pickle_carrying_code_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('pwned')",))

    hf_model().config.save_pretrained(tmp_path)
    with open(tmp_path / "pytorch_model.bin", "wb") as f:
        pickle.dump({"wte.weight": Payload()}, f, protocol=2)
    with pytest.raises(ValueError, match="refused"):
        GPT.from_pretrained(tmp_path)
    assert not marker.exists()


def test_another_architecture_names_missing_and_unexpected_keys(tmp_path, hf_dir):
    # a GPT config.json next to the weights of an encoder-decoder Transformer
    config = GPTConfig(block_size=16, vocab_size=50, n_layer=2, n_head=4, n_embd=32)
    other = Seq2SeqTransformer(Seq2SeqConfig(src_vocab_size=50, tgt_vocab_size=50, d_model=32, n_heads=4, d_ff=64,
                                             n_encoder_layers=1, n_decoder_layers=1))
    save_checkpoint(tmp_path / "ck", other, config)
    with pytest.raises(ValueError, match=r"missing keys \[.*transformer\.wte\.weight.*unexpected keys \[.*decoder\.layers"):
        GPT.from_checkpoint(tmp_path / "ck")
    # a Hugging Face folder whose config says gpt2 but whose weights are named otherwise
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text((hf_dir / "config.json").read_text())
    sd = GPT2LMHeadModel.from_pretrained(hf_dir).state_dict()
    sd = {k.replace("mlp.c_fc", "mlp.dense_h_to_4h"): v for k, v in sd.items()}
    torch.save(sd, tmp_path / "hf" / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"missing keys \[.*ff\.fc1\.weight.*unexpected keys \[.*dense_h_to_4h"):
        GPT.from_pretrained(tmp_path / "hf")


def test_unsupported_hf_configs_are_refused(tmp_path, hf_dir):
    base = json.loads((hf_dir / "config.json").read_text())
    for change, match in [({"model_type": "bert"}, "model_type"), ({"activation_function": "relu"}, "activation"),
                          ({"n_inner": 100}, "n_inner"), ({"tie_word_embeddings": False}, "tie_word_embeddings")]:
        (tmp_path / "config.json").write_text(json.dumps({**base, **change}))
        with pytest.raises(ValueError, match=match):
            GPT.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="bias=True"):
        GPT(GPTConfig(block_size=8, vocab_size=10, n_layer=1, n_head=1, n_embd=8, bias=False)).save_pretrained(tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="model.safetensors or pytorch_model.bin"):
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "config.json").write_text(json.dumps(base))
        GPT.from_pretrained(tmp_path / "empty")
