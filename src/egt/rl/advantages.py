"""Advantage estimators for RL of the judge: the maths, as pure tensor functions.

Every estimator is a pure, vectorised function of tensors that returns float32 advantages of
shape ``[B, T]``, zero wherever ``mask`` is 0. :mod:`egt.rl.estimators` registers each by name with
its parameters and whether it needs token entropies (verl's ``core_algos`` pattern). The batch
holds ``B / group_size`` groups of ``group_size`` consecutive responses to the same prompt; groups
never interact.

- ``grpo``    GRPO, Shao et al. 2024 (DeepSeekMath, arXiv 2402.03300):
  ``A_i = (r_i − mean) / (std + 1e-4)`` within the group, broadcast to tokens.
- ``dr_grpo`` Dr. GRPO, Liu et al. 2025 (arXiv 2503.20783): ``A_i = r_i − mean``.
- ``gtpo``    GTPO, Tan et al. 2025 (Dynamic Entropy Weighting, arXiv 2508.04349): token-level
  entropy-shaped rewards, then normalised.
- ``grpo_s``  GRPO-S, same paper: sequence-level entropy-shaped rewards, then GRPO's normalisation.

The loss that consumes the advantages (clipping, KL, token- or sequence-level averaging:
``loss_type``) is TRL's.

Conventions and departures from the papers (docs/methods.md §5):

- std is the unbiased one (``torch.std``, TRL's convention) and 1e-4 is added before dividing.
  A set with fewer than two values has std 0 by definition here (``torch.std`` would give NaN);
  its centred values are 0, so its advantages are 0 and nothing is NaN.
- A group whose base rewards are all equal gets advantage 0 everywhere, whatever the entropies
  (DAPO's dynamic sampling would drop it). This also covers ``group_size == 1``.
- GTPO's normalisation of the shaped rewards is **our choice** (the paper's Eq. 6 is ambiguous):
  ``"joint"`` over the group (default), or ``"separate"`` over the O+ responses and the O−
  responses each on their own. In both, **each response weighs 1** in the mean and std, not each
  token (a response's tokens share its weight), so α2 = 0 gives GRPO's advantages exactly whatever
  the lengths; a token-weighted mean would let one long response set the baseline and flip the
  sign of another's advantage when rewards take more than two values. A set with fewer than two
  responses gets advantage 0 (std 0 by definition; dividing its within-response entropy spread by
  1e-4 would blow it up 10⁴-fold). Under ``"separate"`` only the contrast *within* each set
  survives: if all correct responses share one base reward, the ``α1·r`` term cancels and O+ tokens
  get both signs. That is what the option means; ``"joint"`` is the one that keeps the outcome sign.
- Entropies are inputs (``egt.entropy.token_entropy`` under the rollout policy), detached here;
  values at masked positions are ignored (they may be NaN). Entropies are non-negative by
  definition: round-off below 0 is clipped to 0, and a value below −1e-3 is an error (it usually
  means log-probabilities were passed instead).
"""

from __future__ import annotations

import torch

STD_EPS = 1e-4  # added to every std before dividing (TRL's GRPO)
ENTROPY_EPS = 1e-8  # ε of GTPO / GRPO-S: H / (ΣH + ε) and u = 1 / (H + ε)
GTPO_NORMALIZATIONS = ("joint", "separate")


# --------------------------------------------------------------------------------------------
# Input checks and shared pieces
# --------------------------------------------------------------------------------------------


