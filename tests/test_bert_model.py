"""BertModel and heads: exact parameter counts, the config's Hugging Face field names, shapes,
the pooler and tied decoder formulas, and clear errors on bad input."""
import dataclasses
import json
import logging
import math

import pytest
import torch
import transformers

from minibert import (BertConfig, BertForPreTraining, BertForSequenceClassification, BertForTokenClassification,
                      BertModel, count_bert_parameters)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_bert_base_parameter_counts():
    with torch.device("meta"):
        base, pre = BertModel(BertConfig()), BertForPreTraining(BertConfig())
    assert n_params(base) == 109_482_240
    assert n_params(pre) == 110_106_428  # + MLM transform, LayerNorm, decoder bias, NSP; decoder tied
    assert count_bert_parameters(BertConfig()) == 109_482_240


def test_parameter_counts_equal_transformers_for_other_sizes():
    kw = dict(vocab_size=1000, hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=100,
              max_position_embeddings=70, type_vocab_size=3)
    with torch.device("meta"):
        ours = [BertModel(BertConfig(**kw)), BertForPreTraining(BertConfig(**kw)),
                BertForTokenClassification(BertConfig(**kw, id2label={0: "O", 1: "B-X", 2: "I-X"}))]
        ref = [transformers.BertModel(transformers.BertConfig(**kw)),
               transformers.BertForPreTraining(transformers.BertConfig(**kw)),
               transformers.BertForTokenClassification(transformers.BertConfig(**kw, num_labels=3))]
    assert [n_params(m) for m in ours] == [n_params(m) for m in ref]
    assert count_bert_parameters(BertConfig(**kw)) == n_params(ours[0])


def test_config_matches_transformers_json_one_to_one(caplog):
    hf = transformers.BertConfig(vocab_size=123, hidden_size=48, num_hidden_layers=2, num_attention_heads=3,
                                 intermediate_size=96, hidden_act="gelu", layer_norm_eps=1e-7, type_vocab_size=3)
    d = json.loads(hf.to_json_string())
    d["some_new_key"] = 1
    with caplog.at_level(logging.WARNING, logger="minibert"):
        c = BertConfig.from_dict(d)
    assert "some_new_key" in caplog.text and "transformers_version" not in caplog.text  # a note for the unknown key only
    for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "hidden_act", "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "hidden_dropout_prob",
                 "attention_probs_dropout_prob", "initializer_range", "pad_token_id"):
        assert getattr(c, name) == getattr(hf, name), name
    back = BertConfig.from_dict(json.loads(json.dumps(c.to_dict())))
    assert back == c
    labelled = BertConfig(id2label={0: "neg", 1: "pos"})
    again = BertConfig.from_dict(json.loads(json.dumps(labelled.to_dict())))
    assert again.id2label == {0: "neg", 1: "pos"} and again.num_labels == 2


@pytest.mark.parametrize("bad, match", [
    (dict(hidden_size=30, num_attention_heads=4), "divisible"),
    (dict(hidden_act="swish"), "hidden_act"),
    (dict(hidden_dropout_prob=1.5), "probability"),
    (dict(vocab_size=0), "vocab_size"),
    (dict(initializer_range=0.0), "initializer_range: expected > 0"),
])
def test_bad_config(bad, match):
    with pytest.raises(ValueError, match=match):
        BertConfig(**bad)
    with pytest.raises(ValueError, match="position_embedding_type"):
        BertConfig.from_dict({"position_embedding_type": "relative_key"})


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
                      max_position_embeddings=12, id2label={0: "a", 1: "b", 2: "c"})


