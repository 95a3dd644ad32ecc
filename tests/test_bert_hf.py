"""minibert against transformers: tiny random BERT models built and saved here (nothing
downloaded), loaded with minibert, every layer and head compared. Tolerance: 1e-5 absolute (float32)."""
import logging
import os

import pytest
import torch
import transformers
from safetensors.torch import save_file

from minibert import (BertForPreTraining, BertForSequenceClassification, BertForTokenClassification,
                      BertModel)

TOL = 1e-5
TINY = dict(vocab_size=61, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=48,
            max_position_embeddings=40, type_vocab_size=2, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


@torch.no_grad()
def randomize(model, seed=0):
    """Every parameter random (LayerNorm γ/β and biases included), so a swapped name cannot pass."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        offset = 1.0 if "LayerNorm.weight" in name else 0.0
        p.copy_(offset + 0.2 * torch.randn(p.shape, generator=g))
    return model


def hf_model(cls, **kw):
    torch.manual_seed(0)
    return randomize(cls(transformers.BertConfig(**TINY, **kw))).eval()


def inputs(b=3, t=13, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, TINY["vocab_size"], (b, t), generator=g)
    types = torch.zeros_like(ids)
    types[:, 7:] = 1
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # a padded row
    mask[2, 11:] = 0
    return dict(input_ids=ids, token_type_ids=types, attention_mask=mask)


def close(a, b, mask=None):
    if mask is not None:  # compare real tokens only (padded rows are garbage in both)
        a, b = a[mask.bool()], b[mask.bool()]
    return (a - b).abs().max().item()


@pytest.fixture(scope="module")
def pretraining_pair(tmp_path_factory):
    path = tmp_path_factory.mktemp("hf_pretraining")
    hf = hf_model(transformers.BertForPreTraining)
    hf.save_pretrained(path)
    return hf, path


def test_pretraining_every_layer_pooler_mlm_nsp_match(pretraining_pair):
    hf, path = pretraining_pair
    ours = BertForPreTraining.from_pretrained(path).eval()
    assert ours.missing_keys == []
    x = inputs()
    with torch.no_grad():
        a = hf(**x, output_hidden_states=True)
        b = ours(**x, output_hidden_states=True)
        pooled_hf = hf.bert(**x).pooler_output
    assert len(b.hidden_states) == TINY["num_hidden_layers"] + 1 == len(a.hidden_states)
    for i, (ha, hb) in enumerate(zip(a.hidden_states, b.hidden_states)):
        assert close(ha, hb, x["attention_mask"]) < TOL, f"hidden state {i}"
    assert close(a.prediction_logits, b.mlm_logits, x["attention_mask"]) < TOL
    assert close(a.seq_relationship_logits, b.nsp_logits) < TOL
    assert close(pooled_hf, ours.bert(**x).pooler_output) < TOL
    # the logits are big enough that a wrong head would show (not all ~0)
    assert a.prediction_logits.abs().max() > 0.5 and a.seq_relationship_logits.abs().max() > 0.1


def test_losses_match_transformers(pretraining_pair):
    hf, path = pretraining_pair
    ours = BertForPreTraining.from_pretrained(path).eval()
    x = inputs()
    labels = torch.full_like(x["input_ids"], -100)
    labels[:, 2:5] = x["input_ids"][:, 2:5]
    nsp = torch.tensor([0, 1, 0])
    with torch.no_grad():
        a = hf(**x, labels=labels, next_sentence_label=nsp)
        b = ours(**x, labels=labels, next_sentence_label=nsp)
    assert abs(a.loss.item() - b.loss.item()) < TOL
    assert abs(b.loss.item() - (b.mlm_loss + b.nsp_loss).item()) < 1e-6


def test_sdpa_and_handwritten_attention_agree(pretraining_pair):
    _, path = pretraining_pair
    fast = BertForPreTraining.from_pretrained(path, use_sdpa=True).eval()
    slow = BertForPreTraining.from_pretrained(path, use_sdpa=False).eval()
    x = inputs()
    with torch.no_grad():
        a, b = fast(**x), slow(**x)
        c = fast(**x, output_attentions=True)  # asks for weights: the hand-written path
    assert close(a.mlm_logits, b.mlm_logits, x["attention_mask"]) < TOL
    assert len(c.attentions) == TINY["num_hidden_layers"]
    assert c.attentions[0].shape == (3, 4, 13, 13)
    w = c.attentions[0][1]  # padded row 1: keys 9.. get no weight, rows sum to 1
    assert w[..., 9:].abs().max() == 0 and torch.allclose(w.sum(-1), torch.ones(4, 13))


@pytest.mark.parametrize("hf_cls, ours_cls, field", [
    (transformers.BertForSequenceClassification, BertForSequenceClassification, "logits"),
    (transformers.BertForTokenClassification, BertForTokenClassification, "logits"),
])
def test_fine_tuning_heads_match(tmp_path, hf_cls, ours_cls, field):
    hf = hf_model(hf_cls, num_labels=3)
    hf.save_pretrained(tmp_path)
    ours = ours_cls.from_pretrained(tmp_path).eval()
    assert ours.config.num_labels == 3 and ours.missing_keys == []
    x = inputs()
    with torch.no_grad():
        a, b = getattr(hf(**x), field), ours(**x).logits
    mask = x["attention_mask"] if a.dim() == 3 else None
    assert a.shape == b.shape and close(a, b, mask) < TOL


def test_base_model_without_pooler_gamma_beta_bin_no_prefix(tmp_path, caplog):
    """Old TF-converted checkpoints: LayerNorm.gamma/beta, pytorch_model.bin, no "bert." prefix, no pooler."""
    hf = randomize(transformers.BertModel(transformers.BertConfig(**TINY), add_pooling_layer=False)).eval()
    sd = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v.clone()
          for k, v in hf.state_dict().items()}
    assert any(k.endswith("gamma") for k in sd) and not any(k.startswith(("bert.", "pooler")) for k in sd)
    torch.save(sd, tmp_path / "pytorch_model.bin")
    hf.config.to_json_file(tmp_path / "config.json")
    with caplog.at_level(logging.WARNING, logger="minibert"):
        ours = BertModel.from_pretrained(tmp_path).eval()
    assert ours.missing_keys == ["pooler.dense.bias", "pooler.dense.weight"]
    assert "pooler.dense.weight" in caplog.text and "randomly initialised" in caplog.text
    x = inputs()
    with torch.no_grad():
        a = hf(**x, output_hidden_states=True).hidden_states
        b = ours(**x, output_hidden_states=True).hidden_states
    assert all(close(p, q, x["attention_mask"]) < TOL for p, q in zip(a, b))


def test_pretraining_checkpoint_into_classifier_reports_new_head(pretraining_pair, caplog):
    hf, path = pretraining_pair
    with caplog.at_level(logging.INFO, logger="minibert"):
        clf = BertForSequenceClassification.from_pretrained(path, id2label={0: "neg", 1: "pos", 2: "neutral"})
    assert clf.missing_keys == ["classifier.bias", "classifier.weight"]
    assert "nsp_head.weight" in clf.dropped_keys and "mlm_head.dense.weight" in clf.dropped_keys
    assert "classifier.weight" in caplog.text
    torch.testing.assert_close(clf.bert.pooler.dense.weight, hf.bert.pooler.dense.weight, rtol=0, atol=0)


def test_vocab_size_mismatch_names_both_sizes(pretraining_pair, tmp_path):
    _, path = pretraining_pair
    for name in os.listdir(path):
        (tmp_path / name).write_bytes((path / name).read_bytes())
    (tmp_path / "vocab.txt").write_text("\n".join(f"tok{i}" for i in range(70)) + "\n")
    with pytest.raises(ValueError, match=r"70 tokens.*vocab_size=61"):
        BertForPreTraining.from_pretrained(tmp_path)


def test_checkpoint_of_another_architecture_names_keys(tmp_path):
    gpt = transformers.GPT2Model(transformers.GPT2Config(n_layer=1, n_embd=32, n_head=4, vocab_size=61, n_positions=40))
    save_file({k: v.contiguous() for k, v in gpt.state_dict().items()}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(transformers.BertConfig(**TINY).to_json_string())
    with pytest.raises(ValueError, match=r"missing keys \[.*embeddings.*unexpected keys \[.*(wte|h\.0)"):
        BertModel.from_pretrained(tmp_path)


def test_pickle_that_carries_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    hf = transformers.BertModel(transformers.BertConfig(**TINY))
    hf.config.to_json_file(tmp_path / "config.json")
    sd = dict(hf.state_dict())
    sd["evil"] = Evil()
    torch.save(sd, tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match="refused"):
        BertModel.from_pretrained(tmp_path)
    assert not marker.exists()
