"""Where models come from: the demo models shipped inside this package, a site's own folders, or a URL.

`models/registry.json` lists the shipped models (id, kind, version, description, folder, sha256, url).
Everything resolves to a local folder; `fetch_model` is the only code that may download, and it also
accepts a local archive or folder so that offline sites never need the network.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from .bundle import read_metadata, sha256_file, verify_weights
from .errors import ModelError

SHIPPED_DIR = Path(__file__).parent / "models"
REGISTRY = SHIPPED_DIR / "registry.json"
SEGMENTATION = "heart-segmentation"
DIFFUSION = "scar-diffusion"
KINDS = (SEGMENTATION, DIFFUSION)


def registry_entries(registry: "Path | None" = None) -> list[dict]:
    """The entries of a registry file (the shipped one by default)."""
    path = registry or REGISTRY
    if not path.is_file():
        return []
    return json.loads(path.read_text(encoding="utf-8"))["models"]


def default_model_id(kind: str) -> str:
    for entry in registry_entries():
        if entry["kind"] == kind and entry.get("default"):
            return entry["id"]
    raise ModelError(f"no default {kind} model is registered in {REGISTRY}")


def resolve_model(name_or_path: "str | Path | None", kind: str, search_dirs: "list[Path] | None" = None) -> Path:
    """A model folder for a path, a registry id, or None (the shipped default of `kind`)."""
    if name_or_path is not None and Path(name_or_path).exists():
        return Path(name_or_path)
    model_id = str(name_or_path) if name_or_path is not None else default_model_id(kind)
    for entry in registry_entries():
        if entry["id"] == model_id:
            return SHIPPED_DIR / entry["folder"]
    for folder in search_dirs or []:
        if (Path(folder) / model_id).is_dir():
            return Path(folder) / model_id
    raise ModelError(f"no model folder or registered model called {model_id!r} (kind {kind})")


def fetch_model(source: str, dest_dir: "str | Path", sha256: "str | None" = None) -> Path:
    """Install a model from a URL, a local .tar.gz, or a local folder into dest_dir/<folder name>.

    `sha256` (of the archive) is checked before unpacking; the folder's own weights checksum is
    checked after. Nothing in dest_dir is replaced unless the new model verified.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_dir) as tmp:
        tmp = Path(tmp)
        src = Path(source)
        if src.is_dir():
            staged = tmp / src.name
            shutil.copytree(src, staged)
        else:
            archive = tmp / "model.tar.gz"
            if src.is_file():
                shutil.copyfile(src, archive)
            else:
                urllib.request.urlretrieve(source, archive)  # only reached for a real URL
            if sha256 and sha256_file(archive) != sha256.lower():
                raise ModelError(f"downloaded archive does not match SHA-256 {sha256}", source)
            with tarfile.open(archive) as tar:
                tar.extractall(tmp / "unpacked", filter="data")
            roots = [p.parent.parent for p in (tmp / "unpacked").rglob("configs/metadata.json")]
            if len(roots) != 1:
                raise ModelError("archive does not hold exactly one model folder", source)
            staged = roots[0]
        verify_weights(staged, read_metadata(staged))
        final = dest_dir / staged.name
        if final.exists():
            raise ModelError("a model folder of that name exists already; remove it first", final)
        shutil.move(str(staged), final)
    return final
