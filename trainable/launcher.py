"""``run()``: check the arguments, build the experiment, run it.

Also ``register_trainable`` and ``with_parameters``.
"""

import datetime
import logging
import os
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple, Type, Union

import cloudpickle

from trainable.analysis import ExperimentAnalysis
from trainable.callbacks import CallbackList, validate_callbacks
from trainable.errors import (
    CheckpointError,
    InvalidConfig,
    SerializationError,
    TuneError,
)
from trainable.experiment import ExperimentDir
from trainable.function import wrap_function
from trainable.pool import Resources, WorkerPool
from trainable.runner import RunnerSettings, TrialRunner
from trainable.schedulers.trial_scheduler import FIFOScheduler, TrialScheduler
from trainable.trainable import Trainable
from trainable.trial import Trial
from trainable.utils import describe_unpicklable

logger = logging.getLogger(__name__)

_registry: Dict[str, Any] = {}

# Arguments of Ray Tune's run() that need a cluster, a cloud or a server.
_UNSUPPORTED = {
    "server_port": None,
    "with_server": False,
    "upload_dir": None,
    "sync_to_cloud": None,
    "sync_to_driver": None,
    "sync_on_checkpoint": None,
    "trial_executor": None,
    "export_formats": None,
    "loggers": None,
    "global_checkpoint_period": None,
    "_remote": None,
}
# Accepted for compatibility; they change nothing on one machine.
_IGNORED = ("queue_trials", "ray_auto_init", "sync_config")
_RESUME_VALUES = (False, True, "LOCAL", "AUTO", "ERRORED_ONLY", "PROMPT",
                  "REMOTE", None)


def register_trainable(name: str, trainable: Any) -> None:
    """Register a Trainable class or function under ``name`` for ``run()``.
    """
    if not isinstance(name, str) or not name:
        raise InvalidConfig(f"The name {name!r} must be a non-empty string.")
    _as_trainable_class(trainable)
    _registry[name] = trainable


def with_parameters(trainable: Any, **kwargs: Any) -> Any:
    """Pass large or unpicklable-by-value objects to a trainable once.

    For a function, the keyword arguments are added to its call; for a
    Trainable class, they are passed to ``setup(config, **kwargs)``. The
    objects travel to each worker once, with the trainable.
    """
    if isinstance(trainable, type) and issubclass(trainable, Trainable):
        params = dict(kwargs)

        class _WithParameters(trainable):  # type: ignore[misc,valid-type]
            _setup_params = params

            def setup(self, config: Dict[str, Any], **extra: Any) -> None:
                merged = dict(self._setup_params)
                merged.update(extra)
                super().setup(config, **merged)

        _WithParameters.__name__ = trainable.__name__
        _WithParameters.__qualname__ = trainable.__qualname__
        return _WithParameters
    if callable(trainable):
        return wrap_function(trainable, **kwargs)
    raise InvalidConfig(
        f"with_parameters() needs a Trainable class or a function, got "
        f"{type(trainable).__name__}.")


def _as_trainable_class(trainable: Any) -> Type[Trainable]:
    if isinstance(trainable, str):
        if trainable not in _registry:
            raise InvalidConfig(
                f"No trainable is registered as {trainable!r}; call "
                f"trainable.register_trainable({trainable!r}, cls) first, "
                f"or pass the class or function itself.")
        trainable = _registry[trainable]
    if isinstance(trainable, type):
        if issubclass(trainable, Trainable):
            return trainable
        raise InvalidConfig(
            f"{trainable.__qualname__} is a class but not a subclass of "
            f"trainable.Trainable. Subclass Trainable, or pass a function "
            f"def train_fn(config).")
    if callable(trainable):
        return wrap_function(trainable)
    raise InvalidConfig(
        f"run() needs a Trainable subclass, a function or a registered "
        f"name as its first argument, got {type(trainable).__name__} "
        f"{trainable!r:.80}.")


