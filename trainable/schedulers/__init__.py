"""Trial schedulers: which trials run, pause or stop early."""

from trainable.schedulers.trial_scheduler import FIFOScheduler, TrialScheduler

__all__ = ["FIFOScheduler", "TrialScheduler"]
