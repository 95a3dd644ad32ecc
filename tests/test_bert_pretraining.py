"""Pretraining data (Article §3.2.3): the MLM masking rule's statistics, the NSP sampler, the
truncation rule, the MLM loss's indifference to unselected positions, and a short run in which NSP
accuracy rises clearly above chance."""
import math
import random

import pytest
import torch

from minibert import BertConfig, BertForPreTraining, mlm_loss
from minibert.pretraining import (PretrainingData, build_pair_inputs, build_single_inputs, make_nsp_pair,
                                  mlm_mask_tokens, pretraining_loss, truncate_pair)
from minibert.wordpiece import WordPieceTokenizer
from minitransformer.trainer import Trainer, TrainConfig

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIAL = [PAD, UNK, CLS, SEP, MASK]


def z_ok(count, n, p, z=5.0):
    """|count - n p| within z standard errors of a binomial(n, p)."""
    return abs(count - n * p) <= z * math.sqrt(n * p * (1 - p))


def test_masking_rule_statistics():
    """≥ 100,000 draws: 15% selected; 80/10/10; specials and padding never selected nor drawn.
    Tolerance: 5 binomial standard errors."""
    g = torch.Generator().manual_seed(0)
    vocab = 40
    ids = torch.randint(5, vocab, (4000, 256), generator=g)
    ids[:, 0], ids[:, 127], ids[:, 255] = CLS, SEP, SEP
    ids[::3, 200:] = PAD  # padded rows
    ids[5, 10] = UNK
    special_mask = torch.isin(ids, torch.tensor(SPECIAL))
    inputs, labels = mlm_mask_tokens(ids, special_mask, vocab, SPECIAL, MASK, g, p=0.15)
    selectable = int((~special_mask).sum())
    assert selectable > 900_000
    selected = labels != -100
    assert not (selected & special_mask).any()  # specials and padding never selected
    assert torch.equal(labels[selected], ids[selected])  # labels keep the original token
    assert torch.equal(inputs[~selected], ids[~selected])  # nothing else changes
    n_sel = int(selected.sum())
    assert n_sel > 100_000
    assert z_ok(n_sel, selectable, 0.15)
    masked = selected & (inputs == MASK)
    changed = selected & (inputs != MASK) & (inputs != ids)
    assert z_ok(int(masked.sum()), n_sel, 0.8)
    # a random replacement equals the original with prob 1/35, so "unchanged" gets 0.1 * 1/35 extra
    p_changed = 0.1 * (1 - 1 / (vocab - 5))
    assert z_ok(int(changed.sum()), n_sel, p_changed)
    assert z_ok(n_sel - int(masked.sum()) - int(changed.sum()), n_sel, 1 - 0.8 - p_changed)
    replaced = inputs[changed]
    assert not torch.isin(replaced, torch.tensor(SPECIAL)).any()  # never a special token


def test_random_replacements_cover_only_non_special_ids():
    g = torch.Generator().manual_seed(1)
    ids = torch.full((2000, 50), 7)
    inputs, labels = mlm_mask_tokens(ids, torch.zeros_like(ids, dtype=torch.bool), 12, SPECIAL, MASK, g,
                                     p=1.0, p_mask=0.0, p_random=1.0)
    assert set(inputs.unique().tolist()) == set(range(5, 12))  # every non-special id, no special one
    counts = torch.bincount(inputs.flatten(), minlength=12)[5:]
    n = ids.numel()
    assert all(z_ok(int(c), n, 1 / 7) for c in counts)  # uniform


