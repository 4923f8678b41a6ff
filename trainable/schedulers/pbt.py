"""Population-based training (Jaderberg et al., "Population Based Training
of Neural Networks", 2017), with Ray Tune 1.x's arguments and files.

Every ``perturbation_interval`` units of ``time_attr``, a trial's score is
ranked against the population. A trial in the top ``quantile_fraction``
saves an in-memory checkpoint. A trial in the bottom one continues from
the checkpoint of a random top trial (*exploit*), with that trial's config
perturbed (*explore*). Scores are the metric signed so that higher is
better, and a NaN metric counts as the worst score.
"""

import copy
import logging
import math
import numbers
import os
import random
from typing import Any, Callable, Dict, List, Optional, Tuple

from trainable.errors import InvalidConfig
from trainable.results import encode_json
from trainable.schedulers.metrics import (
    MissingKeyWarner,
    as_score,
    as_time,
    check_number,
    describe_keys,
    is_missing,
    metric_sign,
    resolve_metric_mode,
    result_value,
)
from trainable.schedulers.trial_scheduler import (
    FIFOScheduler,
    TrialScheduler,
)
from trainable.space import Categorical, Domain
from trainable.trial import Checkpoint, Trial

logger = logging.getLogger(__name__)

GLOBAL_POLICY_FILE = "pbt_global.txt"
_TRAINING_ITERATION = "training_iteration"


class _TrialState:
    """PBT's record of one trial: score, times and kept checkpoint."""

    def __init__(self, trial: Trial):
        self.trial = trial
        self.orig_tag = trial.experiment_tag
        self.last_score: Optional[float] = None
        self.last_train_time = 0.0
        self.last_perturbation_time = 0.0
        # The checkpoint other trials clone, packed into a blob so that
        # checkpoint retention cannot delete it.
        self.last_checkpoint: Optional[Checkpoint] = None
        # While a requested save is pending: the ``order`` of the trial's
        # newest checkpoint at request time. A newer one is the saved one.
        self.checkpoint_request: Optional[int] = None


