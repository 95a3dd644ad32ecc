"""Checkpoints: round trips, tied weights, atomic replacement, architecture mismatches, and
refusing pickles that carry code."""
import json
import os
import pickle
import random
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from minitransformer.checkpoint import (atomic_directory, capture_rng_state, flatten_state, load_checkpoint,
                                        load_model_weights, load_state_dict_safetensors, load_trainer_state,
                                        read_config, resolve_checkpoint_dir, restore_rng_state, safe_torch_load,
                                        save_checkpoint, save_state_dict_safetensors, seed_everything,
                                        strip_wrapper_prefixes, unflatten_state, unwrap_model)
from tests.ddp_worker import TinyLM


class FakeTokenizer:
    def __init__(self, vocab):
        self.vocab = vocab

    def save(self, directory):
        Path(directory, "vocab.json").write_text(json.dumps(self.vocab))


class TiedLM(nn.Module):
    def __init__(self, vocab=13, dim=6):
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        self.lm_head.weight = self.wte.weight


def files(path):
    return {p.name: p.read_bytes() for p in Path(path).iterdir() if p.is_file()}


def test_round_trip_weights_config_tokenizer_state(tmp_path):
    torch.manual_seed(0)
    model = TinyLM(dropout=0.1)
    state = {"step": 7, "betas": (0.9, 0.95), "by_id": {0: torch.arange(3.0), 5: None}, "x": [1.5, "a", True],
             "__tensor__": torch.ones(2, dtype=torch.bfloat16)}
    out = save_checkpoint(tmp_path / "ck", model, model.config, tokenizer=FakeTokenizer({"a": 0}), trainer_state=state)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "tokenizer",
                                                     "trainer_state.json", "trainer_state.safetensors"]
    assert json.loads((out / "tokenizer" / "vocab.json").read_text()) == {"a": 0}
    assert read_config(out) == model.config
    fresh = TinyLM(dropout=0.1)
    assert load_checkpoint(out, fresh) == model.config
    for (k, a), (k2, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    back = load_trainer_state(out)
    assert back["step"] == 7 and back["betas"] == (0.9, 0.95) and back["x"] == [1.5, "a", True]
    assert set(back["by_id"]) == {0, 5} and back["by_id"][5] is None and torch.equal(back["by_id"][0], torch.arange(3.0))
    assert back["__tensor__"].dtype == torch.bfloat16 and torch.equal(back["__tensor__"], state["__tensor__"])


def test_tied_weights_stored_once_and_restored(tmp_path):
    model = TiedLM()
    save_state_dict_safetensors(model.state_dict(), tmp_path / "m.safetensors")
    loaded = load_state_dict_safetensors(tmp_path / "m.safetensors")
    assert torch.equal(loaded["lm_head.weight"], model.wte.weight.detach())
    assert os.path.getsize(tmp_path / "m.safetensors") < 13 * 6 * 4 * 2  # one copy of the 13x6 float32 matrix
    fresh = TiedLM()
    load_model_weights(fresh, loaded)
    assert torch.equal(fresh.wte.weight, model.wte.weight) and fresh.lm_head.weight is fresh.wte.weight


def test_failed_save_leaves_previous_checkpoint_intact(tmp_path):
    model = TinyLM()
    ck = save_checkpoint(tmp_path / "ck", model, {"v": 1})
    before = files(ck)

    class Broken:
        def save(self, directory):
            Path(directory, "half.json").write_text("{")
            raise OSError("disk full")

    with torch.no_grad():
        model.head.weight.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "ck", model, {"v": 2}, tokenizer=Broken())
    assert files(ck) == before  # byte for byte the old checkpoint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no temporary directory left behind
    save_checkpoint(tmp_path / "ck", model, {"v": 2})
    assert read_config(ck) == {"v": 2}
    assert torch.equal(load_state_dict_safetensors(ck / "model.safetensors")["head.weight"], model.head.weight.detach())


