"""``python -c "import trainable"`` against a bare interpreter start.

Figure: the wall time of a fresh interpreter that imports ``trainable``.
Limit: the wall time of ``python -c pass``. Both run with the same
interpreter (``sys.executable``), environment and working directory, after
a warm-up run that fills the bytecode cache.

Extra check: neither ``numpy`` nor ``pandas`` is in ``sys.modules`` after
the import. The details list the modules that cost the most import time
(``python -X importtime``).
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
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_REPORT_HEAVY = (
    "import json, sys, trainable; "
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
    """Return which of :data:`HEAVY_MODULES` ``import trainable`` loads."""
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


def import_times() -> List[ImportTime]:
    """Return the modules that ``import trainable`` loads, with their
    import times, as ``python -X importtime`` reports them."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import trainable"],
        cwd=_ROOT, env=_env(), check=True, capture_output=True, text=True)
    return _under_trainable(_parse_importtime(completed.stderr))


def _parse_importtime(text: str) -> List[ImportTime]:
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


def _under_trainable(entries: List[ImportTime]) -> List[ImportTime]:
    for index, entry in enumerate(entries):
        if entry.name == "trainable":
            start = index
            while start > 0 and entries[start - 1].depth > entry.depth:
                start -= 1
            return entries[start:index + 1]
    return []


def _describe_import_times(entries: List[ImportTime]) -> List[str]:
    if not entries:
        return ["-X importtime reported no trainable import"]
    package = entries[-1]
    direct = sorted((e for e in entries if e.depth == package.depth + 1),
                    key=lambda e: e.cumulative_ms, reverse=True)[:6]
    by_self = sorted(entries, key=lambda e: e.self_ms, reverse=True)[:8]
    return [
        f"-X importtime: trainable {package.cumulative_ms:.1f} ms; "
        f"largest direct imports (cumulative): " + ", ".join(
            f"{e.name} {e.cumulative_ms:.1f}" for e in direct),
        "largest own times: " + ", ".join(
            f"{e.name} {e.self_ms:.1f}" for e in by_self),
    ]


def measure(settings: Settings) -> List[Figure]:
    """Measure the import time of ``trainable`` and the bare start."""
    runs = settings.pick(tiny=1, quick=10, full=20)
    interpreter_s("import trainable")  # warm-up: fills the bytecode cache
    limits, figures = paired_repeats(
        lambda: median([interpreter_s("pass") for _ in range(runs)]),
        lambda: median([interpreter_s("import trainable")
                        for _ in range(runs)]),
        settings.repeat_count)
    heavy = heavy_modules_imported()
    return [Figure(
        name="import",
        title='python -c "import trainable"',
        value=median(figures) * 1e3,
        unit="ms",
        limit=median(limits) * 1e3,
        limit_title='python -c pass',
        ratio=median_ratio(figures, limits),
        comparison="<",
        target=2.0,
        extra_checks=[("no numpy or pandas imported", not heavy)],
        details=[
            f"median of {runs} runs per repeat; heavy modules imported: "
            f"{', '.join(heavy) or 'none'}",
        ] + _describe_import_times(import_times()),
    )]