def _check_inputs(
    rewards: torch.Tensor,
    mask: torch.Tensor,
    group_size: int,
    correct: torch.Tensor | None = None,
    entropies: torch.Tensor | None = None,
) -> None:
    """Raise a ``ValueError`` / ``TypeError`` that names the bad argument and the shapes."""
    named = {"rewards": rewards, "mask": mask, "correct": correct, "entropies": entropies}
    for arg, value in named.items():
        if value is not None and not isinstance(value, torch.Tensor):
            raise TypeError(f"{arg} must be a torch.Tensor, got {type(value).__name__}")
    if rewards.dim() != 1:
        raise ValueError(f"rewards must have shape [B], got shape {tuple(rewards.shape)}")
    batch = rewards.shape[0]
    if mask.dim() != 2 or mask.shape[0] != batch:
        raise ValueError(
            f"mask must have shape [B, T] with B = {batch} (from rewards of shape "
            f"{tuple(rewards.shape)}), got shape {tuple(mask.shape)}"
        )
    if correct is not None and correct.shape != rewards.shape:
        raise ValueError(
            f"correct must have the shape of rewards {tuple(rewards.shape)}, got shape {tuple(correct.shape)}"
        )
    if entropies is not None and entropies.shape != mask.shape:
        raise ValueError(
            f"entropies must have the shape of mask {tuple(mask.shape)}, got shape {tuple(entropies.shape)}"
        )
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be a positive int, got {group_size!r}")
    if batch % group_size != 0:
        raise ValueError(f"batch size B = {batch} is not divisible by group_size = {group_size}")
    bad = ~torch.isfinite(rewards.float())  # [B]
    if bad.any():
        where = bad.nonzero().flatten().tolist()
        raise ValueError(f"rewards must be finite; NaN or inf at indices {where}")
    if entropies is not None:
        valid = mask != 0
        bad_h = valid & ~torch.isfinite(entropies.float())  # [B, T]
        if bad_h.any():
            where = [tuple(p) for p in bad_h.nonzero()[:5].tolist()]
            raise ValueError(f"entropies must be finite under the mask; NaN or inf at (i, t) {where}")
        negative = valid & (entropies.float() < -1e-3)
        if negative.any():
            where = [tuple(p) for p in negative.nonzero()[:5].tolist()]
            raise ValueError(f"entropies must be >= 0, negative at (i, t) {where}; were log-probabilities passed?")


