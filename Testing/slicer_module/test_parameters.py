"""The panel's options become command lines that the engine's own parser accepts, with the same meaning.

The outputs of issue 14's contracts (segment --labels-output/--report, enhance --labels/--safety-output)
are being added to the engine in parallel: while its parser lacks one, that flag (and only that flag,
with its value) may be left over by the parser; once the engine has it, it is parsed like the rest.
"""

from __future__ import annotations

import contextlib
import io

import pytest

from scarenhance.cli import build_parser
from ScarEnhanceLib.Parameters import EnhanceOptions, SegmentOptions

NEW_FLAGS = {"segment": ("--labels-output", "--report"), "enhance": ("--labels", "--safety-output")}


def _engine_has(command: str, flag: str) -> bool:
    base = {"segment": ["segment", "--input", "a", "--output", "b"], "enhance": ["enhance", "--input", "a", "--roi", "b", "--output", "c"]}
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            build_parser().parse_args(base[command] + [flag, "x"])
    except SystemExit:
        return False
    return True


def parse(argv: list[str]):
    args, leftover = build_parser().parse_known_args(argv)
    pending = {f for f in NEW_FLAGS[argv[0]] if not _engine_has(argv[0], f)}
    flags = leftover[0::2]
    assert set(flags) <= pending and len(leftover) == 2 * len(flags), f"the engine does not understand {leftover}"
    values = dict(zip(leftover[0::2], leftover[1::2]))
    for flag in NEW_FLAGS[argv[0]]:  # the new outputs, whether parsed by the engine or left over
        values.setdefault(flag, getattr(args, flag.lstrip("-").replace("-", "_"), None))
    return args, values


def test_segment_options_parse_as_the_engine_reads_them():
    args, new = parse(SegmentOptions(dilateMm=2.5, model="/models/heart", device="cpu").cliArgs("in.nrrd", "roi.nrrd", "labels.nrrd", "r.json"))
    assert (args.command, args.input, args.output, args.dilate_mm, args.model, args.device) == \
        ("segment", "in.nrrd", "roi.nrrd", 2.5, "/models/heart", "cpu")
    assert new == {"--labels-output": "labels.nrrd", "--report": "r.json"}
    defaults, _ = parse(SegmentOptions().cliArgs("in.nrrd", "roi.nrrd", "labels.nrrd", "r.json"))
    assert (defaults.dilate_mm, defaults.model, defaults.device) == (0.0, None, "auto")


def test_enhance_options_parse_as_the_engine_reads_them():
    options = EnhanceOptions(lam=120, k=3, steps=10, seed=42, model="/models/ddpm", device="cuda", keepUncertainty=True)
    args, new = parse(options.cliArgs("in.nrrd", "roi.nrrd", "out.nrrd", "std.nrrd", "safety.json", "labels.nrrd"))
    assert (args.command, args.input, args.roi, args.output, args.std_output) == ("enhance", "in.nrrd", "roi.nrrd", "out.nrrd", "std.nrrd")
    assert (args.lam, args.k, args.steps, args.seed, args.model, args.device) == (120, 3, 10, 42, "/models/ddpm", "cuda")
    assert new == {"--labels": "labels.nrrd", "--safety-output": "safety.json"}


def test_without_labels_the_engine_segments_the_myocardium_itself():
    argv = EnhanceOptions().cliArgs("in.nrrd", "roi.nrrd", "out.nrrd", "std.nrrd", "safety.json")
    assert "--labels" not in argv
    args, new = parse(argv)
    assert new == {"--labels": None, "--safety-output": "safety.json"}


def test_paper_defaults_and_optional_outputs():
    args, _ = parse(EnhanceOptions().cliArgs("in.nrrd", "roi.nrrd", "out.nrrd", "std.nrrd", "safety.json"))
    assert (args.lam, args.k, args.steps, args.seed, args.std_output) == (250, 5, None, None, None)


def test_sample_agreement_reaches_the_engine_and_its_absence_leaves_the_engines_default():
    from scarenhance.diffusion.agreement import DEFAULT_AGREEMENT

    args, _ = parse(EnhanceOptions().cliArgs("in.nrrd", "roi.nrrd", "out.nrrd", "std.nrrd", "safety.json"))
    assert args.agreement == DEFAULT_AGREEMENT
    for value in (0.0, 2.5):  # 0: the paper's plain mean of the k samples
        args, _ = parse(EnhanceOptions(agreement=value).cliArgs("in.nrrd", "roi.nrrd", "out.nrrd", "std.nrrd", "safety.json"))
        assert args.agreement == value


@pytest.mark.parametrize("bad, message", [(dict(lam=0), "at least 1"), (dict(k=0), "at least 1"),
                                          (dict(lam=50, steps=51), "between 1 and λ"), (dict(device="tpu"), "device"),
                                          (dict(agreement=-1.0), "agreement"), (dict(agreement=11.0), "agreement")])
def test_bad_options_are_refused_before_a_process_starts(bad, message):
    with pytest.raises(ValueError, match=message):
        EnhanceOptions(**bad).cliArgs("a", "b", "c", "d", "e")
