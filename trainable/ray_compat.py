"""Run unchanged Ray Tune scripts on trainable, without Ray installed.

:func:`install` puts modules named ``ray``, ``ray.tune`` and the Ray Tune
submodules listed in :data:`MODULES` into ``sys.modules``. Each of them
re-exports trainable's own objects, so ``from ray.tune.schedulers import
PopulationBasedTraining`` gives ``trainable.schedulers.
PopulationBasedTraining`` itself. :func:`uninstall` removes them again.

The ``ray`` module has ``init``, ``shutdown`` and ``is_initialized``.
``ray.init(num_cpus=..., num_gpus=...)`` records the numbers, and the shim's
``ray.tune.run`` passes them to :func:`trainable.run` as its ``num_cpus``
and ``num_gpus`` unless the call gives its own. Any other ``ray.*``
attribute raises AttributeError, and importing a Ray module that is not in
the table raises ModuleNotFoundError, because trainable emulates Ray Tune
only.

From the command line, the shim runs a script as ``__main__``::

    python -m trainable.ray_compat [--force] script.py [args...]

Worker processes: with the ``fork`` start method a worker inherits the
shim. With ``spawn`` and ``forkserver`` a child is a fresh interpreter that
imports the main script (and the modules a trainable comes from) before it
receives any work. For those, :func:`install` also puts a temporary
directory containing a small ``ray`` package at the front of
``sys.path``. The child inherits ``sys.path``, and importing that package
installs the shim in the child. The shim modules pickle by name, so a
trainable whose globals refer to ``tune`` unpickles in a worker too.
"""

import argparse
import atexit
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import multiprocessing
import os
import runpy
import shutil
import sys
import tempfile
import types
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from trainable import launcher as _launcher
from trainable.analysis import ExperimentAnalysis
from trainable.callbacks import Callback
from trainable.errors import InvalidConfig, TuneError
from trainable.results import encode_json

logger = logging.getLogger(__name__)

ALL_NAMES = "*"
"""In :data:`MODULES`, take every name in the source module's ``__all__``.
"""

NameSource = Tuple[str, Union[str, Tuple[str, ...]]]

_SEARCH = ("trainable.search", ALL_NAMES)
_SPACE = ("trainable.space", (
    "choice", "grid_search", "lograndint", "loguniform", "qlograndint",
    "qloguniform", "qrandint", "qrandn", "quniform", "randint", "randn",
    "sample_from", "uniform", "Domain", "Float", "Integer", "Categorical",
    "Function",
))
_TRIAL = ("trainable.trial", ("Trial",))
_ANALYSIS = ("trainable.analysis", ("ExperimentAnalysis", "Analysis"))

