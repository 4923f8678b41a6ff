"""Benchmarks of trainable's performance targets.

Every figure is compared with a limit measured in the same run on the same
machine, because absolute times on a shared machine vary. Each benchmark
module has one ``measure(settings)`` function that returns a list of
:class:`Figure` records; ``benchmarks.run`` runs them and prints the table.

This module contains what the benchmark modules share: the settings, the
figure record and small timing helpers. It imports nothing heavy, because
a ``spawn`` worker started by ``python -m benchmarks`` imports it again.
"""

import math
import os
import resource
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

MODES = ("tiny", "quick", "full")
_DEFAULT_REPEATS = {"tiny": 1, "quick": 3, "full": 5}


@dataclass
class Settings:
    """The size and repeat count of a benchmark run.

    Args:
        mode: ``"tiny"`` (smoke test: runs each code path once),
            ``"quick"`` (smaller sizes, fewer repeats) or ``"full"``.
        repeats: repeats per figure; the default depends on ``mode``.
        ray_python: path of a Python interpreter that has Ray Tune
            installed, for the comparison with Ray Tune; None skips it.
        workdir: directory for experiment results; a fresh temporary
            directory by default.
    """

    mode: str = "full"
    repeats: Optional[int] = None
    ray_python: Optional[str] = None
    workdir: Optional[str] = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(
                f"mode is {self.mode!r}; use one of {', '.join(MODES)}.")
        if self.repeats is not None and self.repeats < 1:
            raise ValueError(
                f"repeats is {self.repeats!r}; use an integer >= 1.")

    @property
    def repeat_count(self) -> int:
        """The number of repeats of each measurement."""
        if self.repeats is not None:
            return self.repeats
        return _DEFAULT_REPEATS[self.mode]

    def pick(self, tiny: int, quick: int, full: int) -> int:
        """Return the size for the current mode."""
        return {"tiny": tiny, "quick": quick, "full": full}[self.mode]

    def new_dir(self, prefix: str) -> str:
        """Create a fresh directory for one experiment."""
        import tempfile

        if self.workdir is not None:
            os.makedirs(self.workdir, exist_ok=True)
        return tempfile.mkdtemp(prefix=f"{prefix}-", dir=self.workdir)


@dataclass
class Figure:
    """One measured figure, its limit and whether it meets its target.

    ``ratio`` is ``value / limit`` when the figure is a time or a size
    (lower is better) and ``value / limit`` of two rates when it is a rate
    (higher is better). ``comparison`` and ``target`` define which way
    passes.
    A figure with an absolute target (a memory budget) has ``limit`` None
    and is compared by ``value``.
    """

    name: str
    title: str
    value: float
    unit: str
    limit: Optional[float]
    limit_title: str
    ratio: Optional[float]
    comparison: str
    target: float
    target_unit: str = "x"
    extra_checks: List[Tuple[str, bool]] = field(default_factory=list)
    vs_ray: str = ""
    details: List[str] = field(default_factory=list)

    @property
    def passed(self) -> Optional[bool]:
        """Whether the target and every extra check hold (None: unknown)."""
        checked = self.ratio if self.limit is not None else self.value
        if checked is None or math.isnan(checked):
            return None
        meets = {
            "<=": checked <= self.target,
            "<": checked < self.target,
            ">=": checked >= self.target,
            ">": checked > self.target,
        }[self.comparison]
        return meets and all(ok for _, ok in self.extra_checks)

    @property
    def target_text(self) -> str:
        """The target as shown in the table, such as ``<= 2.0x``."""
        unit = self.target_unit
        if not self.comparison:
            return "-"
        if unit == "x":
            return f"{self.comparison} {self.target:g}x"
        return f"{self.comparison} {self.target:g} {unit}"


def not_measured(name: str, title: str, reason: str, comparison: str,
                 target: float, target_unit: str = "x") -> Figure:
    """Return a figure that could not be measured, with the reason."""
    return Figure(name=name, title=title, value=math.nan, unit="",
                  limit=math.nan, limit_title=reason, ratio=math.nan,
                  comparison=comparison, target=target,
                  target_unit=target_unit, vs_ray="not measured")


def paired_repeats(
    measure_limit: Callable[[], float],
    measure_figure: Callable[[], float],
    repeats: int,
) -> Tuple[List[float], List[float]]:
    """Measure a figure ``repeats`` times, with the limit around each.

    The limit is measured before the first figure and after every figure.
    Each figure is paired with the mean of the limits just before and
    just after it, so both values of a pair saw the same background load
    and their ratio stays meaningful on a busy machine.

    Returns:
        The paired limits and the figures, ``repeats`` values each.
    """
    around = [measure_limit()]
    figures = []
    for _ in range(repeats):
        figures.append(measure_figure())
        around.append(measure_limit())
    limits = [(before + after) / 2
              for before, after in zip(around, around[1:])]
    return limits, figures


def median(values: Sequence[float]) -> float:
    """Return the median of a non-empty sequence."""
    # Not statistics.median: that module's imports would weigh on every
    # spawn child, which imports this package again.
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return (ordered[middle - 1] + ordered[middle]) / 2


def median_ratio(numerators: Sequence[float],
                 denominators: Sequence[float]) -> float:
    """Return the median of the pairwise ratios of two series."""
    return median([n / d for n, d in zip(numerators, denominators)])


def timed(function: Callable[[], object]) -> float:
    """Run ``function`` once and return the seconds it took."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def rss_mb() -> float:
    """Return this process's resident set size in MiB.

    Reads ``VmRSS`` from ``/proc/self/status``; where that file does not
    exist, returns the peak size from ``getrusage`` instead.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def peak_rss_mb() -> float:
    """Return this process's peak resident set size in MiB (Linux units).
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
