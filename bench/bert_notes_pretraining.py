"""Can the tiny BERT learn which adjectives are good from unlabelled text, and does that help
fine-tuning on few labelled reviews? (issue #12, part 2)

The bundled world is regenerated with ``--notes N`` short unlabelled notes added to its text
(``minitransformer.data.world.Note``: "At Sun Restaurant, the food was fresh and tasty, so I
was happy."; the labelled reviews stay byte for byte the same). ch08's architecture (2 layers,
width 64, 2 heads) is pretrained with MLM + NSP at a constant learning rate after a warm-up;
then three measurements:

* notes probe: on 300 fresh notes, mask the feeling word; does the MLM head put more mass on
  happy/pleased/glad than on sad/angry/disappointed when the adjectives are good (and the reverse)?
* reviews, zero-shot: the test reviews' judgement + ", so I was [MASK].", by kind of sentence
  (one clause, 'and', 'but', 'although'; with or without 'not');
* fine-tuning: ch10's few-label recipe ([CLS] classifier, batch 16, lr 1e-3, 60 / 80 steps for
  32 / 128 labels) from the pretrained model and from scratch, mean over ``--subsets`` subsets.

    python bench/bert_notes_pretraining.py --notes 20000 --steps 1500 --batch-size 64 --mlm-probability 0.3 --dropout 0
"""
from __future__ import annotations

import argparse
import logging
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

import torch

from minibert import BertConfig, BertForPreTraining, BertForSequenceClassification
from minibert.evaluate import predict_ids
from minibert.finetune import encode_classification, finetune, label_vocab
from minibert.pretraining import PretrainingData, build_pair_inputs, build_single_inputs, pretraining_loss, tokenize_documents
from minitransformer.data import BERT_SPECIALS, SentencePieceTokenizer, load_world_documents, load_world_reviews
from minitransformer.data.world import sample_note
from minitransformer.data.world_files import build_world, world_files
from minitransformer.trainer import TrainConfig, Trainer

GOOD, BAD = ("happy", "pleased", "glad"), ("sad", "angry", "disappointed")
FT_STEPS = {32: 60, 128: 80}  # ch10's


