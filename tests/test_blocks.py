"""Encoder/decoder blocks and the full Transformer against nn.TransformerEncoderLayer,
nn.TransformerDecoderLayer, nn.TransformerEncoder and nn.Transformer with copied weights;
gradcheck of both blocks in float64; the hand-derived backward passes against autograd.

Reference modules run in train() mode with dropout=0: in eval() mode PyTorch may take its
nested-tensor fast path, which writes zeros at padded positions.
Tolerances: float32 1e-5 absolute, float64 1e-10.
"""
import pytest
import torch
import torch.nn as nn

from minitransformer import DecoderBlock, Encoder, EncoderBlock, Seq2SeqConfig, Seq2SeqTransformer
from minitransformer.backward import (
    AttentionFunction,
    LayerNormFunction,
    SoftmaxFunction,
    attention_backward,
    layer_norm_backward,
    layer_norm_forward,
    softmax_backward,
)
from minitransformer.transformer import Decoder
from tests.reference import copy_decoder_layer, copy_encoder_layer, copy_norm, max_err

D, H, FF = 16, 4, 32
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def keep_mask(b, t, lengths):
    return torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]  # (B, T) True = real token


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_matches_nn(norm_first, dtype):
    torch.manual_seed(0)
    ours = EncoderBlock(D, H, FF, dropout=0.0, activation="gelu", norm_first=norm_first).to(dtype)
    ref = nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, activation="gelu", batch_first=True, norm_first=norm_first).to(dtype)
    copy_encoder_layer(ours, ref)
    x = torch.randn(3, 6, D, dtype=dtype, requires_grad=True)
    keep = keep_mask(3, 6, [6, 4, 2])
    y, _ = ours(x, attention_mask=keep)
    y_ref = ref(x, src_key_padding_mask=~keep)
    assert max_err(y, y_ref) < TOL[dtype]
    (g,) = torch.autograd.grad(y[keep].sum(), x)
    (g_ref,) = torch.autograd.grad(y_ref[keep].sum(), x)
    assert max_err(g, g_ref) < TOL[dtype]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_block_matches_nn(norm_first, dtype):
    torch.manual_seed(0)
    ours = DecoderBlock(D, H, FF, dropout=0.0, activation="relu", norm_first=norm_first).to(dtype)
    ref = nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, activation="relu", batch_first=True, norm_first=norm_first).to(dtype)
    copy_decoder_layer(ours, ref)
    x = torch.randn(2, 5, D, dtype=dtype, requires_grad=True)
    mem = torch.randn(2, 7, D, dtype=dtype, requires_grad=True)
    mem_keep = keep_mask(2, 7, [7, 3])
    y, _ = ours(x, mem, memory_mask=mem_keep)
    causal = nn.Transformer.generate_square_subsequent_mask(5, dtype=dtype)
    y_ref = ref(x, mem, tgt_mask=causal, memory_key_padding_mask=~mem_keep)
    assert max_err(y, y_ref) < TOL[dtype]
    g = torch.autograd.grad(y.sum(), [x, mem])
    g_ref = torch.autograd.grad(y_ref.sum(), [x, mem])
    assert all(max_err(a, b) < TOL[dtype] for a, b in zip(g, g_ref))


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_stack_matches_nn_transformer_encoder(norm_first):
    torch.manual_seed(0)
    ours = Encoder(3, D, H, FF, dropout=0.0, activation="gelu", norm_first=norm_first, final_norm=True).double()
    layer = nn.TransformerEncoderLayer(D, H, FF, 0.0, "gelu", batch_first=True, norm_first=norm_first)
    ref = nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(D), enable_nested_tensor=False).double()
    for o, r in zip(ours.layers, ref.layers):
        copy_encoder_layer(o, r)
    copy_norm(ours.norm, ref.norm)
    x = torch.randn(2, 6, D, dtype=torch.float64)
    keep = keep_mask(2, 6, [6, 3])
    y, _ = ours(x, keep)
    assert max_err(y, ref(x, src_key_padding_mask=~keep)) < 1e-10


