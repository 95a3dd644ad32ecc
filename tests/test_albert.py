"""minibert's ALBERT against transformers: tiny random models built and saved here (nothing
downloaded), every hidden state, the MLM and SOP logits and the loss compared. Tolerance: 1e-5
absolute (float32); parameter counts exact."""
import logging
import random

import pytest
import torch
import torch.nn.functional as F
import transformers

from minibert import BertConfig, BertForPreTraining, save_pretrained
from minibert.albert import (AlbertConfig, AlbertForMaskedLM, AlbertForPreTraining, AlbertModel, build_sop_inputs,
                             make_sop_pair, sop_loss)
from tests.reference import close, randomize

TOL = 1e-5
ALBERT_BASE_V2_PARAMETERS = 11_683_584  # albert-base-v2 AlbertModel, as transformers counts it (issue #17)
PAD, CLS, SEP = 0, 2, 3
TINY = dict(vocab_size=61, embedding_size=16, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
            intermediate_size=48, max_position_embeddings=40)
GROUPED = {**TINY, "num_hidden_layers": 4, "num_hidden_groups": 2}


def inputs(b=3, t=13, seed=1):
    """[CLS] A [SEP] B [SEP] rows with two segments, two of them right-padded."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, TINY["vocab_size"], (b, t), generator=g)
    ids[:, 0], ids[:, 5] = CLS, SEP
    ids[1, 9:], ids[2, 11:] = PAD, PAD
    types = torch.zeros_like(ids)
    types[:, 6:] = 1
    mask = (ids != PAD).long()
    return dict(input_ids=ids, token_type_ids=types * mask, attention_mask=mask)


def saved(tmp_path_factory, hf_class, config, name):
    path = tmp_path_factory.mktemp(name)
    torch.manual_seed(0)
    hf = randomize(hf_class(transformers.AlbertConfig(**config)))
    hf.save_pretrained(path)
    return hf, path


@pytest.fixture(scope="module")
def pretraining_pair(tmp_path_factory):
    return saved(tmp_path_factory, transformers.AlbertForPreTraining, TINY, "hf_albert_pretraining")


@pytest.fixture(scope="module")
def mlm_pair(tmp_path_factory):
    return saved(tmp_path_factory, transformers.AlbertForMaskedLM, GROUPED, "hf_albert_mlm")


def test_pretraining_logits_sop_and_every_hidden_state_match(pretraining_pair):
    hf, path = pretraining_pair
    ours = AlbertForPreTraining.from_pretrained(path).eval()
    assert ours.missing_keys == [] and ours.dropped_keys == []
    x = inputs()
    with torch.no_grad():
        a, b = hf(**x, output_hidden_states=True), ours(**x, output_hidden_states=True)
    assert len(a.hidden_states) == len(b.hidden_states) == TINY["num_hidden_layers"] + 1
    for i, (p, q) in enumerate(zip(a.hidden_states, b.hidden_states)):
        assert close(p, q, x["attention_mask"]) < TOL, f"hidden state {i}"
    assert close(a.prediction_logits, b.mlm_logits, x["attention_mask"]) < TOL
    assert close(a.sop_logits, b.sop_logits) < TOL
    assert a.prediction_logits.abs().max() > 0.5 and a.sop_logits.abs().max() > 0.1  # a wrong weight would show


def test_pretraining_loss_matches_transformers(pretraining_pair):
    hf, path = pretraining_pair
    ours = AlbertForPreTraining.from_pretrained(path).eval()
    x = inputs()
    labels = torch.full_like(x["input_ids"], -100)
    labels[:, 2:5] = x["input_ids"][:, 2:5]
    order = torch.tensor([0, 1, 1])
    with torch.no_grad():
        a = hf(**x, labels=labels, sentence_order_label=order)
        b = ours(**x, labels=labels, sentence_order_label=order)
    assert abs(a.loss.item() - b.loss.item()) < TOL
    assert abs(b.sop_loss.item() - F.cross_entropy(a.sop_logits, order).item()) < TOL


def test_grouped_sharing_masked_lm_matches(mlm_pair):
    """num_hidden_groups = 2 over 4 layers: layers 0-1 use group 0, layers 2-3 group 1."""
    hf, path = mlm_pair
    ours = AlbertForMaskedLM.from_pretrained(path).eval()
    assert ours.missing_keys == [] and len(ours.albert.encoder.groups) == 2
    assert ours.mlm_head.decoder.weight is ours.albert.embeddings.word_embeddings.weight  # tied, (V, E)
    x = inputs()
    labels = torch.full_like(x["input_ids"], -100)
    labels[:, 6:8] = x["input_ids"][:, 6:8]
    with torch.no_grad():
        a, b = hf(**x, labels=labels, output_hidden_states=True), ours(**x, labels=labels, output_hidden_states=True)
    assert len(b.hidden_states) == 5
    for i, (p, q) in enumerate(zip(a.hidden_states, b.hidden_states)):
        assert close(p, q, x["attention_mask"]) < TOL, f"hidden state {i}"
    assert close(a.logits, b.logits, x["attention_mask"]) < TOL
    assert abs(a.loss.item() - b.loss.item()) < TOL


def test_base_model_with_pooler_matches(tmp_path_factory):
    hf, path = saved(tmp_path_factory, transformers.AlbertModel, GROUPED, "hf_albert_model")
    ours = AlbertModel.from_pretrained(path).eval()
    assert ours.missing_keys == []
    x = inputs()
    with torch.no_grad():
        a, b = hf(**x, output_hidden_states=True), ours(**x, output_hidden_states=True)
    assert close(a.last_hidden_state, b.last_hidden_state, x["attention_mask"]) < TOL
    assert close(a.pooler_output, b.pooler_output) < TOL
    assert len(a.hidden_states) == len(b.hidden_states) == GROUPED["num_hidden_layers"] + 1
    for i, (p, q) in enumerate(zip(a.hidden_states, b.hidden_states)):  # [0]: the projected embedding, (B, T, H)
        assert close(p, q, x["attention_mask"]) < TOL, f"hidden state {i}"


def test_heads_missing_or_unused_are_reported(pretraining_pair, mlm_pair, caplog):
    _, pretraining_path = pretraining_pair
    model = AlbertModel.from_pretrained(pretraining_path)
    assert model.missing_keys == []
    assert "sop_head.weight" in model.dropped_keys and "mlm_head.bias" in model.dropped_keys
    _, mlm_path = mlm_pair
    with caplog.at_level(logging.WARNING, logger="minibert"):
        model = AlbertForPreTraining.from_pretrained(mlm_path)
    assert model.missing_keys == ["albert.pooler.dense.bias", "albert.pooler.dense.weight", "sop_head.bias",
                                  "sop_head.weight"]
    assert "randomly initialised" in caplog.text


def test_albert_base_v2_parameter_count_on_meta():
    config = AlbertConfig(vocab_size=30000, embedding_size=128, hidden_size=768, num_hidden_layers=12,
                          num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512,
                          type_vocab_size=2, num_hidden_groups=1, inner_group_num=1)
    with torch.device("meta"):
        model = AlbertModel(config)
    assert model.pooler is not None and len(model.encoder.groups) == 1 and len(model.encoder.layers) == 12
    assert sum(p.numel() for p in model.parameters()) == ALBERT_BASE_V2_PARAMETERS


@pytest.mark.parametrize("field,value,match", [
    ("inner_group_num", 2, r"AlbertConfig.inner_group_num: expected 1 .*received 2"),
    ("num_hidden_groups", 2, r"AlbertConfig.num_hidden_groups: expected a positive divisor of num_hidden_layers=3, "
                             r"received 2"),
    ("embedding_size", 0, r"AlbertConfig.embedding_size: expected a positive integer, received 0"),
])
def test_unsupported_configs_name_the_field_and_value(field, value, match):
    with pytest.raises(ValueError, match=match):
        AlbertConfig(**{**TINY, field: value})


def test_inner_groups_in_a_folder_are_refused_naming_the_file(tmp_path):
    transformers.AlbertModel(transformers.AlbertConfig(**{**TINY, "inner_group_num": 2})).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"config.json: AlbertConfig.inner_group_num: expected 1.*received 2"):
        AlbertModel.from_pretrained(tmp_path)


def test_bert_checkpoint_given_to_albert_names_both_families_and_keys(tmp_path):
    bert = BertConfig(**{k: v for k, v in TINY.items() if k != "embedding_size"})
    save_pretrained(BertForPreTraining(bert), tmp_path)
    with pytest.raises(ValueError) as e:
        AlbertForPreTraining.from_pretrained(tmp_path)
    msg = str(e.value)
    assert "a 'bert' checkpoint, expected 'albert' for AlbertForPreTraining" in msg
    assert "missing keys [albert.embeddings" in msg and "unexpected keys [bert.embeddings" in msg


def test_roberta_checkpoint_given_to_albert_names_both_families(tmp_path):
    cfg = transformers.RobertaConfig(vocab_size=61, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                     intermediate_size=48, max_position_embeddings=40)
    transformers.RobertaForMaskedLM(cfg).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"a 'roberta' checkpoint, expected 'albert' for AlbertForMaskedLM; "
                                         r"missing keys \[albert\..*unexpected keys \[roberta\."):
        AlbertForMaskedLM.from_pretrained(tmp_path)


# ----------------------------------------------------------------------------- SOP


DOC = [[10, 11], [20, 21, 22], [30], [40, 41]]


def test_sop_pairs_are_consecutive_segments_swapped_half_the_time():
    rng = random.Random(0)
    labels = []
    for _ in range(400):
        i = rng.randrange(len(DOC) - 1)
        a, b, label = make_sop_pair(DOC, i, rng)
        assert (a, b) == ((DOC[i + 1], DOC[i]) if label == 1 else (DOC[i], DOC[i + 1]))
        labels.append(label)
    assert 0.42 < sum(labels) / len(labels) < 0.58


def test_sop_inputs_layout_and_label():
    ids, segments, label = build_sop_inputs(DOC, 0, CLS, SEP, 32, random.Random(3))
    first, second = (DOC[1], DOC[0]) if label else (DOC[0], DOC[1])
    assert ids == [CLS, *first, SEP, *second, SEP]
    assert segments == [0] * (len(first) + 2) + [1] * (len(second) + 1)


def test_sop_needs_a_sentence_with_a_successor():
    with pytest.raises(ValueError, match=r"expected a sentence with a successor, 0 <= sent_idx < 3, received 3"):
        make_sop_pair(DOC, 3, random.Random(0))


def test_sop_loss_is_two_class_cross_entropy():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.5], [-3.0, 1.0]])
    swapped = torch.tensor([0, 1, 1])
    p = torch.softmax(logits, -1)[torch.arange(3), swapped]
    assert abs(sop_loss(logits, swapped).item() - (-p.log().mean()).item()) < 1e-6
