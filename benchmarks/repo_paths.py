"""Paths as the benchmark results store them: relative to the repository, never the machine's absolute paths;
the one way benchmarks write their JSON; and the options every cross-family benchmark takes."""

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


def add_family_options(ap, what: str, cases: int, json_default: str) -> None:
    """--model, --cases, --seed, --families, --threads, --json of a cross-family benchmark (evaluation/families.py)."""
    from scarenhance.evaluation.families import FAMILIES

    ap.add_argument("--model", default=None, help=f"{what} model folder or registry id (default: the shipped one)")
    ap.add_argument("--cases", type=int, default=cases, help="cases per family")
    ap.add_argument("--seed", type=int, default=9001, help="family seed (no training used these cases)")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    ap.add_argument("--json", default=json_default)


def apply_threads(args) -> None:
    """Set torch's CPU threads when --threads was given."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
