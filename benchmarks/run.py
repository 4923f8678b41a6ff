"""Run the benchmarks and print the table of figures against targets.

Usage::

    python -m benchmarks [--quick] [--only NAME]... [--ray-python PATH]
    python benchmarks/run.py [the same options]

Each figure is the median of several repeats, and each is compared with
a limit measured in the same run (see the module docstring of each
``bench_*.py``). The exit code is 0 when every benchmark ran, whether or
not it met its target, and 1 when a benchmark raised.

``python -m benchmarks`` is the reference command. Run as a script, this
file is the main module, which every ``spawn`` and ``forkserver`` child
runs again, so the bare processes of the start figures carry its imports.
That is why it imports only the standard library at the top.
"""

import argparse
import cProfile
import datetime
import importlib
import io
import math
import os
import platform
import pstats
import shlex
import shutil
import subprocess
import sys
import tempfile
import traceback
from typing import Dict, List, Optional, Sequence

if __package__ in (None, ""):
    # Run as a script: make the repository root importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))

from benchmarks import Figure, Settings, not_measured  # noqa: E402

# Benchmark names, in the order they run, and their modules.
BENCHMARKS = {
    "step_overhead": "benchmarks.bench_step_overhead",
    "reuse_start": "benchmarks.bench_reuse_start",
    "process_start": "benchmarks.bench_process_start",
    "object_store": "benchmarks.bench_object_store",
    "parallel": "benchmarks.bench_parallel",
    "memory": "benchmarks.bench_memory",
    "import": "benchmarks.bench_import",
    "vs_ray": "benchmarks.bench_vs_ray",
}
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Set by restart_with_bytecode_cache to the cache directory it created.
_CACHE_VARIABLE = "TRAINABLE_BENCH_PYCACHE"
COLUMNS = ("figure", "value", "limit", "limit is", "ratio", "target",
           "result", "vs Ray Tune")


def parse_args(argv: Optional[Sequence[str]] = None,
               prog: Optional[str] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true",
        help="smaller sizes and 3 repeats (default: full sizes, 5 "
             "repeats); skips the 10,000-trial memory benchmark")
    parser.add_argument(
        "--only", action="append", choices=list(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark; repeat the option for several. "
             f"Names: {', '.join(BENCHMARKS)}")
    parser.add_argument(
        "--ray-python", metavar="PATH",
        help="a Python interpreter with Ray Tune installed; fills the "
             "'vs Ray Tune' column (default: not measured)")
    parser.add_argument(
        "--repeats", type=int, metavar="N",
        help="repeats per figure (default: 5, or 3 with --quick)")
    parser.add_argument(
        "--record", metavar="FILE",
        help="also write the results as a reStructuredText page to FILE")
    parser.add_argument(
        "--profile", action="store_true",
        help="run each benchmark under cProfile and print its 25 most "
             "expensive functions (driver process only) to stderr")
    parser.add_argument(
        "--workdir", metavar="DIR",
        help="keep experiment results under DIR (default: a temporary "
             "directory, deleted at the end)")
    args = parser.parse_args(argv)
    if args.ray_python is not None and not os.access(args.ray_python,
                                                     os.X_OK):
        parser.error(f"--ray-python {args.ray_python!r} is not an "
                     f"executable file; give the path of a Python "
                     f"interpreter that has Ray Tune installed.")
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats is {args.repeats}; use 1 or more.")
    return args


# ------------------------------------------------------------- environment


def restart_with_bytecode_cache(arguments: List[str]) -> None:
    """Run this command again with a bytecode cache if it has none.

    With ``PYTHONDONTWRITEBYTECODE`` set (or ``python -B``), every new
    interpreter (a ``spawn`` or ``forkserver`` worker, ``python -c "import
    trainable"``) compiles each module of this repository from source,
    which most installations never do. ``sys.flags`` cannot change at run
    time and ``multiprocessing`` passes ``-B`` on to ``spawn`` children, so
    the command is executed again in a fresh interpreter, with the cache
    in a temporary ``PYTHONPYCACHEPREFIX`` directory, so that nothing is
    written beside the sources. :func:`main` deletes that directory.

    Args:
        arguments: the interpreter arguments that run this command again,
            such as ``["-m", "benchmarks", "--quick"]``.
    """
    if not sys.flags.dont_write_bytecode or _CACHE_VARIABLE in os.environ:
        return
    cache = tempfile.mkdtemp(prefix="trainable-bench-pycache-")
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache
    env[_CACHE_VARIABLE] = cache
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable] + arguments, env)