def run(
    run_or_experiment: Union[str, Callable[..., Any], Type[Trainable]],
    name: Optional[str] = None,
    metric: Optional[str] = None,
    mode: Optional[str] = None,
    stop: Any = None,
    time_budget_s: Union[None, int, float, datetime.timedelta] = None,
    config: Optional[Dict[str, Any]] = None,
    resources_per_trial: Optional[Dict[str, float]] = None,
    num_samples: int = 1,
    local_dir: Optional[str] = None,
    search_alg: Any = None,
    scheduler: Optional[TrialScheduler] = None,
    keep_checkpoints_num: Optional[int] = None,
    checkpoint_score_attr: Optional[str] = None,
    checkpoint_freq: int = 0,
    checkpoint_at_end: bool = False,
    verbose: int = 3,
    progress_reporter: Any = None,
    trial_name_creator: Optional[Callable[[Trial], str]] = None,
    trial_dirname_creator: Optional[Callable[[Trial], str]] = None,
    max_failures: int = 0,
    fail_fast: Union[bool, str] = False,
    restore: Optional[str] = None,
    resume: Union[bool, str] = False,
    reuse_actors: bool = False,
    raise_on_failed_trial: bool = True,
    callbacks: Optional[List[Any]] = None,
    max_concurrent_trials: Optional[int] = None,
    log_to_file: Union[bool, str, Tuple[str, str]] = False,
    *,
    num_cpus: Optional[float] = None,
    num_gpus: Optional[int] = None,
    start_method: Optional[str] = None,
    call_timeout_s: Optional[float] = None,
    max_memory_checkpoint_bytes: int = 512 * 1024 * 1024,
    **kwargs: Any,
) -> ExperimentAnalysis:
    """Run an experiment; the arguments are Ray Tune's, documented there.

    Arguments specific to this package (keyword only): ``num_cpus`` and
    ``num_gpus`` (what to share among trials; default: this machine's
    usable CPUs and the GPUs in ``CUDA_VISIBLE_DEVICES``),
    ``start_method`` (``fork``, ``forkserver`` or ``spawn``),
    ``call_timeout_s`` (a worker call that takes longer fails the trial)
    and ``max_memory_checkpoint_bytes`` (a paused trial whose checkpoint
    is larger is saved to disk instead of kept in memory).

    Returns:
        An :class:`ExperimentAnalysis` of all trials.

    Raises:
        InvalidConfig, InvalidSearchSpace, SerializationError,
        CheckpointError: bad arguments, before any worker starts.
        TuneError: trials failed and ``raise_on_failed_trial`` is True.
    """
    _check_unknown_kwargs(kwargs)
    trainable_cls = _as_trainable_class(run_or_experiment)
    trainable_name = _trainable_name(run_or_experiment, trainable_cls)
    config = _check_config(config)
    _check_choices(metric=metric, mode=mode, num_samples=num_samples,
                   checkpoint_freq=checkpoint_freq,
                   keep_checkpoints_num=keep_checkpoints_num,
                   max_failures=max_failures, fail_fast=fail_fast,
                   resume=resume, verbose=verbose,
                   max_concurrent_trials=max_concurrent_trials,
                   start_method=start_method, call_timeout_s=call_timeout_s)
    budget = _check_time_budget(time_budget_s)
    name = _check_name(name or trainable_name)
    local_dir = _check_local_dir(local_dir)
    restore_path = _check_restore(restore)
    resources = Resources.from_request(resources_per_trial)
    class_blob = _pickle_trainable(trainable_cls, run_or_experiment)
    _check_config_picklable(config)

    from trainable.stoppers import build_stopper

    stopper = build_stopper(stop)
    search_alg = _build_search_alg(search_alg, metric, mode, config,
                                   num_samples)
    scheduler = scheduler if scheduler is not None else FIFOScheduler()
    if not isinstance(scheduler, TrialScheduler):
        raise InvalidConfig(
            f"scheduler must be a trainable.schedulers.TrialScheduler, got "
            f"{type(scheduler).__name__}.")
    if not scheduler.set_search_properties(metric, mode):
        raise InvalidConfig(
            f"The scheduler {type(scheduler).__name__} already has metric "
            f"{scheduler.metric!r} and mode {scheduler.mode!r}, which "
            f"differ from run(metric={metric!r}, mode={mode!r}). Set them "
            f"in one place only.")
    reporter = _build_reporter(progress_reporter, verbose, metric, mode)
    total = getattr(search_alg, "total_samples", -1)
    if reporter is not None and total and total > 0:
        reporter.set_total_samples(total)
    experiment = ExperimentDir(os.path.join(local_dir, name), name)
    if budget is not None or _has_timeout(stopper):
        experiment.refresh_interval_s = 0.5
    pool = WorkerPool(class_blob, num_cpus=num_cpus, num_gpus=num_gpus,
                      start_method=start_method, reuse=reuse_actors,
                      prestart=True)
    pool.check_fits(resources)
    settings = RunnerSettings(
        checkpoint_freq=checkpoint_freq,
        checkpoint_at_end=checkpoint_at_end,
        max_failures=max_failures,
        fail_fast=fail_fast,
        reuse_actors=reuse_actors,
        resources=resources,
        time_budget_s=budget,
        max_concurrent_trials=max_concurrent_trials or 0,
        keep_checkpoints_num=keep_checkpoints_num,
        checkpoint_score_attr=checkpoint_score_attr or "training_iteration",
        trial_name_creator=trial_name_creator,
        trial_dirname_creator=trial_dirname_creator,
        call_timeout_s=call_timeout_s,
        restore_path=restore_path,
        max_memory_checkpoint_bytes=max_memory_checkpoint_bytes,
        log_files=_check_log_to_file(log_to_file),
        resource_request=(None if resources_per_trial is not None
                          else _default_resource_request(trainable_cls)),
    )
    runner = TrialRunner(
        trainable_name=trainable_name, pool=pool, search_alg=search_alg,
        scheduler=scheduler, stopper=stopper, experiment=experiment,
        settings=settings,
        callbacks=CallbackList(validate_callbacks(callbacks)),
        reporter=reporter)
    _apply_resume(runner, experiment, resume, max_failures)
    try:
        runner.run()
    finally:
        pool.shutdown(graceful=False)
    if runner._interrupted:
        logger.warning(
            "The experiment was interrupted; its state is saved in %s. "
            "Continue it with run(..., name=%r, local_dir=%r, resume=True).",
            experiment.path, name, local_dir)
    analysis = ExperimentAnalysis(experiment.path, trials=runner.trials,
                                  default_metric=metric, default_mode=mode)
    failed = [t for t in runner.trials if t.status == Trial.ERROR
              and t.trial_id in runner.failed_trial_ids]
    earlier = [t for t in runner.trials if t.status == Trial.ERROR
               and t.trial_id not in runner.failed_trial_ids]
    if earlier:
        logger.warning(
            "%d trial(s) failed in an earlier run and were not retried: %s. "
            "Pass resume='ERRORED_ONLY' to run them again.", len(earlier),
            ", ".join(str(t) for t in earlier))
    if failed and raise_on_failed_trial and not runner._interrupted:
        details = "\n".join(
            f"  {t}: {_last_line(t.error_msg)}\n    {t.error_file}"
            for t in failed)
        raise TuneError(
            f"{len(failed)} trial(s) did not complete:\n{details}\n"
            f"Their error files hold the errors, with the remote traceback "
            f"where user code raised. Pass raise_on_failed_trial=False to "
            f"get the analysis instead.")
    return analysis


