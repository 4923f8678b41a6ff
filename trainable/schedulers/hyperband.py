"""Synchronous HyperBand, which this package does not implement.

Synchronous HyperBand pauses every trial of a bracket at each milestone
until the whole bracket has reached it, which needs every trial to
checkpoint and pause cleanly. :class:`HyperBandScheduler` exists so that
code written for Ray Tune fails with a clear message instead of an import
error. :class:`~trainable.schedulers.AsyncHyperBandScheduler` (ASHA) is the
supported early-stopping scheduler.
"""

from typing import Optional

from trainable.errors import InvalidConfig
from trainable.schedulers.trial_scheduler import FIFOScheduler


class HyperBandScheduler(FIFOScheduler):
    """Ray Tune's synchronous HyperBand; not supported.

    Raises:
        InvalidConfig: always, naming the replacement.
    """

    def __init__(self, time_attr: str = "training_iteration",
                 reward_attr: Optional[str] = None,
                 metric: Optional[str] = None, mode: Optional[str] = None,
                 max_t: float = 81, reduction_factor: float = 3,
                 stop_last_trials: bool = True):
        raise InvalidConfig(
            "HyperBandScheduler (synchronous HyperBand) is not supported by "
            "trainable. Use AsyncHyperBandScheduler (alias ASHAScheduler) "
            "with the same time_attr, metric, mode, max_t and "
            "reduction_factor: it stops under-performing trials at "
            "milestones of time_attr without pausing whole brackets.")
