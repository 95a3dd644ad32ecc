"""Does pretraining on the world's unlabelled notes help a tiny BERT classify short reviews from
few labels? (issue #12, part 2)

For each seed and language, ch08 §8's recipe (``minibert.recipes.pretrain_on_notes``): a SentencePiece
tokenizer (``--vocab-size``) trained on the world's unlabelled text (stories + notes), ch08's
architecture (2 layers, width 64, 2 heads, dropout 0) pretrained with MLM + NSP on the notes at a
constant learning rate after a 30-step warm-up; then

* notes probe: on 150 fresh notes, is the feeling word's pseudo-likelihood higher for a feeling
  of the right sentiment (happy/pleased/glad vs sad/angry/disappointed)?
* few labels: ``--sizes`` labelled short reviews (``data/short_reviews_*.train.tsv``, ``--subsets``
  random subsets each) fine-tune a [CLS] classifier (ch10 §4's recipe: batch 16, lr 1e-3, warm-up,
  cosine, ``minibert.recipes.FEW_LABEL_STEPS``) from the pretrained encoder and from random
  weights; accuracy on the 300 test short reviews (``--split val`` to choose settings).

    python bench/few_label_gain.py --langs en zh --seeds 0 1 2 3 4
"""
from __future__ import annotations

import argparse
import logging
import random
import statistics
import tempfile
import time

import torch

from minibert import BertConfig, BertForPreTraining, BertForSequenceClassification
from minibert.finetune import encode_classification, label_vocab
from minibert.hf import load_tokenizer_from
from minibert.pretraining import build_single_inputs
from minibert.recipes import FEW_LABEL_STEPS, NOTES_RECIPE, few_label_accuracy, pretrain_on_notes
from minitransformer.data import load_world_short_reviews
from minitransformer.data.world_lexicon import BAD_FEELINGS, GOOD_FEELINGS
from minitransformer.data.world_opinions import sample_note

FT_STEPS = FEW_LABEL_STEPS  # batch 16, as ch10 §4


def pretrain(lang: str, a, seed: int):
    """minibert.recipes.pretrain_on_notes with the command line's settings. Returns (model, tokenizer, seconds)."""
    recipe = {**NOTES_RECIPE, "vocab_size": a.vocab_size, "steps": a.steps, "batch_size": a.batch_size, "lr": a.lr,
              "p_mlm": a.mlm_probability, "eval_every": 0}
    t0 = time.perf_counter()
    folder, _ = pretrain_on_notes(tempfile.mkdtemp(prefix="gain_pt_"), recipe, lang=lang, seed=seed, data_dir=a.data)
    return BertForPreTraining.from_pretrained(folder).eval(), load_tokenizer_from(folder), time.perf_counter() - t0


def pseudo_log_likelihood(model, tok, ids: list[int], span: range) -> float:
    """sum over j in span of log P(ids[j] | ids with j masked): the score of the words at ``span``."""
    rows = []
    for j in span:
        masked = list(ids)
        masked[j] = tok.mask_id
        rows.append(build_single_inputs(masked, tok.cls_id, tok.sep_id, 64)[0])
    with torch.no_grad():
        lp = model(torch.tensor(rows), torch.zeros(len(rows), len(rows[0]), dtype=torch.long)).mlm_logits.log_softmax(-1)
    return sum(float(lp[k, j + 1, ids[j]]) for k, j in enumerate(span))


def notes_probe(model, tok, lang: str, n: int = 150) -> float:
    """Share of fresh notes whose first sentence scores a right-sentiment feeling above every wrong one."""
    rng, col, hits = random.Random(999), 0 if lang == "en" else 1, []
    for _ in range(n):
        note = sample_note(rng)
        part, text = note.parts[0], note.sentences()[0].text(lang)
        best = {}
        for good, feelings in ((True, GOOD_FEELINGS), (False, BAD_FEELINGS)):
            scores = []
            for f in feelings:
                ids = tok.encode(text[: text.rindex(part.feeling[col])] + f[col] + text[text.rindex(part.feeling[col]) + len(part.feeling[col]):])
                prefix = tok.encode(text[: text.rindex(part.feeling[col])].rstrip())
                start = min(len(prefix), len(ids) - 2)  # the feeling's pieces, up to the final full stop
                scores.append(pseudo_log_likelihood(model, tok, ids, range(start, len(ids) - 1)))
            best[good] = max(scores)
        hits.append((best[True] > best[False]) == part.adjectives[0].positive)
    return statistics.mean(hits)