MODULES: Dict[str, Tuple[NameSource, ...]] = {
    "ray": (("trainable.ray_compat", ("init", "shutdown",
                                      "is_initialized")),),
    # Later sources override earlier ones: run() applies ray.init()'s
    # num_cpus and num_gpus.
    "ray.tune": (("trainable", ALL_NAMES),
                 ("trainable.ray_compat", ("run",))),
    "ray.tune.analysis": (_ANALYSIS,),
    "ray.tune.analysis.experiment_analysis": (_ANALYSIS,),
    "ray.tune.callback": (("trainable.callbacks", ("Callback",)),),
    "ray.tune.error": (("trainable.errors",
                        ("TuneError", "AbortTrialExecution")),),
    "ray.tune.experiment": (_TRIAL,),
    "ray.tune.experiment.trial": (_TRIAL,),
    "ray.tune.logger": (("trainable.ray_compat", (
        "pretty_print", "LoggerCallback", "JsonLoggerCallback",
        "CSVLoggerCallback")),),
    "ray.tune.progress_reporter": (("trainable.reporter", (
        "CLIReporter", "JupyterNotebookReporter", "ProgressReporter")),),
    "ray.tune.registry": (("trainable.launcher", ("register_trainable",)),),
    "ray.tune.sample": (_SPACE,),
    "ray.tune.schedulers": (("trainable.schedulers", ALL_NAMES),),
    "ray.tune.schedulers.async_hyperband": (("trainable.schedulers", (
        "AsyncHyperBandScheduler", "ASHAScheduler")),),
    "ray.tune.schedulers.median_stopping_rule": (("trainable.schedulers", (
        "MedianStoppingRule",)),),
    "ray.tune.schedulers.pbt": (("trainable.schedulers", (
        "PopulationBasedTraining",)),),
    "ray.tune.schedulers.trial_scheduler": (("trainable.schedulers", (
        "TrialScheduler", "FIFOScheduler")),),
    # Ray 2 paths of the search algorithms.
    "ray.tune.search": (_SEARCH,),
    "ray.tune.search.basic_variant": (("trainable.search", (
        "BasicVariantGenerator",)),),
    "ray.tune.search.concurrency_limiter": (("trainable.search", (
        "ConcurrencyLimiter",)),),
    "ray.tune.search.optuna": (("trainable.search", ("OptunaSearch",)),),
    "ray.tune.search.sample": (_SPACE,),
    "ray.tune.search.search_algorithm": (("trainable.search", (
        "SearchAlgorithm",)),),
    "ray.tune.search.search_generator": (("trainable.search", (
        "SearchGenerator",)),),
    "ray.tune.search.searcher": (("trainable.search", ("Searcher",)),),
    "ray.tune.stopper": (("trainable.stoppers", (
        "Stopper", "CombinedStopper", "EarlyStopping",
        "ExperimentPlateauStopper", "FunctionStopper",
        "MaximumIterationStopper", "NoopStopper", "TimeoutStopper",
        "TrialPlateauStopper")),),
    # Ray 1 paths of the search algorithms.
    "ray.tune.suggest": (_SEARCH,),
    "ray.tune.suggest.basic_variant": (("trainable.search", (
        "BasicVariantGenerator",)),),
    "ray.tune.suggest.optuna": (("trainable.search", ("OptunaSearch",)),),
    "ray.tune.suggest.search": (("trainable.search", ("SearchAlgorithm",)),),
    "ray.tune.suggest.search_generator": (("trainable.search", (
        "SearchGenerator",)),),
    "ray.tune.suggest.suggestion": (("trainable.search", (
        "Searcher", "ConcurrencyLimiter")),),
    "ray.tune.track": (("trainable.track", ALL_NAMES),),
    "ray.tune.trainable": (("trainable.trainable", ("Trainable",)),),
    "ray.tune.trial": (_TRIAL,),
    "ray.tune.utils": (("trainable.utils", ("validate_save_restore",)),),
}
"""The shim's modules: each Ray module path maps to the trainable modules
and names it re-exports, as ``(module, names)`` pairs."""

_STUB_SOURCE = '''\
# Written by trainable.ray_compat.install(). A worker process that starts a
# fresh interpreter imports this package in place of Ray. The package
# installs the trainable shim, whose ray module replaces this one.
import sys

del sys.modules[__name__]
from trainable.ray_compat import _install_in_child

_install_in_child()
'''


class _InitState:
    """The resources that ``ray.init()`` recorded in this process."""

    def __init__(self) -> None:
        self.initialized = False
        self.num_cpus: Optional[float] = None
        self.num_gpus: Optional[int] = None


_init_state = _InitState()
_shim_modules: Dict[str, "_ShimModule"] = {}
_replaced_modules: Dict[str, types.ModuleType] = {}
_stub_dir: Optional[str] = None
# The process that wrote the stub directory. A forked worker inherits
# _stub_dir but must not delete the directory its parent still uses.
_stub_owner_pid = 0
_cleanup_registered = False


# --------------------------------------------------------------- ray.*


