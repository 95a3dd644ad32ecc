"""minibert's ELECTRA against transformers: tiny random generator and discriminator built and
saved here (nothing downloaded), every hidden state, the logits and the losses compared
(tolerance 1e-5 absolute, float32; parameter counts exact), and the replaced-token-detection step
against its definition (labels 1[sampled != original] at real tokens, PyTorch's BCE)."""
import logging

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import transformers

from minibert.albert import AlbertForPreTraining
from minibert.electra import (RTD_WEIGHT, ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining, ElectraModel,
                              replaced_token_detection_step, rtd_loss, share_embeddings)
from minibert.pretraining import mlm_mask_tokens
from tests.reference import close, randomize

TOL = 1e-5
ELECTRA_SMALL_PARAMETERS = 13_549_057  # electra-small discriminator ElectraForPreTraining (issue #17)
PAD, CLS, SEP, MASK = 0, 1, 2, 3
TINY = dict(vocab_size=61, embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=48, max_position_embeddings=40)
GENERATOR = {**TINY, "hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32}  # E = H: no projection


def inputs(b=3, t=13, seed=1):
    """[CLS] A [SEP] B [SEP] rows with two segments, two of them right-padded."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, TINY["vocab_size"], (b, t), generator=g)
    ids[:, 0], ids[:, 5] = CLS, SEP
    ids[1, 9:], ids[2, 11:] = PAD, PAD
    mask = (ids != PAD).long()
    types = torch.zeros_like(ids)
    types[:, 6:] = 1
    return dict(input_ids=ids, token_type_ids=types * mask, attention_mask=mask)


def saved(tmp_path_factory, hf_class, config, name):
    path = tmp_path_factory.mktemp(name)
    torch.manual_seed(0)
    hf = randomize(hf_class(transformers.ElectraConfig(**config)))
    hf.save_pretrained(path)
    return hf, path


@pytest.fixture(scope="module")
def discriminator_pair(tmp_path_factory):
    return saved(tmp_path_factory, transformers.ElectraForPreTraining, TINY, "hf_electra_discriminator")


@pytest.fixture(scope="module")
def generator_pair(tmp_path_factory):
    return saved(tmp_path_factory, transformers.ElectraForMaskedLM, TINY, "hf_electra_generator")


def compare_hidden_states(a, b, mask, layers):
    assert len(a.hidden_states) == len(b.hidden_states) == layers + 1
    for i, (p, q) in enumerate(zip(a.hidden_states, b.hidden_states)):
        assert close(p, q, mask) < TOL, f"hidden state {i}"


def test_discriminator_logits_loss_and_every_hidden_state_match(discriminator_pair):
    hf, path = discriminator_pair
    ours = ElectraForPreTraining.from_pretrained(path).eval()
    assert ours.missing_keys == [] and ours.dropped_keys == []
    assert ours.electra.embeddings.project is not None  # E = 16 -> H = 32
    x = inputs()
    replaced = (torch.rand(x["input_ids"].shape, generator=torch.Generator().manual_seed(2)) < 0.3).long()
    with torch.no_grad():
        a = hf(**x, labels=replaced, output_hidden_states=True)
        b = ours(**x, labels=replaced, output_hidden_states=True)
    compare_hidden_states(a, b, x["attention_mask"], TINY["num_hidden_layers"])
    assert a.logits.shape == b.logits.shape == x["input_ids"].shape
    assert close(a.logits, b.logits, x["attention_mask"]) < TOL and a.logits.abs().max() > 0.5
    assert abs(a.loss.item() - b.loss.item()) < TOL


def test_generator_logits_loss_and_every_hidden_state_match(generator_pair):
    hf, path = generator_pair
    ours = ElectraForMaskedLM.from_pretrained(path).eval()
    assert ours.missing_keys == [] and ours.dropped_keys == []
    x = inputs()
    labels = torch.full_like(x["input_ids"], -100)
    labels[:, 2:5] = x["input_ids"][:, 2:5]
    with torch.no_grad():
        a = hf(**x, labels=labels, output_hidden_states=True)
        b = ours(**x, labels=labels, output_hidden_states=True)
    compare_hidden_states(a, b, x["attention_mask"], TINY["num_hidden_layers"])
    assert close(a.logits, b.logits, x["attention_mask"]) < TOL and a.logits.abs().max() > 0.5
    assert abs(a.loss.item() - b.loss.item()) < TOL


def test_base_model_without_projection_matches(tmp_path_factory):
    hf, path = saved(tmp_path_factory, transformers.ElectraModel, GENERATOR, "hf_electra_model")
    ours = ElectraModel.from_pretrained(path).eval()
    assert ours.missing_keys == [] and ours.embeddings.project is None and ours.pooler is None
    x = inputs()
    with torch.no_grad():
        a, b = hf(**x, output_hidden_states=True), ours(**x, output_hidden_states=True)
    compare_hidden_states(a, b, x["attention_mask"], GENERATOR["num_hidden_layers"])


def test_discriminator_folder_into_generator_reports_the_heads(discriminator_pair, caplog):
    _, path = discriminator_pair
    with caplog.at_level(logging.INFO, logger="minibert"):
        model = ElectraForMaskedLM.from_pretrained(path)
    assert model.missing_keys == ["mlm_head.bias", "mlm_head.dense.bias", "mlm_head.dense.weight",
                                  "mlm_head.norm.bias", "mlm_head.norm.weight"]
    assert "rtd_head.dense.weight" in model.dropped_keys and "randomly initialised" in caplog.text


def test_electra_small_discriminator_parameter_count_on_meta():
    config = ElectraConfig(vocab_size=30522, embedding_size=128, hidden_size=256, num_hidden_layers=12,
                           num_attention_heads=4, intermediate_size=1024, max_position_embeddings=512,
                           type_vocab_size=2)
    with torch.device("meta"):
        model = ElectraForPreTraining(config)
    assert model.electra.embeddings.project is not None and model.electra.pooler is None
    assert sum(p.numel() for p in model.parameters()) == ELECTRA_SMALL_PARAMETERS


def test_albert_checkpoint_given_to_electra_names_both_families_and_keys(tmp_path):
    torch.manual_seed(0)
    transformers.AlbertForPreTraining(transformers.AlbertConfig(**TINY)).save_pretrained(tmp_path)
    with pytest.raises(ValueError) as e:
        ElectraForPreTraining.from_pretrained(tmp_path)
    msg = str(e.value)
    assert "a 'albert' checkpoint, expected 'electra' for ElectraForPreTraining" in msg
    assert "missing keys [electra.embeddings" in msg and "unexpected keys [albert.embeddings" in msg


def test_electra_checkpoint_given_to_albert_is_refused(discriminator_pair):
    _, path = discriminator_pair
    with pytest.raises(ValueError, match=r"a 'electra' checkpoint, expected 'albert'.*unexpected keys \[electra\."):
        AlbertForPreTraining.from_pretrained(path)


# ----------------------------------------------------------------------------- replaced-token detection


def rtd_models(seed=0):
    torch.manual_seed(seed)
    return ElectraForMaskedLM(ElectraConfig(**GENERATOR)), ElectraForPreTraining(ElectraConfig(**TINY))


def unique_parameters(*models):
    return sum(p.numel() for p in nn.ModuleList(models).parameters())  # parameters() skips repeats


def test_generator_uses_the_discriminators_embedding_tables():
    generator, discriminator = rtd_models()
    before = unique_parameters(generator, discriminator)
    share_embeddings(generator, discriminator)
    g, d = generator.electra.embeddings, discriminator.electra.embeddings
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        assert getattr(g, name).weight is getattr(d, name).weight, name
    assert generator.mlm_head.decoder.weight is d.word_embeddings.weight  # the decoder stays tied
    e = TINY["embedding_size"]
    saved = (TINY["vocab_size"] + TINY["max_position_embeddings"] + 2) * e
    assert before - unique_parameters(generator, discriminator) == saved


def test_sharing_needs_the_same_tables():
    generator = ElectraForMaskedLM(ElectraConfig(**{**GENERATOR, "embedding_size": 8}))
    with pytest.raises(ValueError, match=r"same embedding_size in generator and discriminator, received 8 and 16"):
        share_embeddings(generator, ElectraForPreTraining(ElectraConfig(**TINY)))


def masked_batch(seed=3):
    x = inputs()
    special = (x["input_ids"] < 4) | (x["attention_mask"] == 0)
    ids, labels = mlm_mask_tokens(x["input_ids"], special, TINY["vocab_size"], [PAD, CLS, SEP], MASK,
                                  torch.Generator().manual_seed(seed), p=0.4, p_mask=1.0, p_random=0.0)
    return ids, labels, x


def test_labels_are_zero_where_the_generator_sampled_the_original():
    """The generator is made to sample token 7 everywhere; where the original was 7 the label is 0."""
    generator, discriminator = rtd_models()
    share_embeddings(generator, discriminator)
    ids, labels, x = masked_batch()
    masked = labels != -100
    labels[0, masked[0].nonzero()[0]] = 7  # one masked original is 7, as the samples will be
    with torch.no_grad():
        generator.mlm_head.bias[7] = 1e4
        out = replaced_token_detection_step(generator.eval(), discriminator.eval(), ids, labels,
                                            torch.Generator().manual_seed(0), x["token_type_ids"], x["attention_mask"])
    assert torch.equal(out.corrupted_ids[masked], torch.full_like(labels[masked], 7))
    assert torch.equal(out.corrupted_ids[~masked], ids[~masked])
    original = torch.where(masked, labels, ids)
    assert torch.equal(out.replaced.bool(), masked & (original != 7))  # 0 unmasked, 0 where 7 was sampled back
    assert (masked & (original == 7)).any() and out.replaced.sum() > 0


def test_rtd_losses_are_pytorchs_and_sampling_is_seeded_and_not_differentiated():
    generator, discriminator = rtd_models()
    share_embeddings(generator, discriminator)
    ids, labels, x = masked_batch()
    real = x["attention_mask"].bool()
    step = lambda seed: replaced_token_detection_step(generator.eval(), discriminator.eval(), ids, labels,  # noqa: E731
                                                      torch.Generator().manual_seed(seed), x["token_type_ids"],
                                                      x["attention_mask"])
    out = step(0)
    want_d = F.binary_cross_entropy_with_logits(out.discriminator_logits[real], out.replaced[real])
    want_g = F.cross_entropy(out.generator_logits[labels != -100], labels[labels != -100])
    assert abs(out.discriminator_loss.item() - want_d.item()) < 1e-6
    assert abs(out.generator_loss.item() - want_g.item()) < 1e-6
    assert abs(out.loss.item() - (want_g + RTD_WEIGHT * want_d).item()) < 1e-4
    assert torch.equal(step(0).corrupted_ids, out.corrupted_ids)  # the same seed, the same samples
    assert not torch.equal(step(1).corrupted_ids, out.corrupted_ids)
    fc1 = generator.electra.encoder.layers[0].ff.fc1.weight  # the generator's own block: no path from D's loss
    assert torch.autograd.grad(out.discriminator_loss, fc1, allow_unused=True)[0] is None
    assert torch.autograd.grad(out.generator_loss, fc1)[0].abs().sum() > 0


def test_rtd_loss_refuses_labels_of_another_shape():
    with pytest.raises(ValueError, match=r"replaced-token labels: expected shape \(2, 5\), received \(2, 4\)"):
        rtd_loss(torch.zeros(2, 5), torch.zeros(2, 4))
