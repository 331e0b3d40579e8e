"""Response entropy (EGT, arXiv 2602.01884; docs/methods.md §2): token entropy and per-response statistics.

``token_entropy`` / ``token_entropy_from_hidden`` (:mod:`egt.entropy.tokens`) give per-token
entropies in float32 without materialising float32 ``[B, T, V]``; :mod:`egt.entropy.signals`
turns a completion's entropies into EGT's answer-token, reasoning-sentence and mixed entropies,
and our reasoning-peak and vote entropies.
"""

from egt.entropy.signals import (
    answer_token_entropy,
    mixed_entropy,
    percentile_rank,
    reasoning_peak_entropy,
    reasoning_sentence_entropy,
    vote_entropy,
)
from egt.entropy.tokens import DEFAULT_CHUNK_SIZE, token_entropy, token_entropy_from_hidden

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