def init(address: Optional[str] = None, *, num_cpus: Optional[float] = None,
         num_gpus: Optional[int] = None, ignore_reinit_error: bool = False,
         **ignored: Any) -> None:
    """Record ``num_cpus`` and ``num_gpus`` for later ``ray.tune.run`` calls.

    The shim's ``ray.init``. ``address`` and every other keyword argument
    of Ray's ``init`` are accepted and ignored, because trials always run
    on this machine.

    Raises:
        InvalidConfig: ``num_cpus`` is not a number > 0, or ``num_gpus``
            not an integer >= 0.
        TuneError: ``init`` was already called and ``ignore_reinit_error``
            is False. Ray raises RuntimeError in that case.
    """
    if _init_state.initialized:
        if ignore_reinit_error:
            logger.debug("ray.init() called again; the call is ignored.")
            return
        raise TuneError(
            "ray.init() was called twice. Call ray.shutdown() before "
            "calling ray.init() again, or pass ignore_reinit_error=True to "
            "ignore the second call.")
    if num_cpus is not None and (
            not isinstance(num_cpus, (int, float))
            or isinstance(num_cpus, bool) or not num_cpus > 0):
        raise InvalidConfig(
            f"ray.init(num_cpus={num_cpus!r}): num_cpus must be a number "
            f"> 0, or None to use every CPU this process may run on.")
    if num_gpus is not None and (
            not isinstance(num_gpus, int) or isinstance(num_gpus, bool)
            or num_gpus < 0):
        raise InvalidConfig(
            f"ray.init(num_gpus={num_gpus!r}): num_gpus must be an integer "
            f">= 0, or None to use the GPUs in CUDA_VISIBLE_DEVICES.")
    ignored_names = sorted(ignored)
    if address is not None:
        ignored_names.insert(0, "address")
    if ignored_names:
        logger.info(
            "ray.init() ignores %s: trainable runs every trial on this "
            "machine.", ", ".join(ignored_names))
    _init_state.initialized = True
    _init_state.num_cpus = num_cpus
    _init_state.num_gpus = num_gpus


def shutdown() -> None:
    """Clear the values ``init`` recorded (the shim's ``ray.shutdown``)."""
    _init_state.initialized = False
    _init_state.num_cpus = None
    _init_state.num_gpus = None


def is_initialized() -> bool:
    """Return whether ``init`` was called since the last ``shutdown``."""
    return _init_state.initialized


def run(*args: Any, **kwargs: Any) -> ExperimentAnalysis:
    """Call :func:`trainable.run` with ``ray.init()``'s CPUs and GPUs.

    The ``num_cpus`` and ``num_gpus`` given to ``ray.init`` are the
    defaults; a value passed to this call wins.
    """
    if _init_state.num_cpus is not None and kwargs.get("num_cpus") is None:
        kwargs["num_cpus"] = _init_state.num_cpus
    if _init_state.num_gpus is not None and kwargs.get("num_gpus") is None:
        kwargs["num_gpus"] = _init_state.num_gpus
    return _launcher.run(*args, **kwargs)


# inspect.signature(run) shows the arguments of trainable.run. The name and
# module stay this function's own, so that it pickles as itself.
run.__wrapped__ = _launcher.run  # type: ignore[attr-defined]


# ------------------------------------------------------------ ray.tune.logger


def pretty_print(result: Dict[str, Any]) -> str:
    """Format a result as indented ``key: value`` lines in YAML style.

    As Ray Tune's ``pretty_print`` does, the ``config`` and ``hist_stats``
    entries and the keys whose value is None are left out, and keys are
    sorted.
    """
    printed = {key: value for key, value in result.items()
               if key not in ("config", "hist_stats") and value is not None}
    lines: List[str] = []
    _append_pretty_lines(printed, 0, lines)
    return "".join(f"{line}\n" for line in lines)


