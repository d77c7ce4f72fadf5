"""The process runner: progress lines → events, failures reported, Cancel kills the whole process tree."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from ScarEnhanceLib.EngineJob import EngineJob, describeDevice, errorMessage
from ScarEnhanceLib.ProcessRunner import (PanelState, ProcessRunner, RunStatus, engineCommand, estimateRemaining,
                                          formatDuration)

CHILD = r"""
import sys, time
print("PROGRESS 0.2500 reading the volume", file=sys.stderr, flush=True)
print("an ordinary log line", flush=True)
print("PROGRESS 1.0000 done", file=sys.stderr, flush=True)
sys.exit(int(sys.argv[1]))
"""

# A child that starts a worker (as torch data loaders or a multiprocessing pool would), then works slowly.
TREE = r"""
import subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open(sys.argv[1], "w").write(f"{worker.pid}")
for i in range(1200):
    print(f"PROGRESS {i / 1200:.4f} step {i}", file=sys.stderr, flush=True)
    time.sleep(0.1)
"""


def alive(pid: int) -> bool:
    """True while a process exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_progress_lines_become_events_and_logs_stay_logs():
    runner = ProcessRunner([sys.executable, "-c", CHILD, "0"]).start()
    progress, logs = [], []
    assert runner.wait(timeoutS=30, onProgress=progress.append, onLog=logs.append) is RunStatus.SUCCEEDED
    assert [(p.fraction, p.message) for p in progress] == [(0.25, "reading the volume"), (1.0, "done")]
    assert logs == ["an ordinary log line"]
    assert runner.returnCode == 0 and runner.lastProgress.fraction == 1.0


def test_a_failing_child_is_failed_not_cancelled():
    runner = ProcessRunner([sys.executable, "-c", CHILD, "3"]).start()
    assert runner.wait(timeoutS=30) is RunStatus.FAILED
    assert runner.returnCode == 3
    events = runner.poll()
    assert events == []  # everything was delivered by wait()


@pytest.mark.skipif(os.name != "posix", reason="process-tree check reads /proc")
def test_cancel_kills_the_process_tree_within_seconds(tmp_path):
    pidFile = tmp_path / "worker.pid"
    runner = ProcessRunner([sys.executable, "-c", TREE, str(pidFile)]).start()
    deadline = time.monotonic() + 20
    while not (pidFile.is_file() and pidFile.read_text()) or runner.lastProgress is None:
        runner.poll()
        assert time.monotonic() < deadline, "the child did not start"
        time.sleep(0.05)
    worker = int(pidFile.read_text())
    assert alive(runner.pid) and alive(worker)
    tic = time.monotonic()
    runner.cancel()
    assert runner.wait(timeoutS=10) is RunStatus.CANCELLED
    assert time.monotonic() - tic < 5
    deadline = time.monotonic() + 5
    while alive(worker) and time.monotonic() < deadline:  # the orphaned worker is reaped by init
        time.sleep(0.05)
    assert not alive(runner.pid) and not alive(worker)


def test_engine_command_runs_this_interpreter_with_the_engine_importable():
    argv = engineCommand(["--version"])
    assert argv[1:3] == ["-m", "scarenhance.cli"]
    runner = ProcessRunner(argv).start()
    logs = []
    assert runner.wait(timeoutS=60, onLog=logs.append) is RunStatus.SUCCEEDED
    assert any(line.startswith("scarenhance ") for line in logs)


def test_time_left_and_its_wording():
    assert estimateRemaining(0.01, 100) is None  # too little done to say
    assert estimateRemaining(0.5, 2.0) is None  # too early to say
    assert estimateRemaining(0.25, 60.0) == pytest.approx(180.0)
    assert estimateRemaining(1.0, 60.0) == 0.0
    assert [formatDuration(s) for s in (None, 12.4, 200, 3900)] == ["", "12 s", "3 min 20 s", "1 h 05 min"]


