"""A plain (non-editable) `pip install .` must give a working `scarenhance` command with the demo models,
and the command line must list every subcommand."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True, cwd=out)
    (path,) = out.glob("scarenhance-*.whl")
    return path


def test_wheel_carries_engine_demo_models_and_console_script(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    registry = json.loads(zipfile.ZipFile(wheel).read("scarenhance/models/registry.json"))
    kinds = {entry["kind"] for entry in registry["models"] if entry.get("default")}
    assert kinds == {"heart-segmentation", "scar-diffusion"}
    for entry in registry["models"]:
        for rel in ("configs/metadata.json", "configs/inference.json", "models/model.pt"):
            assert f"scarenhance/models/{entry['folder']}/{rel}" in names
    assert not any(n.startswith(("ScarEnhanceLib", "Testing")) for n in names), "only the engine goes to pip"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "scarenhance = scarenhance.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_copy_finds_and_verifies_its_own_models(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)], check=True)
    code = ("import scarenhance, scarenhance.model_zoo as z, scarenhance.bundle as b;"
            "print(scarenhance.__file__);"
            "[b.load_bundle(z.resolve_model(None, kind), kind=kind) for kind in z.KINDS]")
    env = dict(os.environ, PYTHONPATH=str(target))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(target)), "the installed copy, not the checkout, was imported"


def test_help_lists_every_subcommand():
    from scarenhance.cli import COMMANDS

    done = subprocess.run([sys.executable, "-m", "scarenhance", "--help"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for name in COMMANDS:
        assert name in done.stdout


# ---- a command line for people: start-up, progress, the package root ----------------------------------


def _fresh_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_help_and_bad_input_errors_do_not_import_torch_or_monai():
    """What keeps `scarenhance --help` and a bad-input error well under 2 s (torch + MONAI cost ~3 s)."""
    code = ("import sys, contextlib, io\n"
            "from scarenhance.cli import main\n"
            "for argv in (['--help'], ['enhance', '--help'], ['segment', '--help']):\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        try: main(argv)\n"
            "        except SystemExit: pass\n"
            "with contextlib.redirect_stderr(io.StringIO()) as err:\n"
            "    codes = [main(['enhance', '--input', 'missing.nii.gz', '--roi', 'r.nii.gz', '--output', 'o.nii.gz']),\n"
            "             main(['enhance', '--input', 'a.nii.gz', '--roi', 'r.nii.gz', '--output', 'o.nii.gz', '--lam', '0']),\n"
            "             main(['segment', '--input', 'missing.nrrd', '--output', 'o.nii.gz'])]\n"
            "assert codes == [2, 2, 2] and err.getvalue().count('error:') == 3, err.getvalue()\n"
            "print(sorted(m for m in ('torch', 'monai') if m in sys.modules))")
    assert _fresh_python(code) == "[]"


def test_the_package_root_exports_the_api_lazily():
    code = ("import sys, scarenhance\n"
            "before = 'torch' in sys.modules\n"
            "from scarenhance import enhance_scar, load_diffusion_model, segment_heart, load_segmentation_model, read_image, write_image\n"
            "from scarenhance.diffusion.enhance import enhance_scar as e\n"
            "from scarenhance.segmentation.infer import segment_heart as s\n"
            "assert enhance_scar is e and segment_heart is s and 'enhance_scar' in dir(scarenhance)\n"
            "print(before, 'torch' in sys.modules)")
    assert _fresh_python(code) == "False True"
    import scarenhance

    assert "from scarenhance import" in scarenhance.__doc__  # the usage example
    with pytest.raises(AttributeError):
        scarenhance.no_such_thing


class _Stream:
    """A stand-in for stderr that says whether it is a terminal."""

    def __init__(self, tty: bool):
        import io

        self.buffer, self.tty = io.StringIO(), tty

    def isatty(self):
        return self.tty

    def write(self, text):
        return self.buffer.write(text)

    def flush(self):
        pass


@pytest.mark.parametrize("requested, env, tty, mode", [
    (None, None, True, "bar"), (None, None, False, "none"), (None, "lines", True, "lines"),
    ("bar", "lines", False, "bar"), ("none", None, True, "none"), ("auto", "lines", True, "bar"),
])
def test_progress_mode_is_the_option_then_the_environment_then_terminal_or_not(monkeypatch, requested, env, tty, mode):
    from scarenhance.progress import ENV, cli_mode

    monkeypatch.delenv(ENV, raising=False)
    if env:
        monkeypatch.setenv(ENV, env)
    assert cli_mode(requested, _Stream(tty)) == mode


def test_progress_lines_keep_the_format_the_slicer_runner_parses(monkeypatch):
    from scarenhance.progress import CliProgress, parse_progress

    stream = _Stream(False)
    monkeypatch.setattr(sys, "stderr", stream)
    report = CliProgress("lines")
    report(0.42, "reverse step 3/20")
    report(1.7, "done")
    assert stream.buffer.getvalue() == "PROGRESS 0.4200 reverse step 3/20\nPROGRESS 1.0000 done\n"
    assert [parse_progress(line) for line in stream.buffer.getvalue().splitlines()] == [(0.42, "reverse step 3/20"), (1.0, "done")]


def test_a_terminal_gets_a_bar_with_the_time_left_and_no_machine_lines(monkeypatch, capsys):
    from scarenhance.progress import CliProgress

    stream = _Stream(True)
    monkeypatch.setattr(sys, "stderr", stream)
    report = CliProgress("bar")
    for step in range(5):
        report(step / 4, f"reverse step {step}/4")
    report.echo("summary line")
    text = stream.buffer.getvalue()
    assert "100%|" in text and "<00:00" in text and "reverse step 4/4" in text  # fraction, elapsed<left, stage
    assert "PROGRESS" not in text and report._bar is None  # closed at 100 %
    assert capsys.readouterr().out == "summary line\n"
    quiet = CliProgress("none")
    quiet(0.5, "x")
    assert stream.buffer.getvalue() == text