def _has_timeout(stopper: Any) -> bool:
    from trainable.stoppers import CombinedStopper, TimeoutStopper

    if isinstance(stopper, CombinedStopper):
        return any(_has_timeout(s) for s in stopper.stoppers)
    return isinstance(stopper, TimeoutStopper)


def _last_line(text: Optional[str]) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "unknown error"


# ------------------------------------------------------------ argument checks


def _check_unknown_kwargs(kwargs: Dict[str, Any]) -> None:
    for key, value in kwargs.items():
        if key in _IGNORED:
            continue
        if key in _UNSUPPORTED:
            if value != _UNSUPPORTED[key]:
                raise InvalidConfig(
                    f"run() argument {key}={value!r} is not supported: "
                    f"trainable runs on one machine, without a cluster, "
                    f"cloud storage or a server. Remove the argument, or "
                    f"run the experiment on Ray Tune.")
            continue
        raise InvalidConfig(
            f"run() got an unknown argument {key!r}. Check the spelling "
            f"against Ray Tune's tune.run() arguments.")


def _trainable_name(original: Any, cls: type) -> str:
    if isinstance(original, str):
        return original
    return getattr(original, "__name__", cls.__name__)


def _check_config(config: Any) -> Dict[str, Any]:
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise InvalidConfig(
            f"config must be a dict, got {type(config).__name__} "
            f"{config!r:.80}.")
    return config