class PopulationBasedTraining(FIFOScheduler):
    """Population-based training: clone good trials into bad ones and
    perturb their hyperparameters.

    At each perturbation (``time_attr`` advanced by at least
    ``perturbation_interval`` since the trial's last one), the trials that
    have results and are not finished are ranked by score:

    * a trial in the top ``quantile_fraction`` saves an in-memory
      checkpoint, which PBT keeps (as a blob) until the trial's next
      perturbation;
    * a trial in the bottom ``quantile_fraction`` is stopped and continues
      from the kept checkpoint of a random top trial, with that trial's
      config changed by :func:`explore`. The decision is ``NOOP``.

    A top trial without a kept checkpoint (its last perturbation did not
    rank it on top, or its save is still in flight) is cloned from its
    newest checkpoint if that contains the state of its last result, for
    example because it is paused. Otherwise, as for a function trainable
    that never wrote a checkpoint with ``checkpoint_dir``, it is not
    cloned: the bottom trial keeps its own state and config, and a warning
    is logged. A trial that reaches a perturbation while other trials wait
    for a CPU slot is paused (``PAUSE``) to yield its slot. The runner keeps
    it running instead if it has no checkpoint at its current iteration,
    because resuming it would lose progress.

    Iterations after an exploit: the trial continues from the donor
    checkpoint's ``training_iteration`` (and ``time_total_s``), which may
    be lower or higher than its own. Its ``result.json`` and
    ``progress.csv`` keep every result once, in arrival order, so
    ``training_iteration`` in them jumps at each exploit. The jump is on
    record in ``<experiment dir>/pbt_global.txt`` (all exploits) and
    ``pbt_policy_<trial_id>.txt`` (the donor's policy history, then this
    exploit), one JSON list per line, as Ray Tune writes them:
    ``[trial tag, donor tag, trial iteration before the exploit, iteration
    it continues from, donor config, new config]``. Tags are the trials'
    original ``experiment_tag`` values, which start with the trial index.

    With ``synch=True``, a trial that reaches the next perturbation point
    pauses until every unfinished trial has reached it and the search
    algorithm has created all its trials; then all of them are ranked and
    perturbed at once, and started again. Every trial must be able to
    checkpoint: one that cannot pause keeps running, and the others wait
    for it to end.

    Args:
        time_attr: the result key that measures training progress; it must
            increase monotonically.
        reward_attr: deprecated; ``metric=reward_attr, mode="max"``.
        metric: the result key to optimise; None takes ``run(metric=...)``.
        mode: ``"min"`` or ``"max"``; None takes ``run(mode=...)``.
        perturbation_interval: how far ``time_attr`` advances between two
            perturbations of a trial.
        hyperparam_mutations: config keys mapped to how they are explored:
            a list of values (move to a neighbouring value, or resample), a
            search-space domain such as ``tune.uniform(...)`` or a function
            of no arguments (resample, or multiply the value by 0.8 or
            1.2), or a nested dict of these for a nested config. Keys that
            a trial's config lacks are sampled when the trial is added.
        quantile_fraction: the share of the population in the top and in
            the bottom quantile, in (0, 0.5].
        resample_probability: the probability that :func:`explore`
            resamples a value instead of perturbing it.
        custom_explore_fn: called with the explored config, returns the
            config to use; runs after ``hyperparam_mutations``.
        log_config: write the policy files described above.
        require_attrs: raise if a result lacks ``time_attr`` or the metric;
            if False, such a result is skipped with one warning.
        synch: perturb all trials together, as described above.

    Raises:
        InvalidConfig: an argument is invalid; the message names it.
    """

    def __init__(self, time_attr: str = "time_total_s",
                 reward_attr: Optional[str] = None,
                 metric: Optional[str] = None, mode: Optional[str] = None,
                 perturbation_interval: float = 60.0,
                 hyperparam_mutations: Optional[Dict[str, Any]] = None,
                 quantile_fraction: float = 0.25,
                 resample_probability: float = 0.25,
                 custom_explore_fn: Optional[
                     Callable[[Dict[str, Any]], Dict[str, Any]]] = None,
                 log_config: bool = True, require_attrs: bool = True,
                 synch: bool = False):
        name = type(self).__name__
        if not isinstance(time_attr, str) or not time_attr:
            raise InvalidConfig(
                f"{name} got time_attr={time_attr!r}; it must be a result "
                f"key such as 'training_iteration' or 'time_total_s'.")
        check_number(name, "perturbation_interval", perturbation_interval,
                     above=0)
        check_number(name, "quantile_fraction", quantile_fraction, above=0)
        if quantile_fraction > 0.5:
            raise InvalidConfig(
                f"{name} got quantile_fraction={quantile_fraction!r}; it "
                f"must be in (0, 0.5], because the top and bottom quantiles "
                f"must not overlap. 0.25 is the usual value.")
        check_number(name, "resample_probability", resample_probability,
                     minimum=0)
        if resample_probability > 1:
            raise InvalidConfig(
                f"{name} got resample_probability={resample_probability!r};"
                f" it is a probability, so it must be in [0, 1].")
        if custom_explore_fn is not None and not callable(custom_explore_fn):
            raise InvalidConfig(
                f"{name} got custom_explore_fn={custom_explore_fn!r}; it "
                f"must be a function that takes and returns a config dict.")
        if hyperparam_mutations is None:
            hyperparam_mutations = {}
        if not isinstance(hyperparam_mutations, dict):
            raise InvalidConfig(
                f"{name} got hyperparam_mutations={hyperparam_mutations!r} "
                f"(type {type(hyperparam_mutations).__name__}); it must be a "
                f"dict of config keys to lists, domains or functions.")
        if not hyperparam_mutations and custom_explore_fn is None:
            raise InvalidConfig(
                f"{name} needs hyperparam_mutations or custom_explore_fn to "
                f"change configs, and got neither. Pass for example "
                f"hyperparam_mutations={{'lr': tune.loguniform(1e-4, 1e-1)}}.")
        check_mutations(hyperparam_mutations)
        for flag_name, flag in (("log_config", log_config),
                                ("require_attrs", require_attrs),
                                ("synch", synch)):
            if not isinstance(flag, bool):
                raise InvalidConfig(
                    f"{name} got {flag_name}={flag!r}; use True or False.")
        self._metric, self._mode = resolve_metric_mode(
            name, metric, mode, reward_attr)
        self._time_attr = time_attr
        self._perturbation_interval = perturbation_interval
        self._hyperparam_mutations = hyperparam_mutations
        self._quantile_fraction = quantile_fraction
        self._resample_probability = resample_probability
        self._custom_explore_fn = custom_explore_fn
        self._log_config = log_config
        self._require_attrs = require_attrs
        self._synch = synch
        self._states: Dict[str, _TrialState] = {}
        # Trials whose requested checkpoint has not been picked up yet.
        self._pending_saves: set = set()
        self._next_perturbation_sync = float(perturbation_interval)
        self._num_checkpoints = 0
        self._num_perturbations = 0
        self._warner = MissingKeyWarner(name)
        self._warned_no_checkpoint: set = set()

    # ----------------------------------------------------- scheduler hooks

    def on_trial_add(self, runner: Any, trial: Trial) -> None:
        """Check metric and mode, and sample mutated keys the config lacks.
        """
        metric_sign(self)
        for key, spec in self._hyperparam_mutations.items():
            _fill_missing(trial, trial.config, key, spec, key)
        self._states[trial.trial_id] = _TrialState(trial)

    def on_trial_result(self, runner: Any, trial: Trial,
                        result: Dict[str, Any]) -> str:
        """Perturb the trial when its interval is up.

        Returns:
            NOOP if the trial is being cloned from another one; PAUSE to
            yield its slot to waiting trials (or, with ``synch``, to wait
            for the population); CONTINUE otherwise.
        """
        sign = metric_sign(self)
        state = self._state_of(trial)
        progress = as_time(result_value(result, self._time_attr))
        if progress is None:
            self._on_missing(self._time_attr, "time_attr", trial, result)
            return TrialScheduler.CONTINUE
        score = as_score(result_value(result, self._metric), sign)
        if score is None:
            self._on_missing(self._metric, "metric", trial, result)
            return TrialScheduler.CONTINUE
        state.last_score = score
        state.last_train_time = progress
        self._pick_up_checkpoints(runner)
        if result.get("done"):
            return TrialScheduler.CONTINUE
        since = progress - state.last_perturbation_time
        if since < self._perturbation_interval:
            return TrialScheduler.CONTINUE
        if self._synch:
            # Wait, paused, for the population; choose_trial_to_run
            # perturbs it once every trial waits.
            return TrialScheduler.PAUSE
        state.last_perturbation_time = progress
        lower, upper = self._quantiles()
        if self._perturb(runner, trial, upper, lower):
            return TrialScheduler.NOOP
        if any(t is not trial for t in runner.startable_trials()):
            return TrialScheduler.PAUSE
        return TrialScheduler.CONTINUE

    def on_trial_complete(self, runner: Any, trial: Trial,
                          result: Dict[str, Any]) -> None:
        """Free the checkpoint kept for a finished trial."""
        self._forget_checkpoint(trial)

    def on_trial_error(self, runner: Any, trial: Trial) -> None:
        """Free the checkpoint kept for a failed trial."""
        self._forget_checkpoint(trial)

    def choose_trial_to_run(self, runner: Any) -> Optional[Trial]:
        """Return the waiting trial with the least ``time_attr``, so that
        trials progress evenly.

        With ``synch``, only trials before the next perturbation point are
        started. Once every trial waits there, paused, and the search
        algorithm has no more trials, the population is perturbed first.
        """
        self._pick_up_checkpoints(runner)
        candidates = self._candidates(runner)
        if self._synch and not candidates and self._barrier_reached(runner):
            self._perturb_population(runner)
            candidates = self._candidates(runner)
        if not candidates:
            return None
        return min(candidates,
                   key=lambda t: self._state_of(t).last_train_time)

    def debug_string(self) -> str:
        """Return the number of checkpoints taken and exploits done."""
        return (f"PopulationBasedTraining: {self._num_checkpoints} "
                f"checkpoints, {self._num_perturbations} perturbs")

    # ---------------------------------------------------- perturbation core

    def _quantiles(self) -> Tuple[List[Trial], List[Trial]]:
        """Return the bottom and top quantile of the unfinished trials
        that have a score, each sorted from worst to best."""
        ranked = [s.trial for s in self._states.values()
                  if s.last_score is not None and not s.trial.is_finished()]
        ranked.sort(key=lambda t: self._states[t.trial_id].last_score)
        if len(ranked) <= 1:
            return [], []
        size = int(math.ceil(len(ranked) * self._quantile_fraction))
        if size > len(ranked) / 2:
            size = int(math.floor(len(ranked) / 2))
        return ranked[:size], ranked[-size:]

    def _perturb(self, runner: Any, trial: Trial, upper: List[Trial],
                 lower: List[Trial]) -> bool:
        """Checkpoint ``trial`` if it is on top, clone into it if it is at
        the bottom. Returns whether it is being cloned."""
        state = self._states[trial.trial_id]
        state.last_checkpoint = None
        state.checkpoint_request = None
        if trial in upper:
            self._take_checkpoint(runner, trial)
        if trial in lower and upper:
            donor = random.choice(upper)
            return self._exploit(runner, trial, donor)
        return False

    def _take_checkpoint(self, runner: Any, trial: Trial) -> None:
        state = self._states[trial.trial_id]
        current = trial.checkpoint
        if trial.status == Trial.RUNNING:
            runner.save_trial_to_memory(trial)
            state.checkpoint_request = (current.order if current is not None
                                        else -1)
        else:
            # A trial that is not running was paused at its last result,
            # so its newest checkpoint is the state to keep.
            state.checkpoint_request = -1
        self._pending_saves.add(trial.trial_id)
        self._num_checkpoints += 1
        self._pick_up_checkpoint(runner, state)

    def _pick_up_checkpoints(self, runner: Any) -> None:
        for trial_id in list(self._pending_saves):
            self._pick_up_checkpoint(runner, self._states[trial_id])

    def _pick_up_checkpoint(self, runner: Any, state: _TrialState) -> None:
        """Keep the trial's checkpoint once the requested save has
        arrived, packed into a blob right away."""
        if state.checkpoint_request is None:
            self._pending_saves.discard(state.trial.trial_id)
            return
        checkpoint = state.trial.checkpoint
        if checkpoint is None or checkpoint.order <= state.checkpoint_request:
            return
        blob = runner.checkpoint_blob(checkpoint)
        if blob is None:
            return
        if checkpoint.storage != Checkpoint.MEMORY:
            checkpoint = Checkpoint(Checkpoint.MEMORY, blob,
                                    dict(checkpoint.result),
                                    checkpoint.iteration)
        state.last_checkpoint = checkpoint
        state.checkpoint_request = None
        self._pending_saves.discard(state.trial.trial_id)

    def _exploit(self, runner: Any, trial: Trial, donor: Trial) -> bool:
        """Clone ``donor``'s kept checkpoint into ``trial`` with an explored
        config. Returns False (and changes nothing) if the donor has no
        usable checkpoint."""
        state = self._states[trial.trial_id]
        donor_state = self._states[donor.trial_id]
        if donor_state.checkpoint_request is not None:
            # The donor's save may still be on its way; wait for it rather
            # than skip the exploit.
            runner.wait_for_memory_checkpoint(donor)
        self._pick_up_checkpoint(runner, donor_state)
        if donor_state.last_checkpoint is None:
            self._keep_current_checkpoint(runner, donor_state)
        checkpoint = donor_state.last_checkpoint
        blob = runner.checkpoint_blob(checkpoint)
        if blob is None or checkpoint.iteration <= 0:
            self._log_no_checkpoint(trial, donor)
            return False

        new_config = explore(donor.config, self._hyperparam_mutations,
                             self._resample_probability,
                             self._custom_explore_fn)
        if not runner.exploit_trial(trial, blob, new_config,
                                    donor_result=checkpoint.result):
            return False
        logger.info(
            "PBT exploit: trial %s (score %s, iteration %s) continues from "
            "trial %s (score %s), checkpoint at iteration %s.", trial,
            state.last_score, trial.iteration, donor, donor_state.last_score,
            checkpoint.iteration)
        logger.info("PBT explore: config %s -> %s",
                    _mutated_part(donor.config, self._hyperparam_mutations),
                    _mutated_part(new_config, self._hyperparam_mutations))
        if self._log_config:
            self._write_policy(trial, donor, state, donor_state,
                               checkpoint.iteration, new_config)
        trial.experiment_tag = _perturbed_tag(
            state.orig_tag, new_config, self._hyperparam_mutations)
        # The trial continues from the checkpoint's time_attr.
        restored_time = as_time(result_value(checkpoint.result,
                                             self._time_attr))
        if restored_time is None:
            restored_time = donor_state.last_perturbation_time
        state.last_perturbation_time = restored_time
        state.last_train_time = restored_time
        self._num_perturbations += 1
        return True

    def _keep_current_checkpoint(self, runner: Any,
                                 state: _TrialState) -> None:
        """Keep the trial's newest checkpoint if it contains the state of its
        last result, the one its score was ranked by."""
        checkpoint = state.trial.checkpoint
        if checkpoint is None or checkpoint.iteration != state.trial.iteration:
            return
        state.checkpoint_request = -1
        self._pick_up_checkpoint(runner, state)

    def _log_no_checkpoint(self, trial: Trial, donor: Trial) -> None:
        if donor.trial_id in self._warned_no_checkpoint:
            log = logger.debug
        else:
            self._warned_no_checkpoint.add(donor.trial_id)
            log = logger.warning
        log("PBT: trial %s is not cloned from trial %s, which has no "
            "checkpoint of its last perturbation or last result, so it "
            "keeps its own state and config. The donor was not in the top "
            "quantile at its last perturbation, or (for a function "
            "trainable) has not written a checkpoint with "
            "tune.checkpoint_dir since then.", trial, donor)

    def _write_policy(self, trial: Trial, donor: Trial, state: _TrialState,
                      donor_state: _TrialState, restored_iteration: int,
                      new_config: Dict[str, Any]) -> None:
        directory = trial.local_dir
        if not directory:
            return
        row = encode_json([
            state.orig_tag, donor_state.orig_tag,
            trial.last_result.get(_TRAINING_ITERATION, 0),
            restored_iteration, donor.config, new_config,
        ]) + "\n"
        try:
            with open(os.path.join(directory, GLOBAL_POLICY_FILE), "a") as f:
                f.write(row)
            donor_path = _policy_path(directory, donor.trial_id)
            history = ""
            if os.path.exists(donor_path):
                with open(donor_path) as f:
                    history = f.read()
            with open(_policy_path(directory, trial.trial_id), "w") as f:
                f.write(history + row)
        except OSError as error:
            logger.warning("PBT could not write its policy files in %s: %s",
                           directory, error)

    # ---------------------------------------------------------- synch mode

    def _barrier_reached(self, runner: Any) -> bool:
        live = [s for s in self._states.values()
                if not s.trial.is_finished()]
        return bool(live) and runner.search_alg.is_finished() and all(
            s.trial.status != Trial.RUNNING
            and s.last_train_time >= self._next_perturbation_sync
            for s in live)

    def _perturb_population(self, runner: Any) -> None:
        """Rank and perturb every unfinished trial; none is running."""
        lower, upper = self._quantiles()
        middle = [s.trial for s in self._states.values()
                  if s.trial not in lower and s.trial not in upper
                  and not s.trial.is_finished()]
        # Top trials first, so their checkpoints are kept before bottom
        # trials clone them.
        for trial in upper + middle + lower:
            state = self._states[trial.trial_id]
            if not self._perturb(runner, trial, upper, lower):
                state.last_perturbation_time = state.last_train_time
        latest = max((s.last_train_time for s in self._states.values()),
                     default=0.0)
        self._next_perturbation_sync = max(
            self._next_perturbation_sync + self._perturbation_interval,
            latest)

    def _candidates(self, runner: Any) -> List[Trial]:
        candidates = []
        for trial in runner.startable_trials():
            if not runner.has_resources_for_trial(trial):
                continue
            state = self._state_of(trial)
            if self._synch and (state.last_train_time
                                >= self._next_perturbation_sync):
                continue
            candidates.append(trial)
        return candidates

    # ------------------------------------------------------------- helpers

    def _state_of(self, trial: Trial) -> _TrialState:
        state = self._states.get(trial.trial_id)
        if state is None:
            # Added before this scheduler saw it (not via on_trial_add).
            state = _TrialState(trial)
            self._states[trial.trial_id] = state
        return state

    def _forget_checkpoint(self, trial: Trial) -> None:
        state = self._states.get(trial.trial_id)
        if state is not None:
            state.last_checkpoint = None
            state.checkpoint_request = None

    def _on_missing(self, key: str, role: str, trial: Trial,
                    result: Dict[str, Any]) -> None:
        if not self._require_attrs:
            self._warner.warn(key, role, trial, result)
            return
        value = result_value(result, key)
        problem = ("is missing from" if is_missing(value)
                   else f"is {value!r}, not a number, in")
        raise InvalidConfig(
            f"PopulationBasedTraining: {role} {key!r} {problem} a result of "
            f"trial {trial}. The result has the keys: "
            f"{describe_keys(result)}. Report {key!r} as a number in every "
            f"result, change the {role}, or pass require_attrs=False to "
            f"skip such results with a warning.")


