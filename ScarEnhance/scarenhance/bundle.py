"""Model folders in the MONAI bundle layout, with the weights' SHA-256 checked before torch reads them.

    MODEL_DIR/
      configs/metadata.json    version, task, scarenhance.kind, scarenhance.weights_sha256, pre-processing, validation
      configs/inference.json   {"network_def": {"_target_": "monai.networks.nets.UNet", ...}}
      models/model.pt          state_dict only, loaded with weights_only=True

Loading never touches the network: a model is a local folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ModelError

if TYPE_CHECKING:  # torch is imported where weights are touched: checksums and metadata work without it
    import torch

METADATA = Path("configs/metadata.json")
INFERENCE = Path("configs/inference.json")
WEIGHTS = Path("models/model.pt")
# Only these may be named by "_target_": a model folder must not run arbitrary code.
ALLOWED_TARGETS = ("monai.networks.nets.", "scarenhance.")


def sha256_file(path: "str | Path") -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def build_network(network_def: dict) -> "torch.nn.Module":
    """Instantiate {"_target_": "dotted.Class", **kwargs} with MONAI's config parser."""
    target = network_def.get("_target_", "")
    if not target.startswith(ALLOWED_TARGETS):
        raise ModelError(f"network _target_ {target!r} is not allowed (must start with {ALLOWED_TARGETS})")
    from monai.bundle import ConfigParser

    return ConfigParser({"network_def": network_def}).get_parsed_content("network_def")


def save_bundle(out_dir: "str | Path", network: "torch.nn.Module", network_def: dict, metadata: dict) -> Path:
    """Write a model folder. `metadata["scarenhance"]` must hold at least "kind"; the SHA-256 is added here."""
    import torch

    out = Path(out_dir)
    state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
    atomic_torch_save(state, out / WEIGHTS)
    meta = json.loads(json.dumps(metadata))  # deep copy, and proof that it is JSON
    meta.setdefault("schema", "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20220324.json")
    meta.setdefault("monai_version", _version("monai"))
    meta.setdefault("pytorch_version", torch.__version__.split("+")[0])
    meta.setdefault("scarenhance", {})["weights_sha256"] = sha256_file(out / WEIGHTS)
    atomic_write_bytes(out / METADATA, json.dumps(meta, indent=2).encode())
    atomic_write_bytes(out / INFERENCE, json.dumps({"network_def": network_def}, indent=2).encode())
    return out


def read_metadata(model_dir: "str | Path") -> dict:
    """metadata.json of a model folder, with clear errors for a folder that is not a model."""
    root = Path(model_dir)
    for rel in (METADATA, INFERENCE, WEIGHTS):
        if not (root / rel).is_file():
            raise ModelError(f"not a ScarEnhance model folder: {rel} is missing", root)
    try:
        meta = json.loads((root / METADATA).read_text(encoding="utf-8"))
        meta["network_def"] = json.loads((root / INFERENCE).read_text(encoding="utf-8"))["network_def"]
    except (json.JSONDecodeError, KeyError) as e:
        raise ModelError(f"unreadable model configuration ({e})", root) from e
    if "weights_sha256" not in meta.get("scarenhance", {}):
        raise ModelError("metadata.json has no scarenhance.weights_sha256", root / METADATA)
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
    """(network in eval mode on `device`, metadata). Checks kind, checksum and weights' shapes."""
    import torch

    root = Path(model_dir)
    meta = verify_weights(root)
    if kind is not None and meta["scarenhance"].get("kind") != kind:
        raise ModelError(f"this is a {meta['scarenhance'].get('kind')!r} model, a {kind!r} model was expected", root)
    network = build_network(meta["network_def"])
    try:
        state = torch.load(root / WEIGHTS, map_location="cpu", weights_only=True)
        network.load_state_dict(state)
    except Exception as e:  # a checksum match with a bad file means the metadata was made for other weights
        raise ModelError(f"weights do not fit the network in configs/inference.json ({e})", root / WEIGHTS) from e
    return network.to(device).eval(), meta


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"
