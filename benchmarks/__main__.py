"""``python -m benchmarks``: run the benchmarks (see ``benchmarks.run``).
"""

# A spawn or forkserver child imports this module again as __mp_main__;
# importing the runner only under the guard keeps that import cheap, so
# it does not weigh on the process start figures.
if __name__ == "__main__":
    from benchmarks.run import run_from_command_line

    run_from_command_line(module=True)
