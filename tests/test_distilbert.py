"""minibert's DistilBERT against transformers (tiny random models built and saved here, nothing
downloaded; every layer and the MLM logits within 1e-5, float32), and distillation from a minibert
teacher: the student's layers are the teacher's every other layer, and a few steps of the
distillation loss through minitransformer's Trainer lower it."""
import json
import logging
from types import SimpleNamespace

import pytest
import torch
import transformers

from minibert import BertConfig, BertForPreTraining, save_pretrained
from minibert.distilbert import (DistilBertConfig, DistilBertForMaskedLM, DistilBertModel, distillation_loss_fn,
                                 every_other_layer, student_from_teacher)
from minibert.pretraining import PretrainingData
from minitransformer.distillation import DistillationWeights
from minitransformer.trainer import Trainer, TrainConfig
from tests.reference import close, randomize

TOL = 1e-5
DISTILBERT_BASE_PARAMETERS = 66_362_880  # distilbert-base-uncased DistilBertModel, as transformers counts it (issue #17)
TINY = dict(vocab_size=61, dim=32, n_layers=3, n_heads=4, hidden_dim=48, max_position_embeddings=40, pad_token_id=0)
TEACHER = dict(vocab_size=61, hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=48,
               max_position_embeddings=40, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def inputs(b=3, t=13, seed=1):
    """Random rows, two of them right-padded with [PAD] = 0."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, TINY["vocab_size"], (b, t), generator=g)
    ids[1, 9:] = 0
    ids[2, 11:] = 0
    return dict(input_ids=ids, attention_mask=(ids != 0).long())


@pytest.fixture(scope="module")
def mlm_pair(tmp_path_factory):
    path = tmp_path_factory.mktemp("hf_distilbert_mlm")
    torch.manual_seed(0)
    hf = randomize(transformers.DistilBertForMaskedLM(transformers.DistilBertConfig(**TINY)))
    hf.save_pretrained(path)
    return hf, path


# ----------------------------------------------------------------------------- parity with transformers


def test_masked_lm_logits_every_hidden_state_and_loss_match(mlm_pair):
    hf, path = mlm_pair
    ours = DistilBertForMaskedLM.from_pretrained(path).eval()
    assert ours.missing_keys == [] and ours.dropped_keys == []
    x = inputs()
    with torch.no_grad():
        a = hf(**x, output_hidden_states=True)
        b = ours(**x, output_hidden_states=True)
    assert len(a.hidden_states) == len(b.hidden_states) == TINY["n_layers"] + 1
    for i, (p, q) in enumerate(zip(a.hidden_states, b.hidden_states)):
        assert close(p, q, x["attention_mask"]) < TOL, f"hidden state {i}"
    assert close(a.logits, b.logits, x["attention_mask"]) < TOL
    assert a.logits.abs().max() > 0.5  # big enough that a wrong weight would show
    labels = torch.full_like(x["input_ids"], -100)
    labels[:, 2:6] = x["input_ids"][:, 2:6]
    with torch.no_grad():
        assert abs(hf(**x, labels=labels).loss.item() - ours(**x, labels=labels).loss.item()) < TOL


def test_base_model_matches_and_has_no_pooler(tmp_path):
    torch.manual_seed(0)
    hf = randomize(transformers.DistilBertModel(transformers.DistilBertConfig(**TINY)), seed=3)
    hf.save_pretrained(tmp_path)
    ours = DistilBertModel.from_pretrained(tmp_path).eval()
    assert ours.missing_keys == [] and not hasattr(ours, "pooler")
    x = inputs(seed=4)
    with torch.no_grad():
        a, b = hf(**x, output_hidden_states=True), ours(**x, output_hidden_states=True)
    assert b.pooler_output is None
    for i, (p, q) in enumerate(zip(a.hidden_states, b.hidden_states)):
        assert close(p, q, x["attention_mask"]) < TOL, f"hidden state {i}"


def test_training_mode_dropout_is_where_transformers_puts_it(tmp_path):
    """With the same seed, training-mode dropout draws the same masks in the same places: after the
    embeddings and after each FFN, none on the attention output (a dropout there would draw more)."""
    config = transformers.DistilBertConfig(**{**TINY, "dropout": 0.3, "attention_dropout": 0.0})
    hf = randomize(transformers.DistilBertForMaskedLM(config), seed=2)
    hf.save_pretrained(tmp_path)
    ours = DistilBertForMaskedLM.from_pretrained(tmp_path)
    hf.train(), ours.train()
    x = inputs(seed=2)
    torch.manual_seed(5)
    a = hf(**x).logits
    torch.manual_seed(5)
    b = ours(**x).logits
    torch.manual_seed(6)
    c = ours(**x).logits
    assert close(a, b, x["attention_mask"]) < TOL and close(b, c, x["attention_mask"]) > 0.1  # dropout is on


def test_masked_lm_folder_into_base_model_drops_the_head_and_back(mlm_pair, tmp_path, caplog):
    _, path = mlm_pair
    base = DistilBertModel.from_pretrained(path)
    assert base.missing_keys == [] and "mlm_head.dense.weight" in base.dropped_keys
    transformers.DistilBertModel(transformers.DistilBertConfig(**TINY)).save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING, logger="minibert"):
        mlm = DistilBertForMaskedLM.from_pretrained(tmp_path)
    assert "mlm_head.dense.weight" in mlm.missing_keys and "randomly initialised" in caplog.text


def test_sinusoidal_positions_are_transformers_table_fixed_and_load(tmp_path):
    config = transformers.DistilBertConfig(**TINY, sinusoidal_pos_embds=True)
    torch.manual_seed(0)
    hf = randomize(transformers.DistilBertModel(config), seed=5, skip=("position_embeddings",))
    fresh = DistilBertModel(DistilBertConfig(**TINY, sinusoidal_pos_embds=True)).embeddings.position_embeddings.weight
    assert close(fresh, hf.embeddings.position_embeddings.weight) < 1e-6 and not fresh.requires_grad
    assert fresh[:, 1::2].abs().max() > 0.5  # a real table, not zeros
    hf.save_pretrained(tmp_path)
    ours = DistilBertModel.from_pretrained(tmp_path).eval()
    x = inputs(seed=6)
    with torch.no_grad():
        assert close(hf(**x).last_hidden_state, ours(**x).last_hidden_state, x["attention_mask"]) < TOL


def test_distilbert_base_parameter_count_on_meta():
    with torch.device("meta"):
        model = DistilBertModel(DistilBertConfig())  # distilbert-base-uncased's defaults
    c = model.config
    assert (c.vocab_size, c.dim, c.n_layers, c.n_heads, c.hidden_dim, c.max_position_embeddings) == (
        30522, 768, 6, 12, 3072, 512)
    assert sum(p.numel() for p in model.parameters()) == DISTILBERT_BASE_PARAMETERS


# ----------------------------------------------------------------------------- bad input


def test_bert_checkpoint_given_to_distilbert_names_both_families_and_keys(tmp_path):
    save_pretrained(BertForPreTraining(BertConfig(**TEACHER)), tmp_path)
    with pytest.raises(ValueError) as e:
        DistilBertForMaskedLM.from_pretrained(tmp_path)
    msg = str(e.value)
    assert "a 'bert' checkpoint, expected 'distilbert' for DistilBertForMaskedLM" in msg
    assert "missing keys [distilbert.embeddings" in msg and "unexpected keys [bert.embeddings" in msg


def test_distilbert_config_with_bert_weights_names_keys(tmp_path, mlm_pair):
    _, path = mlm_pair
    save_pretrained(BertForPreTraining(BertConfig(**TEACHER)), tmp_path)
    (tmp_path / "config.json").write_bytes((path / "config.json").read_bytes())
    with pytest.raises(ValueError, match=r"says 'distilbert' but the weights are not those of DistilBertModel; missing keys \[embeddings\..*"
                                         r"unexpected keys \[bert\."):
        DistilBertModel.from_pretrained(tmp_path)


def test_untied_or_wrong_config_is_refused(tmp_path, mlm_pair):
    _, path = mlm_pair
    d = json.loads((path / "config.json").read_text())
    with pytest.raises(ValueError, match=r"tie_word_embeddings: expected true.*received False"):
        DistilBertConfig.from_dict({**d, "tie_word_embeddings": False})
    with pytest.raises(ValueError, match=r"expected dim divisible by n_heads, received dim=32, n_heads=5"):
        DistilBertConfig(**{**TINY, "n_heads": 5})
    with pytest.raises(ValueError, match=r"input_ids: expected length <= max_position_embeddings=40, received 41"):
        DistilBertModel(DistilBertConfig(**TINY))(torch.ones(1, 41, dtype=torch.long))


# ----------------------------------------------------------------------------- distillation from a minibert teacher


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return randomize(BertForPreTraining(BertConfig(**TEACHER)), seed=7)


def test_student_layer_i_is_teacher_layer_2i(teacher):
    student = student_from_teacher(teacher, 2).eval()
    t_layers, s_layers = teacher.bert.encoder.layers, student.distilbert.transformer.layers
    for i in range(2):
        s, same, other = s_layers[i].state_dict(), t_layers[2 * i].state_dict(), t_layers[2 * i + 1].state_dict()
        assert s.keys() == same.keys() and all(torch.equal(s[k], same[k]) for k in s), f"layer {i}"
        assert not any(torch.equal(s[k], other[k]) for k in s if k.endswith("weight"))
    assert torch.equal(student.distilbert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight)
    assert student.mlm_head.decoder.weight is student.distilbert.embeddings.word_embeddings.weight  # still tied
    # the student computes the teacher's embeddings (no segments), layers 0 and 2, MLM head
    x = inputs(seed=8)
    with torch.no_grad():
        e = teacher.bert.embeddings
        h = e.norm(e.word_embeddings(x["input_ids"]) + e.position_embeddings(x["input_ids"].size(1)))
        for j in (0, 2):
            h, _ = t_layers[j](h, x["attention_mask"])
        by_hand = teacher.mlm_head(h)
        ours = student(**x).logits
        fresh = DistilBertForMaskedLM(student.config).eval()(**x).logits
    assert close(ours, by_hand) < 1e-5
    assert close(ours, fresh) > 0.1  # not a random student


def test_student_needs_a_teacher_with_enough_layers(teacher):
    assert every_other_layer(12, 6) == [0, 2, 4, 6, 8, 10]
    with pytest.raises(ValueError, match=r"expected 1 <= n_layers <= 2 .* received 3"):
        student_from_teacher(teacher, 3)
    with pytest.raises(ValueError, match=r"teacher: expected a minibert BertForPreTraining, received DistilBertModel"):
        student_from_teacher(DistilBertModel(DistilBertConfig(**TINY)), 1)


def tiny_pretraining_batch():
    """One batch of minibert's pretraining data ([CLS] A [SEP] B [SEP], 15% masked) over random documents."""
    g = torch.Generator().manual_seed(9)
    docs = [[torch.randint(5, 61, (int(torch.randint(3, 8, (1,), generator=g)),), generator=g).tolist()
             for _ in range(4)] for _ in range(6)]
    tok = SimpleNamespace(pad_id=0, cls_id=1, sep_id=2, mask_id=3, special_ids=[0, 1, 2, 3, 4], vocab_size=61)
    return PretrainingData({"train": docs}, tok, batch_size=8, max_len=24, seed=0)("train", 0)


def test_distillation_steps_through_the_trainer_lower_the_loss(teacher, tmp_path):
    batch = tiny_pretraining_batch()
    student = student_from_teacher(teacher, 2)
    teacher.train()  # the loss function puts it in eval mode itself
    config = TrainConfig(out_dir=str(tmp_path / "run"), max_steps=20, batch_size=8, lr=3e-3, min_lr=3e-3,
                         warmup_steps=0, eval_interval=0, checkpoint_interval=-1, progress=False, device="cpu")
    trainer = Trainer(student, config, lambda split, i: batch, loss_fn=distillation_loss_fn(teacher),
                      model_config=student.config.to_dict())
    rows = [trainer.train_step(s) for s in range(config.max_steps)]
    first, last = rows[0], rows[-1]
    assert {"ce_loss", "mlm_loss", "cos_loss"} <= set(first)
    assert first["loss"] == pytest.approx(5 * first["ce_loss"] + 2 * first["mlm_loss"] + first["cos_loss"], rel=1e-5)
    assert last["loss"] < 0.7 * first["loss"], (first, last)
    assert not teacher.training and all(p.grad is None for p in teacher.parameters())
    trainer.save()  # the distilled student reloads from the run's checkpoint folder
    reloaded = DistilBertForMaskedLM.from_pretrained(trainer.checkpoint_dir).eval()
    assert reloaded.missing_keys == [] and reloaded.dropped_keys == []
    with torch.no_grad():
        x = dict(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        assert torch.equal(student.eval()(**x).logits, reloaded(**x).logits)


def test_loss_fn_weights_and_positions(teacher):
    batch = tiny_pretraining_batch()
    student = student_from_teacher(teacher, 1)
    only_mlm = distillation_loss_fn(teacher, weights=DistillationWeights(0.0, 1.0, 0.0))(student, batch)[0]
    mlm = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    assert abs(only_mlm.item() - mlm.item()) < 1e-6
    ce = DistillationWeights(1.0, 0.0, 0.0)
    real = distillation_loss_fn(teacher, weights=ce)(student, batch)[0]
    masked = distillation_loss_fn(teacher, weights=ce, ce_positions="masked")(student, batch)[0]
    assert abs(real.item() - masked.item()) > 1e-4  # a different set of positions
    with pytest.raises(ValueError, match=r"ce_positions: expected 'real' or 'masked', received 'all'"):
        distillation_loss_fn(teacher, ce_positions="all")
    with pytest.raises(ValueError, match=r"temperature: expected T > 0, received 0"):
        distillation_loss_fn(teacher, temperature=0)
