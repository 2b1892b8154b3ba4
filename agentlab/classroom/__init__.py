"""The teacher's side: grade a class's exercise notebooks into one report, and hand out the course.

- ``python -m agentlab grade SUBMISSIONS --out REPORT``: every learner's notebook runs top to bottom in a fresh
  kernel; the grader's own check runs after the learner's cells (``kernel.py``) and ``report.py`` writes
  ``grades.csv``, ``report.html`` and the executed copies.
- ``python -m agentlab handout --out DIR``: the lessons, the appendix and the exercises, without solutions
  unless ``--with-solutions``.

Nothing here is imported by ``import agentlab``: nbclient and matplotlib load only when a teacher asks.
"""