@pytest.mark.filterwarnings("ignore:enable_nested_tensor")
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_decoder_matches_nn_transformer_end_to_end(norm_first):
    torch.manual_seed(0)
    # nn.Transformer always ends both stacks with a LayerNorm
    enc = Encoder(2, D, H, FF, 0.0, "relu", norm_first, final_norm=True).double()
    dec = Decoder(2, D, H, FF, 0.0, "relu", norm_first, final_norm=True).double()
    ref = nn.Transformer(D, H, 2, 2, FF, 0.0, "relu", batch_first=True, norm_first=norm_first).double()
    for o, r in zip(enc.layers, ref.encoder.layers):
        copy_encoder_layer(o, r)
    for o, r in zip(dec.layers, ref.decoder.layers):
        copy_decoder_layer(o, r)
    copy_norm(enc.norm, ref.encoder.norm)
    copy_norm(dec.norm, ref.decoder.norm)
    src, tgt = torch.randn(2, 7, D, dtype=torch.float64), torch.randn(2, 5, D, dtype=torch.float64)
    src_keep = keep_mask(2, 7, [7, 4])
    memory, _ = enc(src, src_keep)
    y, _ = dec(tgt, memory, memory_mask=src_keep)
    y_ref = ref(
        src, tgt, tgt_mask=nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64),
        src_key_padding_mask=~src_keep, memory_key_padding_mask=~src_keep,
    )
    assert max_err(y, y_ref) < 1e-10


def test_gradcheck_both_blocks():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, dtype=torch.float64, requires_grad=True)
    mem = torch.randn(2, 3, 8, dtype=torch.float64, requires_grad=True)
    keep = keep_mask(2, 4, [4, 2])
    for norm_first in (False, True):
        enc = EncoderBlock(8, 2, 12, dropout=0.0, norm_first=norm_first).double()
        assert torch.autograd.gradcheck(lambda x: enc(x, keep)[0], (x,))
        dec = DecoderBlock(8, 2, 12, dropout=0.0, norm_first=norm_first).double()
        assert torch.autograd.gradcheck(lambda x, m: dec(x, m)[0], (x, mem))


def test_seq2seq_greedy_decode_with_cache_equals_full_recompute():
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(src_vocab_size=20, tgt_vocab_size=22, d_model=16, n_heads=2, d_ff=32, dropout=0.0, max_len=32)
    model = Seq2SeqTransformer(cfg).eval()
    src = torch.randint(3, 20, (3, 6))
    src[2, 4:] = 0  # padding
    out = model.greedy_decode(src, bos_id=1, eos_id=2, max_new_tokens=8)
    # recompute: feed the whole prefix each step, no cache
    src_mask = src != 0
    memory = model.encode(src, src_mask)
    seq = torch.ones(3, 1, dtype=torch.long)
    for _ in range(out.size(1)):
        nxt = model.decode(seq, memory, src_mask)[:, -1].argmax(-1, keepdim=True)
        seq = torch.cat([seq, nxt], 1)
    ref = seq[:, 1:]
    done = torch.zeros(3, dtype=torch.bool)
    for t in range(out.size(1)):  # after EOS, greedy_decode writes pad
        assert torch.equal(out[~done, t], ref[~done, t])
        done |= ref[:, t] == 2


