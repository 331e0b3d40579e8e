"""Reward-model ensembles (BaseReward, docs/methods.md §6): the mean of z-normalised member rewards.

Each member's rewards live on their own scale, so each is standardised with the mean and standard
deviation of its rewards on a calibration set (every response of every calibration pair)::

    z_m(x) = (r_m(x) − μ_m) / σ_m          ensemble(x) = mean_m z_m(x)

With a ``text_member``, inputs without images go to that text reward model alone (its own z-score);
inputs with images go to the members. Each model is calibrated on the inputs it will score (see
:meth:`RewardEnsemble.calibrate`). The statistics are fitted once and stored in
``egt_ensemble.json`` beside the member paths (relative to the ensemble folder when they can be),
so a saved ensemble scores the same everywhere. Calibration needs no labels.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from egt.data.atomic import atomic_write_json
from egt.errors import EgtError
from egt.judge.base import Judgement, JudgeRequest
from egt.rm.checkpoint import read_meta_file
from egt.rm.collate import ScoreItem
from egt.rm.scoring import RewardModelJudge, judgements_from_scores, request_items

ENSEMBLE_META_FILE = "egt_ensemble.json"
FORMAT_VERSION = 1
MIN_STD = 1e-6


@dataclass
class MemberStats:
    """A member and its reward normalisation, fitted on the calibration set."""

    path: str
    mean: float
    std: float


def fit_normalisation(rewards: Sequence[float]) -> tuple[float, float]:
    """Mean and (population) standard deviation of ``rewards``; a constant member is refused."""
    if len(rewards) < 2:
        raise EgtError("calibration set: need at least 2 rewards to fit a normalisation")
    mean = sum(rewards) / len(rewards)
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / len(rewards))
    if std < MIN_STD:
        raise EgtError(
            f"calibration set: a member gives the same reward ({mean:.4g}) to every response; it cannot be normalised"
        )
    return mean, std


def z_normalise(rewards: Sequence[float], mean: float, std: float) -> list[float]:
    return [(r - mean) / std for r in rewards]


def ensemble_scores(member_rewards: Sequence[Sequence[float]], stats: Sequence[MemberStats]) -> list[float]:
    """``[M][N]`` raw member rewards → ``[N]`` mean z-scores."""
    z = [z_normalise(r, s.mean, s.std) for r, s in zip(member_rewards, stats, strict=True)]
    return [sum(col) / len(col) for col in zip(*z, strict=True)]


class RewardEnsemble:
    """Mean of z-normalised member rewards; optional text-only routing. A judge for the harness."""

    def __init__(
        self,
        members: Sequence[RewardModelJudge],
        stats: Sequence[MemberStats],
        text_member: RewardModelJudge | None = None,
        text_stats: MemberStats | None = None,
        name: str = "ensemble",
    ):
        if not members:
            raise EgtError("an ensemble needs at least one member")
        if (text_member is None) != (text_stats is None):
            raise EgtError("text_member and its statistics go together")
        self.members = list(members)
        self.stats = list(stats)
        self.text_member = text_member
        self.text_stats = text_stats
        self.name = name
        self.reads_images = any(m.reads_images for m in self.members)

    def score(self, items: Sequence[ScoreItem]) -> list[float]:
        """Ensemble reward of each item (routing text-only items when a text member is set)."""
        routed = [i for i, it in enumerate(items) if self.text_member is not None and not it.images]
        routed_set = set(routed)
        rest = [i for i in range(len(items)) if i not in routed_set]
        out = [0.0] * len(items)
        if rest:
            sub = [items[i] for i in rest]
            for i, s in zip(rest, ensemble_scores([m.score(sub) for m in self.members], self.stats)):
                out[i] = s
        if routed:
            assert self.text_member is not None and self.text_stats is not None
            raw = self.text_member.score([items[i] for i in routed])
            for i, s in zip(routed, z_normalise(raw, self.text_stats.mean, self.text_stats.std)):
                out[i] = s
        return out

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgement]:
        return judgements_from_scores(self.score(request_items(requests)))

    # -------------------------------------------------------------------------------------------- #

    @classmethod
    def calibrate(
        cls,
        members: Sequence[RewardModelJudge],
        items: Sequence[ScoreItem],
        text_member: RewardModelJudge | None = None,
        name: str = "ensemble",
    ) -> RewardEnsemble:
        """Fit each model's normalisation on the calibration items it will score, as :meth:`score` routes them.

        Without a ``text_member`` the members score every input, so they are calibrated on all of
        ``items``. With one, :meth:`score` sends text-only inputs to the text member and only inputs
        with images to the members, so the members are calibrated on the items with images and the
        text member on the text-only items. When ``items`` hold none of one kind, that side falls
        back to all items (the text member gets them with their images dropped), so a calibration
        set of one kind still gives both sides statistics.
        """
        member_items: Sequence[ScoreItem] = items
        text_stats = None
        if text_member is not None:
            member_items = [it for it in items if it.images] or items
            text_items = [it for it in items if not it.images] or [ScoreItem(it.question, it.response) for it in items]
            text_stats = MemberStats(_member_path(text_member), *fit_normalisation(text_member.score(text_items)))
        stats = [MemberStats(_member_path(m), *fit_normalisation(m.score(member_items))) for m in members]
        return cls(members, stats, text_member, text_stats, name=name)

    def save(self, out_dir: str | Path, extra: dict | None = None) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)

        def entry(s: MemberStats) -> dict:
            return {**asdict(s), "path": _relative_to(s.path, out)}

        meta = {
            "format_version": FORMAT_VERSION,
            "kind": "reward_ensemble",
            "combine": "mean_of_z_scores",
            "members": [entry(s) for s in self.stats],
            "text_member": entry(self.text_stats) if self.text_stats else None,
            **(extra or {}),
        }
        atomic_write_json(out / ENSEMBLE_META_FILE, meta)
        return out

    @classmethod
    def load(
        cls, path: str | Path, *, batch_size: int = 16, dtype: str = "auto", device: str = "auto"
    ) -> RewardEnsemble:
        path = Path(path)
        meta = read_ensemble_meta(path)

        def member(entry: dict) -> tuple[RewardModelJudge, MemberStats]:
            member_path = (path / entry["path"]).resolve() if not os.path.isabs(entry["path"]) else Path(entry["path"])
            judge = RewardModelJudge.from_pretrained(member_path, batch_size=batch_size, dtype=dtype, device=device)
            return judge, MemberStats(str(member_path), float(entry["mean"]), float(entry["std"]))

        members = [member(e) for e in meta["members"]]
        text = member(meta["text_member"]) if meta.get("text_member") else (None, None)
        return cls([m for m, _ in members], [s for _, s in members], text[0], text[1], name=path.name)


def read_ensemble_meta(path: str | Path) -> dict[str, Any]:
    meta_path, meta = read_meta_file(path, ENSEMBLE_META_FILE, "an ensemble")
    if meta.get("format_version") != FORMAT_VERSION or not meta.get("members"):
        raise EgtError(f"{meta_path}: unsupported ensemble format or no members")
    for entry in meta["members"] + ([meta["text_member"]] if meta.get("text_member") else []):
        if not {"path", "mean", "std"} <= set(entry) or not float(entry["std"]) > 0:
            raise EgtError(f"{meta_path}: member entry {entry!r} needs path, mean and a positive std")
    return meta


def _member_path(member: Any) -> str:
    path = getattr(member, "path", None)
    if not path:
        raise EgtError(f"ensemble member {getattr(member, 'name', member)!r} has no checkpoint path to store")
    return str(path)


def _relative_to(member: str, ensemble_dir: Path) -> str:
    try:
        return os.path.relpath(Path(member).resolve(), ensemble_dir.resolve())
    except ValueError:  # another drive on Windows
        return str(Path(member).resolve())