# ------------------------------------------------------------- mutations


def check_mutations(mutations: Dict[str, Any], prefix: str = "") -> None:
    """Check ``hyperparam_mutations``, recursing into nested dicts.

    Raises:
        InvalidConfig: a value is not a non-empty list or tuple, a domain,
            a function or a non-empty dict of these; the message names the
            key.
    """
    for key, spec in mutations.items():
        where = f"hyperparam_mutations[{prefix}{key!r}]"
        if isinstance(spec, dict):
            if "grid_search" in spec and len(spec) == 1:
                raise InvalidConfig(
                    f"{where} is a grid_search, which PBT cannot mutate. "
                    f"Pass the values as a plain list instead.")
            if not spec:
                raise InvalidConfig(
                    f"{where} is an empty dict; give the nested keys to "
                    f"mutate, or remove it.")
            check_mutations(spec, f"{prefix}{key!r}][")
        elif isinstance(spec, (list, tuple)):
            if not spec:
                raise InvalidConfig(
                    f"{where} is an empty {type(spec).__name__}; give the "
                    f"values to choose from.")
        elif isinstance(spec, Domain) or callable(spec):
            continue
        else:
            raise InvalidConfig(
                f"{where} is {spec!r} (type {type(spec).__name__}). Use a "
                f"list of values, a search-space domain such as "
                f"tune.uniform(0.001, 0.1), a function of no arguments that "
                f"returns a value, or a dict of these for nested keys.")


