"""Tests for minitransformer.metrics (article §3.2.5 评估).

Expected values are worked out by hand in the comments; random cases are checked against
references nobody here wrote: scikit-learn (precision_recall_fscore_support, confusion_matrix,
accuracy_score), seqeval (default conlleval-compatible mode) and nltk's corpus_bleu.
Tolerance for floats: 1e-12 absolute (all values are small rational numbers or one exp/log).
"""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import nltk.translate.bleu_score as nltk_bleu
import seqeval.metrics as seqeval_metrics
import sklearn.metrics as skm
from seqeval.metrics.sequence_labeling import get_entities as seqeval_get_entities

from minitransformer.metrics import (
    accuracy, bleu_tokenize, classification_report, confusion_matrix, corpus_bleu, entity_prf,
    confusion_figure, get_entities, perplexity, plot_confusion_matrix, precision_recall_f1,
)

TOL = 1e-12
FAST = settings(max_examples=40, deadline=None)
FEW = settings(max_examples=30, deadline=None)

# Hand example. Class c is never predicted, class d never occurs in y_true.
#   idx     0  1  2  3  4  5  6
#   true    a  a  a  a  b  b  c
#   pred    a  a  b  b  b  d  b
# a: predicted at 0,1 (both right)       TP=2 FP=0 FN=2 -> P=1,   R=1/2, F1=2·1·½/(3/2)=2/3, support 4
# b: predicted at 2,3,4,6; right at 4    TP=1 FP=3 FN=1 -> P=1/4, R=1/2, F1=2·¼·½/(3/4)=1/3, support 2
# c: never predicted                     TP=0 FP=0 FN=1 -> P=0 (0/0 convention), R=0, F1=0, support 1
# d: predicted at 5, absent from true    TP=0 FP=1 FN=0 -> P=0, R=0 (0/0 convention), F1=0, support 0
Y_TRUE = list("aaaabbc")
Y_PRED = list("aabbbdb")


def close(a, b, tol=TOL):
    return abs(a - b) <= tol


def test_accuracy_hand_example():
    # right at idx 0, 1, 4 -> 3/7
    assert close(accuracy(Y_TRUE, Y_PRED), 3 / 7)
    # tensors and arrays: [0,0,1] vs [0,1,1] -> 2 of 3 right
    assert close(accuracy(torch.tensor([0, 0, 1]), np.array([0, 1, 1])), 2 / 3)


def test_confusion_matrix_hand_example():
    # rows = true a,b,c,d; columns = predicted a,b,c,d (see the table above)
    expected = [[2, 2, 0, 0],   # true a: predicted a,a,b,b
                [0, 1, 0, 1],   # true b: predicted b,d
                [0, 1, 0, 0],   # true c: predicted b
                [0, 0, 0, 0]]   # true d: never
    assert confusion_matrix(Y_TRUE, Y_PRED).tolist() == expected
    # given labels set the order and drop the others: true b -> (b 1, a 0); true a -> (b 2, a 2)
    assert confusion_matrix(Y_TRUE, Y_PRED, labels=["b", "a"]).tolist() == [[1, 0], [2, 2]]


def test_precision_recall_f1_hand_example():
    rep = precision_recall_f1(Y_TRUE, Y_PRED)
    assert list(rep.per_class) == ["a", "b", "c", "d"]
    want = {"a": (1, 1 / 2, 2 / 3, 4), "b": (1 / 4, 1 / 2, 1 / 3, 2), "c": (0, 0, 0, 1), "d": (0, 0, 0, 0)}
    for label, (p, r, f, s) in want.items():
        got = rep.per_class[label]
        assert close(got.precision, p) and close(got.recall, r) and close(got.f1, f) and got.support == s, label
    # micro: ΣTP=3, Σpredicted=7, Σtrue=7 -> P=R=F1=3/7 (= accuracy)
    assert all(close(v, 3 / 7) for v in (rep.micro.precision, rep.micro.recall, rep.micro.f1))
    # macro: P=(1+¼+0+0)/4=5/16, R=(½+½)/4=1/4, F1=(2/3+1/3)/4=1/4
    assert close(rep.macro.precision, 5 / 16) and close(rep.macro.recall, 1 / 4) and close(rep.macro.f1, 1 / 4)
    # weighted by support 4,2,1,0 (total 7): P=(4·1+2·¼)/7=9/14, R=(4·½+2·½)/7=3/7, F1=(4·⅔+2·⅓)/7=10/21
    assert close(rep.weighted.precision, 9 / 14) and close(rep.weighted.recall, 3 / 7)
    assert close(rep.weighted.f1, 10 / 21) and rep.weighted.support == 7


