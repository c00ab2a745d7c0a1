"""Registers one pytest marker per exercise, so that ``pytest -m dense`` checks one exercise."""

from scratchae import exercises


def pytest_configure(config):
    for exercise in exercises.EXERCISES:
        config.addinivalue_line("markers", f"{exercise.name}: {exercise.title}")
