"""The driver event loop: start trials, route replies, apply decisions.

::

    TrialRunner.run()
      loop until every trial ended and the search algorithm is done:
        start_trials()       ask the scheduler/search algorithm, lend workers
        process_events()     wait on all pipes and process sentinels at once
          reply to train  -> record result, decide, queue the next request
          reply to save   -> flush result files, record checkpoint, save state
          error reply     -> error.txt, retry from checkpoint or fail
          sentinel ready  -> the worker died: same as an error
        check_experiment_stop()   stopper.stop_all(), time budget
        report progress, save experiment state

Each running trial owns one worker and a queue of requests (``_Action``).
One request is in flight per worker; when its reply arrives, the handler
runs and the next queued request is sent. After a train result the next
request is sent *before* the result files are written, so the worker is
already computing while the driver does its bookkeeping.
"""

import collections
import logging
import os
import selectors
import signal
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from trainable import protocol
from trainable.callbacks import CallbackList
from trainable.errors import (
    NoCheckpointError,
    TuneError,
    WorkerDiedError,
    WorkerTimeoutError,
)
from trainable.experiment import ExperimentDir
from trainable.pool import Resources, Worker, WorkerPool
from trainable.results import ResultWriter, write_params
from trainable.schedulers.trial_scheduler import TrialScheduler
from trainable.trainable import (
    DONE,
    RESULT_DUPLICATE,
    SHOULD_CHECKPOINT,
    TRAINING_ITERATION,
)
from trainable.trial import Checkpoint, Trial, safe_dirname, validate_dirname

logger = logging.getLogger(__name__)

_EVENT_TIMEOUT_S = 0.5


@dataclass
class _Action:
    """One queued request for a trial's worker and what to do with the
    reply."""

    method: str
    args: Tuple[Any, ...] = ()
    blob: Optional[bytes] = None
    on_reply: Optional[Callable[[Trial, Any], None]] = None
    on_error: Optional[Callable[[Trial, protocol.RemoteError], bool]] = None


@dataclass
class RunnerSettings:
    """The ``run()`` arguments the runner acts on."""

    checkpoint_freq: int = 0
    checkpoint_at_end: bool = False
    max_failures: int = 0
    fail_fast: Any = False
    reuse_actors: bool = False
    resources: Resources = field(default_factory=Resources)
    time_budget_s: Optional[float] = None
    max_concurrent_trials: int = 0
    keep_checkpoints_num: Optional[int] = None
    checkpoint_score_attr: str = "training_iteration"
    trial_name_creator: Optional[Callable[[Trial], str]] = None
    trial_dirname_creator: Optional[Callable[[Trial], str]] = None
    setup_kwargs: Optional[Dict[str, Any]] = None
    call_timeout_s: Optional[float] = None
    restore_path: Optional[str] = None
    log_files: Optional[Tuple[str, str]] = None
    # The Trainable's default_resource_request, used per trial when
    # resources_per_trial is not given.
    resource_request: Optional[Callable[[Dict[str, Any]], Any]] = None
    # NOTE: the limit applies to each paused trial; many paused trials can
    # together hold more than this in driver memory.
    max_memory_checkpoint_bytes: int = 512 * 1024 * 1024


