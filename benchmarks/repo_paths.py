"""Paths as the benchmark results store them: relative to the repository, never the machine's absolute paths;
and the one way benchmarks write their JSON."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def repo_relative(path) -> str:
    """`path` relative to the repository root (POSIX separators); a path outside it keeps only its name."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(ROOT).as_posix()
    except ValueError:
        return f"<outside the repository>/{resolved.name}"


def write_result(path, data: dict) -> None:
    """Write a benchmark's JSON result (folders created) and say where."""
    import json

    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}")
