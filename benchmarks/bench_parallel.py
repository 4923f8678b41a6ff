"""Two CPU-bound trials on two cores against the same work done in turn.

Limit: the CPU-bound work of both trials run one after the other in this
process (pure Python arithmetic, so no library starts threads of its
own).

Figure: ``run()`` with two trials of one step each, each step doing that
work, one CPU per trial. The time is the whole ``run()`` call, worker
start and result files included. The speedup is the sequential time over
the ``run()`` time.

Detail (no target): the speedup of two bare processes doing the same
work. When other programs keep a core busy, that speedup falls as well,
so it separates a busy machine from overhead in trainable.

The work is sized once per run so that one share takes a set time on
this machine.
"""

import multiprocessing
from typing import Any, Dict, List

import trainable as tune
from benchmarks import (
    Figure,
    Settings,
    median,
    median_ratio,
    not_measured,
    paired_repeats,
    timed,
)
from trainable.pool import available_cpus

_TRIALS = 2


def cpu_work(loops: int) -> int:
    """Burn CPU in pure Python for ``loops`` iterations."""
    total = 0
    for index in range(loops):
        total = (total + index * index) % 1000003
    return total


class CpuBound(tune.Trainable):
    """A Trainable whose one step is ``cpu_work(config["loops"])``."""

    def step(self) -> Dict[str, Any]:
        return {"total": cpu_work(self.config["loops"])}


def loops_for(seconds: float) -> int:
    """Return the loop count that takes about ``seconds`` here."""
    loops = 200_000
    elapsed = timed(lambda: cpu_work(loops))
    while elapsed < 0.05:
        loops *= 4
        elapsed = timed(lambda: cpu_work(loops))
    return max(1, int(loops * seconds / elapsed))


def sequential_s(loops: int) -> float:
    """Return the seconds to run every trial's work one after another."""
    return timed(lambda: [cpu_work(loops) for _ in range(_TRIALS)])


def bare_parallel_s(loops: int) -> float:
    """Return the seconds for bare processes to do the work side by side.
    """
    def run() -> None:
        processes = [multiprocessing.Process(target=cpu_work, args=(loops,))
                     for _ in range(_TRIALS)]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
    return timed(run)


def parallel_s(loops: int, local_dir: str) -> float:
    """Return the seconds of a ``run()`` of the trials, one CPU each."""
    def run() -> Any:
        return tune.run(CpuBound, config={"loops": loops},
                        num_samples=_TRIALS,
                        stop={"training_iteration": 1},
                        resources_per_trial={"cpu": 1},
                        local_dir=local_dir, verbose=0)
    return timed(run)


def measure(settings: Settings) -> List[Figure]:
    """Measure the speedup of two CPU-bound trials on two cores."""
    cpus = available_cpus()
    if cpus < _TRIALS:
        return [not_measured(
            "parallel", "2 CPU-bound trials on 2 cores",
            f"needs {_TRIALS} CPUs, {cpus} usable", ">=", 1.9)]
    share_s = {"tiny": 0.05, "quick": 1.0, "full": 2.0}[settings.mode]
    loops = loops_for(share_s)
    limits, figures = paired_repeats(
        lambda: sequential_s(loops),
        lambda: parallel_s(loops, settings.new_dir("parallel")),
        settings.repeat_count)
    in_turn, side_by_side = paired_repeats(
        lambda: sequential_s(loops), lambda: bare_parallel_s(loops),
        settings.repeat_count)
    bare_speedup = median_ratio(in_turn, side_by_side)
    return [Figure(
        name="parallel",
        title="2 CPU-bound trials on 2 cores",
        value=median(figures),
        unit="s",
        limit=median(limits),
        limit_title="the same work in turn",
        ratio=median_ratio(limits, figures),
        comparison=">=",
        target=1.9,
        details=[
            f"each trial's step: about {share_s:g} s of pure Python work; "
            f"figure: the whole run() call",
            f"two bare processes doing the same work: speedup "
            f"{bare_speedup:.2f}x",
        ],
    )]
