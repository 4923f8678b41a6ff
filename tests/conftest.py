"""Shared fixtures: a private result directory, and a check after every
test that no worker process outlived it."""

import multiprocessing
import os
import time

import pytest

# Tests never write to ~/ray_results.
os.environ.setdefault("TUNE_RESULT_DIR", os.path.join(
    os.environ.get("TMPDIR", "/tmp"), f"trainable-tests-{os.getpid()}"))

START_METHODS = [m for m in ("fork", "forkserver", "spawn")
                 if m in multiprocessing.get_all_start_methods()]


def _children_of(pid):
    children = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces.
        fields = stat[stat.rfind(")") + 2:].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            children.append(int(name))
    return children


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def live_worker_processes():
    """Return pids of processes descended from this one, other than the
    multiprocessing fork server and resource tracker themselves."""
    found = []
    stack = [os.getpid()]
    while stack:
        parent = stack.pop()
        for child in _children_of(parent):
            stack.append(child)
            command = _cmdline(child)
            helper = ("forkserver" in command
                      or "resource_tracker" in command)
            if parent == os.getpid() and helper:
                continue
            found.append(child)
    return found


@pytest.fixture(autouse=True)
def no_orphan_workers():
    """Fail a test that leaves worker processes behind."""
    yield
    if not os.path.isdir("/proc"):
        return
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        multiprocessing.active_children()
        left = live_worker_processes()
        if not left:
            return
        time.sleep(0.05)
    pytest.fail(f"worker processes outlived the test: {left} "
                f"{[_cmdline(p) for p in left]}")


@pytest.fixture(params=START_METHODS)
def start_method(request):
    """Each start method this platform supports."""
    return request.param


PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def script_env():
    """Environment for a Python subprocess that imports this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (PROJECT_ROOT, env.get("PYTHONPATH")) if p)
    return env
