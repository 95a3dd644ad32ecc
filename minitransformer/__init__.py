"""minitransformer: the Transformer parts BERT and GPT share, each written by hand and checked
against a reference (PyTorch built-ins, Hugging Face, gradcheck).

Article map: attention §4.2.1 自注意力机制; LayerNorm, feed-forward, blocks, encoder §4.2.2
多层Transformer编码器; the encoder-decoder model §3.2.4 生成任务 and §6.3 机器翻译.

The parts are loaded on first use (PEP 562): ``from minitransformer import MultiHeadAttention``
works as usual, and ``import minitransformer.cli`` (the chapters' runner uses it) does not import
torch.
"""
import importlib

_EXPORTS = {
    "attention": ('KVCache', 'MultiHeadAttention', 'attention_scores', 'causal_mask', 'masked_softmax',
                  'merge_heads', 'padding_mask', 'scaled_dot_product_attention', 'sdpa_fast', 'split_heads'),
    "blocks": ('DecoderBlock', 'EncoderBlock', 'gather_positions', 'sublayer_connection'),
    "distillation": ('DistillationWeights', 'cosine_hidden_loss', 'soft_target_loss',
                     'weighted_distillation_loss'),
    "factorised": ('FactorisedEmbedding', 'SharedLayers', 'shared_group_index'),
    "layers": ('FeedForward', 'LayerNorm', 'gelu', 'gelu_tanh', 'get_activation', 'layer_norm', 'relu',
               'softmax'),
    "positions": ('LearnedPositionalEmbedding', 'RotaryEmbedding', 'SinusoidalPositionalEncoding',
                  'apply_rope', 'rope_angles', 'sinusoidal_table'),
    "transformer": ('Decoder', 'Encoder', 'Seq2SeqConfig', 'Seq2SeqTransformer'),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    """The part ``name`` from the submodule that defines it, imported on first use."""
    if name not in _WHERE:
        raise AttributeError(f"module 'minitransformer' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
