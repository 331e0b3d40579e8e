"""Lab items: a scene, a question about one square, a correct and a flawed response, a teacher
trace, and a label that a simulated annotator may have flipped.

Difficulty has two sources (EGT's "hard samples"):
- perceptual ambiguity ``a`` ∈ [0, 1]: how close the asked square's hue sits to the boundary
  between two named colours;
- flaw subtlety ``s``: the flawed response names the confusable neighbouring colour (1.0) or an
  unrelated one (0.0). The flawed colour is never elsewhere in the image: telling which square a
  position word refers to (binding it to one of the four image tokens) is beyond the 2-layer judge
  in the demo's budget — with such flaws it stayed at ~55% on them after 1,000 SFT steps.
``difficulty = 0.7·a + 0.3·s``. Noise and difficulty are known per item, which is what lets us
check EGT's claims.

One confusion model (``confusion_probability``) says how often a near-boundary hue is perceived
as its confusable neighbour::

    p(a) = easy + (hard − easy) · clip((a − 0.4) / (0.9 − 0.4), 0, 1)

flat at ``easy`` up to ``a = 0.4``, rising linearly to ``hard`` at ``a = 0.9`` (and beyond).
Like a human annotator, the simulated one errs on what is hard to see: it flips the label with
probability ``p(a)`` (``easy = noise_easy``, ``hard = noise_hard``; on every split but the test).

Two teachers write the stage-1 reasoning traces (``LabConfig.teacher``); each perceives the asked
square's colour, and its trace reasons from what it perceived:

- ``scripted`` (default): perceives the true colour except on genuinely ambiguous hues, where it
  sees the confusable neighbour with probability ``teacher_error_hard · max(0, (a − 0.5) / 0.5)``
  (0 up to ``a = 0.5``, ``teacher_error_hard`` at ``a = 1``). Its doubt is not the annotators'.
- ``annotator``: perceives through the annotators' confusion model: the confusable neighbour with
  probability ``p(a)`` (``noise_easy`` → ``noise_hard``; ``teacher_error_hard`` is unused), drawn
  from its own random stream so the items, images and labels are those of the scripted lab. Its
  verdict can then disagree with the true label on ambiguous items, as an annotator's does: always
  when the flawed response names the neighbour it saw, and when the flaw is a distant colour only
  if that colour is closer on the hue circle to what it saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egt.lab.colours import NAMES, PALETTE, ambiguous_hue
from egt.lab.scenes import POSITIONS, Square

QUESTION_TEMPLATES = ("What colour is the square at the {pos}?", "Which colour does the {pos} square have?")
ANSWER_TEMPLATES = ("The square at the {pos} is {colour}.", "It is {colour}.", "The {pos} square is {colour}.")


@dataclass(frozen=True)
class ItemSpec:
    """Everything about one item except its rendered image."""

    squares: tuple[Square, ...]
    position: str  # the square the question asks about
    question: str
    correct: str  # colour named by the correct response
    wrong: str  # colour named by the flawed response
    responses: tuple[str, str]
    true_preferred: int
    preferred: int  # the annotator's label, possibly flipped
    flipped: bool
    ambiguity: float
    flaw: str  # neighbour | distant
    difficulty: float
    teacher_colour: str  # what the teacher saw (may be wrong on ambiguous squares)


FLAW_SUBTLETY = {"neighbour": 1.0, "distant": 0.0}
TEACHERS = ("scripted", "annotator")
CONFUSION_KNEE = 0.4  # up to this ambiguity a hue is confused at the floor rate
CONFUSION_FULL = 0.9  # from this ambiguity on, at the ceiling rate


def confusion_probability(ambiguity: float, easy: float, hard: float) -> float:
    """Probability of perceiving a hue of ``ambiguity`` as its confusable neighbouring colour.

    ``easy`` up to ambiguity 0.4, rising linearly to ``hard`` at 0.9 and staying there (module
    docstring). The simulated annotator flips labels with it and the ``annotator`` teacher
    misperceives colours with it: one model of perceptual confusion for both.
    """
    ramp = min(1.0, max(0.0, (ambiguity - CONFUSION_KNEE) / (CONFUSION_FULL - CONFUSION_KNEE)))
    return easy + (hard - easy) * ramp


def sample_item(
    rng: np.random.Generator,
    *,
    noise_easy: float,
    noise_hard: float,
    teacher_error_hard: float,
    apply_noise: bool,
    max_ambiguity: float = 0.92,
    teacher: str = "scripted",
    teacher_rng: np.random.Generator | None = None,
) -> ItemSpec:
    """Draw one item. ``apply_noise=False`` keeps clean labels (the test split).

    ``teacher="annotator"`` draws what the teacher perceives from ``teacher_rng`` (required then)
    and leaves ``rng`` exactly as the scripted teacher does, so the item and its image are the same.
    """
    if teacher not in TEACHERS:
        raise ValueError(f"unknown teacher {teacher!r} ({' | '.join(TEACHERS)})")
    if teacher == "annotator" and teacher_rng is None:
        raise ValueError("teacher='annotator' needs its own teacher_rng")
    n_squares = int(rng.integers(1, 5))
    positions = [str(p) for p in rng.choice(POSITIONS, size=n_squares, replace=False)]
    asked = positions[0]
    squares = []
    for pos in positions:
        name = str(rng.choice(NAMES))
        amb = float(rng.uniform(0.0, max_ambiguity)) if pos == asked else float(rng.uniform(0.0, 0.5))
        hue, lean = ambiguous_hue(name, amb, toward_upper=bool(rng.integers(2)))
        squares.append(Square(pos, hue, name, float(rng.uniform(0.75, 1.0)), float(rng.uniform(0.8, 1.0))))
        if pos == asked:
            ambiguity, confusable = amb, lean
    target = squares[0]
    # The flawed response names a colour absent from the image: the confusable neighbour when it is
    # absent, else an unrelated colour (six names, at most four squares: one is always free).
    present = {s.name for s in squares}
    flaw = "neighbour" if confusable not in present and rng.random() < 0.5 else "distant"
    if flaw == "neighbour":
        wrong = confusable
    else:
        wrong = str(rng.choice([n for n in NAMES if n not in present and n != confusable]))
    difficulty = 0.7 * ambiguity + 0.3 * FLAW_SUBTLETY[flaw]

    question = str(rng.choice(QUESTION_TEMPLATES)).format(pos=asked)
    template = str(rng.choice(ANSWER_TEMPLATES))
    good, bad = template.format(pos=asked, colour=target.name), template.format(pos=asked, colour=wrong)
    true_preferred = int(rng.integers(2))
    responses = (good, bad) if true_preferred == 0 else (bad, good)

    p_flip = confusion_probability(ambiguity, noise_easy, noise_hard)
    flipped = bool(apply_noise and rng.random() < p_flip)
    preferred = 1 - true_preferred if flipped else true_preferred

    # The scripted teacher misreads only genuinely ambiguous hues, as the confusable neighbour. Its
    # draw is made whichever teacher is asked for, so that ``rng`` (and the image) stay the same.
    p_teacher = teacher_error_hard * max(0.0, (ambiguity - 0.5) / 0.5)
    teacher_colour = confusable if rng.random() < p_teacher else target.name
    if teacher == "annotator":  # perceives through the annotators' confusion model
        misperceives = teacher_rng.random() < confusion_probability(ambiguity, noise_easy, noise_hard)
        teacher_colour = confusable if misperceives else target.name
    return ItemSpec(
        squares=tuple(squares),
        position=asked,
        question=question,
        correct=target.name,
        wrong=wrong,
        responses=responses,
        true_preferred=true_preferred,
        preferred=preferred,
        flipped=flipped,
        ambiguity=round(ambiguity, 4),
        flaw=flaw,
        difficulty=round(difficulty, 4),
        teacher_colour=teacher_colour,
    )


def teacher_trace(spec: ItemSpec, swapped: bool) -> str:
    """The stage-1 teacher's reasoning and verdict for the item shown in the given order.

    The trace marks each response's claim against what the teacher sees in the image, with the
    mark right after the claim ("left: image red, response 1 red correct, response 2 blue wrong"),
    the format a trial outside the project found learnable. The verdict follows from the marks, so
    the judge's uncertainty sits in the token that names the image's colour, not in the verdict.
    """
    claims = [spec.correct, spec.wrong] if spec.true_preferred == 0 else [spec.wrong, spec.correct]
    if swapped:
        claims.reverse()
    seen = spec.teacher_colour
    marks = ["correct" if c == seen else "wrong" for c in claims]
    if marks[0] == marks[1]:  # the teacher sees neither colour: it prefers the closer hue name
        verdict = 1 if _closer(seen, claims[0], claims[1]) else 2
    else:
        verdict = 1 if marks[0] == "correct" else 2
    think = (
        f"{spec.position}: image {seen}, "
        f"response 1 {claims[0]} {marks[0]}, response 2 {claims[1]} {marks[1]}. "
        f"so response {verdict} is better."
    )
    return f"<think>{think}</think><answer>{verdict}</answer>"


def _closer(seen: str, a: str, b: str) -> bool:
    def dist(x: str) -> float:
        d = abs(PALETTE[seen] - PALETTE[x]) % 360.0
        return min(d, 360.0 - d)

    return dist(a) <= dist(b)
