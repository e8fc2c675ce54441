"""What the evaluators score: anything with a prompt and the completion expected after it.

The candidates' `Example` (candidates/data.py) is one; the evaluators ask only for the two
fields, so they depend on no candidate module.
"""

from __future__ import annotations

from typing import Protocol


class Example(Protocol):
    """An eval example: the prompt, and the completion (the label, for classification)."""

    @property
    def prompt(self) -> str: ...

    @property
    def completion(self) -> str: ...