def test_device_and_error_messages():
    assert "GPU (CUDA)" in describeDevice("auto", ["ScarEnhance demo on cuda (fast mode)"], fellBack=False)
    assert "no CUDA GPU" in describeDevice("auto", ["enhance on cpu"], fellBack=False)
    assert "chosen" in describeDevice("cpu", [], fellBack=False)
    assert "out of memory" in describeDevice("auto", [], fellBack=True)
    assert errorMessage(["Traceback…", "scarenhance enhance: error: in.nrrd: not 3D"]) == "in.nrrd: not 3D"


def _job(tmp_path, fake_python, args, device="auto", importResults=lambda: "imported"):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return EngineJob("Test job", args, str(work), importResults, device=device, python=fake_python)


def test_job_imports_on_success_and_removes_its_files(tmp_path, fake_python, engine_mode):
    import numpy as np
    import SimpleITK as sitk

    sitk.WriteImage(sitk.GetImageFromArray(np.ones((2, 4, 4), np.int16)), str(tmp_path / "in.nrrd"))
    states = []
    job = _job(tmp_path, fake_python, ["segment", "--input", tmp_path / "in.nrrd", "--output", tmp_path / "m.nrrd", "--labels-output", tmp_path / "l.nrrd",
                                        "--report", tmp_path / "r.json", "--device", "auto"])
    job.onStateChanged = states.append
    assert job.wait() == "imported"
    assert states == [PanelState.RUNNING, PanelState.IMPORTING, PanelState.IDLE]
    assert not Path(job.workDir).exists()
    assert "no CUDA GPU" in job.deviceMessage  # the fake engine says it ran "on cpu"


def test_job_falls_back_to_the_cpu_when_the_gpu_runs_out_of_memory(tmp_path, fake_python, engine_mode):
    import numpy as np
    import SimpleITK as sitk

    engine_mode("oom")
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((2, 4, 4), np.int16)), str(tmp_path / "in.nrrd"))
    job = _job(tmp_path, fake_python, ["segment", "--input", tmp_path / "in.nrrd", "--output", tmp_path / "m.nrrd", "--labels-output", tmp_path / "l.nrrd",
                                        "--report", tmp_path / "r.json", "--device", "auto"])
    assert job.wait() == "imported"
    assert job.runner.argv[-1] == "cpu"
    assert "ran out of memory" in job.deviceMessage


def test_job_failure_reports_the_engine_error_and_imports_nothing(tmp_path, fake_python, engine_mode):
    engine_mode("fail")
    imported = []
    job = _job(tmp_path, fake_python, ["enhance", "--input", "flat.nrrd"], importResults=lambda: imported.append(1))
    with pytest.raises(RuntimeError, match="image is 2D"):
        job.wait()
    assert job.status is RunStatus.FAILED and job.state is PanelState.FAILED and imported == []


def test_the_child_writes_utf8_even_where_the_console_is_cp1252():
    """Windows gives a piped child its ANSI code page (cp1252): without the runner's UTF-8 settings a
    "λ" in a log line raises UnicodeEncodeError. PYTHONIOENCODING=cp1252 reproduces that here."""
    child = "import sys; print('λ = 250, σ²'); print(sys.stdout.encoding)"
    cp1252 = {**os.environ, "PYTHONIOENCODING": "cp1252", "PYTHONUTF8": "0"}
    plain = ProcessRunner([sys.executable, "-c", child], env=cp1252).start()
    assert plain.wait(timeoutS=30) is RunStatus.FAILED  # the defect, reproduced
    assert any("UnicodeEncodeError" in line for line in plain.logLines)

    from ScarEnhanceLib.ProcessRunner import engineEnvironment

    fixed = ProcessRunner([sys.executable, "-c", child], env=engineEnvironment(cp1252)).start()
    logs = []
    assert fixed.wait(timeoutS=30, onLog=logs.append) is RunStatus.SUCCEEDED
    assert logs == ["λ = 250, σ²", "utf-8"]


def test_the_child_is_asked_for_progress_lines():
    from ScarEnhanceLib.ProcessRunner import engineEnvironment

    env = engineEnvironment({"PATH": "/bin"})
    assert env["SCARENHANCE_PROGRESS"] == "lines" and env["PYTHONUTF8"] == "1" and env["PYTHONIOENCODING"] == "utf-8"
