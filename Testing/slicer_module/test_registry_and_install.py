"""Model registry (shipped + site models, SHA-256 checked) and the first-use installer's rules."""

from __future__ import annotations

import hashlib
import sys
import tarfile
import types
from pathlib import Path

import pytest

from model_folders import make_model_folder
from scarenhance.errors import ModelError
from ScarEnhanceLib import InstallLogic as install
from ScarEnhanceLib.ModelRegistry import DIFFUSION, SEGMENTATION, SHIPPED_REGISTRY, ModelRegistry


def test_shipped_and_default_models(fake_registry):
    assert [m.id for m in fake_registry.models()] == ["heart-unet-demo", "scar-ddpm-demo"]
    assert fake_registry.default(SEGMENTATION).id == "heart-unet-demo"
    assert fake_registry.resolve(None, DIFFUSION) == fake_registry.find("scar-ddpm-demo", DIFFUSION).folder
    with pytest.raises(ModelError, match="no scar-diffusion model called 'nope'"):
        fake_registry.find("nope", DIFFUSION)


def test_a_tampered_model_is_refused_before_use(fake_registry):
    info = fake_registry.find(None, SEGMENTATION)
    fake_registry.verify(info)
    weights = info.folder / "models" / "model.pt"
    weights.write_bytes(b"other weights, same folder")
    with pytest.raises(ModelError, match="checksum mismatch with the model registry") as e:
        fake_registry.resolve(None, SEGMENTATION)
    assert str(weights) in str(e.value)  # the message names the file


def test_wrong_kind_is_refused(fake_registry, tmp_path):
    folder = make_model_folder(tmp_path / "seg-as-diffusion", SEGMENTATION)
    with pytest.raises(ModelError, match="no scar-diffusion model"):
        fake_registry.find("seg-as-diffusion", DIFFUSION)
    info = fake_registry.find(str(folder), SEGMENTATION)  # a folder path works too
    assert fake_registry.verify(info).folder == folder


def test_import_model_folder_copies_and_checks(fake_registry, tmp_path):
    site = make_model_folder(tmp_path / "site-heart-v2", SEGMENTATION, payload=b"site weights")
    info = fake_registry.importFolder(site)
    assert info.folder == fake_registry.userDir / "site-heart-v2" and not info.shipped
    assert [m.id for m in fake_registry.models(SEGMENTATION)] == ["heart-unet-demo", "site-heart-v2"]
    with pytest.raises(ModelError, match="exists already"):
        fake_registry.importFolder(site)  # nothing is replaced
    broken = make_model_folder(tmp_path / "broken", DIFFUSION, payload=b"good")
    (broken / "models" / "model.pt").write_bytes(b"bad")
    with pytest.raises(ModelError, match="checksum mismatch"):
        fake_registry.importFolder(broken)
    assert not (fake_registry.userDir / "broken").exists()


def test_download_from_a_url_checks_the_archive(fake_registry, tmp_path):
    folder = make_model_folder(tmp_path / "src" / "scar-ddpm-site", DIFFUSION, payload=b"diffusion weights")
    archive = tmp_path / "scar-ddpm-site.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    with pytest.raises(ModelError, match="does not match SHA-256"):
        fake_registry.download(archive.as_uri(), sha256="0" * 64)
    info = fake_registry.download(archive.as_uri(), sha256=digest)  # file:// goes through urlretrieve, offline
    assert info.id == "scar-ddpm-site" and info.kind == DIFFUSION and info.installed


def test_the_shipped_registry_lists_valid_models():
    registry = ModelRegistry(userDir=Path("/nonexistent"), shippedRegistry=SHIPPED_REGISTRY)
    models = registry.models()
    assert {m.kind for m in models} == {SEGMENTATION, DIFFUSION}, "the demo models are not shipped yet"
    for info in models:
        registry.verify(info)


# -- installer -------------------------------------------------------------------------------------

