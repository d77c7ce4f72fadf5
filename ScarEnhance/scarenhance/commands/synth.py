"""`scarenhance synth`: write randomized synthetic LGE cases (the training engine's data) in the EMIDEC layout."""

from __future__ import annotations

import argparse
import dataclasses


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder to write Case_001 … into (existing case folders are never overwritten)")
    parser.add_argument("--cases", type=int, default=10, help="number of cases (default: 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the set (default: 0)")
    parser.add_argument("--contrast", choices=("any", "lge"), default="any",
                        help="any: LGE-like and fully random contrasts, for the heart model (default); "
                             "lge: LGE-like only, scar always brighter than healthy myocardium, for the enhancer")
    parser.add_argument("--noise", type=float, nargs=2, metavar=("LOW", "HIGH"), default=None,
                        help="range of the Rician noise SD, relative to the LV blood mean (default: 0 0.12); "
                             "real LGE's healthy myocardium has SD/mean ≈ 0.58, which needs up to ~0.3")
    parser.add_argument("--scar-reach", type=float, nargs=2, metavar=("LOW", "HIGH"), default=None,
                        help="where an LGE-like scar's mean lies from the healthy myocardium's (0) to the LV blood's (1), "
                             "drawn uniformly (default: 0.35 1.3); above 1 the scar is brighter than the blood, as in "
                             "about half of real scans")


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..progress import cli_progress
    from ..synth.sample import SynthRanges
    from ..synth.write import write_synth_cases

    ranges = SynthRanges().lge_contrast() if args.contrast == "lge" else SynthRanges()
    if args.noise is not None:
        low, high = args.noise
        if not 0 <= low <= high:
            raise InputError(f"--noise needs 0 <= LOW <= HIGH, got {low} {high}")
        ranges = dataclasses.replace(ranges, acquisition=dataclasses.replace(ranges.acquisition, noise=(low, high)))
    if args.scar_reach is not None:
        low, high = args.scar_reach
        if not 0 < low <= high:
            raise InputError(f"--scar-reach needs 0 < LOW <= HIGH, got {low} {high}")
        ranges = dataclasses.replace(ranges, scar_reach=(low, high))
    folders = write_synth_cases(args.out, args.cases, args.seed, ranges=ranges, progress=cli_progress)
    print(f"wrote {len(folders)} randomized synthetic cases in the EMIDEC layout under {args.out} "
          f"({folders[0].name} … {folders[-1].name})")
    return 0