def _append_pretty_lines(mapping: Dict[Any, Any], indent: int,
                         lines: List[str]) -> None:
    for key in sorted(mapping, key=str):
        value = mapping[key]
        prefix = " " * indent
        if isinstance(value, dict) and value:
            lines.append(f"{prefix}{key}:")
            _append_pretty_lines(value, indent + 2, lines)
        elif isinstance(value, str):
            lines.append(f"{prefix}{key}: {value}")
        else:
            lines.append(f"{prefix}{key}: {encode_json(value)}")


class LoggerCallback(Callback):
    """A callback with Ray Tune's per-trial logger hooks.

    Override ``log_trial_start``, ``log_trial_restore``, ``log_trial_save``,
    ``log_trial_result`` and ``log_trial_end``; the runner's callback hooks
    call them.
    """

    def log_trial_start(self, trial: Any) -> None:
        """Called when a trial starts or restarts in a worker."""

    def log_trial_restore(self, trial: Any) -> None:
        """Called after a trial was restored from a checkpoint."""

    def log_trial_save(self, trial: Any) -> None:
        """Called after a trial saved a checkpoint."""

    def log_trial_result(self, iteration: int, trial: Any,
                         result: Dict[str, Any]) -> None:
        """Called with every result of a trial."""

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        """Called when a trial finished or failed for good."""

    def on_trial_start(self, iteration: int, trials: List[Any], trial: Any,
                       **info: Any) -> None:
        self.log_trial_start(trial)

    def on_trial_restore(self, iteration: int, trials: List[Any],
                         trial: Any, **info: Any) -> None:
        self.log_trial_restore(trial)

    def on_trial_save(self, iteration: int, trials: List[Any], trial: Any,
                      **info: Any) -> None:
        self.log_trial_save(trial)

    def on_trial_result(self, iteration: int, trials: List[Any], trial: Any,
                        result: Dict[str, Any], **info: Any) -> None:
        self.log_trial_result(iteration, trial, result)

    def on_trial_complete(self, iteration: int, trials: List[Any],
                          trial: Any, **info: Any) -> None:
        self.log_trial_end(trial, failed=False)

    def on_trial_error(self, iteration: int, trials: List[Any], trial: Any,
                       **info: Any) -> None:
        self.log_trial_end(trial, failed=True)


class JsonLoggerCallback(LoggerCallback):
    """Accepted in ``callbacks`` and does nothing: every trial directory
    gets its ``result.json`` and ``params.json`` anyway."""


class CSVLoggerCallback(LoggerCallback):
    """Accepted in ``callbacks`` and does nothing: every trial directory
    gets its ``progress.csv`` anyway."""


# ------------------------------------------------------------ the modules


class _ShimModule(types.ModuleType):
    """A module of the shim: trainable's objects under a Ray module name."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        raise AttributeError(_not_available(f"{self.__name__}.{name}"))

    def __reduce__(self) -> Tuple[Any, Tuple[str]]:
        # Pickled by name. Unpickling in a worker installs the shim there.
        return _import_shim_module, (self.__name__,)


def _not_available(fullname: str) -> str:
    if fullname.count(".") == 1:
        scope = ("trainable only emulates Ray Tune (ray.tune, ray.init, "
                 "ray.shutdown, ray.is_initialized), not the rest of Ray")
    else:
        scope = ("trainable emulates only part of Ray Tune: the modules "
                 "and names listed in trainable.ray_compat.MODULES")
    return (f"{fullname} is not available: {scope}. Run this code on Ray "
            f"to use {fullname}.")


def _import_shim_module(name: str) -> types.ModuleType:
    if is_installed():
        return sys.modules[name]
    if multiprocessing.parent_process() is not None:
        # A worker whose parent ran with the shim installed.
        _install_in_child()
        return sys.modules[name]
    return importlib.import_module(name)


class _ShimFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Reject imports of Ray modules that the shim does not emulate.

    A shim module deleted from ``sys.modules`` is imported again from the
    shim's table.
    """

    def find_spec(self, fullname: str, path: Any = None,
                  target: Any = None) -> Optional[importlib.machinery.
                                                  ModuleSpec]:
        if fullname != "ray" and not fullname.startswith("ray."):
            return None
        if fullname in _shim_modules:
            return _shim_modules[fullname].__spec__
        # ModuleNotFoundError.name stays None: a "from ray.tune import X"
        # import ignores the error when name is the missing submodule, and
        # would then raise a generic "cannot import name" instead of this.
        raise ModuleNotFoundError(_not_available(fullname))

    def create_module(self, spec: importlib.machinery.ModuleSpec
                      ) -> types.ModuleType:
        return _shim_modules[spec.name]

    def exec_module(self, module: types.ModuleType) -> None:
        """Do nothing, because :func:`_build_module` filled the module."""