def test_f1_is_harmonic_mean_of_precision_not_accuracy():
    # The article (§3.2.5) calls F1 the harmonic mean of accuracy and recall. For class b:
    # P=1/4, R=1/2 -> 2PR/(P+R)=1/3; accuracy 3/7 with R=1/2 would give 2·(3/7)(1/2)/(3/7+1/2)=6/13.
    b = precision_recall_f1(Y_TRUE, Y_PRED).per_class["b"]
    assert close(b.f1, 1 / 3)
    assert not close(b.f1, 6 / 13, tol=1e-3)


def test_labels_argument_restricts_averages():
    # labels=["a","x"]: x is unseen (P=R=F1=0, support 0). a as above. micro over {a,x}:
    # TP=2, predicted a or x = 2, true a or x = 4 -> P=1, R=1/2, F1=2/3
    rep = precision_recall_f1(Y_TRUE, Y_PRED, labels=["a", "x"])
    assert list(rep.per_class) == ["a", "x"] and rep.per_class["x"].support == 0
    assert close(rep.micro.precision, 1) and close(rep.micro.recall, 1 / 2) and close(rep.micro.f1, 2 / 3)


def test_classification_report_rows():
    text = classification_report(Y_TRUE, Y_PRED, digits=4)
    rows = {line.split()[0] if "avg" not in line else " ".join(line.split()[:2]): line.split()[-4:]
            for line in text.splitlines()[1:] if line.strip()}
    assert rows["a"] == ["1.0000", "0.5000", "0.6667", "4"]
    assert rows["c"] == ["0.0000", "0.0000", "0.0000", "1"]
    assert rows["macro avg"] == ["0.3125", "0.2500", "0.2500", "7"]
    assert rows["weighted avg"] == ["0.6429", "0.4286", "0.4762", "7"]  # 9/14, 3/7, 10/21