def write_world(folder: Path, notes: int) -> Path:
    """The bundled world with ``notes`` notes in its unlabelled text, written to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in world_files(build_world(0, {"notes": notes})).items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def pretrain(data_dir: Path, a, seed: int):
    docs = load_world_documents("en", data_dir)
    random.Random(0).shuffle(docs)
    tok = SentencePieceTokenizer.train(["\n".join(d) for d in docs[100:]], 700, specials=BERT_SPECIALS)
    data = PretrainingData({"train": tokenize_documents(docs[100:], tok), "val": tokenize_documents(docs[:100], tok)}, tok,
                           batch_size=a.batch_size, max_len=64, seed=seed, p_mlm=a.mlm_probability)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=256, max_position_embeddings=64, hidden_dropout_prob=a.dropout,
                        attention_probs_dropout_prob=a.dropout)
    model = BertForPreTraining(config)
    cfg = TrainConfig(out_dir=tempfile.mkdtemp(prefix="notes_pt_"), max_steps=a.steps, batch_size=a.batch_size, lr=a.lr,
                      min_lr=a.lr, warmup_steps=30, weight_decay=0.01, betas=(0.9, 0.98), eval_interval=0,
                      log_interval=10**9, checkpoint_interval=-1, progress=False, seed=seed)
    t0 = time.perf_counter()
    Trainer(model, cfg, data, loss_fn=pretraining_loss).fit()
    return model.eval(), tok, time.perf_counter() - t0


def feeling_ids(tok) -> tuple[list[int], list[int]]:
    piece = lambda w: tok.encode(f"I was {w}.")[2]  # noqa: E731  (each feeling is one piece after "I was")
    return [piece(w) for w in GOOD], [piece(w) for w in BAD]


def good_beats_bad(model, tok, rows: list[tuple[list[int], list[int], int]]) -> list[bool]:
    """For (input ids, segment ids, masked position) rows: log P(good set) > log P(bad set) at the mask."""
    good, bad = feeling_ids(tok)
    ids = torch.nn.utils.rnn.pad_sequence([torch.tensor(r) for r, _, _ in rows], batch_first=True, padding_value=tok.pad_id)
    seg = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for _, s, _ in rows], batch_first=True)
    mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(r), dtype=torch.long) for r, _, _ in rows], batch_first=True)
    with torch.no_grad():
        lp = model(ids, seg, mask).mlm_logits.log_softmax(-1)[torch.arange(len(rows)), torch.tensor([k for *_, k in rows])]
    return (lp[:, good].logsumexp(-1) > lp[:, bad].logsumexp(-1)).tolist()


def mask_last_feeling(tok, text: str) -> list[int]:
    ids = tok.encode(text)
    good, bad = feeling_ids(tok)
    ids[max(i for i, t in enumerate(ids) if t in good + bad)] = tok.mask_id
    return ids


def notes_probe(model, tok, n: int = 300) -> float:
    rng = random.Random(12345)
    rows, ys = [], []
    for _ in range(n):
        first = sample_note(rng).sentences()[0].text("en")
        r, s = build_pair_inputs(mask_last_feeling(tok, first), tok.encode("The prices were fair."), tok.cls_id, tok.sep_id, 64)
        rows.append((r, s, r.index(tok.mask_id)))
        ys.append(first.rstrip(".").split()[-1] in GOOD)
    return statistics.mean(p == y for p, y in zip(good_beats_bad(model, tok, rows), ys))


def sentence_kind(s: str) -> str:
    kind = "but" if " but " in s else "although" if s.lower().startswith("although") else "and" if " and " in s else "one clause"
    return kind + (" + not" if " not " in s else "")


def reviews_zero_shot(model, tok, data_dir: Path) -> dict[str, tuple[float, int]]:
    """Accuracy of the prompt '<judgement>, so I was [MASK].' on the test reviews, by kind of judgement."""
    rows, ys, kinds = [], [], []
    for e in load_world_reviews("en", "test", data_dir):
        judged = [s for s in re.split(r"(?<=\.) ", e.text) if re.search(r"\b(was|were)\b", s) and not s.startswith(("I ", "We "))]
        if not judged:
            continue
        r, s = build_single_inputs(mask_last_feeling(tok, judged[-1].rstrip(".") + ", so I was happy."), tok.cls_id, tok.sep_id, 64)
        rows.append((r, s, r.index(tok.mask_id)))
        ys.append(e.label == "pos")
        kinds.append(sentence_kind(judged[-1]))
    hits = [p == y for p, y in zip(good_beats_bad(model, tok, rows), ys)]
    out = {"all": (statistics.mean(hits), len(hits))}
    for k in sorted(set(kinds)):
        sel = [h for h, kk in zip(hits, kinds) if kk == k]
        out[k] = (statistics.mean(sel), len(sel))
    return out


def few_label_accuracy(pretrained, tok, data_dir: Path, n: int, subset: int, from_scratch: bool) -> float:
    train, test = load_world_reviews("en", "train", data_dir), load_world_reviews("en", "test", data_dir)
    labels = label_vocab("classify", train)
    test_enc = encode_classification(test, tok, labels, 64)
    enc = encode_classification(random.Random(subset).sample(train, n), tok, labels, 64)
    torch.manual_seed(subset)
    config = BertConfig.from_dict({**pretrained.config.to_dict(), "num_labels": 2, "hidden_dropout_prob": 0.1,
                                   "attention_probs_dropout_prob": 0.1})
    clf = BertForSequenceClassification(config)
    if not from_scratch:
        clf.bert.load_state_dict(pretrained.bert.state_dict())
    steps = FT_STEPS[n]
    cfg = TrainConfig(out_dir=tempfile.mkdtemp(prefix="notes_ft_"), max_steps=steps, batch_size=16, lr=1e-3, min_lr=1e-4,
                      warmup_steps=steps // 10, weight_decay=0.01, eval_interval=0, checkpoint_interval=-1,
                      log_interval=steps, progress=False, seed=subset)
    finetune(clf, tok, "classify", enc, test_enc[:16], cfg)
    pred = predict_ids(clf.eval(), test_enc, tok.pad_id)
    return statistics.mean(p == d["label"] for p, d in zip(pred, test_enc))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--notes", type=int, default=20000)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--mlm-probability", type=float, default=0.3)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--subsets", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    if a.notes < 0 or a.steps < 31 or a.batch_size < 1 or not 0 < a.mlm_probability < 1 or not 0 <= a.dropout < 1 \
            or not 0 < a.lr < 1 or a.subsets < 1 or a.threads < 1:
        ap.error(f"expected notes >= 0, steps > 30, batch size >= 1, 0 < mlm probability < 1, 0 <= dropout < 1, "
                 f"0 < lr < 1, subsets >= 1 and threads >= 1, received {vars(a)}")
    torch.set_num_threads(a.threads)
    logging.getLogger("minitransformer").setLevel(logging.ERROR)
    logging.getLogger("minibert").setLevel(logging.ERROR)
    print(f"$ python bench/bert_notes_pretraining.py --notes {a.notes} --steps {a.steps} --batch-size {a.batch_size} "
          f"--mlm-probability {a.mlm_probability} --dropout {a.dropout} --lr {a.lr} --seeds {' '.join(map(str, a.seeds))}\n")
    data_dir = write_world(Path(tempfile.mkdtemp(prefix="notes_world_")), a.notes)
    print("| seed | pretrain s | notes probe | reviews zero-shot (by kind) | 32: pretrained / scratch | 128: pretrained / scratch |")
    print("|---|---|---|---|---|---|")
    for seed in a.seeds:
        model, tok, seconds = pretrain(data_dir, a, seed)
        zs = reviews_zero_shot(model, tok, data_dir)
        kinds = "; ".join(f"{k} {v:.2f} ({n})" for k, (v, n) in zs.items())
        cells = []
        for n in (32, 128):
            pre = statistics.mean(few_label_accuracy(model, tok, data_dir, n, k, False) for k in range(a.subsets))
            scr = statistics.mean(few_label_accuracy(model, tok, data_dir, n, k, True) for k in range(a.subsets))
            cells.append(f"{pre:.3f} / {scr:.3f}")
        print(f"| {seed} | {seconds:.0f} | {notes_probe(model, tok):.2f} | {kinds} | {cells[0]} | {cells[1]} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
