"""The panel's options become command lines that the engine's own parser accepts, with the same meaning."""

from __future__ import annotations

import pytest

from scarenhance.cli import build_parser
from ScarEnhanceLib.Parameters import EnhanceOptions, SegmentOptions


def test_segment_options_parse_as_the_engine_reads_them():
    args = build_parser().parse_args(SegmentOptions(dilateMm=2.5, model="/models/heart", device="cpu").cliArgs("in.nrrd", "mask.nrrd"))
    assert (args.command, args.input, args.output, args.dilate_mm, args.model, args.device) == \
        ("segment", "in.nrrd", "mask.nrrd", 2.5, "/models/heart", "cpu")
    defaults = build_parser().parse_args(SegmentOptions().cliArgs("in.nrrd", "mask.nrrd"))
    assert (defaults.dilate_mm, defaults.model, defaults.device) == (0.0, None, "auto")


def test_enhance_options_parse_as_the_engine_reads_them():
    options = EnhanceOptions(lam=120, k=3, steps=10, seed=42, model="/models/ddpm", device="cuda", keepUncertainty=True)
    args = build_parser().parse_args(options.cliArgs("in.nrrd", "roi.nrrd", "out.nrrd", "std.nrrd"))
    assert (args.command, args.input, args.roi, args.output, args.std_output) == ("enhance", "in.nrrd", "roi.nrrd", "out.nrrd", "std.nrrd")
    assert (args.lam, args.k, args.steps, args.seed, args.model, args.device) == (120, 3, 10, 42, "/models/ddpm", "cuda")


def test_paper_defaults_and_optional_outputs():
    args = build_parser().parse_args(EnhanceOptions().cliArgs("in.nrrd", "roi.nrrd", "out.nrrd", "std.nrrd"))
    assert (args.lam, args.k, args.steps, args.seed, args.std_output) == (250, 5, None, None, None)


@pytest.mark.parametrize("bad, message", [(dict(lam=0), "at least 1"), (dict(k=0), "at least 1"),
                                          (dict(lam=50, steps=51), "between 1 and λ"), (dict(device="tpu"), "device")])
def test_bad_options_are_refused_before_a_process_starts(bad, message):
    with pytest.raises(ValueError, match=message):
        EnhanceOptions(**bad).cliArgs("a", "b", "c", "d")