def test_plot_confusion_matrix_writes_png(tmp_path):
    import matplotlib.image as mpimg
    cm = confusion_matrix(Y_TRUE, Y_PRED)
    out = plot_confusion_matrix(cm, ["a", "b", "c", "d"], tmp_path / "sub" / "cm.png", normalize=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(out)  # (H, W, 4) floats
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert img[..., :3].std() > 0.05  # not a blank image
    with pytest.raises(ValueError, match="expected 4 labels"):
        plot_confusion_matrix(cm, ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="square"):
        plot_confusion_matrix(np.zeros((2, 3)), ["a", "b"], tmp_path / "x.png")


def test_confusion_matrix_title_from_a_long_path_fits_inside_the_figure():
    path = "/" + "/".join(["a_rather_long_folder_name"] * 7) + "/reviews.test.tsv"
    title = f"{path}: confusion matrix"
    assert len(path) >= 190
    fig = confusion_figure([[3, 1], [0, 4]], ["neg", "pos"], title=title)
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    box, frame = ax.title.get_window_extent(renderer), fig.bbox
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
    assert ax.get_position().y1 * frame.height < box.y0 + 1  # the axes stay below the wrapped title
    lines = ax.get_title().split("\n")
    assert 1 < len(lines) <= 3 and lines[0] == title[:len(lines[0])] and lines[-1].endswith("confusion matrix")
    short = confusion_figure([[1]], ["a"], title="cm")
    assert short.axes[0].get_title() == "cm"  # a short title is left alone


def test_classification_bad_input():
    with pytest.raises(ValueError, match="same length, received 3 and 2"):
        accuracy([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least one sample"):
        precision_recall_f1([], [])
    with pytest.raises(ValueError, match="1-D"):
        confusion_matrix(torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="distinct labels"):
        confusion_matrix([1], [1], labels=[1, 1])
    with pytest.raises(ValueError, match="received str"):
        accuracy("abc", "abc")


@st.composite
def label_pairs(draw):
    n = draw(st.integers(1, 30))
    t = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    p = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    labels = draw(st.none() | st.lists(st.integers(0, 6), min_size=1, max_size=6, unique=True))
    return t, p, labels


@FEW
@given(label_pairs())
@pytest.mark.filterwarnings("ignore:A single label was found")
def test_matches_sklearn(case):
    t, p, labels = case
    if labels is not None and not set(labels) & set(t):
        labels = labels + [t[0]]  # sklearn's confusion_matrix needs one given label in y_true
    assert close(accuracy(t, p), skm.accuracy_score(t, p))
    assert confusion_matrix(t, p, labels).tolist() == skm.confusion_matrix(t, p, labels=labels).tolist()
    rep = precision_recall_f1(t, p, labels)
    P, R, F, S = skm.precision_recall_fscore_support(t, p, labels=labels, average=None, zero_division=0)
    assert list(rep.per_class) == (labels if labels is not None else sorted(set(t) | set(p)))
    for i, s in enumerate(rep.per_class.values()):
        assert close(s.precision, P[i]) and close(s.recall, R[i]) and close(s.f1, F[i]) and s.support == S[i]
    for avg in ("micro", "macro", "weighted"):
        P, R, F, _ = skm.precision_recall_fscore_support(t, p, labels=labels, average=avg, zero_division=0)
        got = getattr(rep, avg)
        assert close(got.precision, P) and close(got.recall, R) and close(got.f1, F), avg


# --------------------------------------------------------------------------- NER
def test_get_entities_basic_and_sentence_end():
    # PER on 0..1, LOC on the last token: it must be closed at the sentence end (end exclusive)
    assert get_entities(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 2), ("LOC", 3, 4)]
    assert get_entities(["B-PER", "I-PER"]) == [("PER", 0, 2)]
    assert get_entities([]) == [] and get_entities(["O", "O"]) == []


def test_get_entities_i_without_b():
    # conlleval / seqeval default mode: I-X after O or at the start begins an entity
    assert get_entities(["O", "I-PER", "I-PER", "O"]) == [("PER", 1, 3)]
    assert get_entities(["I-LOC"]) == [("LOC", 0, 1)]
    # I-X after an entity of another type closes it and starts X
    assert get_entities(["B-PER", "I-LOC", "I-LOC"]) == [("PER", 0, 1), ("LOC", 1, 3)]
    # B-X after X starts a second entity
    assert get_entities(["B-PER", "B-PER", "I-PER"]) == [("PER", 0, 1), ("PER", 1, 3)]


def test_entity_prf_hand_example():
    # sentence 0: true PER(0,2) LOC(3,4); pred PER(0,2) ORG(3,4)  <- same span, wrong type
    # sentence 1: true ORG(0,1);          pred ORG(0,2)           <- right type, wrong span
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "I-ORG", "O"]]
    rep = entity_prf(true, pred)
    # only PER matches: TP=1 of 3 predicted and 3 true -> P=R=F1=1/3
    assert close(rep.micro.precision, 1 / 3) and close(rep.micro.recall, 1 / 3) and close(rep.micro.f1, 1 / 3)
    assert rep.micro.support == 3
    # PER: 1/1 both ways. LOC: never predicted (FN of the type mismatch) -> P=0 by convention, R=0/1.
    # ORG: 2 predicted (the mismatch FP and the wrong span), 1 true, 0 right -> P=0, R=0.
    assert list(rep.per_class) == ["LOC", "ORG", "PER"]
    per = {k: (v.precision, v.recall, v.f1, v.support) for k, v in rep.per_class.items()}
    assert per == {"LOC": (0, 0, 0, 1), "ORG": (0, 0, 0, 1), "PER": (1, 1, 1, 1)}


def test_entity_prf_precision_differs_from_recall():
    # true PER(0,2), LOC(3,4); pred PER(0,2) only -> TP=1, predicted 1, true 2: P=1, R=1/2, F1=2/3
    rep = entity_prf([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "O"]])
    assert close(rep.micro.precision, 1) and close(rep.micro.recall, 1 / 2) and close(rep.micro.f1, 2 / 3)