def test_shapes_pooler_and_tied_decoder(tiny):
    pre = BertForPreTraining(tiny).eval()
    ids = torch.randint(5, 40, (2, 7))
    out = pre(ids)
    assert out.mlm_logits.shape == (2, 7, 40) and out.nsp_logits.shape == (2, 2) and out.loss is None
    assert pre.mlm_head.decoder.weight is pre.bert.embeddings.word_embeddings.weight
    with torch.no_grad():
        base = pre.bert(ids, output_hidden_states=True)
        want = torch.tanh(base.last_hidden_state[:, 0] @ pre.bert.pooler.dense.weight.T + pre.bert.pooler.dense.bias)
        assert torch.allclose(base.pooler_output, want, atol=1e-6)
        h = pre.mlm_head.norm(torch.nn.functional.gelu(pre.mlm_head.dense(base.last_hidden_state)))
        want_logits = h @ pre.bert.embeddings.word_embeddings.weight.T + pre.mlm_head.bias
        assert torch.allclose(out.mlm_logits, want_logits, atol=1e-5)
    assert len(base.hidden_states) == 3 and base.attentions is None
    seq = BertForSequenceClassification(tiny)(ids, labels=torch.tensor([0, 2]))
    tok = BertForTokenClassification(tiny)(ids, labels=torch.full((2, 7), -100).index_fill_(1, torch.tensor([1]), 1))
    assert seq.logits.shape == (2, 3) and seq.loss.item() > 0
    assert tok.logits.shape == (2, 7, 3) and tok.loss.item() > 0
    assert math.isfinite(seq.loss.item()) and math.isfinite(tok.loss.item())


def test_bad_inputs_raise_clear_errors(tiny):
    model = BertModel(tiny)
    with pytest.raises(ValueError, match=r"max_position_embeddings=12, received 13"):
        model(torch.randint(5, 40, (1, 13)))
    with pytest.raises(ValueError, match=r"token ids in \[0, 40\)"):
        model(torch.tensor([[1, 2, 45]]))
    with pytest.raises(ValueError, match="token_type_ids"):
        model(torch.tensor([[1, 2, 3]]), token_type_ids=torch.tensor([[0, 2, 1]]))
    with pytest.raises(ValueError, match="attention_mask"):
        model(torch.tensor([[1, 2, 3]]), attention_mask=torch.ones(1, 4))
    with pytest.raises(ValueError, match="rank 2"):
        model(torch.tensor([1, 2, 3]))


@pytest.mark.parametrize("std", [0.02, 0.05])
def test_weights_initialised_as_bert(tiny, std):
    model = BertModel(BertConfig(vocab_size=3000, hidden_size=64, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=64, initializer_range=std))
    w = model.embeddings.word_embeddings.weight  # 191,936 draws: the sample std is within 1% of σ
    assert abs(w[1:].std().item() - std) < 0.05 * std and w[0].abs().max() == 0  # padding row zero
    assert abs(model.encoder.layers[0].ff.fc1.weight.std().item() - std) < 0.05 * std
    assert model.encoder.layers[0].ff.fc1.bias.abs().max() == 0
    assert torch.all(model.encoder.layers[0].norm1.weight == 1)


def test_fused_kernels_and_masked_positions_only_compute_the_same(tiny):
    """use_fused / use_sdpa (PyTorch kernels) vs the hand-written LayerNorm, GELU and attention; and
    the MLM head on the selected positions only: same loss and gradients. Tolerance 1e-5 (float32)."""
    fast = BertForPreTraining(tiny).eval()
    slow = BertForPreTraining(dataclasses.replace(tiny, use_fused=False, use_sdpa=False)).eval()
    slow.load_state_dict(fast.state_dict())
    ids = torch.randint(5, 40, (3, 9))
    mask = torch.ones_like(ids)
    mask[2, 6:] = 0
    labels = torch.full_like(ids, -100)
    labels[:, 3], labels[1, 5] = ids[:, 3], ids[1, 5]
    batch = dict(input_ids=ids, attention_mask=mask, labels=labels, next_sentence_label=torch.tensor([0, 1, 1]))
    a, b = fast(**batch), slow(**batch)
    assert (a.mlm_logits - b.mlm_logits)[mask.bool()].abs().max() < 1e-5 and abs(a.loss.item() - b.loss.item()) < 1e-5
    full, sparse = fast(**batch), fast(**batch, masked_positions_only=True)
    assert sparse.mlm_logits.shape == (4, 40)
    torch.testing.assert_close(sparse.mlm_logits, full.mlm_logits[labels != -100], rtol=0, atol=1e-6)
    g_full = torch.autograd.grad(full.loss, list(fast.parameters()))
    g_sparse = torch.autograd.grad(sparse.loss, list(fast.parameters()))
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(g_full, g_sparse))
    with pytest.raises(ValueError, match="masked_positions_only"):
        fast(ids, masked_positions_only=True)


