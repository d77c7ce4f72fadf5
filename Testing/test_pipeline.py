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
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
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
