"""GPT as a classifier (minigpt.classify) against transformers' GPT2ForSequenceClassification (a tiny
random model built here, nothing downloaded): logits at the last real token of right-padded rows,
the loss, the last-token index against its closed form, and the refused inputs.

Tolerance: logits 1e-5 absolute (float32), loss 1e-5.
"""
import pytest
import torch
from transformers import GPT2Config, GPT2ForSequenceClassification

from minigpt.classify import GPTClassifierConfig, GPTForSequenceClassification, last_token_index
from minigpt.config import GPTConfig
from minigpt.model import GPT

V, T, PAD = 100, 32, 0
TOL = 1e-5


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_head=4, n_embd=32, vocab_size=V, n_positions=T, num_labels=3, pad_token_id=PAD,
                        bos_token_id=None, eos_token_id=None)
    model = GPT2ForSequenceClassification(config)
    with torch.no_grad():  # far from the init, so every weight shows in the logits
        for name, p in model.named_parameters():
            p.normal_(1.0 if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")) else 0.0, 0.2)
    folder = tmp_path_factory.mktemp("gpt2_cls")
    model.eval().save_pretrained(folder)
    return folder, model


def right_padded(lengths, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, V, (len(lengths), max(lengths)), generator=g)  # (B, T), no PAD inside the text
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        ids[i, n:] = PAD
        mask[i, :n] = 1
    return ids, mask


def test_logits_and_loss_equal_transformers(hf_folder):
    folder, hf = hf_folder
    ours = GPTForSequenceClassification.from_pretrained(folder).eval()
    assert ours.config.num_labels == 3 and ours.config.pad_token_id == PAD
    ids, mask = right_padded([7, 20, 13, 1])
    labels = torch.tensor([0, 2, 1, 2])
    with torch.no_grad():
        ref = hf(input_ids=ids, labels=labels)
        out = ours(ids, mask, labels=labels)
        by_pad = ours(ids, labels=labels)  # no mask: the padding id decides, as transformers does
    assert out.logits.shape == (4, 3)
    assert (out.logits - ref.logits).abs().max().item() < TOL
    assert abs(out.loss.item() - ref.loss.item()) < TOL
    assert torch.equal(by_pad.logits, out.logits)


def test_the_last_real_token_decides_and_padding_changes_nothing(hf_folder):
    folder, _ = hf_folder
    model = GPTForSequenceClassification.from_pretrained(folder).eval()
    ids, mask = right_padded([9, 16])
    with torch.no_grad():
        both = model(ids, mask).logits
        alone = model(ids[:1, :9]).logits  # the first row without its padding
        h = model.gpt.hidden_states(ids[:1, :9])  # (1, 9, C)
    assert (both[0] - alone[0]).abs().max().item() < TOL
    assert (alone[0] - h[0, -1] @ model.score.weight.T).abs().max().item() < TOL  # W · h_L at the last token


def test_last_token_index_is_the_rightmost_real_position():
    ids = torch.tensor([[5, 6, 7, 0, 0], [5, 0, 0, 0, 0], [5, 6, 7, 8, 9]])
    assert last_token_index(ids, pad_token_id=0).tolist() == [2, 0, 4]
    assert last_token_index(ids, (ids != 0).long()).tolist() == [2, 0, 4]
    assert last_token_index(ids).tolist() == [4, 4, 4]
    with pytest.raises(ValueError, match=r"attention_mask: expected the shape of input_ids \(3, 5\), received \(3, 4\)"):
        last_token_index(ids, torch.ones(3, 4))


def test_a_pretrained_gpt_loads_into_the_classifier_and_bad_configs_are_refused():
    config = GPTClassifierConfig(block_size=16, vocab_size=V, n_layer=1, n_head=2, n_embd=16, num_labels=2)
    clf = GPTForSequenceClassification(config)
    lm = GPT(config)
    clf.gpt.load_state_dict(lm.state_dict())  # the LM's weights, names unchanged
    assert all(torch.equal(a, b) for a, b in zip(clf.gpt.state_dict().values(), lm.state_dict().values()))
    assert sum(p.numel() for p in clf.parameters()) == lm.num_parameters() + 16 * 2  # + W (C × labels), no bias
    with pytest.raises(ValueError, match="num_labels: expected a positive integer, received 0"):
        GPTClassifierConfig(block_size=16, vocab_size=V, n_layer=1, n_head=2, n_embd=16, num_labels=0)
    with pytest.raises(ValueError, match="expected a GPTClassifierConfig, received GPTConfig"):
        GPTForSequenceClassification(GPTConfig(block_size=16, vocab_size=V, n_layer=1, n_head=2, n_embd=16))
