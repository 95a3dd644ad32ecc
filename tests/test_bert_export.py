"""minibert -> Hugging Face BERT folders (save_pretrained) and back: tiny random models built here
(nothing downloaded), loaded by transformers and by minibert, logits compared. Tolerance: 1e-5
absolute (float32)."""
import json
import logging

import pytest
import torch
import transformers

from minibert import (BertConfig, BertForPreTraining, BertForSequenceClassification, BertForTokenClassification,
                      BertModel, WordPieceTokenizer)
from minibert.export import save_pretrained, to_hf_key
from minibert.hf import convert_hf_key, load_tokenizer_from

TOL = 1e-5
TINY = dict(vocab_size=61, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=48,
            max_position_embeddings=40, type_vocab_size=2)
LABELS = {0: "O", 1: "B-PER", 2: "I-PER"}


@torch.no_grad()
def randomize(model, seed=0):
    """Every parameter random (LayerNorm γ/β and biases included), so a swapped name cannot pass."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        offset = 1.0 if "norm" in name.lower() and name.endswith("weight") else 0.0
        p.copy_(offset + 0.2 * torch.randn(p.shape, generator=g))
    return model.eval()


def ours(cls, **kw):
    torch.manual_seed(0)
    return randomize(cls(BertConfig(**TINY, **kw)))


def inputs(b=3, t=13, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, TINY["vocab_size"], (b, t), generator=g)
    types = torch.zeros_like(ids)
    types[:, 7:] = 1
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    mask[2, 11:] = 0
    return dict(input_ids=ids, token_type_ids=types, attention_mask=mask)


def close(a, b, mask=None):
    if mask is not None:  # real tokens only (padded positions are garbage in both)
        a, b = a[mask.bool()], b[mask.bool()]
    return (a - b).abs().max().item()


def logits_of(model, x):
    """The head's output(s) of a minibert or transformers model, in a common order."""
    with torch.no_grad():
        out = model(**x, output_hidden_states=True)
    if hasattr(out, "mlm_logits"):
        return [out.mlm_logits, out.nsp_logits, *out.hidden_states]
    if hasattr(out, "prediction_logits"):
        return [out.prediction_logits, out.seq_relationship_logits, *out.hidden_states]
    if hasattr(out, "logits"):
        return [out.logits, *out.hidden_states]
    return [out.last_hidden_state, out.pooler_output, *out.hidden_states]


CASES = [
    (BertForPreTraining, transformers.BertForPreTraining, {}),
    (BertForSequenceClassification, transformers.BertForSequenceClassification, {"id2label": LABELS}),
    (BertForTokenClassification, transformers.BertForTokenClassification, {"id2label": LABELS}),
    (BertModel, transformers.BertModel, {}),
]


