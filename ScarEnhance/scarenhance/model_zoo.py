"""Where models come from: the demo models shipped inside this package, a site's own folders, or a URL.

`models/registry.json` lists the shipped models: id, kind, version, description, folder (a folder name
beside the registry, never a path out of it), folder_sha256, url, default. `folder_sha256` is
`bundle.folder_digest` of the folder: its configs and weights, so a registered model whose configs or
weights changed is refused. An older entry may carry only `sha256` (of models/model.pt); it is still
checked, against the weights alone. Everything resolves to a local folder; `fetch_model` is the only
code that may download, and it also accepts a local archive or folder so offline sites never need the network.

After changing a shipped model folder, recompute its registry digest with

    python -m scarenhance.model_zoo digest ScarEnhance/scarenhance/models/scar-diffusion-demo

and paste the printed SHA-256 into that entry's folder_sha256.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from .bundle import WEIGHTS, folder_digest, read_metadata, sha256_file, verify_weights
from .errors import ModelError
from .model_schema import check_data_only, read_json

SHIPPED_DIR = Path(__file__).parent / "models"
REGISTRY = SHIPPED_DIR / "registry.json"
SEGMENTATION = "heart-segmentation"
DIFFUSION = "scar-diffusion"
KINDS = (SEGMENTATION, DIFFUSION)


def registry_entries(registry: "Path | None" = None) -> list[dict]:
    """The entries of a registry file (the shipped one by default), each checked to be plain data with
    string id, kind and folder."""
    path = Path(registry or REGISTRY)
    if not path.is_file():
        return []
    data = read_json(path)
    check_data_only(data, path)
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise ModelError("key 'models' is missing or not a list", path)
    for i, entry in enumerate(data["models"]):
        for key in ("id", "kind", "folder"):
            if not isinstance(entry, dict) or not isinstance(entry.get(key), str) or not entry[key]:
                raise ModelError(f"key 'models[{i}].{key}' is missing or not a string", path)
    return data["models"]


def entry_folder(entry: dict, registry: "Path | None" = None) -> Path:
    """The folder of a registry entry: a folder name beside the registry. A path that leaves the
    registry's folder ('..', an absolute path, a symbolic link out) is refused."""
    registry = Path(registry or REGISTRY)
    base = registry.parent.resolve()
    name = entry["folder"]
    folder = registry.parent / name
    if Path(name).is_absolute() or ".." in Path(name).parts or base not in (folder.resolve(), *folder.resolve().parents):
        raise ModelError(f"registry entry {entry['id']!r}: folder {name!r} points outside {base}; "
                         "a registered model lives in a folder beside the registry", registry)
    return folder


def verify_registered(entry: dict, registry: "Path | None" = None) -> Path:
    """The entry's folder, checked against the registry's digest (folder_sha256, or an old entry's sha256
    of the weights alone). ModelError naming the folder on a mismatch."""
    folder = entry_folder(entry, registry)
    if entry.get("folder_sha256"):
        expected, actual, what = entry["folder_sha256"], folder_digest(folder), "configs and weights"
    elif entry.get("sha256"):
        if not (folder / WEIGHTS).is_file():
            raise ModelError("model weights are missing", folder / WEIGHTS)
        expected, actual, what = entry["sha256"], sha256_file(folder / WEIGHTS), "weights"
    else:
        raise ModelError(f"registry entry {entry['id']!r} records no SHA-256, so its folder cannot be checked",
                         Path(registry or REGISTRY))
    if actual != str(expected).lower():
        raise ModelError(f"does not match the model registry: SHA-256 of its {what} is {actual[:16]}…, the registry "
                         f"records {str(expected)[:16]}… (files were changed, truncated or replaced)", folder)
    return folder


def default_model_id(kind: str) -> str:
    for entry in registry_entries():
        if entry["kind"] == kind and entry.get("default"):
            return entry["id"]
    raise ModelError(f"no default {kind} model is registered in {REGISTRY}")


def resolve_model(name_or_path: "str | Path | None", kind: str, search_dirs: "list[Path] | None" = None) -> Path:
    """A model folder for a path, a registry id (checked against the registry's digest), or None (the
    shipped default of `kind`)."""
    if name_or_path is not None and Path(name_or_path).exists():
        return Path(name_or_path)
    model_id = str(name_or_path) if name_or_path is not None else default_model_id(kind)
    for entry in registry_entries():
        if entry["id"] == model_id:
            return verify_registered(entry)
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


def main(argv: "list[str] | None" = None) -> int:
    """`python -m scarenhance.model_zoo digest FOLDER...`: print each folder's registry digest."""
    parser = argparse.ArgumentParser(prog="python -m scarenhance.model_zoo",
                                     description="registry digests of model folders (bundle.folder_digest)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("digest", help="print the folder_sha256 of each model folder").add_argument("folders", nargs="+")
    args = parser.parse_args(argv)
    try:
        for folder in args.folders:
            read_metadata(folder)  # a digest is only worth recording for a folder that loads
            print(f"{folder_digest(folder)}  {folder}")
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