def explore(config: Dict[str, Any], mutations: Dict[str, Any],
            resample_probability: float,
            custom_explore_fn: Optional[
                Callable[[Dict[str, Any]], Dict[str, Any]]] = None,
            rng: Any = random) -> Dict[str, Any]:
    """Return a perturbed copy of ``config``.

    For each key of ``mutations``:

    * a list or tuple (or a ``tune.choice`` domain): a random value, with
      probability ``resample_probability`` or if the current value is not
      among the values. Otherwise the value one position lower or higher,
      equally likely, staying at the ends.
    * a domain or a function of no arguments: a new sample, with
      probability ``resample_probability`` or if the current value is not
      a number. Otherwise the value times 0.8 or 1.2, equally likely, and
      truncated to an int if it was an int.
    * a dict: the same, one level down.

    ``custom_explore_fn``, if given, then receives the new config and
    returns the config to use.

    Args:
        config: the config to start from; not modified.
        mutations: as ``hyperparam_mutations`` of
            :class:`PopulationBasedTraining`.
        resample_probability: as described above.
        custom_explore_fn: as described above.
        rng: the random generator (the ``random`` module by default, so
            ``random.seed`` makes runs repeatable).

    Raises:
        InvalidConfig: ``custom_explore_fn`` did not return a dict.
    """
    new_config = copy.deepcopy(config)
    _explore_into(new_config, config, mutations, resample_probability, rng)
    if custom_explore_fn is not None:
        result = custom_explore_fn(new_config)
        if not isinstance(result, dict):
            raise InvalidConfig(
                f"custom_explore_fn returned {result!r:.80}; it must return "
                f"the new config as a dict.")
        new_config = result
    return new_config