def subset_accuracy(model, tok, lang: str, a, n: int, subset: int, seed: int, from_scratch: bool) -> float:
    train, test = load_world_short_reviews(lang, "train", a.data), load_world_short_reviews(lang, a.split, a.data)
    labels = label_vocab("classify", train)
    test_enc = encode_classification(test, tok, labels, 64)
    draw = 1000 * seed + subset
    enc = encode_classification(random.Random(draw).sample(train, n), tok, labels, 64)
    torch.manual_seed(draw)
    config = BertConfig.from_dict({**model.config.to_dict(), "num_labels": 2, "hidden_dropout_prob": 0.1,
                                   "attention_probs_dropout_prob": 0.1})
    clf = BertForSequenceClassification(config)
    if not from_scratch:
        clf.bert.load_state_dict(model.bert.state_dict())
    return few_label_accuracy(clf, tok, enc, test_enc, FT_STEPS[n], draw, tempfile.mkdtemp(prefix="gain_ft_"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="world folder (default: the bundled data/)")
    ap.add_argument("--langs", nargs="+", default=["en", "zh"], choices=["en", "zh"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 128], choices=sorted(FT_STEPS))
    ap.add_argument("--subsets", type=int, default=3)
    ap.add_argument("--split", default="test", choices=["val", "test"], help="where accuracy is measured")
    ap.add_argument("--vocab-size", type=int, default=1200)
    ap.add_argument("--steps", type=int, default=NOTES_RECIPE["steps"])
    ap.add_argument("--batch-size", type=int, default=NOTES_RECIPE["batch_size"])
    ap.add_argument("--lr", type=float, default=NOTES_RECIPE["lr"])
    ap.add_argument("--mlm-probability", type=float, default=NOTES_RECIPE["p_mlm"])
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    if a.steps < 31 or a.batch_size < 1 or not 0 < a.mlm_probability < 1 or not 0 < a.lr < 1 or a.subsets < 1 \
            or a.threads < 1 or a.vocab_size < 100:
        ap.error(f"expected steps > 30, batch size >= 1, 0 < mlm probability < 1, 0 < lr < 1, subsets >= 1, "
                 f"threads >= 1 and vocab size >= 100, received {vars(a)}")
    torch.set_num_threads(a.threads)
    logging.getLogger("minitransformer").setLevel(logging.ERROR)
    logging.getLogger("minibert").setLevel(logging.ERROR)
    print(f"$ python bench/few_label_gain.py --langs {' '.join(a.langs)} --seeds {' '.join(map(str, a.seeds))} "
          f"--sizes {' '.join(map(str, a.sizes))} --steps {a.steps} --lr {a.lr} --split {a.split} --threads {a.threads}\n")
    print("| lang | seed | pretrain s | notes probe | "
          + " | ".join(f"{n}: pretrained / scratch (gain)" for n in a.sizes) + " |")
    print("|---" * (4 + len(a.sizes)) + "|")
    gains = {}
    for lang in a.langs:
        for seed in a.seeds:
            model, tok, seconds = pretrain(lang, a, seed)
            cells = []
            for n in a.sizes:
                pre = statistics.mean(subset_accuracy(model, tok, lang, a, n, k, seed, False) for k in range(a.subsets))
                scr = statistics.mean(subset_accuracy(model, tok, lang, a, n, k, seed, True) for k in range(a.subsets))
                gains.setdefault((lang, n), []).append(pre - scr)
                cells.append(f"{pre:.3f} / {scr:.3f} ({pre - scr:+.3f})")
            print(f"| {lang} | {seed} | {seconds:.0f} | {notes_probe(model, tok, lang):.2f} | " + " | ".join(cells) + " |",
                  flush=True)
    print("\n| lang | labels | gain, mean ± std over seeds | min | runs |\n|---|---|---|---|---|")
    for (lang, n), g in gains.items():
        std = statistics.stdev(g) if len(g) > 1 else 0.0
        print(f"| {lang} | {n} | {statistics.mean(g):+.3f} ± {std:.3f} | {min(g):+.3f} | {len(g)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