def _clean_entropies(entropies: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Detached float32 entropies ``[B, T]``, clipped at 0, exactly 0 outside ``valid``."""
    entropies = entropies.detach().to(torch.float32).clamp_min(0.0)
    return torch.where(valid, entropies, 0.0)  # a NaN in the padding does not leak


def _mean_and_std(
    values: torch.Tensor, weights: torch.Tensor, dims: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased std of ``values`` over ``dims``, counting the entries where ``weights`` is 1.

    Shapes keep ``dims`` (keepdim). With fewer than two entries the std is 0 (not NaN), and with
    none the mean is 0.
    """
    count = weights.sum(dim=dims, keepdim=True)
    mean = (values * weights).sum(dim=dims, keepdim=True) / count.clamp_min(1.0)
    squares = (((values - mean) * weights) ** 2).sum(dim=dims, keepdim=True)
    std = torch.sqrt(squares / (count - 1.0).clamp_min(1.0))
    return mean, std


def _normalize_per_response(values: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
    """``(v − μ) / (σ + 1e-4)`` over the tokens in ``members``, each response weighing 1 (GTPO).

    ``values``, ``members``: ``[n, G, T]`` (float32, bool). Per group, with R the responses that have
    member tokens and n_i response i's count: ``μ = (1/|R|) Σ_i (1/n_i) Σ_t v_{i,t}`` and
    ``σ² = (1/(|R|−1)) Σ_i (1/n_i) Σ_t (v_{i,t} − μ)²``. A group with ``|R| < 2`` gets 0 (σ is 0
    there). Returns ``[n, G, T]`` float32, 0 outside ``members``.
    """
    tokens = members.sum(dim=2, keepdim=True).to(torch.float32)  # n_i, [n, G, 1]
    in_set = tokens > 0  # i ∈ R, [n, G, 1]
    responses = in_set.sum(dim=1, keepdim=True).to(torch.float32)  # |R|, [n, 1, 1]
    per_token = torch.where(in_set, 1.0 / tokens.clamp_min(1.0), 0.0)  # 1/n_i, [n, G, 1]
    response_mean = torch.where(members, values, 0.0).sum(dim=2, keepdim=True) * per_token  # [n, G, 1]
    mean = response_mean.sum(dim=1, keepdim=True) / responses.clamp_min(1.0)  # μ, [n, 1, 1]
    squares = torch.where(members, (values - mean) ** 2, 0.0).sum(dim=2, keepdim=True) * per_token  # [n, G, 1]
    std = torch.sqrt(squares.sum(dim=1, keepdim=True) / (responses - 1.0).clamp_min(1.0))  # σ, [n, 1, 1]
    normalized = (values - mean) / (std + STD_EPS)  # [n, G, T]
    return torch.where(members & (responses >= 2), normalized, 0.0)


def _tied_groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """``[B / G]`` bool: the groups whose base rewards are all equal (their advantages are 0)."""
    grouped = rewards.reshape(-1, group_size)  # [n, G]
    return (grouped == grouped[:, :1]).all(dim=1)


def _normalize_per_group(values: torch.Tensor, tied: torch.Tensor, scale_by_std: bool = True) -> torch.Tensor:
    """``[n, G]`` → ``(v − mean) / (std + 1e-4)`` within each row (or ``v − mean``); tied rows → 0."""
    mean, std = _mean_and_std(values, torch.ones_like(values), dims=(1,))
    centred = values - mean
    if scale_by_std:
        centred = centred / (std + STD_EPS)
    return torch.where(tied[:, None], 0.0, centred)


# --------------------------------------------------------------------------------------------
# GRPO and Dr. GRPO
# --------------------------------------------------------------------------------------------


def grpo_advantages(
    rewards: torch.Tensor, mask: torch.Tensor, group_size: int, scale_by_std: bool = True
) -> torch.Tensor:
    """GRPO (Shao et al. 2024, arXiv 2402.03300): group-normalised outcome reward per token.

    ``A_i = (r_i − mean_group) / (std_group + 1e-4)`` with the unbiased std; ``scale_by_std=False``
    is Dr. GRPO (``A_i = r_i − mean_group``). Broadcast over the response's valid tokens.

    Args:
        rewards: ``[B]`` outcome reward per response, ``B = n_groups * group_size``.
        mask: ``[B, T]`` 1 on response tokens, 0 on padding (bool or numeric).
        group_size: responses per prompt, consecutive in the batch.
        scale_by_std: divide by the group's std (GRPO) or not (Dr. GRPO).

    Returns:
        ``[B, T]`` float32 advantages, 0 where ``mask`` is 0 and in groups of equal rewards.
    """
    _check_inputs(rewards, mask, group_size)
    rewards = rewards.to(torch.float32)
    tied = _tied_groups(rewards, group_size)  # [n]
    per_response = _normalize_per_group(rewards.reshape(-1, group_size), tied, scale_by_std)  # [n, G]
    valid = mask != 0  # [B, T]
    return torch.where(valid, per_response.reshape(-1, 1), 0.0)  # [B, T]


def dr_grpo_advantages(rewards: torch.Tensor, mask: torch.Tensor, group_size: int) -> torch.Tensor:
    """Dr. GRPO (Liu et al. 2025, arXiv 2503.20783): ``A_i = r_i − mean_group``, no std division.

    Shapes as :func:`grpo_advantages`: ``rewards [B]``, ``mask [B, T]`` → ``[B, T]`` float32.
    """
    return grpo_advantages(rewards, mask, group_size, scale_by_std=False)


# --------------------------------------------------------------------------------------------
# GTPO (token level)
# --------------------------------------------------------------------------------------------


def gtpo_shaped_rewards(
    rewards: torch.Tensor,
    correct: torch.Tensor,
    entropies: torch.Tensor,
    mask: torch.Tensor,
    group_size: int,
    alpha1: float = 1.0,
    alpha2: float = 0.1,
) -> torch.Tensor:
    """GTPO's entropy-shaped token rewards r̃ (Tan et al. 2025, arXiv 2508.04349), before normalising.

    At each position t of a group, ``P_t`` / ``N_t`` are the correct / incorrect responses still
    active at t (``mask``), ``d_t = |P_t|``, ``h_t = |N_t|``, ``ε = 1e-8``, ``u = 1 / (H + ε)``::

        i ∈ P_t:  r̃_{i,t} = α1·r_i + α2 · H_{i,t} / (Σ_{k∈P_t} H_{k,t} + ε) · d_t
        j ∈ N_t:  r̃_{j,t} = α1·r_j − α2 · u_{j,t} / Σ_{k∈N_t} u_{k,t} · h_t

    Edge cases: a position with no O+ (or no O−) response only carries the other side's term;
    all-zero entropies in ``P_t`` give a bonus of ``0 / (0 + ε) · d_t = 0``, and in ``N_t`` equal
    ``u`` so each gets a penalty of exactly ``α2``; tokens past a response's length are not in
    ``P_t`` / ``N_t``. With ``α1 + α2 = 1`` and ``r = 1`` the O+ rewards at t sum to ``d_t``
    (up to ε).

    Args:
        rewards: ``[B]`` base rewards. correct: ``[B]`` bool (or 0/1), True = O+.
        entropies: ``[B, T]`` token entropies under the rollout policy (detached here).
        mask: ``[B, T]`` response tokens. group_size: responses per prompt, consecutive.

    Returns:
        ``[B, T]`` float32 r̃, 0 where ``mask`` is 0. Not zeroed for tied groups.
    """
    _check_inputs(rewards, mask, group_size, correct=correct, entropies=entropies)
    batch, length = mask.shape
    groups = batch // group_size
    valid = mask != 0  # [B, T]
    entropy = _clean_entropies(entropies, valid).reshape(groups, group_size, length)  # [n, G, T]
    valid = valid.reshape(groups, group_size, length)  # [n, G, T]
    is_correct = (correct != 0).reshape(groups, group_size, 1)  # [n, G, 1]
    base = rewards.to(torch.float32).reshape(groups, group_size, 1)  # [n, G, 1]

    in_p = valid & is_correct  # [n, G, T]  i ∈ P_t
    in_n = valid & ~is_correct  # [n, G, T]  j ∈ N_t
    d = in_p.sum(dim=1, keepdim=True).to(torch.float32)  # [n, 1, T]
    h = in_n.sum(dim=1, keepdim=True).to(torch.float32)  # [n, 1, T]

    entropy_p = torch.where(in_p, entropy, 0.0)  # [n, G, T]
    bonus = alpha2 * entropy_p / (entropy_p.sum(dim=1, keepdim=True) + ENTROPY_EPS) * d

    confidence = torch.where(in_n, 1.0 / (entropy + ENTROPY_EPS), 0.0)  # u, [n, G, T]
    total = confidence.sum(dim=1, keepdim=True)  # [n, 1, T], 0 only where h_t = 0
    penalty = alpha2 * confidence / torch.where(total > 0, total, 1.0) * h

    shaped = torch.where(valid, alpha1 * base + bonus - penalty, 0.0)  # [n, G, T]
    return shaped.reshape(batch, length)


def gtpo_advantages(
    rewards: torch.Tensor,
    correct: torch.Tensor,
    entropies: torch.Tensor,
    mask: torch.Tensor,
    group_size: int,
    alpha1: float = 1.0,
    alpha2: float = 0.1,
    normalize: str = "joint",
) -> torch.Tensor:
    """GTPO token-level advantages (Tan et al. 2025, arXiv 2508.04349; docs/methods.md §5).

    r̃ from :func:`gtpo_shaped_rewards`, then ``A = (r̃ − μ) / (σ + 1e-4)`` where each response
    weighs 1 in μ and σ, not each token: with R the responses of the set that have active tokens
    and n_i response i's active-token count,
    ``μ = (1/|R|) Σ_i (1/n_i) Σ_t r̃_{i,t}`` and ``σ² = (1/(|R|−1)) Σ_i (1/n_i) Σ_t (r̃_{i,t} − μ)²``.
    So ``alpha2 = 0`` (with ``alpha1 = 1``) gives :func:`grpo_advantages` exactly, whatever the
    lengths, when every response has at least one token (GRPO also counts empty responses).

    - ``normalize="joint"`` [our choice, default]: the set is the whole group.
    - ``normalize="separate"``: the O+ responses and the O− responses of the group are two sets,
      each normalised on its own. Within-set contrast only (see the module docstring).

    A set with fewer than two responses gets 0 (σ is 0 by definition there); a group whose base
    rewards are all equal gets 0 everywhere.

    Args:
        rewards, correct: ``[B]``. entropies, mask: ``[B, T]``. group_size: responses per prompt.
        alpha1, alpha2: weights of the base reward and of the entropy term (paper: 1, 0.1).
        normalize: ``"joint"`` or ``"separate"``.

    Returns:
        ``[B, T]`` float32 advantages, 0 where ``mask`` is 0.
    """
    if normalize not in GTPO_NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {GTPO_NORMALIZATIONS}, got {normalize!r}")
    shaped = gtpo_shaped_rewards(rewards, correct, entropies, mask, group_size, alpha1, alpha2)
    batch, length = mask.shape
    groups = batch // group_size
    shaped = shaped.reshape(groups, group_size, length)  # [n, G, T]
    valid = (mask != 0).reshape(groups, group_size, length)  # [n, G, T]

    if normalize == "joint":
        advantages = _normalize_per_response(shaped, valid)  # [n, G, T]
    else:  # the O+ and O− sets are disjoint, so their results add up
        is_correct = (correct != 0).reshape(groups, group_size, 1)  # [n, G, 1]
        advantages = _normalize_per_response(shaped, valid & is_correct) + _normalize_per_response(
            shaped, valid & ~is_correct
        )  # [n, G, T]

    tied = _tied_groups(rewards.to(torch.float32), group_size)  # [n]
    advantages = torch.where(tied[:, None, None], 0.0, advantages)
    return advantages.reshape(batch, length)


# --------------------------------------------------------------------------------------------
# GRPO-S (sequence level)
# --------------------------------------------------------------------------------------------


def grpo_s_shaped_rewards(
    rewards: torch.Tensor,
    correct: torch.Tensor,
    entropies: torch.Tensor,
    mask: torch.Tensor,
    group_size: int,
    beta1: float = 1.0,
    beta2: float = 0.1,
) -> torch.Tensor:
    """GRPO-S's entropy-shaped sequence rewards r̂ ``[B]`` (Tan et al. 2025, arXiv 2508.04349).

    ``Ĥ_i`` = mean token entropy of response i over its mask (0 for an empty response);
    ``n = |O+|``, ``m = |O−|`` in the group, ``ε = 1e-8``, ``u = 1 / (Ĥ + ε)``::

        O+:  r̂_i = β1·r_i + β2 · Ĥ_i / (Σ_{k∈O+} Ĥ_k + ε) · n
        O−:  r̂_j = β1·r_j − β2 · u_j / Σ_{k∈O−} u_k · m

    A group without O+ (or O−) only carries the other side's term.
    Shapes: ``rewards, correct [B]``, ``entropies, mask [B, T]`` → float32 ``[B]``.
    """
    _check_inputs(rewards, mask, group_size, correct=correct, entropies=entropies)
    valid = mask != 0  # [B, T]
    entropy = _clean_entropies(entropies, valid)  # [B, T]
    lengths = valid.sum(dim=1).to(torch.float32)  # [B]
    mean_entropy = entropy.sum(dim=1) / lengths.clamp_min(1.0)  # Ĥ, [B]

    mean_entropy = mean_entropy.reshape(-1, group_size)  # [n, G]
    is_correct = (correct != 0).reshape(-1, group_size)  # [n, G]
    base = rewards.to(torch.float32).reshape(-1, group_size)  # [n, G]
    n_pos = is_correct.sum(dim=1, keepdim=True).to(torch.float32)  # [n, 1]
    m_neg = (~is_correct).sum(dim=1, keepdim=True).to(torch.float32)  # [n, 1]

    entropy_p = torch.where(is_correct, mean_entropy, 0.0)  # [n, G]
    bonus = beta2 * entropy_p / (entropy_p.sum(dim=1, keepdim=True) + ENTROPY_EPS) * n_pos
    confidence = torch.where(~is_correct, 1.0 / (mean_entropy + ENTROPY_EPS), 0.0)  # u, [n, G]
    total = confidence.sum(dim=1, keepdim=True)  # [n, 1], 0 only where m = 0
    penalty = beta2 * confidence / torch.where(total > 0, total, 1.0) * m_neg
    return (beta1 * base + bonus - penalty).reshape(-1)


def grpo_s_advantages(
    rewards: torch.Tensor,
    correct: torch.Tensor,
    entropies: torch.Tensor,
    mask: torch.Tensor,
    group_size: int,
    beta1: float = 1.0,
    beta2: float = 0.1,
) -> torch.Tensor:
    """GRPO-S sequence-level advantages (Tan et al. 2025, arXiv 2508.04349; docs/methods.md §5).

    ``A_i = (r̂_i − mean_group) / (std_group + 1e-4)`` (unbiased std) over the group's r̂ from
    :func:`grpo_s_shaped_rewards`, broadcast over the response's valid tokens. All-equal base
    rewards ⇒ 0. ``beta2 = 0, beta1 = 1`` gives exactly :func:`grpo_advantages` (another ``beta1`` scales
    the rewards, and the 1e-4 added to the std does not scale with them).

    Shapes: ``rewards, correct [B]``, ``entropies, mask [B, T]`` → float32 ``[B, T]``, 0 off-mask.
    """
    shaped = grpo_s_shaped_rewards(rewards, correct, entropies, mask, group_size, beta1, beta2)
    tied = _tied_groups(rewards.to(torch.float32), group_size)  # [n]
    per_response = _normalize_per_group(shaped.reshape(-1, group_size), tied)  # [n, G]
    valid = mask != 0  # [B, T]
    return torch.where(valid, per_response.reshape(-1, 1), 0.0)  # [B, T]
