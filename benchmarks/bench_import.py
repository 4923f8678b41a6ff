"""``python -c "import trainable"`` against a bare interpreter start.

Figure: the wall time of a fresh interpreter that imports ``trainable``.
Limit: the wall time of ``python -c pass``. Both run with the same
interpreter (``sys.executable``), environment and working directory, after
a warm-up run that fills the bytecode cache.

The package may import its public names on first use, which would leave
the figure with little to measure, so the details also time a script that
loads every name in ``trainable.__all__``. The extra check runs on that
script: neither ``numpy`` nor ``pandas`` may be in ``sys.modules``. The
details list the modules that cost the most import time in it (``python
-X importtime``).
"""

import json
import os
import subprocess
import sys
from typing import Dict, List, NamedTuple, Optional

from benchmarks import (
    Figure,
    Settings,
    median,
    median_ratio,
    paired_repeats,
    timed,
)

HEAVY_MODULES = ("numpy", "pandas")
IMPORT_PACKAGE = "import trainable"
IMPORT_ALL_NAMES = ("import trainable\n"
                    "for name in trainable.__all__:\n"
                    "    getattr(trainable, name)")
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_REPORT_HEAVY = (
    f"{IMPORT_ALL_NAMES}\n"
    "import json, sys\n"
    f"print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))"
)


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        path for path in (_ROOT, env.get("PYTHONPATH")) if path)
    return env


def interpreter_s(code: str, python: Optional[str] = None) -> float:
    """Return the wall time of ``python -c code`` in a fresh process."""
    command = [python or sys.executable, "-c", code]
    return timed(lambda: subprocess.run(command, cwd=_ROOT, env=_env(),
                                        check=True))


def heavy_modules_imported() -> List[str]:
    """Return which of :data:`HEAVY_MODULES` are loaded once every public
    name of ``trainable`` is."""
    completed = subprocess.run([sys.executable, "-c", _REPORT_HEAVY],
                               cwd=_ROOT, env=_env(), check=True,
                               capture_output=True, text=True)
    return json.loads(completed.stdout)


class ImportTime(NamedTuple):
    """One line of ``python -X importtime`` output."""

    name: str
    self_ms: float
    cumulative_ms: float
    depth: int


def import_times(code: str = IMPORT_ALL_NAMES) -> List[ImportTime]:
    """Return the imports that ``code`` causes, after interpreter start,
    as ``python -X importtime`` reports them."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=_ROOT, env=_env(), check=True, capture_output=True, text=True)
    return imports_after_startup(parse_importtime(completed.stderr))


def parse_importtime(text: str) -> List[ImportTime]:
    """Parse the output of ``python -X importtime``."""
    # Lines read "import time: <self us> | <cumulative us> | <name>", the
    # name indented two spaces per level; a module's imports are printed
    # before it, one level deeper.
    entries = []
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip())) // 2
        self_us = int(parts[0].rsplit(":", 1)[1])
        entries.append(ImportTime(name.strip(), self_us / 1000,
                                  int(parts[1]) / 1000, depth))
    return entries


def imports_after_startup(entries: List[ImportTime]) -> List[ImportTime]:
    """Drop the imports of interpreter start-up: everything up to and
    including the top-level ``site`` import."""
    for index, entry in enumerate(entries):
        if entry.depth == 0 and entry.name == "site":
            return entries[index + 1:]
    return entries


def _describe_import_times(entries: List[ImportTime]) -> List[str]:
    if not entries:
        return ["-X importtime reported no imports"]
    # A lazily imported module's imports can be reported at the top level
    # rather than nested under it, so the total sums the top level.
    roots = [entry for entry in entries if entry.depth == 0]
    total = sum(entry.cumulative_ms for entry in roots)
    largest = sorted(roots, key=lambda e: e.cumulative_ms,
                     reverse=True)[:6]
    by_self = sorted(entries, key=lambda e: e.self_ms, reverse=True)[:8]
    return [
        f"-X importtime of all public names: {total:.1f} ms of imports; "
        f"largest top-level (cumulative ms): " + ", ".join(
            f"{e.name} {e.cumulative_ms:.1f}" for e in largest),
        "largest own times (ms): " + ", ".join(
            f"{e.name} {e.self_ms:.1f}" for e in by_self),
    ]


def measure(settings: Settings) -> List[Figure]:
    """Measure the import time of ``trainable`` and the bare start."""
    runs = settings.pick(tiny=1, quick=10, full=20)
    interpreter_s(IMPORT_ALL_NAMES)  # warm-up: fills the bytecode cache

    def median_run(code: str) -> float:
        return median([interpreter_s(code) for _ in range(runs)])

    limits, figures = paired_repeats(
        lambda: median_run("pass"), lambda: median_run(IMPORT_PACKAGE),
        settings.repeat_count)
    all_names = [median_run(IMPORT_ALL_NAMES)
                 for _ in range(settings.repeat_count)]
    heavy = heavy_modules_imported()
    return [Figure(
        name="import",
        title='python -c "import trainable"',
        value=median(figures) * 1e3,
        unit="ms",
        limit=median(limits) * 1e3,
        limit_title="python -c pass",
        ratio=median_ratio(figures, limits),
        comparison="<",
        target=2.0,
        extra_checks=[("no numpy or pandas imported", not heavy)],
        details=[
            f"median of {runs} runs per repeat",
            f"import trainable and load every public name: "
            f"{median(all_names) * 1e3:.1f} ms = "
            f"{median(all_names) / median(limits):.2f}x python -c pass; "
            f"numpy or pandas imported: {', '.join(heavy) or 'none'}",
        ] + _describe_import_times(import_times()),
    )]
