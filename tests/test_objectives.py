"""minibert.objectives: the six pretraining objectives of ch16 §4 on one corpus. The batches against
their definitions (closed forms), every objective's loss against a recomputation from the model's
own outputs, and the classifiers built from the pretrained weights."""
from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from minibert.heads import IGNORE_INDEX
from minibert.objectives import OBJECTIVES, Corpus, build_objective, tiny_sizes
from minibert.pretraining import tokenize_documents
from minitransformer.data import BERT_SPECIALS, CharTokenizer

SENTENCES = ["the food was good.", "we were happy.", "the room was bad.", "i was sad.", "the staff were kind.", "so nice."]


@pytest.fixture(scope="module")
def corpus():
    tok = CharTokenizer.train(" ".join(SENTENCES), specials=BERT_SPECIALS)
    rng = random.Random(0)
    docs = [[rng.choice(SENTENCES), rng.choice(SENTENCES)] for _ in range(20)]
    split = {"train": tokenize_documents(docs[4:], tok), "val": tokenize_documents(docs[:4], tok)}
    return Corpus(split, tok, batch_size=6, max_len=48, p_mlm=0.3, seed=1)


def sizes(corpus, **kw):
    return tiny_sizes(corpus.tokenizer.vocab_size, corpus.max_len, **{"hidden_size": 16, "intermediate_size": 64, **kw})


def test_causal_rows_are_whole_documents_with_targets_shifted_by_one(corpus):
    tok = corpus.tokenizer
    b = corpus.causal_batch("train", 3)
    idx, targets = b["idx"], b["targets"]  # (B, T)
    assert idx.shape == targets.shape and idx.size(0) == 6 and idx.size(1) <= corpus.max_len
    for row, tgt in zip(idx.tolist(), targets.tolist()):
        real = [t for t in row if t != tok.pad_id]
        assert real[0] == tok.cls_id and real[-1] == tok.sep_id and row[:len(real)] == real  # right-padded
        expected = real[1:] + [IGNORE_INDEX] * (len(row) - len(real) + 1)  # next token; nothing after [SEP]
        assert tgt == expected
    assert torch.equal(corpus.causal_batch("train", 3)["idx"], idx)  # a pure function of (seed, split, index)
    assert not torch.equal(corpus.causal_batch("train", 4)["idx"], idx)


def test_document_batches_mask_only_text_tokens_and_the_causal_rows_are_their_unmasked_text(corpus):
    b = corpus.document_batch("val", 0)
    rows = corpus.causal_batch("val", 0)["idx"]  # the same documents: one rng stream ("full")
    selected = b["labels"] != IGNORE_INDEX  # (B, T)
    assert torch.equal(b["labels"][selected], rows[selected])  # labels are the original tokens
    assert torch.equal(b["input_ids"][~selected], rows[~selected])  # unselected positions unchanged
    specials = torch.isin(rows, torch.tensor(corpus.specials))
    assert not (selected & specials).any() and selected.any()
    assert torch.equal(b["attention_mask"], (rows != corpus.tokenizer.pad_id).long())


def test_sop_rows_are_two_sentences_of_one_document_swapped_when_labelled_1(corpus):
    tok = corpus.tokenizer
    b = corpus.sop_batch("train", 0)
    sentences = {tuple(s) for d in corpus.docs["train"] for s in d}
    for ids, seg, y, labels in zip(b["input_ids"].tolist(), b["token_type_ids"].tolist(), b["next_sentence_label"].tolist(),
                                   b["labels"].tolist()):
        original = [lab if lab != IGNORE_INDEX else t for t, lab in zip(ids, labels)]
        real = [t for t in original if t != tok.pad_id]
        first_sep = real.index(tok.sep_id)
        a, c = tuple(real[1:first_sep]), tuple(real[first_sep + 1:-1])
        assert a in sentences and c in sentences and real[-1] == tok.sep_id and y in (0, 1)
        assert seg[:first_sep + 1] == [0] * (first_sep + 1) and set(seg[first_sep + 1:len(real)]) == {1}


@pytest.mark.parametrize("name", OBJECTIVES)
def test_each_objective_trains_and_its_classifier_holds_the_pretrained_encoder(corpus, name):
    objective = build_objective(name, corpus, sizes(corpus), init_seed=0)
    batch = objective.get_batch("train", 0)
    loss, logs = objective.loss_fn(objective.model, batch)
    assert loss.dim() == 0 and torch.isfinite(loss) and logs
    if name == "causal":  # the loss recomputed from the logits: next-token cross-entropy over real targets
        logits, _ = objective.model(batch["idx"])
        ref = F.cross_entropy(logits.flatten(0, 1), batch["targets"].flatten(), ignore_index=IGNORE_INDEX)
        assert abs(loss.item() - ref.item()) < 1e-5
    opt = torch.optim.SGD(objective.model.parameters(), lr=0.1)
    loss.backward()
    opt.step()
    opt.zero_grad()
    after, logs_after = objective.loss_fn(objective.model, batch)
    if name == "rtd":  # the generator samples afresh each call; its own MLM loss does not depend on the samples
        assert logs_after["generator_loss"] < logs["generator_loss"]
    else:
        assert after.item() < loss.item()  # one step downhill on the same batch

    clf, scratch = objective.classifier(True), objective.classifier(False)
    body = clf.gpt if name == "causal" else clf.bert
    source = {"mlm_nsp": lambda m: m.bert, "mlm_sop": lambda m: m.bert, "albert": lambda m: m.albert, "mlm": lambda m: m.roberta,
              "rtd": lambda m: m["discriminator"].electra, "causal": lambda m: m}[name](objective.model)
    want, got = source.state_dict(), body.state_dict()
    shared = [k for k in want if k in got]
    assert len(shared) == len(want) and all(torch.equal(want[k], got[k]) for k in shared)
    other = (scratch.gpt if name == "causal" else scratch.bert).state_dict()
    assert not all(torch.equal(want[k], other[k]) for k in shared)  # from scratch: random weights
    with torch.no_grad():
        enc = {"input_ids": batch.get("input_ids", batch.get("idx"))}
        enc["attention_mask"] = (enc["input_ids"] != corpus.tokenizer.pad_id).long()
        assert clf.eval()(**enc).logits.shape == (6, 2)


def test_bad_names_and_sizes_are_refused(corpus):
    with pytest.raises(ValueError, match=r"objective: expected one of mlm_nsp, mlm, mlm_sop, albert, rtd, causal, received 'xlnet'"):
        build_objective("xlnet", corpus, sizes(corpus), init_seed=0)
    with pytest.raises(ValueError, match=r"causal: GPT's MLP is 4·hidden_size = 64 wide, received intermediate_size 48"):
        build_objective("causal", corpus, sizes(corpus, intermediate_size=48), init_seed=0)
