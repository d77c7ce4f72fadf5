"""`scarenhance train`: steps in order, a state file, and --resume that runs only what is left.

Two levels:
- the pipeline's bookkeeping with recording stand-in steps (fast): stop after step 2 then resume, an
  exception inside a step then resume, refusals (no --resume, other settings, unknown settings);
- the real thing through ScarEnhanceTraining's logic (child processes, real trainers, tiny settings):
  stop after the segmentation step, resume → only diffusion and evaluation run; cancel the diffusion
  training mid-way (the runner kills the process tree) → resume continues from its epoch checkpoint;
  the trained models are imported into a model registry.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from scarenhance import pipeline
from scarenhance.errors import InputError
from scarenhance.pipeline import PipelineOptions, parse_overrides, read_state, run_pipeline

ROOT = Path(__file__).resolve().parents[1]


# ---- bookkeeping, with stand-in steps -----------------------------------------------------------


@pytest.fixture
def recorded(monkeypatch):
    """Replace the four steps by recorders; `calls` lists (step, resuming) in call order."""
    calls: list = []
    failures: dict = {}

    def make(step):
        def fn(options, settings, state, resuming, ctx, progress, cancel, log):
            calls.append((step, resuming))
            if failures.get(step):
                failures[step] -= 1
                raise KeyboardInterrupt  # the user pressed Ctrl-C (or the process was killed) inside this step
            progress(1.0, f"{step} done")
            return {"step": step}
        return fn

    monkeypatch.setattr(pipeline, "STEP_FUNCTIONS", {s: make(s) for s in pipeline.STEPS})
    return calls, failures


def _options(tmp_path, **kw) -> PipelineOptions:
    from scarenhance.phantom import write_cases

    data = tmp_path / "data"
    if not data.exists():
        write_cases(data, n=1, seed=1, n_slices=2, size=(48, 48))
    return PipelineOptions(data=data, out=tmp_path / "run", device="cpu", **kw)


def test_stop_after_step_two_then_resume_runs_only_the_rest(tmp_path, recorded):
    calls, _ = recorded
    state = run_pipeline(_options(tmp_path, stop_after="segmentation"), log=lambda line: None)
    assert calls == [("targets", False), ("segmentation", False)]
    assert [state["steps"][s]["status"] for s in pipeline.STEPS] == ["done", "done", "pending", "pending"]
    assert read_state(tmp_path / "run") == state

    with pytest.raises(InputError, match="--resume"):
        run_pipeline(_options(tmp_path), log=lambda line: None)
    assert len(calls) == 2

    calls.clear()
    lines = []
    state = run_pipeline(_options(tmp_path, resume=True), log=lines.append)
    assert calls == [("diffusion", False), ("evaluation", False)]
    assert all(state["steps"][s]["status"] == "done" for s in pipeline.STEPS)
    assert {s: state["steps"][s]["runs"] for s in pipeline.STEPS} == {s: 1 for s in pipeline.STEPS}
    assert any("[targets] done already" in line for line in lines)

    calls.clear()
    run_pipeline(_options(tmp_path, resume=True), log=lambda line: None)
    assert calls == []  # a finished run has nothing left to do


def test_interrupted_step_is_resumed_not_restarted(tmp_path, recorded):
    calls, failures = recorded
    failures["diffusion"] = 1
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(_options(tmp_path), log=lambda line: None)
    state = read_state(tmp_path / "run")
    assert [state["steps"][s]["status"] for s in pipeline.STEPS] == ["done", "done", "running", "pending"]

    calls.clear()
    run_pipeline(_options(tmp_path, resume=True), log=lambda line: None)
    assert calls == [("diffusion", True), ("evaluation", False)]  # resuming=True → the trainer continues its checkpoint
    assert read_state(tmp_path / "run")["steps"]["diffusion"]["runs"] == 2


def test_resume_refuses_other_settings(tmp_path, recorded):
    run_pipeline(_options(tmp_path, stop_after="targets"), log=lambda line: None)
    with pytest.raises(InputError, match="preset"):
        run_pipeline(_options(tmp_path, resume=True, preset="gpu-paper"), log=lambda line: None)
    with pytest.raises(InputError, match="settings"):
        run_pipeline(_options(tmp_path, resume=True, overrides={"diffusion": {"epochs": 3}}), log=lambda line: None)


def test_settings_overrides_and_their_errors(tmp_path):
    assert parse_overrides(["diffusion.epochs=3", "evaluation.lam_sweep=[1,250]", "diffusion.roi-source=labels"]) == {
        "diffusion": {"epochs": 3, "roi_source": "labels"}, "evaluation": {"lam_sweep": [1, 250]}}
    with pytest.raises(InputError, match="STEP.KEY=VALUE"):
        parse_overrides(["epochs=3"])
    with pytest.raises(InputError, match="unknown step"):
        _options(tmp_path, overrides={"nosuchstep": {"a": 1}}).settings()
    settings = _options(tmp_path, preset="gpu-paper", overrides={"diffusion": {"epochs": 7}}).settings()
    assert settings["diffusion"]["epochs"] == 7 and settings["diffusion"]["preset"] == "gpu-paper"
    assert pipeline.PRESETS["gpu-paper"]["diffusion"]["epochs"] == 200  # the preset itself is not changed
    with pytest.raises(InputError, match="unknown diffusion setting"):
        from scarenhance.diffusion.train import DiffusionTrainConfig

        pipeline._config(DiffusionTrainConfig, {"epochz": 1}, "diffusion")


def test_a_non_empty_folder_without_a_run_is_refused(tmp_path, recorded):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "precious.nii.gz").write_bytes(b"x")
    with pytest.raises(InputError, match="not empty"):
        run_pipeline(_options(tmp_path), log=lambda line: None)
    assert (tmp_path / "run" / "precious.nii.gz").read_bytes() == b"x"


# ---- the real pipeline in child processes, through ScarEnhanceTraining's logic --------------------

TINY = [
    "segmentation.epochs=1", "segmentation.batch_size=4", "segmentation.crop=64", "segmentation.steps_per_epoch=2",
    "diffusion.epochs=8", "diffusion.batch_size=4", "diffusion.crop_size=32", "diffusion.samples_per_epoch=4",
    "diffusion.val_crops=4", "diffusion.sample_every=0", 'diffusion.roi_source="labels"',
    "evaluation.k=2", "evaluation.steps=2", "evaluation.lam=20", "evaluation.lam_sweep=[5,20]",
]


@pytest.fixture(scope="module")
def training_module():
    sys.path[:0] = [str(ROOT / "ScarEnhanceTraining"), str(ROOT / "ScarEnhance")]
    try:
        from ScarEnhanceLib.ModelRegistry import ModelRegistry
        from ScarEnhanceLib.ProcessRunner import RunStatus
        from ScarEnhanceTrainingLib.TrainingLogic import TrainingLogic, TrainingParameters

        yield TrainingLogic, TrainingParameters, RunStatus, ModelRegistry
    finally:
        del sys.path[:2]


def _single_threaded_runner(argv):
    """ProcessRunner with OMP_NUM_THREADS=1: CI has 2 cores, and oversubscribed torch threads crawl."""
    from ScarEnhanceLib.ProcessRunner import ProcessRunner, engineEnvironment

    return ProcessRunner(argv, env={**engineEnvironment(), "OMP_NUM_THREADS": "1"})


def test_interrupt_and_resume_the_real_pipeline(tmp_path, training_module):
    from scarenhance.phantom import write_cases

    TrainingLogic, TrainingParameters, RunStatus, ModelRegistry = training_module
    write_cases(tmp_path / "data", n=4, seed=9100, n_slices=4, size=(96, 96))
    run = tmp_path / "run"
    logic = TrainingLogic(registry=ModelRegistry(tmp_path / "registry"), runnerFactory=_single_threaded_runner)

    def params(**kw):
        return TrainingParameters(str(tmp_path / "data"), str(run), device="cpu", overrides=TINY, **kw)

    # 1. stop after step 2
    first = logic.run(params(stopAfter="segmentation"), timeoutS=240)
    assert first.succeeded, first.error
    assert first.stepsDone == ["targets", "segmentation"]
    seg_weights = run / "models" / "run-heart-seg" / "models" / "model.pt"
    target_file = run / "targets" / "Case_001.nii.gz"
    stamps = {p: p.stat().st_mtime_ns for p in (seg_weights, target_file)}
    assert not (run / "models" / "run-scar-diffusion").exists()

    # 2. resume, and cancel the diffusion training once its first epoch checkpoint exists
    latest = run / "models" / "run-scar-diffusion" / "training" / "latest.pt"
    runner = logic.start(params(resume=True))
    deadline = time.monotonic() + 180
    while not latest.exists() and not runner.finished and time.monotonic() < deadline:
        runner.poll()
        time.sleep(0.05)
    assert latest.exists(), runner.errorSummary()
    logic.cancel()
    assert runner.wait(timeoutS=30) == RunStatus.CANCELLED
    import torch

    cut = torch.load(latest, weights_only=True)["epoch"] + 1
    assert 1 <= cut < 8, "the cancel came too late to test a resume inside the step"
    state = logic.readState(run)
    assert [state["steps"][s]["status"] for s in ("targets", "segmentation", "diffusion", "evaluation")] == \
        ["done", "done", "running", "pending"]

    # 3. resume again: only the diffusion step (from its checkpoint) and the evaluation run
    lines = []
    final = logic.run(params(resume=True), onLog=lines.append, timeoutS=240, importModels=True)
    assert final.succeeded, final.error + "\n".join(lines[-20:])
    assert final.stepsDone == ["targets", "segmentation", "diffusion", "evaluation"]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # finished steps were not redone
    assert any("done already" in l and "[segmentation]" in l for l in lines)
    assert any(f"resuming after epoch {cut}/8" in l for l in lines), "\n".join(lines)
    history = torch.load(latest, weights_only=True)["history"]
    assert [h["epoch"] for h in history] == list(range(8))  # one history: epochs before the cut were kept
    steps = final.state["steps"]
    assert (steps["segmentation"]["runs"], steps["diffusion"]["runs"], steps["evaluation"]["runs"]) == (1, 2, 1)
    # RUN/targets/ is what the diffusion model trained on: one dataset blood mean, computed once per definition
    targets_mean = json.loads((run / "targets" / "targets.json").read_text())["dataset_blood_mean"]
    diffusion_meta = json.loads((run / "models" / "run-scar-diffusion" / "configs" / "metadata.json").read_text())
    assert diffusion_meta["scarenhance"]["training"]["blood_mean"] == targets_mean
    assert state["resolved_settings"]["segmentation"]["epochs"] == 1 and state["resolved_settings"]["diffusion"]["t_max"] == 400
    report = json.loads((run / "report" / "report.json").read_text())
    assert report["summary"]["n_cases"] == len(steps["evaluation"]["outputs"]["cases"]) >= 1  # held-out cases only
    assert final.reportPath == run / "report" / "report.md"

    # 4. the models went into the registry, checked, without their checkpoints
    ids = {m.id: m for m in logic.registry.models()}
    assert {"run-heart-seg", "run-scar-diffusion"} <= set(ids)
    for model_id in ("run-heart-seg", "run-scar-diffusion"):
        logic.registry.verify(ids[model_id])
        assert not (ids[model_id].folder / "training").exists()


def test_a_bad_data_folder_fails_before_anything_is_written(tmp_path, recorded):
    calls, _ = recorded
    options = PipelineOptions(data=tmp_path / "missing", out=tmp_path / "run", device="cpu")
    with pytest.raises(InputError, match="missing"):
        run_pipeline(options, log=lambda line: None)
    assert calls == [] and not (tmp_path / "run").exists()


def test_headless_module_entry(tmp_path, training_module, capsys):
    """`Slicer --python-script ScarEnhanceTraining.py ARGS` runs main(); here outside Slicer, the same code."""
    import importlib

    from scarenhance.phantom import write_cases

    module = importlib.import_module("ScarEnhanceTraining")
    write_cases(tmp_path / "data", n=2, seed=3, n_slices=2, size=(48, 48))
    assert module.main(["--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "run")]) == 2
    assert "data folder does not exist" in capsys.readouterr().err
    code = module.main(["--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--stop-after", "targets",
                        "--device", "cpu", "--python", sys.executable])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "100.0 %" in out and "succeeded" in out and "targets ✓" in out
    assert (tmp_path / "run" / "targets" / "targets.json").is_file()


def test_show_settings_prints_every_resolved_value_and_the_readme_agrees(tmp_path, capsys):
    """`train --show-settings` through the real CLI: the U-Net's epochs and every other resolved value; the
    README's preset table states the same epochs, batch sizes and crops as the code."""
    from scarenhance.cli import main

    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--show-settings",
                 "--set", "diffusion.epochs=7"]) == 0
    shown = json.loads(capsys.readouterr().out)
    seg, diffusion = shown["segmentation"], shown["diffusion"]
    assert (seg["epochs"], seg["batch_size"], seg["lr"], seg["crop"], seg["validate_every"]) == (30, 16, 2e-3, 128, 2)
    assert seg["network"]["channels"] == [24, 48, 96, 192, 384] and seg["spacing_mm"] == 1.75
    # fine-tune the shipped models when they fit: the heart model is checked when its step starts, the diffusion
    # model's folder is resolved with the rest of the diffusion settings
    assert seg["init_from"] == "auto" and Path(diffusion["init_from"]).name == "scar-diffusion-demo"
    assert diffusion["epochs"] == 7 and diffusion["ema_decay"] == 0.995 and diffusion["network"]["channels"] == [32, 64, 64]
    assert shown["evaluation"]["steps"] == 20 and shown["evaluation"]["seed"] == 0
    assert not (tmp_path / "run").exists()

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for preset in pipeline.PRESETS:
        resolved = pipeline.resolved_settings(PipelineOptions(data=tmp_path, out=tmp_path / "run", preset=preset))
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{preset}` |") and "epochs" in line)
        unet, diff = row.split("|")[2], row.split("|")[3]
        s, d = resolved["segmentation"], resolved["diffusion"]
        assert f"{s['epochs']} epochs, batch {s['batch_size']}" in unet, (preset, unet)
        assert f"{d['epochs']} epochs, batch {d['batch_size']}, {d['crop_size']}² crops" in diff, (preset, diff)


def test_the_shipped_enhancer_is_fine_tuned_only_when_its_prediction_matches(tmp_path):
    """init_from "auto" takes the shipped diffusion model for the preset's network and output, and starts from
    scratch when the run asks for another prediction (its output layer would mean something else)."""
    options = PipelineOptions(data=tmp_path, out=tmp_path / "run", preset="cpu-small")
    assert Path(pipeline.resolved_settings(options)["diffusion"]["init_from"]).name == "scar-diffusion-demo"
    other = PipelineOptions(data=tmp_path, out=tmp_path / "run", preset="cpu-small",
                            overrides={"diffusion": {"prediction": "epsilon"}})
    assert pipeline.resolved_settings(other)["diffusion"]["init_from"] is None
