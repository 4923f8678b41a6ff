"""Smoke test of the benchmarks: each runs once at a tiny size.

Timings are not checked here (the benchmarks measure them); these tests
only keep the benchmark code working as the library changes.
"""

import math

import pytest

from benchmarks import Figure, Settings
from benchmarks import run as bench_run
from benchmarks.bench_import import imports_after_startup, parse_importtime


@pytest.fixture
def tiny(tmp_path):
    return Settings(mode="tiny", workdir=str(tmp_path))


def check_figure(figure, name_prefix):
    assert isinstance(figure, Figure)
    assert figure.name.startswith(name_prefix)
    assert math.isfinite(figure.value)
    assert figure.value > 0
    if figure.limit is not None:
        assert math.isfinite(figure.limit)
        assert figure.limit > 0
        assert math.isfinite(figure.ratio)
        assert figure.ratio > 0
    assert figure.passed in (True, False)


@pytest.mark.parametrize("name", [
    "step_overhead", "reuse_start", "object_store", "parallel",
])
def test_benchmark_runs_at_tiny_size(name, tiny):
    (figure,) = bench_run.run_benchmark(name, tiny)
    check_figure(figure, name)


def test_process_start_covers_each_start_method(tiny):
    from benchmarks.bench_process_start import start_methods

    figures = bench_run.run_benchmark("process_start", tiny)
    names = [figure.name for figure in figures]
    assert names == [f"process_start[{m}]" for m in start_methods()]
    for figure in figures:
        check_figure(figure, "process_start")


@pytest.fixture(scope="module")
def tiny_memory_figure(tmp_path_factory):
    settings = Settings(mode="tiny",
                        workdir=str(tmp_path_factory.mktemp("memory")))
    (figure,) = bench_run.run_benchmark("memory", settings)
    return figure


def test_memory_checks_result_files(tiny_memory_figure):
    check_figure(tiny_memory_figure, "memory")
    file_checks = [(text, ok) for text, ok in tiny_memory_figure.extra_checks
                   if "descriptors" not in text]
    assert len(file_checks) == 2
    for text, ok in file_checks:
        assert ok, text


def test_memory_run_closes_finished_files(tiny_memory_figure):
    (descriptors,) = [(text, ok) for text, ok
                      in tiny_memory_figure.extra_checks
                      if "descriptors" in text]
    assert descriptors[1], descriptors[0]


def test_vs_ray_without_ray_not_measured(tiny):
    (figure,) = bench_run.run_benchmark("vs_ray", tiny)
    assert math.isfinite(figure.value)
    assert figure.value > 0
    assert figure.vs_ray == "not measured"
    assert figure.passed is None


def test_memory_skipped_in_quick_mode(tmp_path):
    settings = Settings(mode="quick", workdir=str(tmp_path))
    (figure,) = bench_run.run_benchmark("memory", settings)
    assert figure.passed is None
    assert "full mode" in figure.limit_title


def test_import_reports_no_heavy_modules(tiny):
    (figure,) = bench_run.run_benchmark("import", tiny)
    check_figure(figure, "import")
    assert figure.extra_checks == [("no numpy or pandas imported", True)]


def test_importtime_parser_skips_startup():
    text = "\n".join([
        "import time: self [us] | cumulative | imported package",
        "import time:        20 |         20 |   encodings",
        "import time:        30 |         50 | site",
        "import time:        50 |         50 | trainable",
        "import time:       100 |        100 |     json.decoder",
        "import time:       200 |        300 |   json",
        "import time:        40 |        340 | trainable.launcher",
    ])
    entries = imports_after_startup(parse_importtime(text))
    names = [entry.name for entry in entries]
    assert names == ["trainable", "json.decoder", "json",
                     "trainable.launcher"]
    assert entries[2].self_ms == pytest.approx(0.2)
    assert entries[2].cumulative_ms == pytest.approx(0.3)
    assert entries[2].depth == 1
    assert entries[3].depth == 0


def test_error_becomes_figure(tiny, monkeypatch):
    from benchmarks import bench_parallel

    def fail(settings):
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(bench_parallel, "measure", fail)
    (figure,) = bench_run.run_benchmark("parallel", tiny)
    assert figure.passed is None
    assert "broken on purpose" in figure.limit_title


def test_table_and_record_list_every_figure():
    figures = [
        Figure(name="a", title="fast thing", value=1.0, unit="us",
               limit=2.0, limit_title="baseline", ratio=0.5,
               comparison="<=", target=2.0),
        Figure(name="b", title="memory", value=200.0, unit="MB",
               limit=None, limit_title="fixed budget", ratio=None,
               comparison="<", target=150.0, target_unit="MB",
               details=["a detail"]),
    ]
    table = bench_run.format_table(figures)
    assert "fast thing" in table
    assert "pass" in table
    assert "MISS" in table
    assert "b: a detail" in table
    record = bench_run.format_record(figures, "python -m benchmarks",
                                     {"CPUs": "2"}, ["a note"])
    assert ".. list-table::" in record
    assert "python -m benchmarks" in record
    assert "- CPUs: 2" in record
    assert "     - < 150 MB" in record


def test_settings_reject_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        Settings(mode="huge")
