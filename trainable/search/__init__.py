"""Search algorithms: how the runner gets the config of each new trial.

:class:`BasicVariantGenerator` (the default) expands grids and samples
random values. A :class:`Searcher` such as :class:`OptunaSearch` suggests
configs one trial at a time; :class:`SearchGenerator` connects it to the
runner and :class:`ConcurrencyLimiter` caps its running trials.
"""

from trainable.search.basic_variant import BasicVariantGenerator
from trainable.search.optuna import OptunaSearch
from trainable.search.searcher import (
    ConcurrencyLimiter,
    SearchAlgorithm,
    SearchGenerator,
    Searcher,
    Suggestion,
)

__all__ = [
    "BasicVariantGenerator",
    "ConcurrencyLimiter",
    "OptunaSearch",
    "SearchAlgorithm",
    "SearchGenerator",
    "Searcher",
    "Suggestion",
]
