"""Run Ray Tune Trainable experiments on one machine, without Ray.

``import trainable as tune`` (or ``from trainable import tune``) gives the
names of ``ray.tune``: ``run``, ``Trainable``, ``report``, the search-space
primitives and ``ExperimentAnalysis``.
"""

from trainable.analysis import Analysis, ExperimentAnalysis
from trainable.callbacks import Callback
from trainable.errors import (
    AbortTrialExecution,
    CheckpointError,
    InvalidConfig,
    InvalidSearchSpace,
    SerializationError,
    TuneError,
)
from trainable.function import (
    checkpoint_dir,
    get_trial_dir,
    get_trial_id,
    get_trial_name,
    report,
)
from trainable.launcher import register_trainable, run, with_parameters
from trainable.reporter import (
    CLIReporter,
    JupyterNotebookReporter,
    ProgressReporter,
)
from trainable.space import (
    choice,
    grid_search,
    lograndint,
    loguniform,
    qlograndint,
    qloguniform,
    qrandint,
    qrandn,
    quniform,
    randint,
    randn,
    sample_from,
    uniform,
)
from trainable.stoppers import Stopper
from trainable.trainable import Trainable

__version__ = "0.1.0"

__all__ = [
    "AbortTrialExecution",
    "Analysis",
    "CLIReporter",
    "Callback",
    "CheckpointError",
    "ExperimentAnalysis",
    "InvalidConfig",
    "InvalidSearchSpace",
    "JupyterNotebookReporter",
    "ProgressReporter",
    "SerializationError",
    "Stopper",
    "Trainable",
    "TuneError",
    "checkpoint_dir",
    "choice",
    "get_trial_dir",
    "get_trial_id",
    "get_trial_name",
    "grid_search",
    "lograndint",
    "loguniform",
    "qlograndint",
    "qloguniform",
    "qrandint",
    "qrandn",
    "quniform",
    "randint",
    "randn",
    "register_trainable",
    "report",
    "run",
    "sample_from",
    "uniform",
    "with_parameters",
]
