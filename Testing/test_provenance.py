"""What a model folder and a benchmark result say about how they were made: the command line the train
commands record (from the real CLI), the shipped diffusion model's record, and no machine paths in results."""

import json
import shlex
from pathlib import Path

import pytest

from scarenhance import cli

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "ScarEnhance" / "scarenhance" / "models"


@pytest.mark.parametrize("argv, target", [
    (["train-diffusion", "--data", "my data", "--out", "M", "--epochs", "3", "--scar-weight", "2"],
     "scarenhance.diffusion.train.train_diffusion"),
    (["train-seg", "--data", "D", "--out", "M", "--epochs", "2"], "scarenhance.segmentation.train.train_segmentation"),
    (["train", "--data", "D", "--out", "RUN", "--set", "diffusion.epochs=2"], "scarenhance.pipeline.run_pipeline"),
])
def test_train_commands_record_the_exact_command_line(monkeypatch, argv, target):
    seen = {}

    def fake(*args, **kwargs):
        seen["command"] = kwargs.get("command") or getattr(args[0], "command", None)
        return {"val_dice": None, "epochs": 0, "model": "M", "steps": {"evaluation": {"status": "pending"}}}

    module, name = target.rsplit(".", 1)
    monkeypatch.setattr(__import__(module, fromlist=[name]), name, fake)
    monkeypatch.setattr("scarenhance.datasets.list_cases", lambda *a, **k: ["Case_001"])  # the data paths are made up
    assert cli.main(argv) == 0
    assert seen["command"] == shlex.join(["scarenhance", *argv])
    assert shlex.split(seen["command"])[1:] == argv  # the line parses back to the same arguments


def test_the_shipped_diffusion_models_command_gives_its_recorded_settings():
    """The recorded command, parsed by today's parser, yields every recorded setting it names; what was
    written by hand is listed under `reconstructed`."""
    meta = json.loads((MODELS / "scar-diffusion-demo" / "configs" / "metadata.json").read_text(encoding="utf-8"))
    training = meta["scarenhance"]["training"]
    argv = shlex.split(training["command"])
    assert argv[:2] == ["scarenhance", "train-diffusion"]
    args = cli.build_parser().parse_args(argv[1:])
    config = training["config"]
    renamed = {"workers": "num_workers"}
    for key, value in vars(args).items():
        field = renamed.get(key, key)
        if field in config:
            assert config[field] == value, field
    assert (config["epochs"], config["time_limit_min"], config["roi_source"]) == (100000, 55.0, "randomized")
    assert (config["prediction"], meta["scarenhance"]["prediction"], config["loss_norm"]) == ("residual", "residual", 1)
    assert (config["scar_weight"], config["myo_weight"]) == (10.0, 5.0)
    assert training["stopped"] == f"time limit of {config['time_limit_min']} min reached"  # the trainer's words
    assert training["snapshot_of_epoch"] == 72 and "last epoch (72)" in training["shipped"]
    # 0.8.0 was fine-tuned from round 13's unshipped 'mix' run, that from 0.7.0, 0.7.0 from 0.6.0, 0.6.0 from 0.5.0
    # (three runs from 0.4.0), 0.4.0 from 0.3.0, whose own record (with its hand-reconstructed fields listed) is kept
    mix = training["initialised_from"]
    assert "not shipped" in mix["model"] and mix["its_training"]["config"]["myo_weight"] == 2.0
    assert mix["its_training"]["snapshot_of_epoch"] == 65 and mix["its_training"]["data_command"] == training["data_command"]
    assert mix["its_training"]["initialised_from"]["model"] == "scar-diffusion-demo 0.7.0"
    parent = mix["its_training"]["initialised_from"]["its_training"]["initialised_from"]
    assert parent["model"] == "scar-diffusion-demo 0.6.0"
    grandparent = parent["its_training"]["initialised_from"]
    assert grandparent["model"] == "scar-diffusion-demo 0.5.0"
    assert [run["stage"] for run in grandparent["its_training"]["earlier_runs"]] == [1, "1b", 2]
    assert grandparent["its_training"]["initialised_from"]["model"] == "scar-diffusion-demo 0.4.0"
    earlier = grandparent["its_training"]["initialised_from"]["its_training"]["initialised_from"]["its_training"]
    assert "reconstructed" in earlier and earlier["reconstructed"]["fields"]
    assert all(run["command"].startswith(("scarenhance train-diffusion ", "the same as the run before"))
               for run in earlier["earlier_runs"])
    text = json.dumps(meta)
    assert "experiment patch" not in text and "likewise" not in text


def test_benchmark_results_hold_no_absolute_paths():
    def strings(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)

    files = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
    assert files
    for path in files:
        for s in strings(json.loads(path.read_text(encoding="utf-8"))):
            assert not (s.startswith(("/", "~")) or (len(s) > 2 and s[1] == ":" and s[2] in "\\/")), (path.name, s)
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from repo_paths import repo_relative
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert repo_relative(MODELS / "scar-diffusion-demo") == "ScarEnhance/scarenhance/models/scar-diffusion-demo"
    assert repo_relative("/somewhere/else/model") == "<outside the repository>/model"
