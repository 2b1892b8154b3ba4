"""The teacher's side: hand out the course (``course.py``), and grade a class's exercise notebooks into one
report (``grade.py``, which runs them in kernels forked by ``kernels.py``, judges their ``answers.py``, and writes
``report.py``'s files).

Nothing here is imported by ``import agentlab``: nbclient and matplotlib load only when a teacher asks.
"""