@pytest.fixture
def fake_slicer(monkeypatch):
    """Slicer 5.12's `slicer.packaging.pip_ensure`, recording its calls instead of running pip."""
    import slicer

    calls = []
    packaging = types.ModuleType("slicer.packaging")

    def pip_ensure(requirements, constraints=None, skip_packages=None, prompt_install=True, prompt_restart=True,
                   requester=None, skip_in_testing=True, show_progress=True):  # Slicer 5.12's signature
        calls.append({"requirements": [str(r) for r in requirements], "constraints": Path(constraints).read_text(),
                      "prompt_install": prompt_install, "prompt_restart": prompt_restart, "requester": requester,
                      "skip_in_testing": skip_in_testing})

    packaging.pip_ensure = pip_ensure
    monkeypatch.setitem(sys.modules, "slicer.packaging", packaging)
    monkeypatch.setattr(slicer, "packaging", packaging, raising=False)
    return calls


def test_nothing_is_asked_or_installed_when_everything_is_there(fake_slicer):
    asked = []
    logic = install.InstallLogic(confirm=lambda text: asked.append(text) or True, testing=False)
    assert logic.missing() == []  # the test environment has the engine's dependencies
    assert logic.ensureDependencies() is True
    assert asked == [] and fake_slicer == []


def test_missing_packages_are_installed_only_with_consent_and_slicers_own_pinned(fake_slicer, tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("monai>=1.4,<1.7\nscarenhance-missing-test-package>=1.0  # not installed\n")
    declined = install.InstallLogic(confirm=lambda text: False, requirementsPath=requirements, testing=False)
    assert declined.missing() == ["scarenhance-missing-test-package>=1.0"]
    assert declined.ensureDependencies() is False and fake_slicer == []

    asked = []
    logic = install.InstallLogic(confirm=lambda text: asked.append(text) or True, requirementsPath=requirements, testing=False)
    with pytest.raises(RuntimeError, match="still missing"):  # the recording pip_ensure installs nothing
        logic.ensureDependencies()
    assert len(asked) == 1 and "scarenhance-missing-test-package" in asked[0]
    (call,) = fake_slicer
    assert call["requirements"] == ["scarenhance-missing-test-package>=1.0"] and call["requester"] == "ScarEnhance"
    assert call["prompt_install"] is False and call["prompt_restart"] is False  # the user was asked once, by us
    assert call["skip_in_testing"] is False  # testing mode never gets this far (planInstall)
    pins = dict(line.split("==") for line in call["constraints"].split())
    for name in install.PROTECTED:
        assert pins[name] == install.installedVersion(name)  # pip may not replace Slicer's SimpleITK, numpy, torch


def test_testing_mode_installs_nothing_and_says_what_is_missing(fake_slicer, tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("scarenhance-missing-test-package>=1.0\n")
    asked, logged = [], []
    logic = install.InstallLogic(confirm=lambda t: asked.append(t) or True, log=logged.append,
                                 requirementsPath=requirements, testing=True)
    assert logic.ensureDependencies() is False
    assert asked == [] and fake_slicer == [] and "testing mode" in logged[-1] and "missing-test-package" in logged[-1]


@pytest.mark.parametrize("installed, problem", [
    (None, "torch"),
    ("2.5.1", None),
    ("2.5.1+cu121", None),  # a local CUDA build tag is the same version
    ("2.14.0", None),
    ("1.13.1", "torch>=2.2,<2.15 (torch 1.13.1 is installed)"),
    ("2.15.0", "torch>=2.2,<2.15 (torch 2.15.0 is installed)"),
])
def test_an_installed_torch_is_checked_against_the_required_version(installed, problem):
    assert install.torchProblem(installed) == problem


def test_the_install_plan():
    plan = install.planInstall
    assert plan(None, [], hasPyTorchUtils=False, testing=False).steps == ()
    # No PyTorch extension: install it first, nothing else until Slicer restarted with it.
    assert plan("torch", ["monai"], hasPyTorchUtils=False, testing=False).steps == (install.INSTALL_TORCH_EXTENSION,)
    assert plan("torch", ["monai"], hasPyTorchUtils=True, testing=False).steps == (install.INSTALL_TORCH, install.PIP_INSTALL)
    assert plan("torch>=2.2,<2.15 (torch 1.13.1 is installed)", [], hasPyTorchUtils=True, testing=False).steps == (install.INSTALL_TORCH,)
    assert plan(None, ["monai"], hasPyTorchUtils=False, testing=False).steps == (install.PIP_INSTALL,)
    testing = plan("torch", ["monai>=1.4"], hasPyTorchUtils=True, testing=True)
    assert testing.steps == () and "testing mode" in testing.message and "torch" in testing.message and "monai>=1.4" in testing.message


def test_self_tests_skip_with_a_message_when_the_engine_cannot_run():
    assert install.selfTestSkipReason([]) is None
    reason = install.selfTestSkipReason(["torch", "monai>=1.4,<1.7"])
    assert reason.startswith("skipped:") and "torch, monai>=1.4,<1.7" in reason


def test_pip_goes_through_slicer_packaging_where_it_exists_else_pip_install():
    """slicer.packaging appears in Slicer 5.12; slicer.pydeps exists in no Slicer."""
    ensure, pip_install = object(), object()
    slicer_512 = types.SimpleNamespace(packaging=types.SimpleNamespace(pip_ensure=ensure), util=types.SimpleNamespace(pip_install=pip_install))
    slicer_510 = types.SimpleNamespace(util=types.SimpleNamespace(pip_install=pip_install))
    slicer_fake_pydeps = types.SimpleNamespace(pydeps=types.SimpleNamespace(pip_ensure=ensure), util=types.SimpleNamespace(pip_install=pip_install))
    assert install.pipInstaller(slicer_512) == ("pip_ensure", ensure)
    assert install.pipInstaller(slicer_510) == ("pip_install", pip_install)
    assert install.pipInstaller(slicer_fake_pydeps) == ("pip_install", pip_install)


def test_the_pytorch_extension_is_installed_without_its_own_dialogs(monkeypatch, tmp_path):
    """installExtensionFromServer asks its own install and restart questions unless the manager is
    non-interactive: we asked once already, and we tell the user to restart."""
    import slicer

    class Manager:
        interactive = True
        calls = []

        def installExtensionFromServer(self, name, restart=True, update=False):
            self.calls.append((name, restart, self.interactive))
            return True

    manager = Manager()
    monkeypatch.setattr(slicer, "app", types.SimpleNamespace(extensionsManagerModel=lambda: manager), raising=False)
    monkeypatch.setattr(install, "_hasPyTorchUtils", lambda: False)
    monkeypatch.setattr(install, "installedVersion", lambda name: None if name == "torch" else "99")
    asked = []
    logic = install.InstallLogic(confirm=lambda t: asked.append(t) or True, testing=False)
    assert logic.ensureDependencies() is False and logic.needsRestart
    assert manager.calls == [("PyTorch", False, False)] and manager.interactive is True and len(asked) == 1
    assert logic.ensureDependencies() is False and len(asked) == 1  # until the restart: no second question


def test_requires_python_matches_the_slicer_side_check():
    import tomllib

    from ScarEnhanceLib.Compatibility import MIN_PYTHON

    requires = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=" + ".".join(map(str, MIN_PYTHON))


@pytest.mark.parametrize("slicer_version, python, ok", [
    ((5, 6), (3, 9, 10), False), ((5, 8), (3, 9, 10), False), ((5, 10), (3, 12, 10), True),
    ((5, 12), (3, 12, 10), True), ((5, 13), (3, 12, 10), True), ((5, 10), (3, 10, 11), False), ((6, 0), (3, 13, 0), True),
])
def test_supported_slicer_versions(slicer_version, python, ok):
    from ScarEnhanceLib.Compatibility import versionProblem

    problem = versionProblem(slicer_version, python)
    assert (problem is None) == ok
    if problem:
        assert "5.10 or later" in problem and "3.10.12" in problem and ".".join(map(str, slicer_version)) in problem


def test_a_registered_model_with_a_url_is_fetched_and_checked(tmp_path):
    """A registry entry whose folder is not shipped: listed as needing a download, fetched into the
    user folder, then held to the registry's SHA-256."""
    import json

    source = make_model_folder(tmp_path / "src" / "scar-ddpm-big", DIFFUSION, payload=b"big weights")
    archive = tmp_path / "scar-ddpm-big.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname=source.name)
    registry_file = tmp_path / "shipped" / "registry.json"
    registry_file.parent.mkdir()
    entry = {"id": "scar-ddpm-big", "kind": DIFFUSION, "version": "2.0", "description": "GPU model", "folder": "scar-ddpm-big",
             "sha256": hashlib.sha256(b"big weights").hexdigest(), "url": archive.as_uri(), "default": True}
    registry_file.write_text(json.dumps({"models": [entry]}))
    registry = ModelRegistry(userDir=tmp_path / "user", shippedRegistry=registry_file)
    info = registry.find(None, DIFFUSION)
    assert not info.installed and "download needed" in info.label
    with pytest.raises(ModelError, match="can be downloaded"):
        registry.verify(info)
    fetched = registry.fetch(info)
    assert fetched.installed and fetched.folder == tmp_path / "user" / "scar-ddpm-big"
    assert registry.resolve(None, DIFFUSION) == fetched.folder
    assert [m.id for m in registry.models()] == ["scar-ddpm-big"]  # not listed twice


def test_sample_data_phantom_is_an_lge_volume(tmp_path):
    import SimpleITK as sitk

    from ScarEnhanceLib.SampleData import THUMBNAIL, writePhantom

    path = writePhantom(tmp_path / "cache" / "phantom.nrrd")
    image = sitk.ReadImage(str(path))
    assert image.GetDimension() == 3 and image.GetPixelID() == sitk.sitkInt16 and 2 <= image.GetSize()[2] <= 16
    assert sorted(p.name for p in path.parent.iterdir()) == ["phantom.nrrd"]  # no partial file left
    assert THUMBNAIL.is_file()


def test_older_slicer_installs_through_pip_install_with_the_constraints(tmp_path, monkeypatch):
    """Without slicer.packaging (Slicer 5.10) the same install goes through slicer.util.pip_install."""
    import slicer

    calls = []
    monkeypatch.setattr(slicer.util, "pip_install", lambda args: calls.append((list(args), Path(args[-1]).read_text())), raising=False)
    monkeypatch.delitem(sys.modules, "slicer.packaging", raising=False)
    monkeypatch.delattr(slicer, "packaging", raising=False)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("scarenhance-missing-test-package>=1.0\n")
    logic = install.InstallLogic(confirm=lambda text: True, requirementsPath=requirements, testing=False)
    with pytest.raises(RuntimeError, match="still missing"):
        logic.ensureDependencies()
    ((args, constraints),) = calls
    assert args[:2] == ["scarenhance-missing-test-package>=1.0", "-c"]
    assert f"numpy=={install.installedVersion('numpy')}" in constraints.split()


def test_a_scripted_download_sample_finds_the_phantom(tmp_path, monkeypatch):
    """SampleData.downloadSample(name) skips the custom downloader and runs urlretrieve on the
    registered file:// URI: registration writes the case first, so that URI is a file."""
    import urllib.parse
    import urllib.request

    import slicer

    from ScarEnhanceLib import SampleData as sample

    registered = []
    fake = types.ModuleType("SampleData")
    fake.SampleDataLogic = types.SimpleNamespace(registerCustomSampleDataSource=lambda **kwargs: registered.append(kwargs))
    monkeypatch.setitem(sys.modules, "SampleData", fake)
    cache = tmp_path / "cache"
    cache_manager = types.SimpleNamespace(GetRemoteCacheDirectory=lambda: str(cache))
    monkeypatch.setattr(slicer, "mrmlScene", types.SimpleNamespace(GetCacheManager=lambda: cache_manager), raising=False)

    sample.registerSampleData()
    (source,) = registered
    path = Path(urllib.request.url2pathname(urllib.parse.urlparse(source["uris"]).path))
    assert path == cache / sample.FILE_NAME and path.stat().st_size > 0
    urllib.request.urlretrieve(source["uris"], tmp_path / "fetched.nrrd")  # what SampleData.downloadFile does
    assert (tmp_path / "fetched.nrrd").read_bytes() == path.read_bytes()
    mtime = path.stat().st_mtime_ns
    sample.registerSampleData()  # the next start: the cached case is reused, not rewritten
    assert path.stat().st_mtime_ns == mtime
