"""The teacher's side: hand out the course, and grade a class's exercise notebooks into one report.

- ``course.py``: the course's notebooks (package data in a wheel, ``notebooks/`` in a checkout) and ``handout``.
- ``grade.py``: ``python -m agentlab grade``: find the class, grade it, stop cleanly on a signal.
- ``notebook.py``: the course's exercise notebook (trusted) and a learner's copy (not), with the grader's cells.
- ``kernels.py``: kernels forked from a warm zygote, ended with the grader, and the judge that runs inside them.
- ``execute.py``: one notebook run in a kernel and turned into its rows.
- ``report.py``: ``grades.csv``, ``gradebook.csv`` and ``report.html``.

Nothing here is imported by ``import agentlab``: nbclient and matplotlib load only when a teacher asks.
"""
