"""`scarenhance` command line. Each subcommand lives in scarenhance/commands/<name>.py with
`add_arguments(parser)` and `run(args) -> int`, imported only when that subcommand runs.

Start-up stays light (`--help` and bad-input errors well under 2 s): this module and the commands'
`add_arguments` import neither torch nor MONAI; a command imports them once its inputs have passed.
Errors end as one line on stderr (`scarenhance CMD: error: FILE: problem`), never a traceback;
SCARENHANCE_DEBUG=1 shows the traceback of an unexpected one.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys

from . import __version__
from .errors import Cancelled, ScarEnhanceError
from .progress import MODES, close_cli, set_cli_mode

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
        p.add_argument("--progress", nargs="?", const="lines", default=None, choices=MODES, metavar="MODE",
                       help="bar (a progress bar on stderr), lines (machine-readable 'PROGRESS 0.42 message' lines "
                            "on stderr; plain --progress means lines), none, or auto: a bar on a terminal, nothing "
                            "on a pipe. Default: $SCARENHANCE_PROGRESS, else auto")
    return parser


def main(argv: "list[str] | None" = None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(["scarenhance", *argv])  # the train commands record it in their models
    try:
        set_cli_mode(args.progress)
        command = importlib.import_module(f"scarenhance.commands.{args._module}")
        return int(command.run(args) or 0)
    except ScarEnhanceError as e:
        return _fail(args, f"error: {e}", 2 if not isinstance(e, Cancelled) else 130)
    except KeyboardInterrupt:
        return _fail(args, "interrupted", 130)
    except OSError as e:  # a file the engine could not read or write, named by the OS
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        return _fail(args, f"error: {where}{e.strerror or e}", 2, e)
    except MemoryError as e:
        return _fail(args, "error: out of memory (try a smaller image, --device cpu, or a machine with more memory)", 2, e)
    except Exception as e:  # a bug or a resource problem: one readable line, the traceback on request
        first = (str(e).strip().splitlines() or [""])[0]
        return _fail(args, f"unexpected error: {e.__class__.__name__}: {first} "
                           "(rerun with SCARENHANCE_DEBUG=1 to see where)", 1, e)
    finally:
        close_cli()


def _fail(args: argparse.Namespace, message: str, code: int, error: "BaseException | None" = None) -> int:
    close_cli()  # the message goes below the bar, not into it
    if error is not None and os.environ.get("SCARENHANCE_DEBUG"):
        raise error
    print(f"scarenhance {args.command}: {message}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