def _explore_into(new_config: Dict[str, Any], config: Dict[str, Any],
                  mutations: Dict[str, Any], resample_probability: float,
                  rng: Any) -> None:
    for key, spec in mutations.items():
        current = config.get(key) if isinstance(config, dict) else None
        if isinstance(spec, dict):
            nested = current if isinstance(current, dict) else {}
            new_nested = copy.deepcopy(nested)
            _explore_into(new_nested, nested, spec, resample_probability,
                          rng)
            new_config[key] = new_nested
        elif isinstance(spec, (list, tuple, Categorical)):
            values = list(spec.categories if isinstance(spec, Categorical)
                          else spec)
            new_config[key] = _shift_or_resample(
                values, current, key in config, resample_probability, rng)
        else:
            new_config[key] = _scale_or_resample(
                spec, current, resample_probability, rng)


def _shift_or_resample(values: List[Any], current: Any, present: bool,
                       resample_probability: float, rng: Any) -> Any:
    if (rng.random() < resample_probability or not present
            or current not in values):
        return rng.choice(values)
    index = values.index(current)
    if rng.random() > 0.5:
        return values[max(0, index - 1)]
    return values[min(len(values) - 1, index + 1)]


def _scale_or_resample(spec: Any, current: Any, resample_probability: float,
                       rng: Any) -> Any:
    is_number = (isinstance(current, numbers.Real)
                 and not isinstance(current, bool))
    if rng.random() < resample_probability or not is_number:
        return _sample(spec, rng)
    factor = 1.2 if rng.random() > 0.5 else 0.8
    value = current * factor
    if isinstance(current, numbers.Integral):
        value = int(value)
    return value


