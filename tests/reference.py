"""Copy weights from our modules into PyTorch's reference modules (nn.MultiheadAttention,
nn.TransformerEncoderLayer, nn.TransformerDecoderLayer, nn.Transformer), so outputs can be compared."""
import torch
import torch.nn as nn


@torch.no_grad()
def copy_mha(ours, ref: nn.MultiheadAttention):
    """nn.MultiheadAttention packs W_Q, W_K, W_V row-wise into in_proj_weight (3C, C)."""
    ref.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
    ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
    ref.out_proj.weight.copy_(ours.out_proj.weight)
    ref.out_proj.bias.copy_(ours.out_proj.bias)


@torch.no_grad()
def copy_norm(ours, ref: nn.LayerNorm):
    ref.weight.copy_(ours.weight)
    ref.bias.copy_(ours.bias)


@torch.no_grad()
def copy_ff(ours, ref):
    ref.linear1.weight.copy_(ours.fc1.weight)
    ref.linear1.bias.copy_(ours.fc1.bias)
    ref.linear2.weight.copy_(ours.fc2.weight)
    ref.linear2.bias.copy_(ours.fc2.bias)


def copy_encoder_layer(ours, ref: nn.TransformerEncoderLayer):
    copy_mha(ours.self_attn, ref.self_attn)
    copy_ff(ours.ff, ref)
    copy_norm(ours.norm1, ref.norm1)
    copy_norm(ours.norm2, ref.norm2)


def copy_decoder_layer(ours, ref: nn.TransformerDecoderLayer):
    copy_mha(ours.self_attn, ref.self_attn)
    copy_mha(ours.cross_attn, ref.multihead_attn)
    copy_ff(ours.ff, ref)
    copy_norm(ours.norm1, ref.norm1)
    copy_norm(ours.norm2, ref.norm2)
    copy_norm(ours.norm3, ref.norm3)


def max_err(a, b):
    return (a - b).abs().max().item()


def close(a, b, mask=None):
    """max |a − b|, over the positions where ``mask`` (B, T) is 1 when given (padding excluded)."""
    if mask is not None:
        a, b = a[mask.bool()], b[mask.bool()]
    return max_err(a, b)


@torch.no_grad()
def randomize(model, seed=0, skip=()):
    """Every parameter random (LayerNorm γ/β, biases, the padding rows), so that a swapped name cannot
    pass a parity test; LayerNorm weights around 1; names containing one of ``skip`` left as they are.
    Returns the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if any(s in name for s in skip):
            continue
        offset = 1.0 if any(s in name for s in ("LayerNorm.weight", "layer_norm.weight", "norm.weight")) else 0.0
        p.copy_(offset + 0.2 * torch.randn(p.shape, generator=g))
    return model.eval()

