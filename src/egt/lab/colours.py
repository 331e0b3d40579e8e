"""Named colours on the hue circle, and how ambiguous a rendered hue is.

Perceptual ambiguity is what makes a lab item hard (EGT's hard samples): a square whose hue
lies near the boundary between two named colours is hard to name, for the judge and for the
simulated annotator alike. The name of a hue is its nearest prototype on the circle.
"""

from __future__ import annotations

import colorsys

# name -> prototype hue in degrees. Uneven gaps on purpose: some boundaries are tighter.
PALETTE: dict[str, float] = {"red": 0.0, "orange": 30.0, "yellow": 58.0, "green": 120.0, "blue": 225.0, "purple": 285.0}
NAMES = list(PALETTE)


def _neighbours(name: str) -> tuple[str, str]:
    """The named colours just below and just above ``name`` on the hue circle."""
    order = sorted(NAMES, key=PALETTE.__getitem__)
    i = order.index(name)
    return order[i - 1], order[(i + 1) % len(order)]


def _gap(a: float, b: float) -> float:
    """Hue distance going up from ``a`` to ``b`` (degrees, 0..360)."""
    return (b - a) % 360.0


def ambiguous_hue(name: str, ambiguity: float, toward_upper: bool) -> tuple[float, str]:
    """A hue still named ``name`` but ``ambiguity`` (0..1) of the way to the boundary.

    Returns the hue and the neighbouring colour it leans toward (the confusable one).
    """
    lower, upper = _neighbours(name)
    if toward_upper:
        half = _gap(PALETTE[name], PALETTE[upper]) / 2
        return (PALETTE[name] + ambiguity * half) % 360.0, upper
    half = _gap(PALETTE[lower], PALETTE[name]) / 2
    return (PALETTE[name] - ambiguity * half) % 360.0, lower


def hue_name(hue: float) -> str:
    """The named colour nearest to ``hue`` on the circle."""
    return min(NAMES, key=lambda n: min(abs(hue - PALETTE[n]) % 360.0, 360.0 - abs(hue - PALETTE[n]) % 360.0))


def hue_to_rgb(hue: float, saturation: float = 0.9, value: float = 0.95) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue / 360.0, saturation, value)
    return round(r * 255), round(g * 255), round(b * 255)
