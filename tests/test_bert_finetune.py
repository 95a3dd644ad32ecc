"""Fine-tuning pieces: subword label alignment, truncation, the linear probe, and evaluate()'s
metrics on hand-computed examples (Article §3.2.5; F1 = harmonic mean of precision and recall)."""
import json

import pytest
import torch
import torch.nn as nn

from minibert import BertConfig, BertForSequenceClassification, ClassifierOutput
from minibert.evaluate import evaluate
from minibert.finetune import (align_word_labels, collate, encode_classification, encode_ner, finetune,
                               label_vocab)
from minibert.wordpiece import WordPieceTokenizer
from minitransformer.data import Example, LabelVocab, TaggedSentence
from minitransformer.trainer import TrainConfig

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "xa", "xb", "xc", "new", "york", "ann", "lee", "went", "to",
         "play", "##ing", "##ed", "."]


@pytest.fixture
def tok():
    return WordPieceTokenizer(VOCAB)


def test_align_first_subword_carries_the_tag():
    ids, labels, kept = align_word_labels([[10], [14, 15], [12], [14, 16, 16]], [1, 0, 0, 2], max_tokens=100)
    assert ids == [10, 14, 15, 12, 14, 16, 16]
    assert labels == [1, 0, -100, 0, 2, -100, -100] and kept == 4
    ids, labels, kept = align_word_labels([[10], [14, 15], [12]], [1, 0, 0], max_tokens=2)
    assert ids == [10, 14] and labels == [1, 0] and kept == 2


def test_encode_ner_and_truncation(tok):
    vocab = LabelVocab(["O", "B-PER", "I-PER"])
    s = TaggedSentence(("ann", "playing", "lee"), ("B-PER", "O", "B-PER"))
    (enc,) = encode_ner([s], tok, vocab, max_len=16)
    assert enc["input_ids"] == [2, 10, 14, 15, 11, 3]
    assert enc["labels"] == [-100, vocab.encode("B-PER"), vocab.encode("O"), -100, vocab.encode("B-PER"), -100]
    long = TaggedSentence(("ann",) * 500, ("O",) * 500)
    (enc,) = encode_ner([long], tok, vocab, max_len=32)
    assert len(enc["input_ids"]) == 32 and enc["n_kept"] == 30
    (c,) = encode_classification([Example("xa " * 1000, "a")], tok, LabelVocab(["a"]), max_len=20)
    assert c["input_ids"] == [2] + [5] * 18 + [3]  # head kept, [CLS] ... [SEP]
    batch = collate([enc, {"input_ids": [2, 3], "labels": [-100, -100], "n_kept": 0}], tok.pad_id)
    assert batch["input_ids"].shape == (2, 32) and batch["labels"][1, 2:].eq(-100).all()
    assert batch["attention_mask"][1].tolist() == [1, 1] + [0] * 30


class LookupModel(nn.Module):
    """A stand-in for a fine-tuned BERT whose predictions we choose: token id -> label id."""

    def __init__(self, id2label, table, per_token):
        super().__init__()
        self.config = BertConfig(vocab_size=len(VOCAB), id2label=id2label)
        self.table, self.per_token = table, per_token

    def forward(self, input_ids, attention_mask=None, **_):
        n = len(self.config.id2label)
        if self.per_token:
            pred = torch.tensor([[self.table.get(int(t), 0) for t in row] for row in input_ids])  # (B, T)
        else:
            pred = torch.tensor([self.table[int(row[1])] for row in input_ids])  # first token after [CLS]
        return ClassifierOutput(None, nn.functional.one_hot(pred, n).float())


