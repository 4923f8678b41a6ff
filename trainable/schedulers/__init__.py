"""Trial schedulers: which trials run, pause or stop early."""

from trainable.schedulers.async_hyperband import (
    ASHAScheduler,
    AsyncHyperBandScheduler,
)
from trainable.schedulers.hyperband import HyperBandScheduler
from trainable.schedulers.median_stopping_rule import MedianStoppingRule
from trainable.schedulers.pbt import PopulationBasedTraining
from trainable.schedulers.trial_scheduler import FIFOScheduler, TrialScheduler

__all__ = [
    "ASHAScheduler",
    "AsyncHyperBandScheduler",
    "FIFOScheduler",
    "HyperBandScheduler",
    "MedianStoppingRule",
    "PopulationBasedTraining",
    "TrialScheduler",
]