_finder = _ShimFinder()


def _build_module(path: str, sources: Tuple[NameSource, ...]) -> _ShimModule:
    module = _ShimModule(
        path, f"The trainable shim of {path}; see trainable.ray_compat.")
    # Every shim module is a package, so that importing an unknown
    # submodule reaches _ShimFinder and its message.
    module.__path__ = []
    module.__package__ = path
    module.__loader__ = _finder
    module.__spec__ = importlib.machinery.ModuleSpec(
        path, _finder, is_package=True)
    exported: List[str] = []
    for source_name, names in sources:
        source = importlib.import_module(source_name)
        if names == ALL_NAMES:
            names = tuple(source.__all__)
        for name in names:
            setattr(module, name, getattr(source, name))
            if name not in exported:
                exported.append(name)
    module.__all__ = exported
    return module


# ---------------------------------------------------------- install


def is_installed() -> bool:
    """Return whether the shim's ``ray`` is the one in ``sys.modules``."""
    return bool(_shim_modules) and sys.modules.get("ray") is (
        _shim_modules.get("ray"))


def _real_ray_location() -> Optional[str]:
    existing = sys.modules.get("ray")
    if existing is not None:
        return getattr(existing, "__file__", None) or repr(existing)
    try:
        spec = importlib.util.find_spec("ray")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    return spec.origin or ", ".join(spec.submodule_search_locations or [])


def install(force: bool = False) -> None:
    """Register the shim's ``ray`` modules in ``sys.modules``.

    Does nothing if the shim is already installed.

    Args:
        force: install even if a real Ray package is importable or already
            imported. Its modules are set aside and :func:`uninstall` puts
            them back.

    Raises:
        TuneError: a real Ray package is importable and ``force`` is False.
    """
    if is_installed():
        return
    if _shim_modules:
        # Installed, but a caller removed the shim's ray from sys.modules.
        uninstall()
    location = _real_ray_location()
    if location is not None and not force:
        raise TuneError(
            f"A real Ray package is importable ({location}), so the "
            f"trainable shim is not installed: code importing ray would "
            f"run on trainable instead of Ray without notice. Run the code "
            f"on Ray, remove Ray from this environment, or pass force=True "
            f"(on the command line: python -m trainable.ray_compat --force "
            f"script.py).")
    _install(write_stub=True)


def _install_in_child() -> None:
    # A worker process: the parent installed the shim, with force if
    # needed, and its stub directory is already on sys.path.
    if not is_installed():
        _install(write_stub=False)


def _install(write_stub: bool) -> None:
    global _stub_dir
    modules = {path: _build_module(path, sources)
               for path, sources in MODULES.items()}
    for path, module in modules.items():
        parent, _, child = path.rpartition(".")
        if parent:
            setattr(modules[parent], child, module)
    for name in [n for n in sys.modules if n == "ray"
                 or n.startswith("ray.")]:
        _replaced_modules[name] = sys.modules.pop(name)
    _shim_modules.clear()
    _shim_modules.update(modules)
    sys.modules.update(modules)
    sys.meta_path.insert(0, _finder)
    if write_stub:
        _stub_dir = _write_stub()
        sys.path.insert(0, _stub_dir)
    importlib.invalidate_caches()
    logger.debug("Installed the trainable shim of ray (%d modules).",
                 len(modules))


