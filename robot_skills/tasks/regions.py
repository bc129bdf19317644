"""Geometry of task placement regions: the one region shift/scale of the code base.

LIBERO regions on a table (or floor) are lists of axis-aligned boxes
``(x_min, y_min, x_max, y_max)`` in metres, in the frame of their target (for tables: origin at the
table-top centre, +x away from the robot; see :mod:`robot_skills.tasks.bddl`). A *shift/scale*
perturbation (LIBERO-PRO / LIBERO-Plus style) moves each box by ``(dx, dy)`` and scales its size
about its own centre by ``scale``:

    centre' = centre + (dx, dy),   half_size' = scale * half_size

Used by :func:`robot_skills.evaluation.perturbations.apply_perturbation` (rewrites the task's
object init regions, so success predicates see the moved regions too) and by
``sim.scene.sample_initial_state`` (moves only where objects are dropped at reset, leaving the
task untouched).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["Range", "check_shift_scale", "shift_scale_centre_half", "shift_scale_ranges"]

Range = tuple[float, float, float, float]
"""A box ``(x_min, y_min, x_max, y_max)`` in m, in the region target's frame."""


def check_shift_scale(shift_xy: Sequence[float] | np.ndarray,
                      scale: float) -> tuple[tuple[float, float], float]:
    """Validate a region shift/scale and return it as plain floats.

    Args:
        shift_xy: ``(dx, dy)`` in m (table frame); any sequence or array of two finite numbers.
        scale: size factor about each box's centre; a finite real number > 0 (not a bool).

    Returns:
        ``((dx, dy), scale)`` as python floats.

    Raises:
        ValueError: ``shift_xy`` is not two finite numbers (message starts ``region_shift``), or
            ``scale`` is not a finite number > 0 (message starts ``region_scale``); the message
            shows the offending value.
    """
    try:
        shift = np.asarray(shift_xy, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"region_shift must be two finite numbers (dx, dy) in m, "
                         f"got {shift_xy!r}") from None
    if shift.shape != (2,) or not np.all(np.isfinite(shift)):
        raise ValueError(f"region_shift must be two finite numbers (dx, dy) in m, got {shift_xy!r}")
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) \
            or not math.isfinite(float(scale)) or not float(scale) > 0:
        raise ValueError(f"region_scale must be a finite number > 0, got {scale!r}")
    return (float(shift[0]), float(shift[1])), float(scale)


def shift_scale_centre_half(ranges: Iterable[Sequence[float]],
                            shift_xy: Sequence[float] | np.ndarray,
                            scale: float) -> list[tuple[float, float, float, float]]:
    """Shift/scale every box; return each as centre and half-size ``(c_x, c_y, h_x, h_y)``, m.

    ``c = (min + max) / 2 + shift`` and ``h = (max - min) / 2 * scale`` per axis: the definition
    of the transform. :func:`shift_scale_ranges` gives the same boxes as corners; samplers that
    draw ``c + uniform(-h, h)`` use this form directly (it avoids the float rounding of a round
    trip through the corners, so seeded samples do not depend on the representation).

    Args:
        ranges: boxes ``(x_min, y_min, x_max, y_max)`` in m (table frame), ``min <= max``; may be
            empty. Not modified.
        shift_xy: ``(dx, dy)`` in m added to every box's centre.
        scale: factor (> 0) on every box's width and depth.

    Returns:
        A new list of ``(c_x, c_y, h_x, h_y)`` python-float tuples, in the input order
        (``h >= 0``).

    Raises:
        ValueError: a bad ``shift_xy`` or ``scale`` (see :func:`check_shift_scale`; checked even
            when ``ranges`` is empty), or a box that is not four finite numbers with
            ``x_min <= x_max`` and ``y_min <= y_max`` (the message shows the box and its index).
    """
    (dx, dy), s = check_shift_scale(shift_xy, scale)
    out: list[tuple[float, float, float, float]] = []
    for i, box in enumerate(ranges):
        try:
            x0, y0, x1, y1 = (float(v) for v in box)
        except (TypeError, ValueError):
            raise ValueError(f"range {i} must be four numbers (x_min, y_min, x_max, y_max) in m, "
                             f"got {box!r}") from None
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x0 > x1 or y0 > y1:
            raise ValueError(f"range {i} must be four finite numbers (x_min, y_min, x_max, y_max) "
                             f"with min <= max, got {box!r}")
        out.append(((x0 + x1) / 2 + dx, (y0 + y1) / 2 + dy, (x1 - x0) / 2 * s, (y1 - y0) / 2 * s))
    return out


def shift_scale_ranges(ranges: Iterable[Sequence[float]], shift_xy: Sequence[float] | np.ndarray,
                       scale: float) -> list[Range]:
    """Shift every box by ``shift_xy`` and scale its size about its centre by ``scale``.

    For each box: ``c = (min + max) / 2 + shift``, ``h = (max - min) / 2 * scale`` per axis
    (:func:`shift_scale_centre_half`), and the result is
    ``(c_x - h_x, c_y - h_y, c_x + h_x, c_y + h_y)``. ``shift = (0, 0)`` and ``scale = 1`` return
    the boxes unchanged up to float rounding (~1e-17 m).

    Args:
        ranges: boxes ``(x_min, y_min, x_max, y_max)`` in m (table frame), ``min <= max``; may be
            empty. Not modified.
        shift_xy: ``(dx, dy)`` in m added to every box's centre.
        scale: factor (> 0) on every box's width and depth.

    Returns:
        A new list of boxes as tuples of python floats, in the input order.

    Raises:
        ValueError: as :func:`shift_scale_centre_half`.
    """
    return [(cx - hx, cy - hy, cx + hx, cy + hy)
            for cx, cy, hx, hy in shift_scale_centre_half(ranges, shift_xy, scale)]