def _sample(spec: Any, rng: Any) -> Any:
    if isinstance(spec, Domain):
        return spec.sample(random_state=rng)
    return spec()


def _fill_missing(trial: Trial, config: Dict[str, Any], key: str, spec: Any,
                  path: str) -> None:
    """Sample a mutated key that ``config`` lacks, as Ray Tune does."""
    if isinstance(spec, dict):
        nested = config.setdefault(key, {})
        if isinstance(nested, dict):
            for sub_key, sub_spec in spec.items():
                _fill_missing(trial, nested, sub_key, sub_spec,
                              f"{path}/{sub_key}")
        return
    if key in config:
        return
    if isinstance(spec, (list, tuple)):
        value = random.choice(list(spec))
    else:
        value = _sample(spec, random)
    config[key] = value
    trial.evaluated_params[path] = value
    logger.debug("PBT: trial %s has no %r in its config; sampled %r.",
                 trial, path, value)


def _mutated_part(config: Dict[str, Any],
                  mutations: Dict[str, Any]) -> Dict[str, Any]:
    part = {}
    for key, spec in mutations.items():
        if key not in config:
            continue
        if isinstance(spec, dict) and isinstance(config[key], dict):
            part[key] = _mutated_part(config[key], spec)
        else:
            part[key] = config[key]
    return part


def _perturbed_tag(orig_tag: str, config: Dict[str, Any],
                   mutations: Dict[str, Any]) -> str:
    pairs = []
    _flat_pairs(pairs, "", _mutated_part(config, mutations))
    return f"{orig_tag}@perturbed[{','.join(pairs)}]"


def _flat_pairs(pairs: List[str], prefix: str, part: Dict[str, Any]) -> None:
    for key, value in part.items():
        if isinstance(value, dict):
            _flat_pairs(pairs, f"{prefix}{key}/", value)
        elif isinstance(value, float):
            pairs.append(f"{prefix}{key}={value:.5g}")
        else:
            pairs.append(f"{prefix}{key}={value}")


def _policy_path(directory: str, trial_id: str) -> str:
    return os.path.join(directory, f"pbt_policy_{trial_id}.txt")