def _write_stub() -> str:
    global _cleanup_registered, _stub_owner_pid
    directory = tempfile.mkdtemp(prefix="trainable-ray-shim-")
    os.mkdir(os.path.join(directory, "ray"))
    with open(os.path.join(directory, "ray", "__init__.py"), "w") as f:
        f.write(_STUB_SOURCE)
    _stub_owner_pid = os.getpid()
    if not _cleanup_registered:
        atexit.register(_remove_stub)
        _cleanup_registered = True
    return directory


def _remove_stub() -> None:
    global _stub_dir
    if _stub_dir is None:
        return
    while _stub_dir in sys.path:
        sys.path.remove(_stub_dir)
    if os.getpid() == _stub_owner_pid:
        shutil.rmtree(_stub_dir, ignore_errors=True)
    _stub_dir = None


def uninstall() -> None:
    """Remove the shim's modules and put back any Ray modules they replaced.

    Also clears the values that ``ray.init`` recorded. Does nothing if the
    shim is not installed.
    """
    if not _shim_modules:
        return
    for name, module in _shim_modules.items():
        if sys.modules.get(name) is module:
            del sys.modules[name]
    _shim_modules.clear()
    while _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    _remove_stub()
    sys.modules.update(_replaced_modules)
    _replaced_modules.clear()
    shutdown()
    importlib.invalidate_caches()
    logger.debug("Uninstalled the trainable shim of ray.")


# ------------------------------------------------------------ command line


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainable.ray_compat",
        description="Run a Ray Tune script on trainable, without Ray: "
                    "install the ray shim, then run the script as "
                    "__main__.")
    parser.add_argument(
        "--force", action="store_true",
        help="install the shim even if a real Ray package is importable")
    # Both optional for argparse, so that a missing script gets one clear
    # message instead of argparse's "script, args are required".
    parser.add_argument("script", nargs="?",
                        help="path of the Python script to run")
    parser.add_argument("args", nargs=argparse.REMAINDER,
                        help="arguments passed on to the script (optional)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Install the shim and run a script as ``__main__``.

    ``sys.argv`` becomes ``[script, *args]`` and the script's directory
    replaces ``sys.path[0]``, as with ``python script.py``. Both are
    restored and the shim uninstalled when the script ends. An exception
    or ``SystemExit`` raised by the script propagates.

    Returns:
        0 when the script ran to its end, 2 when it could not be started.
    """
    parser = _build_parser()
    options = parser.parse_args(argv)
    if options.script is None:
        parser.error("missing the script to run; pass its path, then any "
                     "arguments for it")
    script = os.path.abspath(options.script)
    if not os.path.isfile(script):
        sys.stderr.write(
            f"{parser.prog}: error: the script {options.script!r} was not "
            f"found; pass the path of a Python file.\n")
        return 2
    saved_argv = sys.argv[:]
    saved_path = sys.path[:]
    sys.argv = [script, *options.args]
    # python -m put the working directory at sys.path[0]; python script.py
    # would have put the script's directory there.
    sys.path[0] = os.path.dirname(script)
    try:
        install(force=options.force)
    except TuneError as exc:
        sys.argv = saved_argv
        sys.path[:] = saved_path
        sys.stderr.write(f"{parser.prog}: error: {exc}\n")
        return 2
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        uninstall()
        sys.argv = saved_argv
        sys.path[:] = saved_path
    return 0


if __name__ == "__main__":
    # Run the functions of the imported module trainable.ray_compat, not of
    # this __main__ copy: the shim's objects must pickle under their real
    # module name.
    from trainable.ray_compat import main as _main

    sys.exit(_main())
