"""The exercises' checks as tests: ``pytest`` runs every one, ``pytest -m dense`` one of them.

Each test passes when its exercise is right, and fails with the checker's verdict (not started, or what is wrong).
"""

from pathlib import Path

import pytest

from scratchae import exercises

HERE = Path(__file__).parent


@pytest.mark.parametrize("name", [pytest.param(exercise.name, marks=getattr(pytest.mark, exercise.name))
                                  for exercise in exercises.EXERCISES])
def test_exercise(name):
    result = exercises.check_one(HERE, name)
    assert result.status == "right", result.line()
