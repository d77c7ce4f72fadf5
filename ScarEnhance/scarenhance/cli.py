"""`scarenhance` command line. Each subcommand lives in scarenhance/commands/<name>.py with
`add_arguments(parser)` and `run(args) -> int`, imported only when that subcommand runs."""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys

from . import __version__
from .errors import ScarEnhanceError

# name → (module in scarenhance.commands, one-line help)
COMMANDS = {
    "demo": ("demo", "make a synthetic LGE case, segment the heart, enhance the scar, write a figure"),
    "phantom": ("phantom", "write realistic synthetic LGE cases in the EMIDEC layout"),
    "synth": ("synth", "write randomized synthetic cases (the training engine's data) in the EMIDEC layout"),
    "targets": ("targets", "make the gamma-corrected scar-enhanced training targets"),
    "train-seg": ("train_seg", "train the heart segmentation U-Net"),
    "segment": ("segment", "segment the heart (ROI) in an LGE volume"),
    "train-diffusion": ("train_diffusion", "train the localized conditional diffusion model"),
    "enhance": ("enhance", "enhance the scar inside the ROI of an LGE volume"),
    "train": ("train", "the whole pipeline: targets, segmentation, diffusion, evaluation"),
    "evaluate": ("evaluate", "SSIM/PSNR/LPIPS/CNR report with tables and figures"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scarenhance", description="Myocardial scar enhancement in LGE cardiac MRI.")
    parser.add_argument("--version", action="version", version=f"scarenhance {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        try:
            command = importlib.import_module(f"scarenhance.commands.{module}")
        except ModuleNotFoundError as e:  # a missing command must not break the others (test_packaging checks all)
            if e.name != f"scarenhance.commands.{module}":
                raise
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        command.add_arguments(p)
    return parser


def main(argv: "list[str] | None" = None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(["scarenhance", *argv])  # the train commands record it in their models
    command = importlib.import_module(f"scarenhance.commands.{args._module}")
    try:
        return int(command.run(args) or 0)
    except ScarEnhanceError as e:
        print(f"scarenhance {args.command}: error: {e}", file=sys.stderr)
        return 2 if not e.__class__.__name__ == "Cancelled" else 130
    except KeyboardInterrupt:
        print(f"scarenhance {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