def test_classification_metrics_by_hand(tok, tmp_path):
    """gold a a b b c, predicted a b b b a. Hand computation:
    accuracy 3/5; a: P 1/2 R 1/2 F1 1/2; b: P 2/3 R 1 F1 0.8; c: never predicted, P 0 R 0 F1 0.
    macro F1 (0.5 + 0.8 + 0)/3 = 0.4333; micro P = R = F1 = accuracy = 0.6."""
    items = [Example("xa", "a"), Example("xb", "a"), Example("xb", "b"), Example("xb", "b"), Example("xa", "c")]
    model = LookupModel({0: "a", 1: "b", 2: "c"}, {5: 0, 6: 1}, per_token=False)
    res = evaluate(model, tok, "classify", items, 16, predictions=tmp_path / "p.jsonl", confusion_png=tmp_path / "cm.png")
    r = res["report"]
    assert res["accuracy"] == pytest.approx(0.6)
    assert (r.per_class["a"].precision, r.per_class["a"].recall, r.per_class["a"].f1) == pytest.approx((0.5, 0.5, 0.5))
    assert (r.per_class["b"].precision, r.per_class["b"].recall, r.per_class["b"].f1) == pytest.approx((2 / 3, 1.0, 0.8))
    assert r.per_class["c"].f1 == 0.0
    assert r.macro.f1 == pytest.approx(1.3 / 3) and r.micro.f1 == pytest.approx(0.6)
    assert res["confusion"].tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [r["pred"] for r in rows] == ["a", "b", "b", "b", "a"]
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"
    assert "precision (精确率)" in res["text"]


def test_ner_entity_level_metrics_by_hand(tok, tmp_path):
    """Gold entities: [new york]LOC, [ann]PER, [lee]PER. Predicted: [new]LOC (span too short: FP and FN),
    [ann]PER (TP), [lee]LOC (wrong type: FP LOC and FN PER). TP 1, predicted 3, true 3:
    P = R = F1 = 1/3; PER: P 1/1, R 1/2, F1 2/3; LOC: P 0/2, R 0/1, F1 0."""
    id2label = {0: "O", 1: "B-LOC", 2: "I-LOC", 3: "B-PER", 4: "I-PER"}
    table = {8: 1, 9: 0, 10: 3, 11: 1}  # new B-LOC, york O, ann B-PER, lee B-LOC
    model = LookupModel(id2label, table, per_token=True)
    items = [TaggedSentence(("new", "york", "."), ("B-LOC", "I-LOC", "O")),
             TaggedSentence(("ann", "went", "to", "lee"), ("B-PER", "O", "O", "B-PER"))]
    res = evaluate(model, tok, "ner", items, 16, predictions=tmp_path / "p.tsv")
    r = res["report"]
    assert (r.micro.precision, r.micro.recall, r.micro.f1) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert (r.per_class["PER"].precision, r.per_class["PER"].recall, r.per_class["PER"].f1) == pytest.approx((1, 0.5, 2 / 3))
    assert r.per_class["LOC"].f1 == 0.0 and r.per_class["LOC"].support == 1
    lines = (tmp_path / "p.tsv").read_text().splitlines()
    assert lines[0] == "sentence\ttoken\tgold\tpred" and lines[1] == "0\tnew\tB-LOC\tB-LOC" and len(lines) == 8


def test_unseen_evaluation_label_names_it(tok):
    model = LookupModel({0: "a", 1: "b"}, {5: 0}, per_token=False)
    with pytest.raises(ValueError, match=r"'zzz'.*does not occur"):
        evaluate(model, tok, "classify", [Example("xa", "a"), Example("xa", "zzz")], 16, source="test.tsv")
    with pytest.raises(ValueError, match="empty"):
        evaluate(model, tok, "classify", [], 16)
    with pytest.raises(ValueError, match="empty"):
        label_vocab("classify", [])


def test_linear_probe_trains_only_the_classifier(tok, tmp_path):
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=16, id2label={0: "a", 1: "b"})
    model = BertForSequenceClassification(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    labels = LabelVocab(["a", "b"])
    data = encode_classification([Example("xa", "a"), Example("xb", "b")] * 8, tok, labels, 16)
    tc = TrainConfig(out_dir=str(tmp_path), max_steps=5, batch_size=4, warmup_steps=0, eval_interval=0,
                     checkpoint_interval=-1, progress=False)
    finetune(model, tok, "classify", data, data, tc, freeze=True)
    after = model.state_dict()
    changed = sorted(k for k in after if not torch.equal(before[k], after[k]))
    assert changed == ["classifier.bias", "classifier.weight"]