@pytest.mark.parametrize("ours_cls, hf_cls, kw", CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_export_loads_in_transformers_with_equal_logits(tmp_path, ours_cls, hf_cls, kw):
    model = ours(ours_cls, **kw)
    save_pretrained(model, tmp_path / "out")
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["model_type"] == "bert" and config["architectures"] == [ours_cls.__name__]
    hf, info = hf_cls.from_pretrained(tmp_path / "out", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    x = inputs()
    a, b = logits_of(model, x), logits_of(hf.eval(), x)
    n_heads = 1 if ours_cls in (BertForSequenceClassification, BertForTokenClassification) else 2
    assert len(a) == len(b) == n_heads + TINY["num_hidden_layers"] + 1  # head outputs, then every hidden state
    for i, (p, q) in enumerate(zip(a, b)):
        assert p.shape == q.shape, i
        assert close(p, q, x["attention_mask"] if p.dim() == 3 else None) < TOL, f"output {i}"
    assert a[0].abs().max() > 0.5  # big enough that a wrong weight would show


@pytest.mark.parametrize("ours_cls, hf_cls, kw", CASES[:2], ids=lambda c: getattr(c, "__name__", ""))
def test_export_then_minibert_import_gives_back_the_model(tmp_path, ours_cls, hf_cls, kw):
    model = ours(ours_cls, **kw)
    save_pretrained(model, tmp_path)
    back = ours_cls.from_pretrained(tmp_path).eval()
    assert back.missing_keys == [] and back.dropped_keys == []
    assert back.config.id2label == model.config.id2label
    x = inputs()
    for p, q in zip(logits_of(model, x), logits_of(back, x)):
        assert close(p, q, x["attention_mask"] if p.dim() == 3 else None) == 0.0  # the same weights, bit for bit


def test_transformers_to_minibert_to_transformers_keeps_every_weight(tmp_path):
    torch.manual_seed(0)
    hf = transformers.BertForPreTraining(transformers.BertConfig(**TINY)).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(0.1 * torch.randn_like(p))
    hf.save_pretrained(tmp_path / "hf")
    save_pretrained(BertForPreTraining.from_pretrained(tmp_path / "hf"), tmp_path / "ours")
    again = transformers.BertForPreTraining.from_pretrained(tmp_path / "ours").eval()
    a, b = hf.state_dict(), again.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    x = inputs()
    assert close(logits_of(hf, x)[0], logits_of(again, x)[0], x["attention_mask"]) == 0.0


def test_key_names_invert_the_import_renames():
    for cls in (BertForPreTraining, BertForSequenceClassification, BertModel):
        model = cls(BertConfig(**TINY))
        bare = cls is BertModel
        for key in model.state_dict():
            if key == "mlm_head.decoder.weight":
                continue  # tied, not stored
            hf_key = to_hf_key(key, "" if bare else "bert.")
            back = convert_hf_key(hf_key)
            assert (back[len("bert."):] if bare else back) == key, (key, hf_key)
    with pytest.raises(ValueError, match="lm_head.weight"):
        to_hf_key("lm_head.weight")


def test_missing_head_in_the_target_is_reported(tmp_path, caplog):
    """A classifier's folder opened as a pretraining model: both libraries name the MLM/NSP head
    weights they did not find (and the classifier they did not use)."""
    save_pretrained(ours(BertForSequenceClassification), tmp_path)
    _, info = transformers.BertForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert {"cls.seq_relationship.weight", "cls.predictions.transform.dense.weight"} <= set(info["missing_keys"])
    assert {"classifier.weight", "classifier.bias"} == set(info["unexpected_keys"])
    with caplog.at_level(logging.INFO, logger="minibert"):
        model = BertForPreTraining.from_pretrained(tmp_path)
    assert "nsp_head.weight" in model.missing_keys and "mlm_head.dense.weight" in model.missing_keys
    assert model.dropped_keys == ["classifier.bias", "classifier.weight"]
    assert "nsp_head.weight" in caplog.text and "randomly initialised" in caplog.text


VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "##s", ".", ","] + \
        [f"w{i}" for i in range(48)]


def test_wordpiece_tokenizer_written_as_vocab_txt(tmp_path):
    tok = WordPieceTokenizer(VOCAB)
    assert tok.vocab_size == TINY["vocab_size"]
    save_pretrained(ours(BertForPreTraining), tmp_path, tokenizer=tok)
    assert (tmp_path / "vocab.txt").read_text().split("\n")[:-1] == VOCAB
    assert not (tmp_path / "tokenizer.json").exists()  # would shadow transformers' fast tokenizer file
    hf_tok = transformers.BertTokenizer.from_pretrained(tmp_path)
    text = "The cats sat on the mat, w7."
    assert hf_tok(text)["input_ids"] == [tok.cls_id, *tok.encode(text), tok.sep_id]
    assert load_tokenizer_from(tmp_path).encode(text) == tok.encode(text)


def test_tokenizer_of_the_wrong_size_refused_and_folder_untouched(tmp_path):
    save_pretrained(ours(BertModel), tmp_path / "m")
    before = (tmp_path / "m" / "model.safetensors").read_bytes()
    with pytest.raises(ValueError, match=r"62 tokens.*vocab_size=61"):
        save_pretrained(ours(BertModel, hidden_act="relu"), tmp_path / "m", tokenizer=WordPieceTokenizer(VOCAB + ["x"]))
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temp folder left behind


def test_non_bert_model_and_untied_decoder_refused(tmp_path):
    with pytest.raises(ValueError, match="expected one of minibert's BertModel.*received Linear"):
        save_pretrained(torch.nn.Linear(2, 2), tmp_path / "a")
    model = ours(BertForPreTraining)
    model.mlm_head.decoder.weight = torch.nn.Parameter(model.mlm_head.decoder.weight.detach() + 1)
    with pytest.raises(ValueError, match="tied to the word embeddings"):
        save_pretrained(model, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