def test_masking_is_dynamic_and_reproducible():
    ids = torch.randint(5, 30, (4, 20), generator=torch.Generator().manual_seed(0))
    sm = torch.zeros_like(ids, dtype=torch.bool)
    a = mlm_mask_tokens(ids, sm, 30, SPECIAL, MASK, torch.Generator().manual_seed(3))
    b = mlm_mask_tokens(ids, sm, 30, SPECIAL, MASK, torch.Generator().manual_seed(3))
    c = mlm_mask_tokens(ids, sm, 30, SPECIAL, MASK, torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


def test_nsp_sampler_half_next_never_true_next_as_negative():
    docs = [[[100 * d + s] for s in range(random.Random(d).randint(2, 6))] for d in range(30)]
    rng = random.Random(0)
    n, n_next = 20_000, 0
    for _ in range(n):
        d = rng.randrange(len(docs))
        s = rng.randrange(len(docs[d]) - 1)
        a, b, is_next = make_nsp_pair(docs, d, s, rng)
        assert a == docs[d][s]
        if is_next:
            n_next += 1
            assert b == docs[d][s + 1]
        else:
            assert b[0] // 100 != d  # from another document, so never the true next sentence
    assert z_ok(n_next, n, 0.5)
    with pytest.raises(ValueError, match="successor"):
        make_nsp_pair(docs, 0, len(docs[0]) - 1, rng)
    with pytest.raises(ValueError, match="at least 2"):
        make_nsp_pair(docs[:1], 0, 0, rng)


def test_truncation_longest_first_and_head():
    a, b = list(range(10)), list(range(100, 104))
    ta, tb = truncate_pair(a, b, 10)
    assert ta == list(range(6)) and tb == b  # only the longer one loses its tail, until they tie...
    ta, tb = truncate_pair(a, b, 6)
    assert (ta, tb) == ([0, 1, 2], [100, 101, 102])  # ...then B on a tie
    ids, seg = build_pair_inputs(list(range(5, 1000)), list(range(5, 900)), CLS, SEP, 512)
    assert len(ids) == 512 and ids[0] == CLS and ids.count(SEP) == 2 and ids[-1] == SEP
    assert seg == [0] * 257 + [1] * 255  # A 255 tokens, B 254 (B lost the tie), plus [CLS] [SEP] [SEP]
    ids, seg = build_single_inputs(list(range(5, 2000)), CLS, SEP, 16)
    assert ids == [CLS] + list(range(5, 19)) + [SEP] and seg == [0] * 16


def test_mlm_loss_counts_only_selected_positions():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 6, 9, generator=g)
    labels = torch.full((2, 6), -100)
    labels[0, 1], labels[1, 4] = 3, 7
    want = -(torch.log_softmax(logits[0, 1], -1)[3] + torch.log_softmax(logits[1, 4], -1)[7]) / 2
    assert abs(mlm_loss(logits, labels).item() - want.item()) < 1e-6
    other = logits.clone()
    other[labels == -100] = torch.randn(10, 9, generator=g) * 50  # anything at unselected positions
    assert mlm_loss(other, labels).item() == pytest.approx(want.item(), abs=1e-6)
    assert mlm_loss(logits, torch.full((2, 6), -100)).item() == 0.0  # no selected position: 0, not NaN


def test_model_loss_ignores_padding_content():
    """Whatever token ids sit under attention_mask = 0 (and labels -100), the loss is the same."""
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                          intermediate_size=32, max_position_embeddings=16)).eval()
    ids = torch.randint(5, 30, (2, 10))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    labels = torch.full_like(ids, -100)
    labels[:, 2] = ids[:, 2]
    batch = dict(input_ids=ids, attention_mask=mask, labels=labels, next_sentence_label=torch.tensor([0, 1]))
    with torch.no_grad():
        base = model(**batch).loss.item()
        noisy = ids.clone()
        noisy[1, 6:] = torch.randint(5, 30, (4,))
        assert model(**{**batch, "input_ids": noisy}).loss.item() == pytest.approx(base, abs=1e-6)
        noisy[0, 5] = (ids[0, 5] + 1 - 5) % 25 + 5  # a real, unselected token does change the loss
        assert model(**{**batch, "input_ids": noisy}).loss.item() != pytest.approx(base, abs=1e-6)


def topic_corpus(n_docs=60, n_topics=6, words_per_topic=6, seed=0):
    """Coherent documents: every sentence of a document uses its topic's words only."""
    rng = random.Random(seed)
    topics = [[f"w{t}x{i}" for i in range(words_per_topic)] for t in range(n_topics)]
    docs = []
    for d in range(n_docs):
        words = topics[d % n_topics]
        docs.append([" ".join(rng.choice(words) for _ in range(5)) for _ in range(rng.randint(3, 6))])
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [w for t in topics for w in t]
    return docs, WordPieceTokenizer(vocab)


def test_nsp_accuracy_rises_above_chance(tmp_path):
    """A short CPU run on a generated coherent-document corpus: validation NSP accuracy > 75%."""
    torch.manual_seed(0)
    docs, tok = topic_corpus()
    encoded = [[tok.encode(s) for s in d] for d in docs]
    data = PretrainingData({"train": encoded[:48], "val": encoded[48:]}, tok, batch_size=32, max_len=16, seed=0)
    batch = data("train", 0)
    assert batch["input_ids"].shape[0] == 32 and set(batch["next_sentence_label"].tolist()) == {0, 1}
    assert torch.equal(batch["labels"], data("train", 0)["labels"])  # pure function of (split, index)
    model = BertForPreTraining(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                                          num_attention_heads=2, intermediate_size=64, max_position_embeddings=16,
                                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    cfg = TrainConfig(out_dir=str(tmp_path), max_steps=200, batch_size=32, lr=5e-3, min_lr=5e-4, warmup_steps=10,
                      eval_interval=200, eval_steps=8, log_interval=50, checkpoint_interval=-1, progress=False,
                      weight_decay=0.01, betas=(0.9, 0.999))
    history = Trainer(model, cfg, data, loss_fn=pretraining_loss, model_config=model.config.to_dict()).fit()
    first = next(r for r in history if r["split"] == "val")
    last = [r for r in history if r["split"] == "val"][-1]
    assert 0.3 < first["nsp_acc"] < 0.7  # chance at step 0
    assert last["nsp_acc"] > 0.75, last
    assert last["mlm_loss"] < first["mlm_loss"] - 0.5
