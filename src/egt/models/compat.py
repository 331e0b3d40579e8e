"""Private transformers APIs EGT calls, held to the transformers versions they were tested with.

transformers has no public way to get the logits processors ``generate`` builds, nor the position
ids it feeds a Qwen2-VL-family model (3-D rope), so :mod:`egt.entropy.teacher_forced` calls three
private methods: ``GenerationMixin._prepare_generation_config``, ``GenerationMixin._get_logits_processor``
and ``_prepare_position_ids_for_generation`` (the generic one and Qwen2.5-VL's override). Private
methods change without notice: their bodies differ between 5.20, 5.23 and 5.24 (5.24 reads the KV
cache from ``model_kwargs["cache"]`` where 5.23 read ``"past_key_values"``), and
``_prepare_position_ids_for_generation`` does not exist in 5.0. A changed body would not fail — it
would silently give entropies of a distribution other than the sampled one.

So each call site first calls :func:`require_tested_transformers`, which raises :class:`EgtError`
when the installed transformers is outside :data:`TRANSFORMERS_TESTED`, the range the test suite ran
on. ``EGT_ALLOW_UNTESTED_TRANSFORMERS=1`` turns the error into a warning, for trying a newer
release (run ``tests/entropy/test_teacher_forced.py`` on it, then widen the range here).
"""

from __future__ import annotations

import os
import warnings
from importlib import metadata

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from egt.errors import EgtError

__all__ = ["ALLOW_UNTESTED_ENV", "TRANSFORMERS_TESTED", "require_tested_transformers", "transformers_is_tested"]

# The transformers releases the private calls above were tested with (tests/models/test_compat.py
# checks the installed one is inside). Widen only after running the teacher-forced tests on the new one.
TRANSFORMERS_TESTED = SpecifierSet(">=5.23,<5.24")
ALLOW_UNTESTED_ENV = "EGT_ALLOW_UNTESTED_TRANSFORMERS"


def _installed() -> str:
    # the installed distribution's version: importing transformers can swap its module object in
    # sys.modules (lazy submodules), so its ``__version__`` attribute is not a stable thing to read
    return metadata.version("transformers")


def transformers_is_tested(version: str | None = None) -> bool:
    """Whether ``version`` (default: the installed transformers) is inside :data:`TRANSFORMERS_TESTED`."""
    release = Version(version or _installed()).base_version  # 5.23.0.dev0 / 5.23.0+local count as 5.23.0
    return TRANSFORMERS_TESTED.contains(release)


def require_tested_transformers(what: str) -> None:
    """Raise :class:`EgtError` if the installed transformers is untested for ``what`` (a private API use).

    With ``EGT_ALLOW_UNTESTED_TRANSFORMERS=1`` it warns instead.
    """
    version = _installed()
    if transformers_is_tested(version):
        return
    message = (
        f"{what} calls private transformers APIs tested only with transformers {TRANSFORMERS_TESTED}; "
        f"transformers {version} is installed. Install a tested release "
        f"(pip install 'transformers{TRANSFORMERS_TESTED}'), or set {ALLOW_UNTESTED_ENV}=1 to run anyway"
    )
    if os.environ.get(ALLOW_UNTESTED_ENV) == "1":
        warnings.warn(message + f" ({ALLOW_UNTESTED_ENV}=1 is set)", RuntimeWarning, stacklevel=2)
        return
    raise EgtError(message)