def _check_choices(**values: Any) -> None:
    mode = values["mode"]
    if mode not in (None, "min", "max"):
        raise InvalidConfig(f"mode is {mode!r}; use 'min' or 'max'.")
    metric = values["metric"]
    if metric is not None and not isinstance(metric, str):
        raise InvalidConfig(f"metric is {metric!r}; use a result key string.")
    if (metric is None) != (mode is None):
        raise InvalidConfig(
            f"run() got metric={metric!r} and mode={mode!r}; give both or "
            f"neither.")
    num_samples = values["num_samples"]
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or (
            num_samples == 0 or num_samples < -1):
        raise InvalidConfig(
            f"num_samples is {num_samples!r}; use a positive integer, or -1 "
            f"to sample until a stopper or time budget ends the run.")
    for key in ("checkpoint_freq",):
        value = values[key]
        if not isinstance(value, int) or value < 0:
            raise InvalidConfig(f"{key} is {value!r}; use an integer >= 0.")
    keep = values["keep_checkpoints_num"]
    if keep is not None and (not isinstance(keep, int) or keep < 1):
        raise InvalidConfig(
            f"keep_checkpoints_num is {keep!r}; use None (keep all) or an "
            f"integer >= 1.")
    failures = values["max_failures"]
    if not isinstance(failures, int) or failures < -1:
        raise InvalidConfig(
            f"max_failures is {failures!r}; use an integer >= 0, or -1 to "
            f"retry without limit.")
    if values["fail_fast"] not in (True, False, "raise", "RAISE"):
        raise InvalidConfig(
            f"fail_fast is {values['fail_fast']!r}; use True, False or "
            f"'raise'.")
    if values["resume"] not in _RESUME_VALUES:
        raise InvalidConfig(
            f"resume is {values['resume']!r}; use False, True, 'LOCAL', "
            f"'AUTO' or 'ERRORED_ONLY'.")
    if values["resume"] in ("REMOTE", "PROMPT"):
        raise InvalidConfig(
            f"resume={values['resume']!r} is not supported on one machine; "
            f"use True, 'AUTO' or 'ERRORED_ONLY'.")
    if not isinstance(values["verbose"], int):
        raise InvalidConfig(
            f"verbose is {values['verbose']!r}; use 0, 1, 2 or 3.")
    limit = values["max_concurrent_trials"]
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise InvalidConfig(
            f"max_concurrent_trials is {limit!r}; use None or an integer "
            f">= 1.")
    method = values["start_method"]
    import multiprocessing

    if method is not None and method not in (
            multiprocessing.get_all_start_methods()):
        raise InvalidConfig(
            f"start_method is {method!r}; this platform supports "
            f"{multiprocessing.get_all_start_methods()}.")
    timeout = values["call_timeout_s"]
    if timeout is not None and (not isinstance(timeout, (int, float))
                                or timeout <= 0):
        raise InvalidConfig(
            f"call_timeout_s is {timeout!r}; use None or a number of "
            f"seconds > 0.")