def test_entity_prf_no_entities():
    rep = entity_prf([["O", "O"], []], [["O", "O"], []])
    assert rep.per_class == {} and (rep.micro.precision, rep.micro.recall, rep.micro.f1) == (0, 0, 0)
    assert (rep.macro.f1, rep.weighted.f1, rep.micro.support) == (0, 0, 0)
    # entities only in the truth: nothing predicted -> P=0 (convention), R=0/1
    rep = entity_prf([["B-PER"]], [["O"]])
    assert (rep.micro.precision, rep.micro.recall, rep.micro.f1, rep.micro.support) == (0, 0, 0, 1)


def test_ner_bad_input():
    with pytest.raises(ValueError, match=r"expected an IOB2 tag .* received 'X-PER'"):
        get_entities(["O", "X-PER"])
    with pytest.raises(ValueError, match="received 'B-'"):
        get_entities(["B-"])
    with pytest.raises(ValueError, match="received 'E-PER'"):
        entity_prf([["E-PER"]], [["O"]])
    with pytest.raises(ValueError, match="sentence 0: .* received 2 and 1"):
        entity_prf([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="received 1 and 2"):
        entity_prf([["O"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="at least one sentence"):
        entity_prf([], [])


TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
tag_seq = st.lists(st.sampled_from(TAGS), max_size=8)


@FAST
@given(tag_seq)
def test_get_entities_matches_seqeval(tags):
    # seqeval reports inclusive ends
    assert get_entities(tags) == [(t, s, e + 1) for t, s, e in seqeval_get_entities(list(tags))]


@FAST
@given(st.lists(st.tuples(tag_seq, tag_seq), min_size=1, max_size=4))
def test_entity_prf_matches_seqeval(pairs):
    true = [t for t, _ in pairs]
    pred = [p[:len(t)] + ["O"] * (len(t) - len(p)) for t, p in pairs]  # same length per sentence
    rep = entity_prf(true, pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f1 = seqeval_metrics.f1_score(true, pred)
        p = seqeval_metrics.precision_score(true, pred)
        r = seqeval_metrics.recall_score(true, pred)
        ref = seqeval_metrics.classification_report(true, pred, output_dict=True, zero_division=0) if rep.per_class else {}
    assert close(rep.micro.f1, f1) and close(rep.micro.precision, p) and close(rep.micro.recall, r)
    for etype, s in rep.per_class.items():
        d = ref[etype]
        assert close(s.precision, d["precision"]) and close(s.recall, d["recall"])
        assert close(s.f1, d["f1-score"]) and s.support == d["support"]
    for avg in ("micro", "macro", "weighted") if rep.per_class else ():
        d, got = ref[f"{avg} avg"], getattr(rep, avg)
        assert close(got.precision, d["precision"]) and close(got.recall, d["recall"]) and close(got.f1, d["f1-score"])
    assert set(ref) - {"micro avg", "macro avg", "weighted avg"} == set(rep.per_class)


# --------------------------------------------------------------------------- perplexity
def test_perplexity():
    assert close(perplexity(0.0), 1.0)
    assert close(perplexity(math.log(7)), 7.0, tol=1e-9)
    # a uniform prediction over V=7 classes: cross-entropy = ln 7, perplexity = 7 (tolerance 1e-5, float32)
    loss = F.cross_entropy(torch.zeros(5, 7), torch.tensor([0, 1, 2, 3, 6]))
    assert abs(perplexity(loss) - 7.0) < 1e-5
    assert perplexity(1e4) == math.inf
    for bad in (-0.1, float("nan"), torch.zeros(2)):
        with pytest.raises(ValueError, match="expected"):
            perplexity(bad)


# --------------------------------------------------------------------------- BLEU
def test_bleu_perfect_match_is_100():
    s = "the cat sat on the mat".split()
    assert close(corpus_bleu([s, s[:4]], [s, s[:4]]), 100.0)


def test_bleu_brevity_penalty_by_hand():
    # hyp "the cat sat on" (c=4) vs ref "the cat sat on the mat" (r=6): every n-gram of the hyp is
    # in the ref, p1..p4 = 4/4, 3/3, 2/2, 1/1 = 1; BP = exp(1 - 6/4) = exp(-0.5) -> 100·e^-0.5 ≈ 60.653
    ref = "the cat sat on the mat".split()
    assert close(corpus_bleu([ref[:4]], [ref]), 100 * math.exp(-0.5))


def test_bleu_clipping_papineni_example():
    # Papineni et al. 2002: "the the the the the the the" vs "the cat is on the mat":
    # modified unigram precision = min(7, 2)/7 = 2/7; c=7 > r=6 so BP=1 -> BLEU-1 = 100·2/7
    hyp, ref = ["the"] * 7, "the cat is on the mat".split()
    assert close(corpus_bleu([hyp], [ref], max_n=1), 100 * 2 / 7)


def test_bleu_zero_4gram_matches_and_smoothing():
    # hyp a b c x d / ref a b c y d (c=r=5, BP=1): p1 = 4/5 (a b c d), p2 = 2/4 (ab, bc),
    # p3 = 1/3 (abc), p4 = 0/2 -> BLEU = 0 without smoothing.
    hyp, ref = list("abcxd"), list("abcyd")
    assert corpus_bleu([hyp], [ref]) == 0.0
    # NIST smoothing: first zero order gets 1/(2^1 · 2) = 1/4 -> (4/5·1/2·1/3·1/4)^(1/4) = (1/30)^(1/4)
    assert close(corpus_bleu([hyp], [ref], smooth=True), 100 * (1 / 30) ** 0.25)
    # no unigram match is 0 even with smoothing
    assert corpus_bleu([["x"]], [["y"]], smooth=True) == 0.0


def test_bleu_is_pooled_over_the_corpus():
    # max_n=2. s1: a b / a b; s2: c d / c e. Pooled p1 = (2+1)/4, p2 = (1+0)/2, c=r=4, BP=1
    # -> 100·sqrt(3/4·1/2) = 100·sqrt(3/8) ≈ 61.24, not the mean of sentence scores (100+0)/2 = 50
    got = corpus_bleu([["a", "b"], ["c", "d"]], [["a", "b"], ["c", "e"]], max_n=2)
    assert close(got, 100 * math.sqrt(3 / 8))


def test_bleu_tokenize():
    assert bleu_tokenize("Hello, world! It's 2024.", "en") == ["Hello", ",", "world", "!", "It", "'", "s", "2024", "."]
    assert bleu_tokenize("我爱北京天安门。", "zh") == ["我", "爱", "北", "京", "天", "安", "门", "。"]
    assert bleu_tokenize("我用BERT模型，效果 好", "zh") == ["我", "用", "BERT", "模", "型", "，", "效", "果", "好"]
    with pytest.raises(ValueError, match=r"lang: expected one of \['en', 'zh'\], received 'fr'"):
        bleu_tokenize("x", "fr")


def test_bleu_bad_input():
    with pytest.raises(ValueError, match="received 1 and 2"):
        corpus_bleu([["a"]], [["a"], ["b"]])
    with pytest.raises(ValueError, match="at least one hypothesis"):
        corpus_bleu([], [])
    with pytest.raises(ValueError, match=r"hypotheses\[0\]: expected a list of tokens"):
        corpus_bleu(["a b"], [["a", "b"]])
    with pytest.raises(ValueError, match="max_n"):
        corpus_bleu([["a"]], [["a"]], max_n=0)


# Hypotheses of length >= 4: nltk counts a hypothesis shorter than n as max(1, 0) = 1 n-gram in the
# denominator, Papineni (and this module, and sacrebleu) count 0; the two agree on longer ones.
sentence = st.lists(st.sampled_from("a b c d e".split()), min_size=4, max_size=10)


@FAST
@given(st.lists(st.tuples(sentence, st.lists(st.sampled_from("a b c d e".split()), min_size=1, max_size=10)),
                min_size=1, max_size=4))
def test_bleu_matches_nltk(pairs):
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nltk warns on zero counts and returns ~1e-75 instead of 0
        plain = 100 * nltk_bleu.corpus_bleu([[r] for r in refs], hyps, weights=(0.25,) * 4)
        smoothed = 100 * nltk_bleu.corpus_bleu([[r] for r in refs], hyps, weights=(0.25,) * 4,
                                               smoothing_function=nltk_bleu.SmoothingFunction().method3)
    assert close(corpus_bleu(hyps, refs), plain, tol=1e-9)
    assert close(corpus_bleu(hyps, refs, smooth=True), smoothed, tol=1e-9)