def test_crash_between_renames_falls_back_to_old(tmp_path):
    ck = save_checkpoint(tmp_path / "ck", TinyLM(), {"v": 1})
    os.rename(ck, tmp_path / ".ck.old")  # the state a crash between the two renames leaves
    assert resolve_checkpoint_dir(ck) == tmp_path / ".ck.old"
    assert read_config(ck) == {"v": 1}
    with atomic_directory(ck) as tmp:  # the next save completes the interrupted swap first
        (tmp / "config.json").write_text('{"v": 3}')
    assert read_config(ck) == {"v": 3} and not (tmp_path / ".ck.old").exists()


def test_mismatched_architecture_names_keys_and_shapes():
    small, other = TinyLM(dim=16), TinyLM(dim=8)
    sd = small.state_dict()
    with pytest.raises(ValueError) as e:
        load_model_weights(other, sd)
    assert "fc.weight: checkpoint (16, 16) vs model (8, 8)" in str(e.value)
    sd2 = {("extra." + k if k.startswith("ln.") else k): v for k, v in sd.items()}
    with pytest.raises(ValueError) as e:
        load_model_weights(TinyLM(dim=16), sd2)
    msg = str(e.value)
    assert "missing keys [ln.weight, ln.bias]" in msg and "unexpected keys [extra.ln.weight, extra.ln.bias]" in msg
    missing, unexpected = load_model_weights(TinyLM(dim=16), sd2, strict=False)
    assert missing == ["ln.weight", "ln.bias"] and unexpected == ["extra.ln.weight", "extra.ln.bias"]


def test_unwrap_compiled_and_prefixed_keys(tmp_path):
    model = TinyLM()
    compiled = torch.compile(model)  # wraps lazily; nothing is compiled until it is called
    assert all(k.startswith("_orig_mod.") for k in compiled.state_dict())
    assert unwrap_model(compiled) is model
    save_checkpoint(tmp_path / "ck", compiled, {})
    assert set(load_state_dict_safetensors(tmp_path / "ck" / "model.safetensors")) == set(model.state_dict())
    prefixed = {"module._orig_mod." + k: v for k, v in model.state_dict().items()}
    assert list(strip_wrapper_prefixes(prefixed)) == list(model.state_dict())


class Payload:
    """Unpickling this would run ``os.system("touch MARKER")``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def test_safe_torch_load_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"weights": torch.ones(2), "evil": Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="refused"):
        safe_torch_load(tmp_path / "evil.pt")
    assert not marker.exists()
    # the payload is real: an unguarded unpickle would have run it
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(Payload(probe)))
    assert probe.exists()
    torch.save({"w": torch.arange(4), "n": 3}, tmp_path / "ok.pt")
    ok = safe_torch_load(tmp_path / "ok.pt")
    assert torch.equal(ok["w"], torch.arange(4)) and ok["n"] == 3


def draw():
    """One draw from every generator, including the cached-gaussian parts of their states."""
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(), np.random.randn(1).tolist(),
            [random.random() for _ in range(3)], random.gauss(0, 1))


def test_rng_state_round_trip():
    seed_everything(3)
    np.random.randn(1)  # leaves a cached gaussian in NumPy's state
    random.gauss(0, 1)  # and in Python's (gauss_next)
    state = capture_rng_state()
    first = draw()
    assert draw() != first  # the generators moved on
    restore_rng_state(state)
    assert draw() == first


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(tmp_path / "a", TinyLM(), {"f": object()})
    with pytest.raises(ValueError, match="save"):
        save_checkpoint(tmp_path / "b", TinyLM(), {}, tokenizer="vocab.txt")
    with pytest.raises(ValueError, match="Payload"):
        flatten_state({"x": Payload(tmp_path / "m")}, {})
    with pytest.raises(FileNotFoundError, match="config.json"):
        read_config(tmp_path / "nowhere")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="safetensors"):
        load_state_dict_safetensors(tmp_path / "junk.safetensors")
    assert unflatten_state(flatten_state([1, (2, 3)], {}), {}) == [1, (2, 3)]
