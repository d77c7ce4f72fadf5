"""Paths as the benchmark results store them: relative to the repository, never the machine's absolute paths."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def repo_relative(path) -> str:
    """`path` relative to the repository root (POSIX separators); a path outside it keeps only its name."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(ROOT).as_posix()
    except ValueError:
        return f"<outside the repository>/{resolved.name}"
