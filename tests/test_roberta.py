"""minibert's RoBERTa against transformers: tiny random models built and saved here (nothing
downloaded), every layer and the MLM logits compared. Tolerance: 1e-5 absolute (float32)."""
import logging

import pytest
import torch
import transformers
from transformers.models.roberta.modeling_roberta import RobertaEmbeddings as HFRobertaEmbeddings

from minibert import BertForPreTraining, BertConfig, save_pretrained
from minibert.roberta import (RobertaConfig, RobertaForMaskedLM, RobertaModel, dynamic_mlm_batch, encode_roberta,
                              load_bpe_tokenizer, roberta_position_ids)
from minigpt.bpe import GPT2Tokenizer, bytes_to_unicode
from tests.reference import close, randomize

TOL = 1e-5
ROBERTA_BASE_PARAMETERS = 124_645_632  # roberta-base RobertaModel, as transformers counts it (issue #17)
PAD = 1
TINY = dict(vocab_size=61, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=48,
            max_position_embeddings=40, type_vocab_size=1, pad_token_id=PAD, layer_norm_eps=1e-5)


def inputs(b=3, t=13, seed=1):
    """<s> ... </s> rows, two of them right-padded with <pad> = 1 (positions must skip them)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, TINY["vocab_size"], (b, t), generator=g)
    ids[:, 0] = 0
    ids[1, 9:] = PAD
    ids[2, 11:] = PAD
    return dict(input_ids=ids, attention_mask=(ids != PAD).long())


@pytest.fixture(scope="module")
def mlm_pair(tmp_path_factory):
    path = tmp_path_factory.mktemp("hf_roberta_mlm")
    torch.manual_seed(0)
    hf = randomize(transformers.RobertaForMaskedLM(transformers.RobertaConfig(**TINY)))
    hf.save_pretrained(path)
    return hf, path


def test_masked_lm_logits_and_every_hidden_state_match(mlm_pair):
    hf, path = mlm_pair
    ours = RobertaForMaskedLM.from_pretrained(path).eval()
    assert ours.missing_keys == [] and ours.dropped_keys == []
    x = inputs()
    with torch.no_grad():
        a = hf(**x, output_hidden_states=True)
        b = ours(**x, output_hidden_states=True)
    assert len(a.hidden_states) == len(b.hidden_states) == TINY["num_hidden_layers"] + 1
    for i, (p, q) in enumerate(zip(a.hidden_states, b.hidden_states)):
        assert close(p, q, x["attention_mask"]) < TOL, f"hidden state {i}"
    assert close(a.logits, b.logits, x["attention_mask"]) < TOL
    assert a.logits.abs().max() > 0.5  # big enough that a wrong weight would show
    labels = torch.full_like(x["input_ids"], -100)
    labels[:, 2:5] = x["input_ids"][:, 2:5]
    with torch.no_grad():
        assert abs(hf(**x, labels=labels).loss.item() - ours(**x, labels=labels).loss.item()) < TOL


def test_base_model_with_pooler_matches(tmp_path):
    torch.manual_seed(0)
    hf = randomize(transformers.RobertaModel(transformers.RobertaConfig(**TINY)))
    hf.save_pretrained(tmp_path)
    ours = RobertaModel.from_pretrained(tmp_path).eval()
    assert ours.missing_keys == []
    x = inputs()
    with torch.no_grad():
        a, b = hf(**x), ours(**x)
    assert close(a.last_hidden_state, b.last_hidden_state, x["attention_mask"]) < TOL
    assert close(a.pooler_output, b.pooler_output) < TOL


def test_masked_lm_folder_into_base_model_reports_pooler_and_head(mlm_pair, caplog):
    _, path = mlm_pair
    with caplog.at_level(logging.INFO, logger="minibert"):
        model = RobertaModel.from_pretrained(path)
    assert model.missing_keys == ["pooler.dense.bias", "pooler.dense.weight"]
    assert "lm_head.dense.weight" in model.dropped_keys and "randomly initialised" in caplog.text


def test_position_ids_offset_by_padding_idx_as_transformers():
    ids = torch.tensor([[0, 7, 8, 9, 2], [0, 7, 2, PAD, PAD], [PAD, PAD, 0, 5, 2]])
    m = roberta_position_ids(ids, PAD)
    assert m.tolist() == [[2, 3, 4, 5, 6], [2, 3, 4, 1, 1], [1, 1, 2, 3, 4]]
    assert torch.equal(m, HFRobertaEmbeddings.create_position_ids_from_input_ids(ids, PAD))


def test_too_long_input_names_the_limit():
    model = RobertaModel(RobertaConfig(**TINY)).eval()  # 40 rows - padding_idx 1 - 1 = 38 positions
    model(torch.full((1, 38), 5))
    with pytest.raises(ValueError, match=r"length <= 38.*received 39"):
        model(torch.full((1, 39), 5))


def test_roberta_base_parameter_count_on_meta():
    with torch.device("meta"):
        model = RobertaModel(RobertaConfig())  # roberta-base's defaults
    c = model.config
    assert (c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size,
            c.max_position_embeddings, c.type_vocab_size) == (50265, 768, 12, 12, 3072, 514, 1)
    assert model.pooler is not None
    assert sum(p.numel() for p in model.parameters()) == ROBERTA_BASE_PARAMETERS


def test_bert_checkpoint_given_to_roberta_names_both_families_and_keys(tmp_path):
    save_pretrained(BertForPreTraining(BertConfig(**{**TINY, "type_vocab_size": 2})), tmp_path)
    with pytest.raises(ValueError) as e:
        RobertaForMaskedLM.from_pretrained(tmp_path)
    msg = str(e.value)
    assert "'bert'" in msg and "'roberta'" in msg
    assert "missing keys [roberta.embeddings" in msg and "unexpected keys [bert.embeddings" in msg


def test_roberta_config_with_foreign_weights_names_keys(tmp_path, mlm_pair):
    """model_type says roberta but the weights are GPT-2's: still the missing and unexpected keys."""
    _, path = mlm_pair
    (tmp_path / "config.json").write_bytes((path / "config.json").read_bytes())
    gpt = transformers.GPT2Model(transformers.GPT2Config(n_layer=1, n_embd=32, n_head=4, vocab_size=61, n_positions=40))
    gpt.save_pretrained(tmp_path / "gpt")
    (tmp_path / "model.safetensors").write_bytes((tmp_path / "gpt" / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match=r"says 'roberta' but the weights are not.*missing keys \[roberta\..*unexpected keys \[.*(wte|h\.0)"):
        RobertaForMaskedLM.from_pretrained(tmp_path)


def test_dynamic_masking_draws_a_new_mask_each_batch():
    ids = torch.randint(5, 61, (8, 64), generator=torch.Generator().manual_seed(0))
    ids[:, 0], ids[:, -1], ids[3, 40:] = 0, 2, PAD
    g = torch.Generator().manual_seed(1)
    (x1, y1), (x2, y2) = (dynamic_mlm_batch(ids, [0, 1, 2, 3], 60, 61, g) for _ in range(2))
    special = (ids == 0) | (ids == 1) | (ids == 2)
    for x, y in ((x1, y1), (x2, y2)):
        sel = y != -100
        assert not (sel & special).any() and torch.equal(y[sel], ids[sel])
        assert torch.equal(x[~sel], ids[~sel]) and 0.08 < sel.float().mean() < 0.22
        assert (x[sel] == 60).float().mean() > 0.6  # most selected tokens become <mask>
    assert not torch.equal(y1, y2)  # dynamic: the same sentences, a different mask


def tiny_bpe(tmp_path):
    """A byte-level BPE vocabulary in RoBERTa's layout: <s> <pad> </s> <unk>, bytes, merges, <mask> last."""
    merges = [("Ġ", "c"), ("a", "t"), ("Ġc", "at"), ("Ġ", "s")]
    tokens = ["<s>", "<pad>", "</s>", "<unk>", *bytes_to_unicode().values(), *("".join(m) for m in merges), "<mask>"]
    tok = GPT2Tokenizer({t: i for i, t in enumerate(tokens)}, merges)
    tok.save(tmp_path)
    return tok


def test_bpe_tokenizer_side_matches_transformers(tmp_path):
    tiny_bpe(tmp_path)
    ours = load_bpe_tokenizer(tmp_path)
    hf = transformers.RobertaTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    for text in ("a cat sat", "the cats, cat!", "héllo 世界"):
        assert encode_roberta(ours, text) == hf(text)["input_ids"], text