def test_cls_and_selected_positions_closed_form():
    from minibert.heads import cls_and_selected_positions

    selected = torch.tensor([[False, True, False, True, True], [False] * 5, [False, False, True, False, False]])
    positions, real = cls_and_selected_positions(selected)
    assert positions.tolist() == [[0, 1, 3, 4], [0, 0, 0, 0], [0, 2, 0, 0]]
    assert real.tolist() == [[False, True, True, True], [False] * 4, [False, True, False, False]]
    x = torch.arange(15).reshape(3, 5)
    assert torch.equal(torch.gather(x, 1, positions)[real], x[selected])


def test_last_layer_positions_give_the_full_models_rows(tiny):
    """BertModel(last_layer_positions=...) equals the full model's last_hidden_state at those rows
    (padding included) and the same pooler output; bad positions are refused with what was expected."""
    model = BertModel(tiny).eval()
    ids = torch.randint(5, 40, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    positions = torch.tensor([[0, 3, 8], [0, 5, 0]])
    full, part = model(ids, attention_mask=mask), model(ids, attention_mask=mask, last_layer_positions=positions)
    want = torch.stack([full.last_hidden_state[b, positions[b]] for b in range(2)])
    torch.testing.assert_close(part.last_hidden_state, want, rtol=0, atol=1e-5)
    torch.testing.assert_close(part.pooler_output, full.pooler_output, rtol=0, atol=1e-5)
    for bad, what in ((torch.tensor([[1, 2], [0, 1]]), "0 \\(\\[CLS\\]\\) first"), (torch.tensor([[0, 9], [0, 1]]), r"\[0, 9\)"),
                      (torch.tensor([0, 1]), "int64 tensor"), (positions.int(), "int64 tensor")):
        with pytest.raises(ValueError, match=what):
            model(ids, attention_mask=mask, last_layer_positions=bad)
    with pytest.raises(ValueError, match="output_hidden_states"):
        model(ids, attention_mask=mask, last_layer_positions=positions, output_hidden_states=True)


def test_sequence_classifier_computes_only_the_cls_row_of_the_last_layer(tiny, monkeypatch):
    """BertForSequenceClassification asks the last layer for [CLS] alone; logits, loss and every
    gradient equal the full model's (output_hidden_states=True runs every row), within 1e-6."""
    import minitransformer.blocks as blocks

    clf = BertForSequenceClassification(tiny).eval()  # 3 labels
    ids = torch.randint(5, 40, (3, 9))
    mask = torch.ones_like(ids)
    mask[1, 4:] = 0
    labels = torch.tensor([0, 2, 1])
    calls = []
    real_forward_at = blocks.EncoderBlock.forward_at
    monkeypatch.setattr(blocks.EncoderBlock, "forward_at", lambda self, x, p, m=None: calls.append(p) or real_forward_at(self, x, p, m))
    sparse = clf(ids, attention_mask=mask, labels=labels)
    assert len(calls) == 1 and calls[0].tolist() == [[0], [0], [0]]
    full = clf(ids, attention_mask=mask, labels=labels, output_hidden_states=True)
    assert len(calls) == 1  # the full path did not use it
    torch.testing.assert_close(sparse.logits, full.logits, rtol=0, atol=1e-6)
    g_sparse = torch.autograd.grad(sparse.loss, list(clf.parameters()))
    g_full = torch.autograd.grad(full.loss, list(clf.parameters()))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g_sparse, g_full))