def test_seq2seq_learns_to_copy():
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(src_vocab_size=12, tgt_vocab_size=12, d_model=32, n_heads=2, d_ff=64, n_encoder_layers=1,
                        n_decoder_layers=1, dropout=0.0, max_len=16)
    model = Seq2SeqTransformer(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        src = torch.randint(3, 12, (32, 5))
        tgt_in = torch.cat([torch.ones(32, 1, dtype=torch.long), src], 1)
        labels = torch.cat([src, torch.full((32, 1), 2)], 1)
        _, loss = model(src, tgt_in, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    src = torch.randint(3, 12, (16, 5))
    out = model.greedy_decode(src, 1, 2, max_new_tokens=6)
    assert (out[:, :5] == src).float().mean() > 0.9


# ----------------------------------------------------------------------------- hand-derived backward


def test_hand_backward_equals_autograd():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 7, dtype=torch.float64, requires_grad=True)
    dy = torch.randn(3, 5, 7, dtype=torch.float64)
    y = torch.softmax(x, -1)
    (dx,) = torch.autograd.grad(y, x, dy)
    assert max_err(softmax_backward(y.detach(), dy), dx) < 1e-12

    w, b = torch.randn(7, dtype=torch.float64, requires_grad=True), torch.randn(7, dtype=torch.float64, requires_grad=True)
    y = nn.functional.layer_norm(x, (7,), w, b, 1e-5)
    ref = torch.autograd.grad(y, (x, w, b), dy)
    _, xhat, rstd = layer_norm_forward(x.detach(), w.detach(), b.detach())
    assert all(max_err(a, r) < 1e-12 for a, r in zip(layer_norm_backward(dy, xhat, rstd, w.detach()), ref))

    q, k, v = (torch.randn(2, 4, 6, 3, dtype=torch.float64, requires_grad=True) for _ in range(3))
    mask = torch.rand(2, 4, 6, 6) > 0.3
    mask[..., 0] = True
    out = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    do = torch.randn_like(out)
    ref = torch.autograd.grad(out, (q, k, v), do)
    scale = 3**-0.5
    p = torch.softmax((scale * q @ k.transpose(-2, -1)).masked_fill(~mask, float("-inf")), -1).detach()
    mine = attention_backward(q.detach(), k.detach(), v.detach(), p, do, scale)
    assert all(max_err(a, r) < 1e-12 for a, r in zip(mine, ref))


def test_gradcheck_hand_written_functions():
    torch.manual_seed(0)
    x = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(SoftmaxFunction.apply, (x,))
    w, b = torch.randn(6, dtype=torch.float64, requires_grad=True), torch.randn(6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(LayerNormFunction.apply, (x, w, b))
    q, k, v = (torch.randn(1, 2, 4, 3, dtype=torch.float64, requires_grad=True) for _ in range(3))
    mask = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)  # row 2 fully masked
    assert torch.autograd.gradcheck(lambda q, k, v: AttentionFunction.apply(q, k, v, mask), (q, k, v))
    assert torch.autograd.gradcheck(lambda q, k, v: AttentionFunction.apply(q, k, v, None), (q, k, v))


def test_block_bad_input():
    with pytest.raises(ValueError, match=r"d_model divisible by n_heads"):
        EncoderBlock(10, 4, 20)
    with pytest.raises(ValueError, match=r"rank 3, received rank 2"):
        EncoderBlock(8, 2, 16)(torch.randn(4, 8))
    with pytest.raises(ValueError, match=r"expected an encoder memory"):
        DecoderBlock(8, 2, 16)(torch.randn(1, 4, 8))
    model = Seq2SeqTransformer(Seq2SeqConfig(10, 10, d_model=8, n_heads=2, d_ff=16, max_len=8))
    with pytest.raises(ValueError, match=r"expected token ids in \[0, 10\), received values in \[0, 12\]"):
        model.encode(torch.tensor([[0, 12]]))
    with pytest.raises(ValueError, match=r"length <= 8"):
        model.encode(torch.ones(1, 9, dtype=torch.long))


@pytest.mark.parametrize("norm_first", [False, True])
def test_forward_at_equals_the_full_block_gathered(norm_first):
    """EncoderBlock.forward_at(x, positions) == forward(x)[0] at those positions (with padding, in
    float64, atol 1e-12), and so are the gradients it sends to x and to every weight."""
    torch.manual_seed(0)
    block = EncoderBlock(8, 2, 16, dropout=0.0, norm_first=norm_first).double()
    x = torch.randn(3, 7, 8, dtype=torch.float64, requires_grad=True)
    mask = torch.ones(3, 7, dtype=torch.int64)
    mask[1, 5:] = 0
    positions = torch.tensor([[0, 2, 6], [0, 4, 0], [0, 1, 3]])
    full = block(x, mask)[0]
    want = torch.stack([full[b, positions[b]] for b in range(3)])  # (B, Q, C)
    got = block.forward_at(x, positions, mask)
    assert got.shape == (3, 3, 8) and max_err(got, want) < 1e-12
    weights = torch.randn_like(want)
    g_want = torch.autograd.grad((want * weights).sum(), [x, *block.parameters()])
    g_got = torch.autograd.grad((got * weights).sum(), [x, *block.parameters()])
    assert all(max_err(a, b) < 1e-12 for a, b in zip(g_got, g_want))


def test_forward_at_bad_positions():
    from minitransformer import gather_positions

    block = EncoderBlock(8, 2, 16)
    x = torch.randn(2, 5, 8)
    for bad in (torch.tensor([0, 1]), torch.zeros(3, 2, dtype=torch.int64), torch.zeros(2, 2, dtype=torch.int32)):
        with pytest.raises(ValueError, match="positions"):
            block.forward_at(x, bad)
    assert torch.equal(gather_positions(x, torch.tensor([[4], [0]])), torch.stack([x[0, 4:5], x[1, 0:1]]))
