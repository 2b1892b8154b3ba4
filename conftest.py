"""Root pytest configuration: fast offline timings for every test, and which folders hold no tests."""

import os

# The offline server reads these when it starts (once per process, and in each nbval kernel it inherits
# them). 0.05 makes a "5 s" conversation take 0.25 s; ratios between runners stay the same.
os.environ.setdefault("AGENTLAB_TIME_SCALE", "0.05")
os.environ.setdefault("AGENTLAB_BACKEND", "offline")
os.environ.setdefault("MPLBACKEND", "Agg")

# Exercises hold TODO cells on purpose: tests/test_exercises.py checks them; nbval runs lessons and solutions.
collect_ignore = ["notebooks/exercises", "benchmarks", "docs"]