def _default_resource_request(
        cls: type) -> Optional[Callable[[Dict[str, Any]], Any]]:
    """Return the class's ``default_resource_request`` if it defines one.
    """
    method = getattr(cls, "default_resource_request", None)
    base = Trainable.default_resource_request.__func__  # type: ignore
    if method is None or getattr(method, "__func__", None) is base:
        return None
    return method


def _check_log_to_file(value: Any) -> Optional[Tuple[str, str]]:
    """Return the (stdout, stderr) file names for ``log_to_file``."""
    if value is False or value is None:
        return None
    if value is True:
        return ("stdout", "stderr")
    if isinstance(value, str) and value:
        names: Tuple[Any, ...] = (value, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        names = tuple(value)
    else:
        names = ()
    if len(names) != 2 or not all(
            isinstance(n, str) and n and os.sep not in n and n != ".."
            for n in names):
        raise InvalidConfig(
            f"log_to_file is {value!r}; use True, a file name, or a pair "
            f"(stdout file name, stderr file name), each a plain name "
            f"inside the trial directory.")
    return names[0], names[1]


def _check_time_budget(budget: Any) -> Optional[float]:
    if budget is None:
        return None
    if isinstance(budget, datetime.timedelta):
        budget = budget.total_seconds()
    if not isinstance(budget, (int, float)) or isinstance(budget, bool) or (
            budget <= 0):
        raise InvalidConfig(
            f"time_budget_s is {budget!r}; use a number of seconds > 0 or "
            f"a datetime.timedelta.")
    return float(budget)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidConfig(f"name is {name!r}; use a non-empty string.")
    if os.sep in name or (os.altsep and os.altsep in name) or name in (
            ".", "..") or "\0" in name:
        raise InvalidConfig(
            f"name is {name!r}; an experiment name is one directory name, "
            f"without path separators or '..'. Put the parent directories "
            f"in local_dir instead.")
    return name


def _check_local_dir(local_dir: Optional[str]) -> str:
    if local_dir is None:
        local_dir = os.environ.get("TUNE_RESULT_DIR") or os.path.join(
            "~", "ray_results")
    if not isinstance(local_dir, (str, os.PathLike)):
        raise InvalidConfig(
            f"local_dir is {type(local_dir).__name__} {local_dir!r:.60}; "
            f"pass a directory path as a string.")
    path = os.path.abspath(os.path.expanduser(os.fspath(local_dir)))
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write-test-{uuid.uuid4().hex[:8]}")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as exc:
        raise InvalidConfig(
            f"local_dir {path!r} is not writable ({exc.strerror}). Pass a "
            f"directory you can write to.") from None
    return path


def _check_restore(restore: Optional[str]) -> Optional[str]:
    if restore is None:
        return None
    from trainable import checkpoint as ckpt

    path = os.path.abspath(os.path.expanduser(os.fspath(restore)))
    try:
        ckpt.read_metadata(ckpt.find_checkpoint_dir(path))
    except CheckpointError as exc:
        raise CheckpointError(f"restore={restore!r}: {exc}") from None
    return path


def _pickle_trainable(cls: type, original: Any) -> bytes:
    try:
        return cloudpickle.dumps(cls)
    except Exception as exc:
        culprit = describe_unpicklable(original)
        raise SerializationError(
            f"The trainable {getattr(original, '__name__', original)!r} "
            f"cannot be pickled to send it to the worker processes: "
            f"{culprit or exc}. Trainables and configs must be picklable; "
            f"create such objects inside setup() or the function, or pass "
            f"them with trainable.with_parameters().") from None


def _check_config_picklable(config: Dict[str, Any]) -> None:
    from trainable.utils import find_unpicklable

    found = find_unpicklable(config)
    if found is not None:
        path, value, error = found
        raise SerializationError(
            f"config{path} contains {type(value).__name__} {value!r:.60}, "
            f"which cannot be pickled ({error}). Configs are sent to worker "
            f"processes, so they must be picklable: create the object "
            f"inside setup() or the function from plain settings, or pass "
            f"it with trainable.with_parameters().")


def _build_search_alg(search_alg: Any, metric: Optional[str],
                      mode: Optional[str], config: Dict[str, Any],
                      num_samples: int) -> Any:
    from trainable.search import (
        BasicVariantGenerator,
        SearchAlgorithm,
        SearchGenerator,
        Searcher,
    )

    if search_alg is None:
        search_alg = BasicVariantGenerator()
    elif isinstance(search_alg, Searcher):
        search_alg = SearchGenerator(search_alg)
    elif not isinstance(search_alg, SearchAlgorithm):
        raise InvalidConfig(
            f"search_alg must be a Searcher or a SearchAlgorithm from "
            f"trainable.search, got {type(search_alg).__name__}.")
    from trainable.variants import has_unresolved_values

    # False means the algorithm has its own search space and ignores
    # config's, which matters only if config contains a search space too.
    if not search_alg.set_search_properties(metric, mode, config) and (
            has_unresolved_values(config)):
        raise InvalidConfig(
            f"config contains search-space values, but the search "
            f"algorithm {type(search_alg).__name__} already has its own "
            f"search space. Define the parameters in one place only.")
    search_alg.add_configurations(config, num_samples)
    return search_alg


def _build_reporter(reporter: Any, verbose: int, metric: Optional[str],
                    mode: Optional[str]) -> Any:
    from trainable.reporter import CLIReporter, ProgressReporter

    if verbose <= 0:
        return None
    if reporter is None:
        reporter = CLIReporter(metric=metric, mode=mode)
    elif not isinstance(reporter, ProgressReporter):
        raise InvalidConfig(
            f"progress_reporter must be a trainable.ProgressReporter, got "
            f"{type(reporter).__name__}.")
    else:
        reporter.set_search_properties(metric, mode)
    return reporter


def _apply_resume(runner: TrialRunner, experiment: ExperimentDir,
                  resume: Any, max_failures: int) -> None:
    if resume in (False, None):
        if experiment.exists():
            logger.info(
                "%s already contains an experiment; starting a new one beside "
                "it (pass resume=True to continue the old one).",
                experiment.path)
        return
    if not experiment.exists():
        if resume == "AUTO":
            return
        raise TuneError(
            f"resume={resume!r} but {experiment.state_path!r} does not "
            f"exist. Check name and local_dir, or pass resume='AUTO' to "
            f"start a new experiment when there is nothing to resume.")
    state = experiment.load()
    rerun_errored = resume == "ERRORED_ONLY"
    from trainable.checkpoint import remove_staging_dirs

    for entry in state["trials"]:
        trial = Trial.from_state(entry, experiment.path,
                                 max_failures=max_failures)
        trial.checkpoint_manager.keep = runner.settings.keep_checkpoints_num
        if trial.status == Trial.ERROR and rerun_errored:
            trial.status = Trial.PENDING
            trial.num_failures = 0
        if trial.status in (Trial.RUNNING, Trial.PAUSED, Trial.PENDING):
            trial.status = Trial.PENDING
            trial.needs_rewind = True
        if trial.logdir:
            remove_staging_dirs(trial.logdir)
        runner.add_trial(trial)
    runner.load_state(state["runner"])
    logger.info("Resumed %d trials from %s", len(state["trials"]),
                experiment.state_path)
