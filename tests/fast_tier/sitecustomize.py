"""Python runs this at the start of every process whose PYTHONPATH names this folder: the
processes a fast test starts (tests/conftest.py), which refuse slow work as the test does."""

from refuse_slow_work import refuse_on_import

refuse_on_import()
