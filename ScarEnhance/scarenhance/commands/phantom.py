"""`scarenhance phantom`: write realistic synthetic LGE cases in the EMIDEC layout."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder to write Case_001 … into (created if missing; "
                        "existing case folders are never overwritten)")
    parser.add_argument("--cases", type=int, default=10, help="number of cases (default: 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the set; different seeds give different cases (default: 0)")
    parser.add_argument("--scar-pattern", default=None,
                        help="force one scar pattern for every case: none, subendocardial, transmural, no_reflow, "
                             "mid_wall, rv_insertion (default: a realistic mix)")
    parser.add_argument("--ti-quality", choices=("good", "poor"), default=None,
                        help="force a well-timed or a mistimed inversion time (default: about 1 in 4 mistimed)")


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..phantom import write_cases
    from ..phantom.scar import PATTERNS
    from ..progress import cli_progress

    overrides = {}
    if args.scar_pattern is not None:
        if args.scar_pattern not in PATTERNS:
            raise InputError(f"unknown --scar-pattern {args.scar_pattern!r}; choose one of {', '.join(PATTERNS)}")
        overrides["scar_pattern"] = args.scar_pattern
    if args.ti_quality is not None:
        overrides["ti_quality"] = args.ti_quality
    folders = write_cases(args.out, args.cases, args.seed, progress=cli_progress, **overrides)
    print(f"wrote {len(folders)} cases in the EMIDEC layout under {args.out} ({folders[0].name} … {folders[-1].name})")
    return 0
