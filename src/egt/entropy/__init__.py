"""Response entropy (EGT, arXiv 2602.01884; docs/methods.md §2): token entropy and per-response statistics.

``token_entropy`` / ``token_entropy_from_hidden`` give per-token entropies in float32 without
materialising float32 ``[B, T, V]``; the rest turn a completion's entropies into EGT's answer-token,
reasoning-sentence and mixed entropies, and our reasoning-peak and vote entropies.
"""

from egt.entropy.maths import (
    DEFAULT_CHUNK_SIZE,
    answer_token_entropy,
    mixed_entropy,
    percentile_rank,
    reasoning_peak_entropy,
    reasoning_sentence_entropy,
    token_entropy,
    token_entropy_from_hidden,
    vote_entropy,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "answer_token_entropy",
    "mixed_entropy",
    "percentile_rank",
    "reasoning_peak_entropy",
    "reasoning_sentence_entropy",
    "token_entropy",
    "token_entropy_from_hidden",
    "vote_entropy",
]
