"""Driver crashes, resume, fail_fast, interrupts and orphan workers."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import trainable as tune
from conftest import script_env

EXPERIMENT = textwrap.dedent('''
    import os, pickle, sys, time
    import trainable as tune

    class T(tune.Trainable):
        def setup(self, config):
            self.n = 0

        def step(self):
            self.n += 1
            time.sleep(float(os.environ.get("STEP_S", "0.3")))
            return {"n": self.n}

        def save_checkpoint(self, d):
            with open(os.path.join(d, "n"), "wb") as f:
                pickle.dump(self.n, f)
            return d

        def load_checkpoint(self, d):
            with open(os.path.join(d, "n"), "rb") as f:
                self.n = pickle.load(f)
            print("RESTORED", self.n, flush=True)

    if __name__ == "__main__":
        resume = len(sys.argv) > 2 and sys.argv[2] == "resume"
        a = tune.run(T, name="exp", local_dir=sys.argv[1],
                     checkpoint_freq=2, num_samples=2,
                     stop={"training_iteration": 10}, resume=resume,
                     verbose=0)
        for t in a.trials:
            print("FINAL", t.trial_id, t.status, t.last_result["n"],
                  flush=True)
''')


def start(script, *args, **env):
    return subprocess.Popen(
        [sys.executable, str(script), *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**script_env(), **env})


def trial_lines(local_dir):
    exp = os.path.join(local_dir, "exp")
    found = {}
    for name in sorted(os.listdir(exp)):
        path = os.path.join(exp, name, "result.json")
        if os.path.isfile(path):
            with open(path) as f:
                found[name] = [json.loads(line) for line in f]
    return found


def check_paused_then_resumed(script, local, output):
    """Check that a stopped run paused its trials and that a resume
    finishes them with complete histories."""
    statuses = [line.split()[2] for line in output.splitlines()
                if line.startswith("FINAL")]
    assert statuses
    assert set(statuses) <= {"PAUSED", "TERMINATED"}
    second = subprocess.run(
        [sys.executable, str(script), str(local), "resume"],
        capture_output=True, text=True, timeout=120, env=script_env())
    assert second.returncode == 0, second.stderr
    for name, lines in trial_lines(str(local)).items():
        assert [r["n"] for r in lines] == list(range(1, 11)), name


def wait_for_checkpoint(local_dir, timeout=30):
    deadline = time.monotonic() + timeout
    state = os.path.join(local_dir, "exp", "experiment_state.json")
    while time.monotonic() < deadline:
        if os.path.exists(state):
            with open(state) as f:
                text = f.read()
            if '"checkpoints": [{' in text:
                return
        time.sleep(0.05)
    raise AssertionError("no checkpoint was recorded in time")


def test_resume_after_driver_sigkill(tmp_path):
    script = tmp_path / "exp.py"
    script.write_text(EXPERIMENT)
    local = tmp_path / "results"
    first = start(script, str(local))
    wait_for_checkpoint(str(local))
    time.sleep(0.4)
    first.kill()
    first.communicate()
    second = subprocess.run(
        [sys.executable, str(script), str(local), "resume"],
        capture_output=True, text=True, timeout=120, env=script_env())
    assert second.returncode == 0, second.stderr
    assert "RESTORED" in second.stdout
    restored = [int(line.split()[1]) for line in second.stdout.splitlines()
                if line.startswith("RESTORED")]
    assert min(restored) >= 2
    finals = [line.split() for line in second.stdout.splitlines()
              if line.startswith("FINAL")]
    assert [f[2] for f in finals] == ["TERMINATED"] * 2
    assert [f[3] for f in finals] == ["10", "10"]
    for name, lines in trial_lines(str(local)).items():
        iterations = [r["training_iteration"] for r in lines]
        assert iterations == list(range(1, 11)), name
        assert [r["n"] for r in lines] == list(range(1, 11)), name


def test_workers_exit_when_driver_killed(tmp_path):
    script = tmp_path / "exp.py"
    script.write_text(EXPERIMENT)
    local = tmp_path / "results"
    first = start(script, str(local), STEP_S="5")
    deadline = time.monotonic() + 30
    workers = []
    while time.monotonic() < deadline and len(workers) < 2:
        workers = _children(first.pid)
        time.sleep(0.1)
    assert len(workers) >= 2
    first.kill()
    first.communicate()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(map(_alive, workers)):
        time.sleep(0.1)
    assert not any(map(_alive, workers))


def _children(pid):
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2:].split()[1]) == pid:
                found.append(int(name))
    return found


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_sigint_pauses_and_resume_finishes(tmp_path):
    script = tmp_path / "exp.py"
    script.write_text(EXPERIMENT)
    local = tmp_path / "results"
    first = start(script, str(local))
    wait_for_checkpoint(str(local))
    first.send_signal(signal.SIGINT)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert "resume=True" in err
    check_paused_then_resumed(script, local, out)


def flaky(config):
    for i in range(20):
        time.sleep(0.05)
        if config["bad"] and i == 2 and not os.path.exists(
                config["fixed"]):
            raise RuntimeError("bad trial")
        tune.report(i=i)


def test_fail_fast_then_resume_errored(tmp_path):
    fixed = str(tmp_path / "fixed")
    kwargs = dict(name="ff", local_dir=str(tmp_path), verbose=0,
                  config={"bad": tune.grid_search([False, True, False]),
                          "fixed": fixed})
    first = tune.run(flaky, fail_fast=True, raise_on_failed_trial=False,
                     **kwargs)
    statuses = sorted(t.status for t in first.trials)
    assert "ERROR" in statuses
    assert statuses.count("TERMINATED") < 3
    assert "PAUSED" in statuses
    open(fixed, "w").close()
    second = tune.run(flaky, resume=True, **kwargs)
    good = [t for t in second.trials if not t.config["bad"]]
    assert len(good) == 2
    assert all(t.last_result["i"] == 19 for t in good)
    assert [t.status for t in second.trials if t.config["bad"]] == ["ERROR"]
    third = tune.run(flaky, resume="ERRORED_ONLY", **kwargs)
    assert all(t.status == "TERMINATED" for t in third.trials)
    assert all(t.last_result["i"] == 19 for t in third.trials)


def test_fail_fast_raise(tmp_path):
    def broken(config):
        raise ValueError("broken on purpose")

    with pytest.raises(tune.TuneError, match="broken on purpose"):
        tune.run(broken, num_samples=3, fail_fast="raise",
                 local_dir=str(tmp_path), verbose=0)


def test_resume_without_state_is_error(tmp_path):
    with pytest.raises(tune.TuneError, match="resume='AUTO'"):
        tune.run(flaky, name="none", resume=True, local_dir=str(tmp_path),
                 verbose=0)


def test_resume_auto_starts_fresh(tmp_path):
    def once(config):
        tune.report(x=1)

    analysis = tune.run(once, name="auto", resume="AUTO",
                        local_dir=str(tmp_path), verbose=0)
    assert analysis.trials[0].status == "TERMINATED"
    again = tune.run(once, name="auto", resume="AUTO",
                     local_dir=str(tmp_path), verbose=0)
    assert [t.trial_id for t in again.trials] == [
        t.trial_id for t in analysis.trials]


def test_finished_trials_not_rerun(tmp_path):
    calls = tmp_path / "calls"

    def counted(config):
        with open(config["calls"], "a") as f:
            f.write("x")
        tune.report(x=1)

    kwargs = dict(name="done", local_dir=str(tmp_path), verbose=0,
                  num_samples=3, config={"calls": str(calls)})
    tune.run(counted, **kwargs)
    tune.run(counted, resume=True, **kwargs)
    assert calls.read_text() == "xxx"


def test_hanging_step_times_out(tmp_path):
    class Hangs(tune.Trainable):
        def step(self):
            time.sleep(3600)

    start_time = time.monotonic()
    analysis = tune.run(Hangs, call_timeout_s=1.0, local_dir=str(tmp_path),
                        verbose=0, raise_on_failed_trial=False)
    assert time.monotonic() - start_time < 20
    trial = analysis.trials[0]
    assert trial.status == "ERROR"
    assert "call_timeout_s" in open(trial.error_file).read()


def test_retry_without_limit(tmp_path):
    class FailsTwice(tune.Trainable):
        def step(self):
            marker = os.path.join(self.config["dir"], "fails")
            count = int(open(marker).read()) if os.path.exists(marker) else 0
            if count < 2:
                with open(marker, "w") as f:
                    f.write(str(count + 1))
                raise RuntimeError("transient")
            return {"ok": 1}

    analysis = tune.run(FailsTwice, config={"dir": str(tmp_path)},
                        max_failures=-1, stop={"training_iteration": 1},
                        local_dir=str(tmp_path), verbose=0)
    trial = analysis.trials[0]
    assert trial.status == "TERMINATED"
    assert trial.num_failures == 2


BUDGET = textwrap.dedent('''
    import sys, time
    import trainable as tune

    def ticker(config):
        for i in range(10000):
            time.sleep(0.05)
            tune.report(i=i)

    if __name__ == "__main__":
        start = time.time()
        tune.run(ticker, name="budget", local_dir=sys.argv[1],
                 time_budget_s=2.0, resume="AUTO", verbose=0)
        print("WALL", time.time() - start, flush=True)
''')


def test_time_budget_survives_driver_downtime(tmp_path):
    script = tmp_path / "budget.py"
    script.write_text(BUDGET)
    local = tmp_path / "results"
    first = start(script, str(local))
    state = local / "budget" / "experiment_state.json"
    deadline = time.monotonic() + 30
    while not state.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    first.kill()
    first.communicate()
    time.sleep(2.0)
    second = subprocess.run([sys.executable, str(script), str(local)],
                            capture_output=True, text=True, timeout=60,
                            env=script_env())
    assert second.returncode == 0, second.stderr
    wall = float(second.stdout.split("WALL")[1])
    # About one second of budget is left; none of the downtime counts.
    assert 0.5 < wall < 1.9


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_gracefully(tmp_path, signum):
    script = tmp_path / "exp.py"
    script.write_text(EXPERIMENT)
    local = tmp_path / "results"
    process = start(script, str(local))
    wait_for_checkpoint(str(local))
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "FINAL" in out
    assert "resume=True" in err


def test_second_interrupt_stops_at_once(tmp_path):
    script = tmp_path / "exp.py"
    script.write_text(EXPERIMENT)
    local = tmp_path / "results"
    process = start(script, str(local), STEP_S="30")
    wait_for_state = local / "exp" / "experiment_state.json"
    deadline = time.monotonic() + 30
    while not wait_for_state.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    began = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)
    assert time.monotonic() - began < 10
    assert process.returncode != 0
    with open(wait_for_state) as f:
        state = json.load(f)
    assert {t["status"] for t in state["trials"]} <= {"PAUSED", "PENDING"}


def test_sigterm_to_process_group_pauses(tmp_path):
    script = tmp_path / "exp.py"
    script.write_text(EXPERIMENT)
    local = tmp_path / "results"
    process = subprocess.Popen(
        [sys.executable, str(script), str(local)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=script_env(),
        start_new_session=True)
    wait_for_checkpoint(str(local))
    os.killpg(process.pid, signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    check_paused_then_resumed(script, local, out)


def test_interrupt_on_final_step_does_not_overstep(tmp_path):
    class InterruptsAtTwo(tune.Trainable):
        def setup(self, config):
            self.n = 0

        def step(self):
            self.n += 1
            if self.n == 2:
                os.kill(os.getppid(), signal.SIGINT)
                time.sleep(0.3)
            return {"n": self.n}

        def save_checkpoint(self, d):
            return {"n": self.n}

        def load_checkpoint(self, checkpoint):
            self.n = checkpoint["n"]

    kwargs = dict(name="edge", local_dir=str(tmp_path), verbose=0,
                  stop={"training_iteration": 2})
    first = tune.run(InterruptsAtTwo, **kwargs)
    assert first.trials[0].status == "TERMINATED"
    assert first.trials[0].last_result["n"] == 2
    second = tune.run(InterruptsAtTwo, resume=True, **kwargs)
    lines = trial_lines_of(second.trials[0])
    assert [r["n"] for r in lines] == [1, 2]


def trial_lines_of(trial):
    with open(os.path.join(trial.logdir, "result.json")) as f:
        return [json.loads(line) for line in f]


def test_resume_after_budget_spent_starts_nothing(tmp_path):
    def endless(config):
        for i in range(10):
            time.sleep(0.1)
            tune.report(i=i)

    kwargs = dict(name="spent", local_dir=str(tmp_path), verbose=0,
                  num_samples=-1, time_budget_s=1.0)
    first = tune.run(endless, **kwargs)
    began = time.monotonic()
    second = tune.run(endless, resume=True, **kwargs)
    assert time.monotonic() - began < 1.0
    assert len(second.trials) == len(first.trials)


def test_resumed_trial_that_met_stop_is_completed(tmp_path):
    class Ten(tune.Trainable):
        def setup(self, config):
            self.n = 0

        def step(self):
            self.n += 1
            return {"n": self.n}

        def save_checkpoint(self, d):
            return {"n": self.n}

        def load_checkpoint(self, checkpoint):
            self.n = checkpoint["n"]

    kwargs = dict(name="met", local_dir=str(tmp_path), verbose=0,
                  stop={"training_iteration": 3}, checkpoint_freq=1)
    first = tune.run(Ten, **kwargs)
    # Make the state say the trial was still running when the driver
    # died, after its final checkpoint was recorded.
    path = tmp_path / "met" / "experiment_state.json"
    state = json.loads(path.read_text())
    state["trials"][0]["status"] = "RUNNING"
    path.write_text(json.dumps(state))
    second = tune.run(Ten, resume=True, **kwargs)
    trial = second.trials[0]
    assert trial.status == "TERMINATED"
    assert [r["n"] for r in trial_lines_of(trial)] == [1, 2, 3]
    assert first.trials[0].last_result["n"] == 3
