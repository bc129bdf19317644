"""Statistics for success rates: the Wilson score interval and simple summaries."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["wilson_interval", "summarize_lengths"]


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson, 1927, JASA 22:209-212).

    ``centre = (p + z²/2n) / (1 + z²/n)``,
    ``half = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²)`` with ``p = successes / n``.
    Unlike the normal (Wald) interval it stays inside [0, 1] and is sensible at p = 0 or 1, which
    is why robot-learning papers report it for small numbers of rollouts.

    Args:
        successes: number of successful episodes, ``0 <= successes <= n``.
        n: number of episodes.
        z: standard-normal quantile (1.96 for a 95% interval).

    Returns:
        ``(low, high)`` in [0, 1]; ``(0.0, 1.0)`` when ``n == 0`` (nothing is known).

    Raises:
        ValueError: if counts are negative, non-integer, ``successes > n``, or ``z <= 0``.
    """
    if isinstance(successes, bool) or isinstance(n, bool) or int(successes) != successes \
            or int(n) != n:
        raise ValueError(f"successes and n must be integers, got {successes!r}, {n!r}")
    successes, n = int(successes), int(n)
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if not z > 0:
        raise ValueError(f"z must be > 0, got {z}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def summarize_lengths(lengths: Sequence[int | float]) -> dict[str, float | None]:
    """Mean, median, min and max of episode lengths (control steps); ``None`` values when empty."""
    if not lengths:
        return {"mean": None, "median": None, "min": None, "max": None}
    xs = sorted(float(x) for x in lengths)
    k = len(xs)
    median = xs[k // 2] if k % 2 else 0.5 * (xs[k // 2 - 1] + xs[k // 2])
    return {"mean": sum(xs) / k, "median": median, "min": xs[0], "max": xs[-1]}
