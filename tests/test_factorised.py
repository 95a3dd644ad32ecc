"""minitransformer.factorised against references no one here wrote: PyTorch's own F.embedding,
F.layer_norm and F.linear, torch.autograd.gradcheck in float64, closed-form parameter counts,
and transformers' group formula int(l / (L / G)). Tolerances: 1e-6 (float32), gradcheck's default
(float64), exact equality where the same operations run in the same order."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from minitransformer.blocks import EncoderBlock
from minitransformer.factorised import FactorisedEmbedding, SharedLayers, shared_group_index

V, E, H, P, S = 23, 8, 12, 10, 2


@torch.no_grad()
def randomize(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    for name, p in module.named_parameters():
        p.copy_((1.0 if name.endswith("norm.weight") else 0.0) + 0.3 * torch.randn(p.shape, generator=g))
    return module.eval()


def ids(b=3, t=7, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (b, t), generator=g), torch.randint(0, S, (b, t), generator=g)


def test_factorised_embedding_is_pytorchs_lookup_layernorm_linear():
    emb = randomize(FactorisedEmbedding(V, E, H, P, S, eps=1e-5))
    x, s = ids()
    t = x.size(1)
    e = F.embedding(x, emb.word_embeddings.weight) + F.embedding(s, emb.token_type_embeddings.weight)
    e = e + emb.position_embeddings.weight[:t]
    e = F.layer_norm(e, (E,), emb.norm.weight, emb.norm.bias, 1e-5)  # (B, T, E)
    want = F.linear(e, emb.project.weight, emb.project.bias)  # (B, T, H)
    with torch.no_grad():
        assert emb.embed(x, s).shape == (3, 7, E)
        got = emb(x, s)
    assert got.shape == (3, 7, H) and (got - want).abs().max() < 1e-6


def test_lookup_then_projection_equals_one_rank_E_table():
    """E_token[x] W_pᵀ + b = (E_token W_pᵀ + b)[x]: the factorised table is a V × H table of rank <= E."""
    emb = randomize(FactorisedEmbedding(V, E, H, P, S))
    x, _ = ids()
    with torch.no_grad():
        table = emb.word_embeddings.weight @ emb.project.weight.T + emb.project.bias  # (V, H)
        got = emb.project(emb.word_embeddings(x))
    assert (got - F.embedding(x, table)).abs().max() < 1e-6
    assert torch.linalg.matrix_rank(table - emb.project.bias) <= E


def test_parameter_count_closed_form():
    emb = FactorisedEmbedding(V, E, H, P, S)
    assert sum(p.numel() for p in emb.parameters()) == V * E + P * E + S * E + 2 * E + E * H + H
    assert FactorisedEmbedding(V, H, H, P, S, project=None).project is None  # ELECTRA: no projection when E = H
    assert FactorisedEmbedding(V, H, H, P, S, project=True).project is not None  # ALBERT: always


def test_embedding_gradcheck_float64():
    emb = randomize(FactorisedEmbedding(7, 3, 4, 5, 2, eps=1e-5)).double()
    x, s = torch.tensor([[1, 6, 2, 6]]), torch.tensor([[0, 0, 1, 1]])  # no row 0: the padding row gets no gradient
    names = ("word_embeddings.weight", "position_embeddings.weight", "project.weight", "norm.weight")
    weights = tuple(dict(emb.named_parameters())[n].detach().clone().requires_grad_() for n in names)
    assert torch.autograd.gradcheck(lambda *w: functional_call(emb, dict(zip(names, w)), (x, s)), weights)


def test_projection_needs_equal_widths_when_turned_off():
    with pytest.raises(ValueError, match=r"embedding_size == hidden_size.*embedding_size=8, hidden_size=12"):
        FactorisedEmbedding(V, E, H, P, S, project=False)
    with pytest.raises(ValueError, match=r"embedding_size: expected a positive integer, received 0"):
        FactorisedEmbedding(V, 0, H, P, S)


class TanhBlock(nn.Module):
    """x -> tanh(x W + b), returning (x, None) like EncoderBlock."""

    def __init__(self, d=5):
        super().__init__()
        self.linear = nn.Linear(d, d)

    def forward(self, x, attention_mask=None, need_weights=False):
        return torch.tanh(self.linear(x)), None


def test_one_shared_block_has_one_blocks_parameters_and_applies_it_L_times():
    torch.manual_seed(0)
    shared = SharedLayers(lambda: EncoderBlock(16, 2, 32, dropout=0.0), num_layers=6).eval()
    block = shared.groups[0]
    assert sum(p.numel() for p in shared.parameters()) == sum(p.numel() for p in block.parameters())
    assert len(shared.layers) == 6 and all(layer is block for layer in shared.layers)
    x = torch.randn(2, 5, 16)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    want = x
    with torch.no_grad():
        for _ in range(6):
            want, _ = block(want, mask)
        got, weights = shared(x, mask)
    assert torch.equal(got, want) and len(weights) == 6


@pytest.mark.parametrize("layers,groups", [(12, 1), (12, 2), (12, 3), (12, 12), (6, 3)])
def test_groups_follow_transformers_formula(layers, groups):
    assert [shared_group_index(i, layers, groups) for i in range(layers)] == \
           [int(i / (layers / groups)) for i in range(layers)]  # AlbertTransformer's group index


def test_grouped_sharing_counts_G_blocks_and_runs_each_L_over_G_times():
    shared = SharedLayers(TanhBlock, num_layers=6, num_groups=3)
    assert sum(p.numel() for p in shared.parameters()) == 3 * (5 * 5 + 5)
    assert [list(shared.groups).index(m) for m in shared.layers] == [0, 0, 1, 1, 2, 2]


def test_shared_gradient_is_the_sum_over_applications_and_gradchecks():
    """d/dW of a block used twice = the sum of the gradients of two separate copies of it (closed form)."""
    torch.manual_seed(0)
    shared = SharedLayers(TanhBlock, num_layers=2).double()
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: shared(v)[0], (x,))
    shared(x)[0].sum().backward()
    copies = [TanhBlock().double() for _ in range(2)]
    for c in copies:
        c.load_state_dict(shared.groups[0].state_dict())
    copies[1](copies[0](x)[0])[0].sum().backward()
    summed = copies[0].linear.weight.grad + copies[1].linear.weight.grad
    assert torch.allclose(shared.groups[0].linear.weight.grad, summed, atol=1e-12)


def test_groups_that_do_not_divide_the_layers_are_refused():
    with pytest.raises(ValueError, match=r"num_groups dividing num_layers.*num_groups=5, num_layers=12"):
        SharedLayers(TanhBlock, num_layers=12, num_groups=5)
    with pytest.raises(ValueError, match=r"num_layers: expected a positive integer, received 0"):
        SharedLayers(TanhBlock, num_layers=0)
