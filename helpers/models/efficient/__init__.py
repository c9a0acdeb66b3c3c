"""Efficient attention, one module per family, all on the interface ``fn(q, k, v, mask) -> output``.

common      the dense reference and the patterns exact families are tested against
local       sliding window + global tokens (Longformer), fixed strided (Sparse Transformer), adaptive span
lowrank     Linformer
performer   Performer (FAVOR+)
lsh         Reformer's LSH attention
mixing      FNet's Fourier mixing, Fastformer's additive attention
recurrence  Transformer-XL's segment recurrence
modules     the families as ``nn.Module``s and the registry :data:`FAMILIES`
cost        time, memory, fitted exponents, row error
"""

from .common import band_pattern, dense_attention, global_pattern, key_mask, segment_pattern, strided_pattern, windows
from .cost import attention_cost, fit_exponent, peak_memory_bytes, row_error
from .local import adaptive_span_attention, sliding_window_attention, soft_span_mask, strided_attention
from .lowrank import linformer_attention, pooling_projection
from .lsh import lsh_attention, lsh_buckets, random_rotations
from .mixing import additive_attention, additive_pool, fourier_mixing
from .modules import (
    EXACT_FAMILIES,
    FAMILIES,
    AdaptiveSpanAttention,
    FamilySettings,
    FastformerAttention,
    FavorAttention,
    FunctionAttention,
    LinformerAttention,
    build_attention,
)
from .performer import PerformerAttention, favor_attention, favor_features, orthogonal_gaussian
from .recurrence import segment_recurrent_attention

__all__ = [
    "adaptive_span_attention",
    "AdaptiveSpanAttention",
    "additive_attention",
    "additive_pool",
    "attention_cost",
    "band_pattern",
    "build_attention",
    "dense_attention",
    "EXACT_FAMILIES",
    "FAMILIES",
    "FamilySettings",
    "FastformerAttention",
    "favor_attention",
    "favor_features",
    "FavorAttention",
    "fit_exponent",
    "fourier_mixing",
    "FunctionAttention",
    "global_pattern",
    "key_mask",
    "linformer_attention",
    "LinformerAttention",
    "lsh_attention",
    "lsh_buckets",
    "orthogonal_gaussian",
    "peak_memory_bytes",
    "PerformerAttention",
    "pooling_projection",
    "random_rotations",
    "row_error",
    "segment_pattern",
    "segment_recurrent_attention",
    "sliding_window_attention",
    "soft_span_mask",
    "strided_attention",
    "strided_pattern",
    "windows",
]
