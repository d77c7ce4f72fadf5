"""Model folders in the MONAI bundle layout: data checked before anything is built, weights checked before torch reads them.

    MODEL_DIR/
      configs/metadata.json    version, task, scarenhance.kind, scarenhance.weights_sha256, pre-processing, validation
      configs/inference.json   {"network_def": {"_target_": "monai.networks.nets.UNet", ...}}
      models/model.pt          state_dict only, loaded with weights_only=True

A model folder is data, never code: every configs/*.json is read as plain JSON and checked by
`model_schema` (no MONAI expressions, references or macros, one allow-listed `_target_`, the network's
arguments against a schema), and the network is built by a plain call of the allow-listed class.
`folder_digest` is the one SHA-256 of a whole folder (its configs and weights) that a registry records.
Loading never touches the network: a model is a local folder.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import model_schema
from .errors import ModelError

if TYPE_CHECKING:  # torch is imported where weights are touched: checksums and metadata work without it
    import torch

CONFIGS = Path("configs")
METADATA = CONFIGS / "metadata.json"
INFERENCE = CONFIGS / "inference.json"
WEIGHTS = Path("models/model.pt")


def sha256_file(path: "str | Path") -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_digest(model_dir: "str | Path") -> str:
    """SHA-256 of a model folder: of the text `sha256sum` prints for configs/*.json and models/model.pt,
    in byte order of their paths. The same as, in a shell:
    `(cd FOLDER && LC_ALL=C sha256sum configs/*.json models/model.pt | sha256sum)`.
    README.md and other files are documentation and are not covered."""
    root = Path(model_dir)
    files = sorted((root / CONFIGS).glob("*.json")) + [root / WEIGHTS]
    lines = []
    for path in files:
        if path.is_symlink() or not path.is_file():
            raise ModelError("missing or not a plain file, so the folder cannot be checked", path)
        lines.append(f"{sha256_file(path)}  {path.relative_to(root).as_posix()}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        default_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def default_permissions(path: "str | Path") -> None:
    """Give a mkstemp file (0600) the permissions of an ordinary new file: results and models are shared."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def atomic_torch_save(obj: Any, path: "str | Path") -> None:
    """torch.save through a temporary file and os.replace (used for checkpoints and weights)."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def build_network(network_def: dict, source: "str | Path | None" = None) -> "torch.nn.Module":
    """Instantiate {"_target_": one of model_schema.NETWORKS, **arguments}: checked, then a plain call.
    `source` is the file named in errors (a model folder's inference.json)."""
    model_schema.check_network_def(network_def, source)
    module_name, class_name = network_def["_target_"].rsplit(".", 1)
    network_class = getattr(importlib.import_module(module_name), class_name)
    return network_class(**{k: v for k, v in network_def.items() if k != "_target_"})


def save_bundle(out_dir: "str | Path", network: "torch.nn.Module", network_def: dict, metadata: dict) -> Path:
    """Write a model folder. `metadata["scarenhance"]` must hold at least "kind"; the SHA-256 is added here."""
    import torch

    out = Path(out_dir)
    state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
    atomic_torch_save(state, out / WEIGHTS)
    network_def = json.loads(json.dumps(network_def))  # as it will be read back: tuples become lists
    model_schema.check_network_def(network_def)  # never write a folder that could not be loaded
    meta = json.loads(json.dumps(metadata))  # deep copy, and proof that it is JSON
    meta.setdefault("schema", "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20220324.json")
    meta.setdefault("monai_version", _version("monai"))
    meta.setdefault("pytorch_version", torch.__version__.split("+")[0])
    meta.setdefault("scarenhance", {})["weights_sha256"] = sha256_file(out / WEIGHTS)
    model_schema.check_metadata(meta, out / METADATA)
    atomic_write_bytes(out / METADATA, json.dumps(meta, indent=2).encode())
    atomic_write_bytes(out / INFERENCE, json.dumps({"network_def": network_def}, indent=2).encode())
    return out


def read_metadata(model_dir: "str | Path") -> dict:
    """metadata.json of a model folder with its checked network_def; ModelError naming the file and key
    for a folder that is not a model or whose configs hold anything but plain data (see model_schema)."""
    root = Path(model_dir)
    for rel in (METADATA, INFERENCE, WEIGHTS):
        if not (root / rel).is_file():
            raise ModelError(f"not a ScarEnhance model folder: {rel} is missing", root)
    configs = {path: model_schema.read_json(path) for path in sorted((root / CONFIGS).glob("*.json"))}
    for path, data in configs.items():  # every config, also those the engine does not read: MONAI tools would
        if path.name not in (METADATA.name, INFERENCE.name):
            model_schema.check_data_only(data, path)
    meta = model_schema.check_metadata(configs[root / METADATA], root / METADATA)
    meta["network_def"] = model_schema.check_inference(configs[root / INFERENCE], root / INFERENCE)
    return meta


def verify_weights(model_dir: "str | Path", meta: "dict | None" = None) -> dict:
    """Check models/model.pt against the recorded SHA-256; returns the metadata."""
    root = Path(model_dir)
    meta = meta or read_metadata(root)
    expected = meta["scarenhance"]["weights_sha256"].lower()
    actual = sha256_file(root / WEIGHTS)
    if actual != expected:
        raise ModelError(
            f"weights checksum mismatch: expected SHA-256 {expected[:16]}…, file has {actual[:16]}… "
            "(the file is truncated, corrupted or was replaced)",
            root / WEIGHTS,
        )
    return meta


def load_bundle(model_dir: "str | Path", kind: "str | None" = None, device: "str | torch.device" = "cpu") -> "tuple[torch.nn.Module, dict]":
    """(network in eval mode on `device`, metadata). Checks configs, kind and checksum before torch reads
    anything, then loads the weights as a plain state dict (weights_only) and checks their shapes."""
    root = Path(model_dir)
    meta = verify_weights(root)
    if kind is not None and meta["scarenhance"].get("kind") != kind:
        raise ModelError(f"this is a {meta['scarenhance'].get('kind')!r} model, a {kind!r} model was expected", root / METADATA)
    state = load_state_dict(root / WEIGHTS)
    network = build_network(meta["network_def"], root / INFERENCE)
    try:
        network.load_state_dict(state)
    except Exception as e:  # a checksum match with a bad file means the metadata was made for other weights
        raise ModelError(f"weights do not fit the network in configs/inference.json ({e})", root / WEIGHTS) from e
    return network.to(device).eval(), meta


def load_state_dict(path: "str | Path") -> dict:
    """A weights file as {name: tensor}. torch's weights_only loading refuses any pickled object (code)."""
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise ModelError(f"not a plain state dict of tensors (refused by weights_only loading: {first})", path) from e
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ModelError(f"not a state dict of tensors (holds a {type(state).__name__})", path)
    return state


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"