def _own_bytecode_cache() -> Optional[str]:
    cache = os.environ.get(_CACHE_VARIABLE)
    if cache and cache == os.environ.get("PYTHONPYCACHEPREFIX"):
        return cache
    return None


def machine_description() -> Dict[str, str]:
    """Return the facts about this machine that the record page lists."""
    from trainable.pool import available_cpus

    return {
        "CPUs": f"{os.cpu_count()} ({available_cpus()} usable)",
        "CPU model": _proc_field("/proc/cpuinfo", "model name") or
        platform.processor() or "unknown",
        "memory": _memory_text(),
        "Python": f"{platform.python_implementation()} "
                  f"{platform.python_version()}",
        "platform": platform.platform(),
        "commit": _git_commit(),
    }


def _proc_field(path: str, key: str) -> Optional[str]:
    try:
        with open(path) as lines:
            for line in lines:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        pass
    return None


def _memory_text() -> str:
    total = _proc_field("/proc/meminfo", "MemTotal")
    if total is None:
        return "unknown"
    return f"{int(total.split()[0]) / 1024 / 1024:.1f} GiB"


def _git_commit() -> str:
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=_ROOT,
            capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=_ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    suffix = " with uncommitted changes" if dirty.stdout.strip() else ""
    return completed.stdout.strip() + suffix


# --------------------------------------------------------------- running


def run_benchmark(name: str, settings: Settings,
                  profile: bool = False) -> List[Figure]:
    """Run one benchmark; an error becomes a figure that reports it."""
    module = importlib.import_module(BENCHMARKS[name])
    profiler = cProfile.Profile() if profile else None
    load_before = _load_average()
    try:
        if profiler is not None:
            profiler.enable()
        try:
            figures = module.measure(settings)
        finally:
            if profiler is not None:
                profiler.disable()
                _print_profile(name, profiler)
    except Exception as exc:  # noqa: BLE001 - reported, the run goes on
        traceback.print_exc()
        # The table shows the last line of the message; the whole
        # traceback went to stderr above.
        lines = str(exc).strip().splitlines() or [""]
        reason = f"error: {type(exc).__name__}: {lines[-1]}"
        figure = not_measured(name, name, reason[:160], "", math.nan)
        figure.vs_ray = ""
        return [figure]
    # Other processes on the machine skew the figures; the load average
    # shows how busy it was.
    load = (f"load average (1 min) before {load_before}, after "
            f"{_load_average()}")
    for figure in figures:
        figure.details.append(load)
    return figures


def _load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def _print_profile(name: str, profiler: cProfile.Profile) -> None:
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(25)
    print(f"--- profile of {name} ---\n{text.getvalue()}", file=sys.stderr)


def add_ray_column(figures: List[Figure], settings: Settings) -> None:
    """Fill the "vs Ray Tune" column of the figures that have a Ray Tune
    counterpart, and mark the others as not measured."""
    from benchmarks.bench_vs_ray import ray_counterparts

    names = [f.name for f in figures if not math.isnan(f.value)]
    try:
        found = ray_counterparts(settings, names)
    except Exception:  # noqa: BLE001 - the table is still worth printing
        traceback.print_exc()
        found = {}
    for figure in figures:
        if figure.vs_ray:
            continue
        ray_value = found.get(figure.name)
        if ray_value is None:
            figure.vs_ray = "not measured"
            continue
        # Both counterparts are times, so a larger ratio favours trainable.
        figure.vs_ray = (f"{_number(ray_value)} {figure.unit} "
                         f"({ray_value / figure.value:.0f}x longer)")
        figure.details.append(
            f"Ray Tune, same measurement: {_number(ray_value)} "
            f"{figure.unit}")


