"""Errors the engine raises on purpose. Each says which file and what is wrong with it."""

from pathlib import Path


class ScarEnhanceError(Exception):
    """Base class: a problem we detected and can explain to the user."""


class InputError(ScarEnhanceError, ValueError):
    """Bad input data (image, labels, ROI, parameters)."""

    def __init__(self, problem: str, path: "str | Path | None" = None):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path is not None else problem)


class ModelError(ScarEnhanceError):
    """A model folder that is missing, truncated, tampered with or inconsistent."""

    def __init__(self, problem: str, path: "str | Path | None" = None):
        self.path = None if path is None else Path(path)
        super().__init__(f"{path}: {problem}" if path is not None else problem)


class Cancelled(ScarEnhanceError):
    """The caller asked the running job to stop."""
