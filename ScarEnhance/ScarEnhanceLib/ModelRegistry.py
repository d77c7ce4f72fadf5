"""The models the panel offers: the shipped demo models (scarenhance/models/registry.json) and the
models in a user folder (a site's own, imported or downloaded). Every model is checked against its
SHA-256 before use: a shipped model's whole folder (configs and weights, `scarenhance.bundle.folder_digest`)
against the registry, and the weights against the folder's own metadata.

Listing and checking read JSON and hash files, nothing more (scarenhance.bundle and model_zoo import no
torch), so the panel fills its model lists before the first-use install has put torch into Slicer's
Python. Copying a folder in and downloading go through `scarenhance.model_zoo.fetch_model`, which checks
the folder's configs (data only) and weights before anything is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import scarenhance
from scarenhance.bundle import folder_digest
from scarenhance.errors import ModelError
from scarenhance.model_zoo import entry_folder

SHIPPED_DIR = Path(scarenhance.__file__).resolve().parent / "models"
SHIPPED_REGISTRY = SHIPPED_DIR / "registry.json"
# The model-folder layout of scarenhance.bundle (MONAI bundle style).
METADATA = Path("configs/metadata.json")
WEIGHTS = Path("models/model.pt")
SEGMENTATION = "heart-segmentation"
DIFFUSION = "scar-diffusion"


@dataclass(frozen=True)
class ModelInfo:
    id: str
    kind: str  # SEGMENTATION or DIFFUSION
    version: str
    description: str
    folder: Path  # where the model is (or will be, once downloaded)
    sha256: Optional[str]  # of models/model.pt, from an older registry entry; None for user models (metadata has it)
    url: Optional[str]
    default: bool
    shipped: bool
    folderSha256: Optional[str] = None  # the registry's digest of the whole folder (configs and weights)

    @property
    def installed(self) -> bool:
        return (self.folder / WEIGHTS).is_file()

    @property
    def label(self) -> str:
        """What a model list shows."""
        origin = "demo" if self.shipped else "site"
        state = "" if self.installed else ", download needed"
        return f"{self.id} {self.version} ({origin}{state})"


def defaultUserDir() -> Path:
    """Where downloaded and imported models live: `$SCARENHANCE_MODELS_DIR`; in Slicer a folder beside
    its settings (per user, the same for the panel and scripts); elsewhere ~/.scarenhance/models."""
    if os.environ.get("SCARENHANCE_MODELS_DIR"):
        return Path(os.environ["SCARENHANCE_MODELS_DIR"])
    try:
        import slicer

        return Path(slicer.app.slicerUserSettingsFilePath).parent / "ScarEnhance" / "models"
    except (ImportError, AttributeError):  # no Slicer application
        return Path.home() / ".scarenhance" / "models"


def sha256File(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _readMetadata(folder: Path) -> dict:
    try:
        return json.loads((folder / METADATA).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"not a ScarEnhance model folder: {METADATA} is missing or unreadable ({e})", folder) from e


class ModelRegistry:
    def __init__(self, userDir: "Path | str | None" = None, shippedRegistry: Path = SHIPPED_REGISTRY):
        self.userDir = Path(userDir) if userDir is not None else defaultUserDir()
        self.shippedRegistry = Path(shippedRegistry)
        self._verified: dict[Path, tuple] = {}  # folder → (size, mtime) of weights that passed the check

    # -- listing ---------------------------------------------------------------------------------
    def models(self, kind: Optional[str] = None) -> list[ModelInfo]:
        """Shipped models first (in registry order), then the user folder's, sorted by id."""
        found = self._shipped() + self._user()
        return [m for m in found if kind is None or m.kind == kind]

    def default(self, kind: str) -> Optional[ModelInfo]:
        candidates = self.models(kind)
        return next((m for m in candidates if m.default), candidates[0] if candidates else None)

    def find(self, idOrPath: "str | Path | None", kind: str) -> ModelInfo:
        """A registry id, a user-folder model id, a model folder path, or None (the default of `kind`)."""
        if idOrPath in (None, ""):
            info = self.default(kind)
            if info is None:
                raise ModelError(f"no {kind} model is installed: import a model folder or train one with ScarEnhanceTraining")
            return info
        for info in self.models(kind):
            if info.id == str(idOrPath):
                return info
        folder = Path(idOrPath)
        if folder.is_dir():
            return self._fromFolder(folder, shipped=False)
        raise ModelError(f"no {kind} model called {str(idOrPath)!r} (known: {', '.join(m.id for m in self.models(kind)) or 'none'})")

    # -- checking --------------------------------------------------------------------------------
    def verify(self, info: ModelInfo) -> ModelInfo:
        """Check the weights against the registry's SHA-256 (shipped) and the folder's own metadata.
        Raises ModelError naming the file; a file that passed is re-hashed only if it changed."""
        weights = info.folder / WEIGHTS
        if not weights.is_file():
            hint = " (it can be downloaded: ModelRegistry.download)" if info.url else ""
            raise ModelError(f"model weights are missing{hint}", weights)
        stamp = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in [weights, *sorted((info.folder / "configs").glob("*.json"))])
        if self._verified.get(info.folder) == stamp:
            return info
        meta = _readMetadata(info.folder)
        recorded = meta.get("scarenhance", {}).get("weights_sha256")
        if meta.get("scarenhance", {}).get("kind") != info.kind:
            raise ModelError(f"this is a {meta.get('scarenhance', {}).get('kind')!r} model, not a {info.kind!r} model", info.folder / METADATA)
        actual = sha256File(weights)
        for expected, source in ((info.sha256, "the model registry"), (recorded, str(METADATA))):
            if expected and actual != expected.lower():
                raise ModelError(
                    f"weights checksum mismatch with {source}: expected SHA-256 {expected[:16]}…, file has {actual[:16]}… "
                    "(the file is truncated, corrupted or was replaced)", weights)
        if info.folderSha256 and folder_digest(info.folder) != info.folderSha256.lower():
            raise ModelError("configs or weights do not match the model registry's SHA-256 of this folder "
                             "(files were changed, truncated or replaced)", info.folder)
        if not (info.sha256 or info.folderSha256 or recorded):
            raise ModelError("no SHA-256 is recorded for these weights, so they cannot be checked", info.folder / METADATA)
        self._verified[info.folder] = stamp
        return info

    def resolve(self, idOrPath: "str | Path | None", kind: str) -> Path:
        """The checked folder of a model, ready to pass to the engine."""
        return self.verify(self.find(idOrPath, kind)).folder

    # -- adding models ---------------------------------------------------------------------------
    def importFolder(self, folder: "str | Path") -> ModelInfo:
        """Copy a model folder (e.g. written by ScarEnhanceTraining) into the user folder, checked.
        Nothing is replaced: a model of the same folder name must be removed first."""
        from scarenhance.model_zoo import fetch_model

        source = self._fromFolder(Path(folder), shipped=False)
        self.verify(source)  # refuse a bad copy before copying it
        return self.verify(self._fromFolder(fetch_model(str(folder), self.userDir), shipped=False))

    def download(self, url: str, sha256: Optional[str] = None) -> ModelInfo:
        """Download a model archive (.tar.gz holding one model folder) into the user folder, checked.
        `sha256` is the archive's; the weights are then checked against the folder's metadata."""
        from scarenhance.model_zoo import fetch_model

        return self.verify(self._fromFolder(fetch_model(url, self.userDir, sha256=sha256), shipped=False))

    def fetch(self, info: ModelInfo) -> ModelInfo:
        """Download a registered model that is not on this computer yet (its entry has a url), then
        check the weights against the registry's SHA-256."""
        if info.installed:
            return self.verify(info)
        if not info.url:
            raise ModelError(f"model {info.id} is not installed and its registry entry has no url", info.folder)
        self.download(info.url)
        return self.verify(info)

    # -- internals -------------------------------------------------------------------------------
    def _shipped(self) -> list[ModelInfo]:
        if not self.shippedRegistry.is_file():
            return []
        try:
            entries = json.loads(self.shippedRegistry.read_text(encoding="utf-8"))["models"]
        except (json.JSONDecodeError, KeyError) as e:
            raise ModelError(f"unreadable model registry ({e})", self.shippedRegistry) from e
        infos = []
        for e in entries:
            folder = entry_folder(e, self.shippedRegistry)  # refuses a folder outside the registry's
            if not folder.is_dir() and e.get("url"):
                folder = self.userDir / Path(e["folder"]).name  # downloaded copies live in the user folder
            infos.append(ModelInfo(e["id"], e["kind"], str(e.get("version", "")), e.get("description", ""), folder,
                                   e.get("sha256"), e.get("url"), bool(e.get("default")), shipped=True,
                                   folderSha256=e.get("folder_sha256")))
        return infos

    def _user(self) -> list[ModelInfo]:
        if not self.userDir.is_dir():
            return []
        shippedFolders = {m.folder for m in self._shipped()}
        infos = []
        for folder in sorted(p for p in self.userDir.iterdir() if (p / METADATA).is_file()):
            if folder in shippedFolders:
                continue
            try:
                infos.append(self._fromFolder(folder, shipped=False))
            except ModelError:
                continue  # a half-copied or foreign folder is not offered
        return infos

    @staticmethod
    def _fromFolder(folder: Path, shipped: bool) -> ModelInfo:
        meta = _readMetadata(folder)
        own = meta.get("scarenhance", {})
        if own.get("kind") not in (SEGMENTATION, DIFFUSION):
            raise ModelError(f"metadata names no ScarEnhance model kind (scarenhance.kind = {own.get('kind')!r})", folder / METADATA)
        return ModelInfo(folder.name, own["kind"], str(meta.get("version", "")), meta.get("description", "") or meta.get("name", ""),
                         folder, None, None, False, shipped)
