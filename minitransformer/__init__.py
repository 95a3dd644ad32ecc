"""minitransformer: the Transformer parts BERT and GPT share, each written by hand and checked
against a reference (PyTorch built-ins, Hugging Face, gradcheck).

Article map: attention §4.2.1 自注意力机制; LayerNorm, feed-forward, blocks, encoder §4.2.2
多层Transformer编码器; the encoder-decoder model §3.2.4 生成任务 and §6.3 机器翻译.
"""
from .attention import (
    KVCache,
    MultiHeadAttention,
    attention_scores,
    causal_mask,
    masked_softmax,
    merge_heads,
    padding_mask,
    scaled_dot_product_attention,
    sdpa_fast,
    split_heads,
)
from .blocks import DecoderBlock, EncoderBlock, sublayer_connection
from .distillation import DistillationWeights, cosine_hidden_loss, soft_target_loss, weighted_distillation_loss
from .factorised import FactorisedEmbedding, SharedLayers, shared_group_index
from .layers import FeedForward, LayerNorm, gelu, gelu_tanh, get_activation, layer_norm, relu, softmax
from .positions import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    apply_rope,
    rope_angles,
    sinusoidal_table,
)
from .transformer import Decoder, Encoder, Seq2SeqConfig, Seq2SeqTransformer