# ---------------------------------------------------------------- output


def _number(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def table_rows(figures: Sequence[Figure]) -> List[List[str]]:
    """Return the table cells, one list per figure, in :data:`COLUMNS`."""
    rows = []
    for figure in figures:
        passed = figure.passed
        result = {True: "pass", False: "MISS", None: "n/a"}[passed]
        rows.append([figure.title, _with_unit(figure.value, figure.unit),
                     _with_unit(figure.limit, figure.unit),
                     figure.limit_title, _with_unit(figure.ratio, "x", ""),
                     figure.target_text, result, figure.vs_ray])
    return rows


def _with_unit(value: Optional[float], unit: str, space: str = " ") -> str:
    if value is None:
        return "-"
    if math.isnan(value):
        return "n/a"
    return f"{_number(value)}{space}{unit}".rstrip()


def format_table(figures: Sequence[Figure]) -> str:
    """Return the figures as a plain-text table with their details."""
    rows = [list(COLUMNS)] + table_rows(figures)
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width)
                               for cell, width in zip(row, widths)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    lines.append("")
    for figure in figures:
        for detail in figure.details:
            lines.append(f"{figure.name}: {detail}")
    return "\n".join(lines)


def format_record(figures: Sequence[Figure], command: str,
                  machine: Dict[str, str], notes: Sequence[str]) -> str:
    """Return the results as a reStructuredText record page."""
    date = datetime.date.today().isoformat()
    lines = [
        "Benchmark results",
        "=================",
        "",
        f"Recorded on {date} with::",
        "",
        f"    {command}",
        "",
        "Machine",
        "-------",
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in machine.items()]
    lines += [f"- {note}" for note in notes]
    lines += [
        "",
        "Figures",
        "-------",
        "",
        "Each value is the median of the repeats. The ratio is the median "
        "of the",
        "per-repeat ratios, each repeat's limit being the mean of the "
        "limits measured",
        "just before and just after it.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
    ]
    for row in [list(COLUMNS)] + table_rows(figures):
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" for cell in row[1:]]
    lines += ["", "Details", "-------", ""]
    for figure in figures:
        for detail in figure.details:
            lines.append(f"- ``{figure.name}``: {detail}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ main


def main(argv: Optional[Sequence[str]] = None,
         prog: Optional[str] = None) -> int:
    """Run the selected benchmarks, print the table; return the exit code.
    """
    args = parse_args(argv, prog)
    cache = _own_bytecode_cache()
    workdir = args.workdir or tempfile.mkdtemp(prefix="trainable-bench-")
    settings = Settings(mode="quick" if args.quick else "full",
                        repeats=args.repeats, ray_python=args.ray_python,
                        workdir=workdir)
    names = args.only or list(BENCHMARKS)
    # Taken before the run: the working tree may change while it lasts.
    machine = machine_description()
    notes = ["PYTHONDONTWRITEBYTECODE was set; the run used a bytecode "
             "cache in a temporary PYTHONPYCACHEPREFIX"] if cache else []
    figures: List[Figure] = []
    try:
        for name in names:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            figures += run_benchmark(name, settings, args.profile)
        add_ray_column(figures, settings)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)
    print(format_table(figures))
    if args.record:
        command = " ".join([prog or "python benchmarks/run.py"] + [
            shlex.quote(arg) for arg in (
                sys.argv[1:] if argv is None else argv)])
        with open(args.record, "w") as record:
            record.write(format_record(figures, command, machine, notes))
    failed = [f for f in figures if f.limit_title.startswith("error:")]
    return 1 if failed else 0


def run_from_command_line(module: bool) -> None:
    """Entry point of ``python -m benchmarks`` (``module`` True) and of
    ``python benchmarks/run.py``; exits with :func:`main`'s code."""
    arguments = sys.argv[1:]
    if module:
        prog, start = "python -m benchmarks", ["-m", "benchmarks"]
    else:
        prog, start = "python benchmarks/run.py", [os.path.abspath(
            __file__)]
    restart_with_bytecode_cache(start + arguments)
    sys.exit(main(arguments, prog))


if __name__ == "__main__":
    run_from_command_line(module=False)
