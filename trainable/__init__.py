"""Run Ray Tune Trainable experiments on one machine, without Ray.

``import trainable as tune`` (or ``from trainable import tune``) gives the
names of ``ray.tune``: ``run``, ``Trainable``, ``report``, the search-space
primitives and ``ExperimentAnalysis``.

The names are imported on first use, so ``import trainable`` stays fast and
a worker process loads only the modules it needs.
"""

import importlib
from typing import TYPE_CHECKING, Any, List

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS = {
    'AbortTrialExecution': 'trainable.errors',
    'Analysis': 'trainable.analysis',
    'CLIReporter': 'trainable.reporter',
    'Callback': 'trainable.callbacks',
    'CheckpointError': 'trainable.errors',
    'ExperimentAnalysis': 'trainable.analysis',
    'InvalidConfig': 'trainable.errors',
    'InvalidSearchSpace': 'trainable.errors',
    'JupyterNotebookReporter': 'trainable.reporter',
    'ProgressReporter': 'trainable.reporter',
    'SerializationError': 'trainable.errors',
    'Stopper': 'trainable.stoppers',
    'Trainable': 'trainable.trainable',
    'TuneError': 'trainable.errors',
    'checkpoint_dir': 'trainable.function',
    'choice': 'trainable.space',
    'get_trial_dir': 'trainable.function',
    'get_trial_id': 'trainable.function',
    'get_trial_name': 'trainable.function',
    'grid_search': 'trainable.space',
    'lograndint': 'trainable.space',
    'loguniform': 'trainable.space',
    'qlograndint': 'trainable.space',
    'qloguniform': 'trainable.space',
    'qrandint': 'trainable.space',
    'qrandn': 'trainable.space',
    'quniform': 'trainable.space',
    'randint': 'trainable.space',
    'randn': 'trainable.space',
    'register_trainable': 'trainable.launcher',
    'report': 'trainable.function',
    'run': 'trainable.launcher',
    'sample_from': 'trainable.space',
    'uniform': 'trainable.space',
    'with_parameters': 'trainable.launcher',
}
# Subpackages reachable as attributes, as ``tune.schedulers`` is in Ray.
_SUBMODULES = ("schedulers", "search", "stoppers", "utils", "track",
               "testing")

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is not None:
        value = getattr(importlib.import_module(module_name), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"trainable.{name}")
    else:
        raise AttributeError(f"module 'trainable' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))


if TYPE_CHECKING:
    from trainable.analysis import Analysis, ExperimentAnalysis  # noqa: F401
    from trainable.callbacks import Callback  # noqa: F401
    from trainable.errors import (  # noqa: F401
        AbortTrialExecution,
        CheckpointError,
        InvalidConfig,
        InvalidSearchSpace,
        SerializationError,
        TuneError,
    )
    from trainable.function import (  # noqa: F401
        checkpoint_dir,
        get_trial_dir,
        get_trial_id,
        get_trial_name,
        report,
    )
    from trainable.launcher import (  # noqa: F401
        register_trainable,
        run,
        with_parameters,
    )
    from trainable.reporter import (  # noqa: F401
        CLIReporter,
        JupyterNotebookReporter,
        ProgressReporter,
    )
    from trainable.space import (  # noqa: F401
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
    from trainable.stoppers import Stopper  # noqa: F401
    from trainable.trainable import Trainable  # noqa: F401
