"""ExperimentAnalysis: the best trial, config and checkpoint of a run.

It is what ``run()`` returns, and it can also be built from an experiment
directory on disk after the run (``ExperimentAnalysis(path)``).
"""

import logging
import math
import os
from typing import Any, Dict, List, Optional, Tuple, Union

from trainable.errors import InvalidConfig, TuneError
from trainable.experiment import find_state_file, load_state_file
from trainable.results import flatten_dict, read_results
from trainable.trial import Trial

logger = logging.getLogger(__name__)

SCOPES = ("last", "avg", "all", "last-5-avg", "last-10-avg")

_MISSING = object()


def _lookup(result: Dict[str, Any], metric: str) -> Any:
    if metric in result:
        return result[metric]
    return flatten_dict(result).get(metric, _MISSING)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


class ExperimentAnalysis:
    """The trials of one experiment and queries over their results.

    Args:
        experiment_checkpoint_path: the experiment directory or its
            ``experiment_state.json``.
        trials: the trials, if already in memory (as ``run()`` passes them);
            otherwise they are loaded from the state file.
        default_metric, default_mode: used when a method gets no metric or
            mode, and by the ``best_*`` properties.
    """

    def __init__(self, experiment_checkpoint_path: str,
                 trials: Optional[List[Trial]] = None,
                 default_metric: Optional[str] = None,
                 default_mode: Optional[str] = None):
        path = os.path.abspath(os.path.expanduser(
            os.fspath(experiment_checkpoint_path)))
        if os.path.isfile(path):
            state_file: Optional[str] = path
            path = os.path.dirname(path)
        else:
            state_file = find_state_file(path)
        self.experiment_path = path
        if default_mode not in (None, "min", "max"):
            raise InvalidConfig(
                f"default_mode is {default_mode!r}; use 'min' or 'max'.")
        self.default_metric = default_metric
        self.default_mode = default_mode
        if trials is None:
            if state_file is None:
                raise TuneError(
                    f"No experiment_state.json in {path!r}. Pass the "
                    f"directory <local_dir>/<name> of an experiment.")
            state = load_state_file(state_file)
            trials = [Trial.from_state(entry, path)
                      for entry in state["trials"]]
        self.trials: List[Trial] = list(trials)
        self._histories: Dict[str, List[Dict[str, Any]]] = {}

    # ------------------------------------------------------------- helpers

    def _metric_mode(self, metric: Optional[str],
                     mode: Optional[str]) -> Tuple[str, str]:
        metric = metric or self.default_metric
        mode = mode or self.default_mode
        if not metric or not mode:
            raise InvalidConfig(
                f"No metric and mode given (metric={metric!r}, "
                f"mode={mode!r}). Pass them to this method, or to run() as "
                f"metric=... and mode=....")
        if mode not in ("min", "max"):
            raise InvalidConfig(f"mode is {mode!r}; use 'min' or 'max'.")
        return metric, mode

    def _history(self, trial: Trial) -> List[Dict[str, Any]]:
        history = self._histories.get(trial.trial_id)
        if history is None:
            history = read_results(trial.logdir) if trial.logdir else []
            self._histories[trial.trial_id] = history
        return history

    def _trial_score(self, trial: Trial, metric: str, mode: str,
                     scope: str) -> Any:
        if scope == "last":
            return _lookup(trial.last_result, metric)
        values = [_lookup(r, metric) for r in self._history(trial)]
        values = [v for v in values if v is not _MISSING]
        if not values:
            return _MISSING
        numbers = [v for v in values if _is_number(v)]
        if not numbers:
            return None
        if scope == "all":
            return max(numbers) if mode == "max" else min(numbers)
        if scope == "avg":
            return sum(numbers) / len(numbers)
        count = 5 if scope == "last-5-avg" else 10
        tail = numbers[-count:]
        return sum(tail) / len(tail)

    def _reported_keys(self) -> List[str]:
        keys = set()
        for trial in self.trials:
            keys.update(flatten_dict(trial.last_result))
        keys = {k for k in keys if not k.startswith("config/")}
        return sorted(keys)

    # ------------------------------------------------------------- queries

    def get_best_trial(self, metric: Optional[str] = None,
                       mode: Optional[str] = None, scope: str = "last",
                       filter_nan_and_inf: bool = True) -> Optional[Trial]:
        """Return the trial with the best ``metric``.

        ``scope`` picks which results count: ``last`` (the last result),
        ``avg`` (the mean of all), ``last-5-avg``, ``last-10-avg`` or
        ``all`` (the best result of each trial). Trials whose value is
        missing, None, NaN or infinite are skipped; None is returned (with
        a warning) if no trial has a usable value.

        Raises:
            InvalidConfig: bad ``scope`` or ``mode``, or no trial ever
                reported ``metric`` (the message lists the keys reported).
        """
        metric, mode = self._metric_mode(metric, mode)
        if scope not in SCOPES:
            raise InvalidConfig(
                f"scope is {scope!r}; use one of {', '.join(SCOPES)}.")
        best, best_value, seen = None, None, False
        for trial in self.trials:
            value = self._trial_score(trial, metric, mode, scope)
            if value is _MISSING:
                continue
            seen = True
            if not _is_number(value):
                if filter_nan_and_inf or value is None:
                    continue
            if best is None or (value > best_value if mode == "max"
                                else value < best_value):
                best, best_value = trial, value
        if not seen and self.trials:
            raise InvalidConfig(
                f"No trial reported the metric {metric!r}. The results "
                f"have the keys: {', '.join(self._reported_keys())}.")
        if best is None and self.trials:
            logger.warning(
                "No trial has a finite value of %r; get_best_trial() "
                "returns None.", metric)
        return best

    def get_best_config(self, metric: Optional[str] = None,
                        mode: Optional[str] = None,
                        scope: str = "last") -> Optional[Dict[str, Any]]:
        """Return the config of the best trial (see get_best_trial)."""
        trial = self.get_best_trial(metric, mode, scope)
        return trial.config if trial else None

    def get_best_logdir(self, metric: Optional[str] = None,
                        mode: Optional[str] = None,
                        scope: str = "last") -> Optional[str]:
        """Return the directory of the best trial (see get_best_trial)."""
        trial = self.get_best_trial(metric, mode, scope)
        return trial.logdir if trial else None

    def _find_trial(self, trial: Union[Trial, str]) -> Trial:
        if isinstance(trial, Trial):
            return trial
        path = os.path.abspath(os.fspath(trial))
        for candidate in self.trials:
            if candidate.logdir and os.path.abspath(candidate.logdir) == (
                    path):
                return candidate
            if candidate.trial_id == trial:
                return candidate
        raise InvalidConfig(
            f"{trial!r} is neither a trial of this experiment nor the "
            f"directory or id of one.")

    def get_trial_checkpoints_paths(
            self, trial: Union[Trial, str],
            metric: Optional[str] = None) -> List[Tuple[str, Any]]:
        """Return ``(path, value of metric)`` for each kept checkpoint of a
        trial, oldest first (``metric`` defaults to training_iteration)."""
        trial = self._find_trial(trial)
        metric = metric or self.default_metric or "training_iteration"
        pairs = []
        for checkpoint in trial.checkpoint_manager.checkpoints:
            if not os.path.exists(checkpoint.value):
                continue
            value = _lookup(checkpoint.result, metric)
            pairs.append((checkpoint.value,
                          None if value is _MISSING else value))
        return pairs

    def get_best_checkpoint(self, trial: Union[Trial, str],
                            metric: Optional[str] = None,
                            mode: Optional[str] = None) -> Optional[str]:
        """Return the path of the trial's checkpoint whose result had the
        best ``metric``, or None if it has no checkpoint with that metric.
        Ties go to the newer checkpoint."""
        metric, mode = self._metric_mode(metric, mode)
        pairs = [(path, value) for path, value in
                 self.get_trial_checkpoints_paths(trial, metric)
                 if _is_number(value)]
        if not pairs:
            return None
        sign = 1 if mode == "max" else -1
        best = max(enumerate(pairs),
                   key=lambda item: (sign * item[1][1], item[0]))
        return best[1][0]

    def get_all_configs(self, prefix: bool = False) -> Dict[str, Dict]:
        """Return every trial's config, keyed by its directory."""
        configs = {}
        for trial in self.trials:
            config = trial.config
            if prefix:
                config = {f"config/{k}": v
                          for k, v in flatten_dict(config).items()}
            configs[trial.logdir] = config
        return configs

    # ------------------------------------------------------- best_* shortcuts

    def _require_defaults(self, name: str) -> None:
        if not self.default_metric or not self.default_mode:
            raise InvalidConfig(
                f"{name} needs the metric and mode given to run() (or to "
                f"ExperimentAnalysis as default_metric and default_mode).")

    @property
    def best_trial(self) -> Optional[Trial]:
        """The best trial by the default metric and mode."""
        self._require_defaults("best_trial")
        return self.get_best_trial()

    @property
    def best_config(self) -> Optional[Dict[str, Any]]:
        """The config of :attr:`best_trial`."""
        self._require_defaults("best_config")
        return self.get_best_config()

    @property
    def best_logdir(self) -> Optional[str]:
        """The directory of :attr:`best_trial`."""
        self._require_defaults("best_logdir")
        return self.get_best_logdir()

    @property
    def best_checkpoint(self) -> Optional[str]:
        """The best checkpoint of :attr:`best_trial`."""
        trial = self.best_trial
        return self.get_best_checkpoint(trial) if trial else None

    @property
    def best_result(self) -> Optional[Dict[str, Any]]:
        """The last result of :attr:`best_trial`."""
        trial = self.best_trial
        return trial.last_result if trial else None

    @property
    def results(self) -> Dict[str, Dict[str, Any]]:
        """Every trial's last result, keyed by trial id."""
        return {t.trial_id: t.last_result for t in self.trials}

    # ----------------------------------------------------------- dataframes

    def dataframe(self, metric: Optional[str] = None,
                  mode: Optional[str] = None) -> Any:
        """Return a pandas DataFrame with one row per trial.

        Each row is the trial's last result, or with ``metric`` and
        ``mode`` its best result, flattened, plus ``logdir``. Needs the
        ``pandas`` extra.
        """
        pd = _import_pandas()
        rows = []
        for trial in self.trials:
            row = trial.last_result
            if metric and mode:
                history = [r for r in self._history(trial)
                           if _is_number(_lookup(r, metric))]
                if history:
                    pick = max if mode == "max" else min
                    row = pick(history, key=lambda r: _lookup(r, metric))
            flat = flatten_dict(row)
            flat["logdir"] = trial.logdir
            rows.append(flat)
        return pd.DataFrame(rows)

    @property
    def results_df(self) -> Any:
        """The last results as a DataFrame indexed by trial id."""
        pd = _import_pandas()
        rows = [dict(flatten_dict(t.last_result), trial_id=t.trial_id)
                for t in self.trials]
        return pd.DataFrame(rows).set_index("trial_id") if rows else (
            pd.DataFrame())

    @property
    def trial_dataframes(self) -> Dict[str, Any]:
        """Every trial's full history as a DataFrame, keyed by directory."""
        pd = _import_pandas()
        return {t.logdir: pd.DataFrame([flatten_dict(r) for r in
                                        self._history(t)])
                for t in self.trials}

    def fetch_trial_dataframes(self) -> Dict[str, Any]:
        """Reload histories from disk and return :attr:`trial_dataframes`.
        """
        self._histories.clear()
        return self.trial_dataframes


def _import_pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError(
            "ExperimentAnalysis dataframes need pandas: pip install "
            "'trainable[pandas]'.") from None
    return pandas


# Ray Tune 1.x name.
Analysis = ExperimentAnalysis