class TrialRunner:
    """Runs the trials of one experiment to the end.

    Schedulers use :meth:`get_trials`, :meth:`startable_trials`,
    :meth:`has_resources_for_trial`, :meth:`pause_trial`,
    :meth:`stop_trial` and :meth:`exploit_trial`.
    """

    def __init__(self, *, trainable_name: str, pool: WorkerPool,
                 search_alg: Any, scheduler: TrialScheduler, stopper: Any,
                 experiment: ExperimentDir, settings: RunnerSettings,
                 callbacks: CallbackList, reporter: Any = None):
        self.trainable_name = trainable_name
        self.pool = pool
        self.search_alg = search_alg
        self.scheduler = scheduler
        self.stopper = stopper
        self.experiment = experiment
        self.settings = settings
        self.callbacks = callbacks
        self.reporter = reporter
        self.trials: List[Trial] = []
        self._trials_by_id: Dict[str, Trial] = {}
        self._startable: Dict[str, Trial] = {}
        self._workers: Dict[str, Worker] = {}
        self._actions: Dict[str, Deque[_Action]] = {}
        self._writers: Dict[str, ResultWriter] = {}
        self._sent_at: Dict[int, float] = {}
        self._id_prefix = uuid.uuid4().hex[:5]
        self._next_index = 0
        self._iteration = 0
        self._stop_reason: Optional[str] = None
        # Set when the experiment stops but stays resumable (fail_fast,
        # Ctrl-C): running trials are paused instead of terminated.
        self._pausing = False
        # Trials that ended with an error during this run (not in an
        # earlier run that this one resumed).
        self.failed_trial_ids: set = set()
        self._interrupted = False
        self._fail_fast_error: Optional[BaseException] = None
        self._time_used_before = 0.0
        self._started_at = time.monotonic()
        self._dirnames: set = set()
        self._search_finished = False
        self._warned: set = set()
        self._selector = selectors.DefaultSelector()
        self._watched: Dict[int, Worker] = {}
        # Exploits decided during on_trial_result, applied once the trial's
        # worker has stopped.
        self._exploits: Dict[str, Tuple[Checkpoint, Dict[str, Any]]] = {}
        # Finished trials no longer change; their state text is reused.
        self._frozen_states: Dict[str, str] = {}

    # ================================================================ public

    def get_trials(self) -> List[Trial]:
        """Return all trials, in the order they were created."""
        return self.trials

    def get_trial(self, trial_id: str) -> Optional[Trial]:
        """Return the trial with this id, or None."""
        return self._trials_by_id.get(trial_id)

    def startable_trials(self) -> List[Trial]:
        """Return pending trials, then paused ones, oldest first."""
        pending = [t for t in self._startable.values()
                   if t.status == Trial.PENDING]
        paused = [t for t in self._startable.values()
                  if t.status == Trial.PAUSED]
        return pending + paused

    def has_resources_for_trial(self, trial: Trial) -> bool:
        """Return whether ``trial`` could start now."""
        limit = self.settings.max_concurrent_trials
        if limit and len(self._workers) >= limit:
            return False
        return self.pool.has_room(trial.resources)

    def add_trial(self, trial: Trial) -> None:
        """Add a trial to the experiment (PENDING, PAUSED or finished)."""
        self.trials.append(trial)
        self._trials_by_id[trial.trial_id] = trial
        if trial.logdir:
            self._dirnames.add(os.path.basename(trial.logdir))
        if trial.status in (Trial.PENDING, Trial.PAUSED):
            self._startable[trial.trial_id] = trial
        self.scheduler.on_trial_add(self, trial)
        self.experiment.mark_dirty()

    def pause_trial(self, trial: Trial) -> None:
        """Pause a running trial: save it to memory and free its worker.

        Schedulers call it from ``on_trial_result``, or return PAUSE.
        """
        self._queue(trial, _Action("save_object",
                                   on_reply=self._on_paused_blob,
                                   on_error=self._on_pause_save_error))

    def stop_trial(self, trial: Trial) -> None:
        """End a trial: stop it if running, mark it TERMINATED."""
        if trial.trial_id in self._workers:
            self._queue_stop(trial)
        elif not trial.is_finished():
            self._startable.pop(trial.trial_id, None)
            self._complete(trial)

    def save_trial_to_memory(self, trial: Trial) -> None:
        """Take an in-memory checkpoint of a running trial.

        Call it from ``on_trial_result``: the save runs before the trial's
        next step, and sets ``trial.memory_checkpoint`` when it returns. A
        trial that has nothing to save (a function that never wrote a
        checkpoint) keeps its previous checkpoint.
        """
        if trial.trial_id in self._workers:
            self._actions[trial.trial_id].append(_Action(
                "save_object", on_reply=self._on_memory_checkpoint,
                on_error=self._on_save_error))

    def wait_for_memory_checkpoint(self, trial: Trial,
                                   timeout: float = 60.0) -> None:
        """Block until a save queued by :meth:`save_trial_to_memory` for
        ``trial`` has returned, as Ray's ``ray.get`` on a save would.

        Other trials' replies wait meanwhile. Returns at once if no such
        save is queued or in flight, and after ``timeout`` seconds at most.
        """
        deadline = time.monotonic() + timeout
        while True:
            worker = self._workers.get(trial.trial_id)
            if worker is None:
                return
            queue = self._actions.get(trial.trial_id) or ()
            if worker.pending is None:
                if not queue or queue[0].method != "save_object":
                    return
                self._dispatch(trial)
                continue
            remaining = deadline - time.monotonic()
            if worker.pending.method != "save_object" or remaining <= 0:
                return
            if not wait([worker.conn, worker.sentinel], remaining):
                return
            if worker.conn.poll():
                self._receive(worker)
            else:
                self._on_worker_died(worker, WorkerDiedError(
                    worker.death_message("save_object")))

    def _on_memory_checkpoint(self, trial: Trial, blob: bytes) -> None:
        from trainable.checkpoint import blob_metadata

        iteration = blob_metadata(blob)["iteration"]
        result = (trial.last_result if iteration == trial.iteration
                  else {TRAINING_ITERATION: iteration})
        trial.memory_checkpoint = Checkpoint(Checkpoint.MEMORY, blob,
                                             dict(result), iteration)

    @staticmethod
    def checkpoint_blob(checkpoint: Optional[Checkpoint]) -> Optional[bytes]:
        """Return a checkpoint as a blob, packing a disk checkpoint.

        Returns None if there is no checkpoint or its directory is gone.
        Packing at decision time keeps the copy safe from retention.
        """
        from trainable.checkpoint import find_checkpoint_dir, pack_dir
        from trainable.errors import CheckpointError

        if checkpoint is None:
            return None
        if checkpoint.storage == Checkpoint.MEMORY:
            return checkpoint.value
        try:
            return pack_dir(find_checkpoint_dir(checkpoint.value))
        except CheckpointError:
            return None

    def exploit_trial(self, trial: Trial, blob: bytes,
                      new_config: Dict[str, Any],
                      donor_result: Optional[Dict[str, Any]] = None) -> bool:
        """Continue ``trial`` from another trial's checkpoint blob with a
        new config, as population-based training does.

        The trial stops after the current result (a checkpoint due by
        ``checkpoint_freq`` is saved first), is marked PAUSED with
        that blob as its checkpoint, and starts again, with the new config,
        when the scheduler chooses it. Its iteration counter continues from
        the blob's iteration; its result files keep every row in arrival
        order.

        Returns False, and changes nothing, if ``donor_result`` (the
        result the blob was saved at) already meets the stop criteria: the
        trial would only run past them.
        """
        from trainable.checkpoint import blob_metadata

        if donor_result and self._meets_stop(trial, donor_result):
            logger.debug("Not cloning into trial %s: the donor's checkpoint "
                         "already meets the stop criteria.", trial)
            return False
        iteration = blob_metadata(blob)["iteration"]
        checkpoint = Checkpoint(Checkpoint.MEMORY, blob, {}, iteration)
        if trial.trial_id in self._workers:
            self._exploits[trial.trial_id] = (checkpoint, new_config)
            return True
        self._apply_exploit(trial, checkpoint, new_config)
        self._set_status(trial, Trial.PAUSED)
        self._startable[trial.trial_id] = trial
        return True

    def _apply_exploit(self, trial: Trial, checkpoint: Checkpoint,
                       new_config: Dict[str, Any]) -> None:
        trial.config = new_config
        # A new record, so that it is newer than any checkpoint the trial
        # saved after the exploit was decided (checkpoint_freq, a function's
        # own checkpoint) and the trial restarts from the donor's state.
        trial.memory_checkpoint = Checkpoint(
            Checkpoint.MEMORY, checkpoint.value, dict(trial.last_result),
            checkpoint.iteration)
        self.experiment.mark_dirty()

    def _on_exploit_stopped(self, trial: Trial, _: Any) -> None:
        checkpoint, new_config = self._exploits.pop(trial.trial_id)
        self._apply_exploit(trial, checkpoint, new_config)
        self._on_paused_stopped(trial, None)

    def request_stop(self, reason: str) -> None:
        """Stop the experiment after the steps in flight end."""
        if self._stop_reason is None:
            self._stop_reason = reason
            logger.info("Stopping the experiment: %s", reason)

    # =============================================================== the loop

    def run(self) -> None:
        """Run the loop until the experiment ends; always stops workers."""
        self.callbacks.call("setup")
        graceful = True
        previous = _install_signal_handlers(self)
        try:
            while not self.is_finished():
                self.step()
        except KeyboardInterrupt:
            graceful = False
            self._interrupted = True
            self._abandon_running_trials()
            raise
        except BaseException:
            graceful = False
            raise
        finally:
            _restore_signal_handlers(previous)
            self._finish(graceful)
        if self._fail_fast_error is not None:
            raise self._fail_fast_error

    def step(self) -> None:
        """Run one turn of the loop."""
        self._iteration += 1
        if self.callbacks:
            self.callbacks.call("on_step_begin", iteration=self._iteration,
                                trials=self.trials)
        # Checked first as well: a resumed experiment whose budget is spent
        # must not start anything.
        self.check_experiment_stop()
        if self._stop_reason is None:
            self.start_trials()
        self.process_events(_EVENT_TIMEOUT_S)
        self.check_experiment_stop()
        self._check_timeouts()
        self._check_stalled()
        self.pool.reap()
        if self.reporter is not None and self.reporter.should_report(
                self.trials, done=False):
            self.reporter.report(self.trials, False)
        self.experiment.save_if_due(self.snapshot)
        if self.callbacks:
            self.callbacks.call("on_step_end", iteration=self._iteration,
                                trials=self.trials)

    def is_finished(self) -> bool:
        """Return whether nothing runs and nothing more will start."""
        if self._workers:
            return False
        if self._stop_reason is not None:
            return True
        if self._startable:
            return False
        return self._search_finished or self.search_alg.is_finished()

    # ========================================================= starting trials

    def start_trials(self) -> None:
        """Start as many trials as resources and limits allow."""
        while True:
            trial = self.scheduler.choose_trial_to_run(self)
            if trial is None:
                trial = self._next_trial_from_search()
                if trial is None:
                    return
                continue
            self._launch(trial)

    def _next_trial_from_search(self) -> Optional[Trial]:
        if self._search_finished:
            return None
        limit = self.settings.max_concurrent_trials
        if limit and len(self._workers) >= limit:
            return None
        if not self.pool.has_room(self.settings.resources):
            return None
        trial_id = f"{self._id_prefix}_{self._next_index:05d}"
        suggestion = self.search_alg.next_trial(trial_id)
        if suggestion is None:
            if self.search_alg.is_finished():
                self._search_finished = True
            return None
        self._next_index += 1
        trial = Trial(
            self.trainable_name, suggestion.config, trial_id,
            experiment_tag=suggestion.experiment_tag,
            local_dir=self.experiment.path,
            evaluated_params=_flatten_vars(suggestion.resolved_vars),
            resources=self._resources_for(suggestion.config),
            max_failures=self.settings.max_failures,
            keep_checkpoints_num=self.settings.keep_checkpoints_num,
            checkpoint_score_attr=self.settings.checkpoint_score_attr,
        )
        trial.restore_path = self.settings.restore_path
        self._name_trial(trial)
        self.add_trial(trial)
        return trial

    def _resources_for(self, config: Dict[str, Any]) -> Resources:
        request = self.settings.resource_request
        if request is None:
            return self.settings.resources
        resources = Resources.from_request(request(config))
        self.pool.check_fits(resources)
        return resources

    def _name_trial(self, trial: Trial) -> None:
        creator = self.settings.trial_name_creator
        if creator is not None:
            trial.custom_trial_name = str(creator(trial))
        dir_creator = self.settings.trial_dirname_creator
        if dir_creator is not None:
            name = validate_dirname(dir_creator(trial),
                                    "trial_dirname_creator")
        else:
            base = str(trial) if trial.custom_trial_name else (
                f"{self.trainable_name}_{trial.trial_id}")
            if trial.experiment_tag:
                base = f"{base}_{trial.experiment_tag}"
            name = safe_dirname(base)
        name = self._unique_dirname(name)
        trial.logdir = os.path.join(self.experiment.path, name)

    def _unique_dirname(self, name: str) -> str:
        candidate, index = name, 1
        while candidate in self._dirnames:
            candidate = f"{name}_{index}"
            index += 1
        if candidate != name:
            logger.warning(
                "Two trials got the directory name %r; using %r for the "
                "second.", name, candidate)
        self._dirnames.add(candidate)
        return candidate

    def _launch(self, trial: Trial) -> None:
        self._prepare_trial_dir(trial)
        self._startable.pop(trial.trial_id, None)
        restarting = trial.needs_rewind
        self._rewind_history(trial)
        if restarting and self._already_done(trial):
            # Its checkpoint contains a result that met the stop criteria (the
            # driver died before recording the end): complete it as is.
            self._complete(trial)
            return

        queue = self._actions.setdefault(trial.trial_id,
                                         collections.deque())
        queue.clear()
        worker = self._take_reusable_worker(trial)
        if worker is None:
            worker = self.pool.start_worker(trial.resources,
                                            name=f"trainable:{trial}")
            queue.append(self._setup_action(trial))
        else:
            queue.append(_Action("reset", (trial.config,
                                           self._trial_info(trial)),
                                 on_reply=self._on_reset))
        worker.trial = trial
        self._workers[trial.trial_id] = worker
        self._queue_restore(trial)
        queue.append(_Action("train", on_reply=self._on_result))

        self._set_status(trial, Trial.RUNNING)
        self.experiment.mark_dirty()
        if self.callbacks:
            self.callbacks.call("on_trial_start", iteration=self._iteration,
                                trials=self.trials, trial=trial)
        self._dispatch(trial)

    @staticmethod
    def _prepare_trial_dir(trial: Trial) -> None:
        if not os.path.isdir(trial.logdir):
            os.makedirs(trial.logdir)
            write_params(trial.logdir, trial.config)

    def _take_reusable_worker(self, trial: Trial) -> Optional[Worker]:
        if not self.settings.reuse_actors:
            return None
        worker = self.pool.take_idle(trial.resources)
        if worker is not None and not worker.is_alive():
            self.pool.stop_worker(worker, graceful=False)
            return None
        return worker

    def _already_done(self, trial: Trial) -> bool:
        result = trial.last_result
        if not result or TRAINING_ITERATION not in result:
            return False
        return self._meets_stop(trial, result)

    def _meets_stop(self, trial: Trial, result: Dict[str, Any]) -> bool:
        try:
            return bool(result.get(DONE)) or bool(
                self.stopper(trial.trial_id, result))
        except Exception:
            return False

    def _setup_action(self, trial: Trial) -> _Action:
        return _Action("setup", (trial.config, self._trial_info(trial),
                                 self.settings.setup_kwargs or {}))

    def _trial_info(self, trial: Trial) -> Dict[str, Any]:
        return {"trial_id": trial.trial_id, "trial_name": str(trial),
                "logdir": trial.logdir, "log_files": self.settings.log_files}

    def _restore_source(self, trial: Trial) -> Optional[Checkpoint]:
        checkpoint = trial.checkpoint
        if checkpoint is not None:
            return checkpoint
        if trial.restore_path:
            return Checkpoint(Checkpoint.PERSISTENT, trial.restore_path)
        return None

    def _rewind_history(self, trial: Trial) -> None:
        """Drop results past the checkpoint a failed or resumed trial
        restarts from, so its history has no duplicated iterations."""
        if not trial.needs_rewind:
            return
        trial.needs_rewind = False
        source = trial.checkpoint
        restart_at = source.iteration if source is not None else 0
        self._writer(trial).truncate_after(restart_at)
        trial.checkpoint_manager.drop_after(restart_at)
        trial.last_result = dict(source.result) if source else {}

    def _queue_restore(self, trial: Trial) -> None:
        source = self._restore_source(trial)
        if source is None:
            return
        if source.storage == Checkpoint.MEMORY:
            action = _Action("restore_object", blob=source.value,
                             on_reply=self._on_restored)
        else:
            action = _Action("restore", (source.value,),
                             on_reply=self._on_restored)
        self._actions[trial.trial_id].append(action)

    # ============================================================ the events

    def process_events(self, timeout: float) -> None:
        """Wait for replies or worker deaths and handle them."""
        for worker in self._workers.values():
            if id(worker) not in self._watched:
                self._watch(worker)
        if not self._watched:
            if not self.is_finished():
                time.sleep(min(timeout, 0.05))
            return
        handled = set()
        for key, _ in self._selector.select(timeout):
            worker, is_conn = key.data
            if id(worker) in handled or id(worker) not in self._watched:
                continue
            handled.add(id(worker))
            if is_conn or worker.conn.poll():
                self._receive(worker)
            else:
                self._on_worker_died(worker, WorkerDiedError(
                    worker.death_message(
                        worker.pending.method if worker.pending else
                        "no request")))

    def _watch(self, worker: Worker) -> None:
        # One selector for the whole run: multiprocessing's wait() builds a
        # new one on every call, which costs a measurable part of a step.
        self._selector.register(worker.conn, selectors.EVENT_READ,
                                (worker, True))
        self._selector.register(worker.sentinel, selectors.EVENT_READ,
                                (worker, False))
        self._watched[id(worker)] = worker

    def _unwatch(self, worker: Worker) -> None:
        # Called before the pool closes the worker's pipe, so that a new
        # pipe with the same file descriptor can be registered later.
        if self._watched.pop(id(worker), None) is None:
            return
        for handle in (worker.conn, worker.sentinel):
            try:
                self._selector.unregister(handle)
            except (KeyError, ValueError, OSError):
                pass

    def _receive(self, worker: Worker) -> None:
        trial = worker.trial
        try:
            pending, status, payload = worker.receive()
        except WorkerDiedError as exc:
            self._on_worker_died(worker, exc)
            return
        self._sent_at.pop(id(worker), None)
        action: _Action = pending.context
        if status == protocol.ERROR:
            if action.on_error is not None and action.on_error(trial,
                                                               payload):
                self._dispatch(trial)
                return
            self._on_trial_error(trial, payload.traceback or payload.message)
            return
        if action.on_reply is not None:
            action.on_reply(trial, payload)
        # The handler may have replaced the worker; dispatch to the current.
        self._dispatch(trial)

    def _queue(self, trial: Trial, action: _Action) -> None:
        self._actions[trial.trial_id].append(action)
        self._dispatch(trial)

    def _dispatch(self, trial: Trial) -> None:
        worker = self._workers.get(trial.trial_id)
        queue = self._actions.get(trial.trial_id)
        if worker is None or worker.pending is not None or not queue:
            return
        action = queue.popleft()
        if action.method == "stop" and action.args == (True,):
            # A worker kept for reuse does nothing at a stop, so no request
            # is sent: the handler runs now.
            action.on_reply(trial, None)
            self._dispatch(trial)
            return
        try:
            worker.send(action.method, action.args, action.blob,
                        context=action)
        except WorkerDiedError as exc:
            self._on_worker_died(worker, exc)
            return
        if self.settings.call_timeout_s:
            self._sent_at[id(worker)] = time.monotonic()

    # ======================================================== reply handlers

    def _on_reset(self, trial: Trial, reused: bool) -> None:
        if reused:
            return
        # reset_config() did not return True: replace the worker.
        logger.debug("reset_config() of trial %s did not return True; "
                     "starting a fresh worker.", trial)
        old = self._workers.pop(trial.trial_id)
        self._unwatch(old)
        self.pool.stop_worker(old)
        worker = self.pool.start_worker(trial.resources,
                                        name=f"trainable:{trial}")
        worker.trial = trial
        self._workers[trial.trial_id] = worker
        self._actions[trial.trial_id].appendleft(self._setup_action(trial))

    def _on_restored(self, trial: Trial, iteration: int) -> None:
        if self.callbacks:
            self.callbacks.call("on_trial_restore", iteration=self._iteration,
                                trials=self.trials, trial=trial)

    def _on_result(self, trial: Trial, result: Dict[str, Any]) -> None:
        if result.get(RESULT_DUPLICATE):
            # The function returned: the trial is complete.
            final = dict(result)
            del final[RESULT_DUPLICATE]
            final.pop(SHOULD_CHECKPOINT, None)
            trial.last_result = final
            if result.get(SHOULD_CHECKPOINT) or (
                    self.settings.checkpoint_at_end):
                self._queue_save(trial)
            self._queue_stop(trial)
            return
        trial.last_result = result
        decision = self._decide(trial, result)
        if self._pausing and decision != TrialScheduler.STOP:
            decision = TrialScheduler.PAUSE
        self._queue_after_result(trial, result, decision)
        queue = self._actions.get(trial.trial_id)
        if queue and queue[0].method == "stop":
            # The trial ends or pauses at once, which closes its result
            # files: record the result first.
            self._record_result(trial, result)
            self._dispatch(trial)
        else:
            # Send the next request first, so the worker computes while
            # the driver does the bookkeeping.
            self._dispatch(trial)
            self._record_result(trial, result)

    def _record_result(self, trial: Trial, result: Dict[str, Any]) -> None:
        self._writer(trial).write(result)
        self.search_alg.on_trial_result(trial.trial_id, result)
        if self.callbacks:
            self.callbacks.call("on_trial_result", iteration=self._iteration,
                                trials=self.trials, trial=trial,
                                result=result)

    def _decide(self, trial: Trial, result: Dict[str, Any]) -> str:
        try:
            stop = self.stopper(trial.trial_id, result)
        except Exception as exc:
            # A stop criterion that cannot be evaluated on this result is
            # the trial's error, not the experiment's.
            self._on_trial_error(trial, f"{type(exc).__name__}: {exc}")
            return TrialScheduler.NOOP
        if result.get(DONE) or stop or (
                self._stop_reason is not None and not self._pausing):
            # As in Ray Tune, a final result reaches the scheduler through
            # on_trial_complete only, so it cannot pause or exploit a trial
            # that is about to end.
            return TrialScheduler.STOP
        decision = self.scheduler.on_trial_result(self, trial, result)
        if decision == TrialScheduler.STOP:
            self.scheduler.on_trial_remove(self, trial)
        return decision

    def _queue_after_result(self, trial: Trial, result: Dict[str, Any],
                            decision: str) -> None:
        if trial.trial_id not in self._workers:
            return  # the trial failed while its result was handled
        freq = self.settings.checkpoint_freq
        wants_checkpoint = bool(result.get(SHOULD_CHECKPOINT)) or (
            freq > 0 and result.get(TRAINING_ITERATION, 0) % freq == 0)
        if decision == TrialScheduler.STOP:
            # A trial that ends keeps its own state.
            self._exploits.pop(trial.trial_id, None)
        if trial.trial_id in self._exploits:
            if wants_checkpoint:
                self._queue_save(trial)
            self._actions[trial.trial_id].append(_Action(
                "stop", self._stop_args(),
                on_reply=self._on_exploit_stopped))
        elif decision == TrialScheduler.STOP:
            if wants_checkpoint or self.settings.checkpoint_at_end:
                self._queue_save(trial)
            self._queue_stop(trial)
        elif self._pausing:
            self._queue_pause_for_stop(trial)
        elif decision == TrialScheduler.PAUSE:
            if wants_checkpoint:
                self._queue_save(trial)
            self.pause_trial(trial)
        elif decision == TrialScheduler.NOOP:
            if wants_checkpoint:
                self._queue_save(trial)
        else:
            if wants_checkpoint:
                self._queue_save(trial)
            self._actions[trial.trial_id].append(
                _Action("train", on_reply=self._on_result))

    def _queue_save(self, trial: Trial) -> None:
        self._actions[trial.trial_id].append(_Action(
            "save", (trial.logdir,), on_reply=self._on_saved,
            on_error=self._on_save_error))

    def _on_save_error(self, trial: Trial,
                       error: protocol.RemoteError) -> bool:
        # A function trainable that has not written a checkpoint yet has
        # nothing to save; that is not a failure.
        return isinstance(error.exception, NoCheckpointError)

    def _on_saved(self, trial: Trial, reply: Dict[str, Any]) -> None:
        # Result lines up to this checkpoint must be on disk before the
        # checkpoint is recorded, so a resume from it finds all of them.
        self._writer(trial).flush()
        result = (trial.last_result if trial.iteration == reply["iteration"]
                  else {TRAINING_ITERATION: reply["iteration"]})
        checkpoint = Checkpoint(Checkpoint.PERSISTENT, reply["path"],
                                dict(result), reply["iteration"])
        to_delete = trial.checkpoint_manager.add(checkpoint)
        # The disk checkpoint is now the newest; schedulers that need the
        # older in-memory one keep their own reference to it.
        trial.memory_checkpoint = None
        self.experiment.save(self.snapshot)
        trial.checkpoint_manager.delete(to_delete)
        if self.callbacks:
            self.callbacks.call("on_trial_save", iteration=self._iteration,
                                trials=self.trials, trial=trial)
            self.callbacks.call("on_checkpoint", iteration=self._iteration,
                                trials=self.trials, trial=trial,
                                checkpoint=checkpoint)

    def _on_paused_blob(self, trial: Trial, blob: bytes) -> None:
        from trainable.checkpoint import blob_metadata

        iteration = blob_metadata(blob)["iteration"]
        if iteration != trial.iteration:
            # Restoring this checkpoint would repeat iterations: keep the
            # trial running instead of pausing it.
            self._warn_once(
                ("pause", trial.trial_id),
                "Trial %s was not paused: its newest checkpoint is from "
                "iteration %d but it is at iteration %d, so pausing would "
                "lose progress.", trial, iteration, trial.iteration)
            self._actions[trial.trial_id].append(
                _Action("train", on_reply=self._on_result))
            return
        trial.memory_checkpoint = Checkpoint(
            Checkpoint.MEMORY, blob, dict(trial.last_result), iteration)
        if len(blob) > self.settings.max_memory_checkpoint_bytes:
            trial.memory_checkpoint = None
            self._queue_save(trial)
        self._actions[trial.trial_id].append(
            _Action("stop", self._stop_args(),
                    on_reply=self._on_paused_stopped))

    def _on_pause_save_error(self, trial: Trial,
                             error: protocol.RemoteError) -> bool:
        if isinstance(error.exception, NoCheckpointError):
            self._warn_once(
                ("pause", trial.trial_id),
                "Trial %s was not paused: it has no checkpoint yet, so "
                "pausing would restart it from scratch.", trial)
            self._actions[trial.trial_id].append(
                _Action("train", on_reply=self._on_result))
            return True
        return False

    def _on_paused_stopped(self, trial: Trial, _: Any) -> None:
        self._release_worker(trial, reusable=True)
        self._set_status(trial, Trial.PAUSED)
        self._startable[trial.trial_id] = trial
        self.experiment.mark_dirty()

    def _stop_args(self) -> Tuple[bool]:
        return (self.settings.reuse_actors,)

    def _queue_stop(self, trial: Trial) -> None:
        self._actions[trial.trial_id].append(
            _Action("stop", self._stop_args(), on_reply=self._on_stopped))

    def _on_stopped(self, trial: Trial, cleanup_error: Any) -> None:
        if cleanup_error:
            logger.warning("cleanup() of trial %s raised; the trial is "
                           "complete all the same:\n%s", trial,
                           cleanup_error)
        self._release_worker(trial, reusable=True)
        self._complete(trial)

    def _complete(self, trial: Trial) -> None:
        writer = self._writers.pop(trial.trial_id, None)
        if writer is not None:
            writer.close()
        self._set_status(trial, Trial.TERMINATED)
        self._actions.pop(trial.trial_id, None)
        self.scheduler.on_trial_complete(self, trial, trial.last_result)
        self.search_alg.on_trial_complete(trial.trial_id, trial.last_result)
        self.experiment.mark_dirty()
        if self.callbacks:
            self.callbacks.call("on_trial_complete",
                                iteration=self._iteration,
                                trials=self.trials, trial=trial)

    # =============================================================== failures

    def _on_worker_died(self, worker: Worker, exc: BaseException) -> None:
        trial = worker.trial
        self._on_trial_error(trial, str(exc))

    def _on_trial_error(self, trial: Trial, error_text: str) -> None:
        if trial.trial_id in self._workers:
            self._release_worker(trial, reusable=False)
        trial.num_failures += 1
        self._write_error(trial, error_text)
        writer = self._writers.get(trial.trial_id)
        if writer is not None:
            writer.flush()
        self._actions.pop(trial.trial_id, None)
        trial.needs_rewind = True
        if self._stop_reason is None and trial.should_recover():
            self._retry_trial(trial)
        elif self._pausing and trial.should_recover():
            # The experiment is being paused: keep the trial resumable.
            self._set_status(trial, Trial.PAUSED)
            self.experiment.mark_dirty()
        else:
            self._fail_trial(trial, error_text)

    def _retry_trial(self, trial: Trial) -> None:
        checkpoint = trial.checkpoint
        logger.warning(
            "Trial %s failed (failure %d, max_failures %d); restarting it "
            "from %s.", trial, trial.num_failures, trial.max_failures,
            f"its checkpoint at iteration {checkpoint.iteration}"
            if checkpoint else "the beginning")
        self._set_status(trial, Trial.PENDING)
        self._startable[trial.trial_id] = trial
        self.experiment.mark_dirty()

    def _fail_trial(self, trial: Trial, error_text: str) -> None:
        logger.error("Trial %s failed; its error, also in %s:\n%s", trial,
                     trial.error_file, error_text)
        self.failed_trial_ids.add(trial.trial_id)
        self._set_status(trial, Trial.ERROR)
        self._startable.pop(trial.trial_id, None)
        writer = self._writers.pop(trial.trial_id, None)
        if writer is not None:
            writer.close()
        self.scheduler.on_trial_error(self, trial)
        self.search_alg.on_trial_complete(trial.trial_id, trial.last_result,
                                          error=True)
        self.experiment.mark_dirty()
        if self.callbacks:
            self.callbacks.call("on_trial_error", iteration=self._iteration,
                                trials=self.trials, trial=trial)
        if self.settings.fail_fast:
            self.pause_experiment(f"trial {trial} failed and fail_fast is "
                                  f"set")
            if self.settings.fail_fast == "raise":
                self._fail_fast_error = TuneError(
                    f"Trial {trial} failed and fail_fast='raise' is set. "
                    f"Its error:\n{error_text}")

    def _write_error(self, trial: Trial, error_text: str) -> None:
        os.makedirs(trial.logdir, exist_ok=True)
        path = os.path.join(trial.logdir, "error.txt")
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(path, "a") as f:
            f.write(f"Failure # {trial.num_failures} (occurred at {stamp})"
                    f"\n{error_text}\n")
        trial.error_file = path
        trial.error_msg = error_text

    def _check_stalled(self) -> None:
        """Fail loudly instead of hanging if a running trial has neither a
        request in flight nor one queued; that would be a bug here."""
        for trial_id, worker in self._workers.items():
            if worker.pending is None and not self._actions.get(trial_id):
                raise TuneError(
                    f"Internal error: trial {worker.trial} has a worker but "
                    f"no request in flight or queued. Please report this "
                    f"with the code that triggers it.")

    def _check_timeouts(self) -> None:
        limit = self.settings.call_timeout_s
        if not limit or not self._sent_at:
            return
        now = time.monotonic()
        for worker in list(self._workers.values()):
            sent = self._sent_at.get(id(worker))
            if sent is None or now - sent < limit:
                continue
            self._sent_at.pop(id(worker), None)
            method = worker.pending.method if worker.pending else "?"
            self._on_trial_error(worker.trial, str(WorkerTimeoutError(
                f"The worker (pid {worker.pid}) did not reply to {method!r} "
                f"within {limit:g} s (call_timeout_s), so it was killed. "
                f"Raise call_timeout_s if the step needs longer.")))

    # ======================================================= experiment stop

    def time_used(self) -> float:
        """Wall-clock seconds this experiment has run, across resumes."""
        return self._time_used_before + time.monotonic() - self._started_at

    def check_experiment_stop(self) -> None:
        """Stop the experiment on ``stop_all()`` or the time budget."""
        if self._stop_reason is not None:
            return
        budget = self.settings.time_budget_s
        if budget is not None and self.time_used() >= budget:
            self.request_stop(f"the time budget of {budget:g} s is spent")
        elif self.stopper.stop_all():
            self.request_stop("the stopper's stop_all() returned True")

    def interrupt(self) -> None:
        """Handle the first Ctrl-C or SIGTERM: stop after the current steps,
        checkpointing running trials where they support it."""
        if self._interrupted:
            raise KeyboardInterrupt
        self._interrupted = True
        logger.warning(
            "Stopping: running trials are checkpointed and paused after "
            "their current step. Interrupt again to stop at once.")
        self.pause_experiment("interrupted")

    def pause_experiment(self, reason: str) -> None:
        """Stop the experiment but leave it resumable: each running trial
        finishes its current request, saves a checkpoint if it can, and is
        marked PAUSED, so that ``resume=True`` continues it."""
        self.request_stop(reason)
        self._pausing = True
        for trial in list(self.trials):
            worker = self._workers.get(trial.trial_id)
            if worker is None:
                continue
            queue = self._actions.setdefault(trial.trial_id,
                                             collections.deque())
            queue.clear()
            # A train in flight queues the pause when its result arrives,
            # so that result is still recorded.
            if worker.pending is None or worker.pending.method != "train":
                self._queue_pause_for_stop(trial)

    def _queue_pause_for_stop(self, trial: Trial) -> None:
        queue = self._actions[trial.trial_id]
        queue.append(_Action("save", (trial.logdir,),
                             on_reply=self._on_saved,
                             on_error=lambda t, e: True))
        queue.append(_Action("stop", (False,),
                             on_reply=self._on_paused_stopped,
                             on_error=self._pause_on_error))
        self._dispatch(trial)

    def _abandon_running_trials(self) -> None:
        """Kill every worker at once, marking its trial PAUSED."""
        for trial in list(self.trials):
            if trial.trial_id in self._workers:
                self._release_worker(trial, reusable=False)
                self._set_status(trial, Trial.PAUSED)

    def _pause_on_error(self, trial: Trial, _: Any) -> bool:
        self._on_paused_stopped(trial, None)
        return True

    # ================================================================ helpers

    def _release_worker(self, trial: Trial, reusable: bool) -> None:
        worker = self._workers.pop(trial.trial_id, None)
        if worker is None:
            return
        self._unwatch(worker)
        self._sent_at.pop(id(worker), None)
        if worker.pending is not None:
            reusable = False
        self.pool.release(worker, reusable=reusable)

    def _writer(self, trial: Trial) -> ResultWriter:
        writer = self._writers.get(trial.trial_id)
        if writer is None:
            writer = ResultWriter(trial.logdir)
            self._writers[trial.trial_id] = writer
        return writer

    def _set_status(self, trial: Trial, status: str) -> None:
        if trial.status != status:
            trial.status = status
            writer = self._writers.get(trial.trial_id)
            if writer is not None:
                writer.flush()

    def _warn_once(self, key: Any, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message, *args)

    def _finish(self, graceful: bool) -> None:
        for trial in self.trials:
            if trial.trial_id in self._workers:
                self._release_worker(trial, reusable=False)
                if trial.status == Trial.RUNNING:
                    self._set_status(trial, Trial.PAUSED)
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        self.pool.shutdown(graceful=graceful)
        self._selector.close()
        self.experiment.save(self.snapshot)
        if self.reporter is not None:
            self.reporter.report(self.trials, True)
        self.callbacks.call("on_experiment_end", trials=self.trials)

    # ================================================================= state

    def snapshot(self) -> Dict[str, Any]:
        """Return the runner state and the trials as JSON texts."""
        import json

        trials = []
        for trial in self.trials:
            text = self._frozen_states.get(trial.trial_id)
            if text is None:
                text = json.dumps(trial.to_state(self.experiment.path))
                if trial.is_finished():
                    self._frozen_states[trial.trial_id] = text
            trials.append(text)
        state = self.state()
        state["trials"] = trials
        return state

    def state(self) -> Dict[str, Any]:
        """Return what the experiment state file records of this run."""
        from trainable.trial import _encode

        return {
            "time_used_s": self.time_used(),
            "next_index": self._next_index,
            "id_prefix": self._id_prefix,
            "search_alg": _encode(self.search_alg.get_state()),
            "stopper": _encode(_stopper_state(self.stopper)),
            "search_finished": self._search_finished,
        }

    def load_state(self, state: Dict[str, Any]) -> None:
        """Continue from a state written by :meth:`state`."""
        from trainable.trial import _decode

        self._time_used_before = state.get("time_used_s", 0.0)
        self._next_index = state.get("next_index", 0)
        self._id_prefix = state.get("id_prefix", self._id_prefix)
        self._search_finished = state.get("search_finished", False)
        self.search_alg.set_state(_decode(state["search_alg"]))
        stopper_state = _decode(state["stopper"])
        if stopper_state and hasattr(self.stopper, "set_state"):
            self.stopper.set_state(stopper_state)


def _stopper_state(stopper: Any) -> Dict[str, Any]:
    get_state = getattr(stopper, "get_state", None)
    return get_state() if get_state is not None else {}


def _flatten_vars(resolved_vars: Dict[Any, Any]) -> Dict[str, Any]:
    flat = {}
    for path, value in (resolved_vars or {}).items():
        key = "/".join(str(p) for p in path) if isinstance(
            path, tuple) else str(path)
        flat[key] = value
    return flat


def _install_signal_handlers(runner: TrialRunner) -> Dict[int, Any]:
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: Any) -> None:
        runner.interrupt()

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handler)
    return previous


def _restore_signal_handlers(previous: Dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
