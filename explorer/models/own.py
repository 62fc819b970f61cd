"""Bring your own model: weights made outside the project become a checkpoint like the shipped ones, listed by the
app and the CLI, attacked and evaluated the same way: the explorer's ConvNet in safetensors, or any classifier in
ONNX whose operators graph_net.py runs. Nothing in the file is ever run as code: pickles are refused unopened, an
ONNX graph is read as data."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import torch

from explorer import data, models
from explorer.models import onnx_import
from explorer.models.forward import misclassified
from explorer.models.graph_net import GraphError, GraphNet
from explorer.provenance import code_version, now, sha256_file

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


def read(source: Path, embedding: str | None) -> tuple[models.ConvNet | GraphNet, dict]:
    """The model in `source` and what its card says about its architecture."""
    models.refuse_pickle(source)
    if source.suffix.lower() != ".onnx":
        if embedding:
            raise models.CheckpointError(f"{source}: the ConvNet's embedding is fixed (its 64-d layer); "
                                         "--embedding is for ONNX files")
        return models.convnet_from(source), {"architecture": "the explorer's ConvNet"}
    try:
        spec, tensors = onnx_import.read(source, embedding)
    except GraphError as exc:
        raise models.CheckpointError(f"{source}: {exc}") from exc
    return GraphNet(spec, tensors), {"architecture": f"ONNX graph, embedding {spec['embedding']!r} "
                                                     f"({spec['embedding_dim']}-d)", "graph": spec}


def add(source: Path, name: str, embedding: str | None = None, origin: str | None = None,
        dataset: str = "mnist") -> Path:
    """Check `source` (safetensors ConvNet weights or an ONNX classifier, `embedding` naming its layer to treat as
    the latent space), measure its clean accuracy on the dataset's 10,000 test images, and save it with a card that
    records where it came from (`origin`, else the file's path); the new checkpoint's path. CheckpointError says
    what is wrong and changes nothing."""
    if not NAME.fullmatch(name):
        raise models.CheckpointError(f"{name!r} cannot name a checkpoint: use 1 to 40 lower-case letters, digits, "
                                     "- or _, starting with a letter or digit")
    target = models.user_model_dir() / f"{name}.safetensors"
    if name in models.available() or target.exists() or target.with_suffix(".json").exists():
        raise models.CheckpointError(f"{name!r} is taken: pick another name")
    if not source.is_file():
        raise models.CheckpointError(f"{source}: no such file")
    model, architecture = read(source, embedding)
    model.eval()
    images, labels = data.load_split("test", dataset)
    with torch.no_grad():
        wrong = misclassified(model, data.to_tensor(images), torch.from_numpy(labels))
    card = {"name": name, "recipe": None, "summary": f"your own model, added from {source.name}", "params": {},
            "seed": None, "data_sha256": data.DATASETS[dataset].content_sha256,
            "clean_accuracy": 1 - float(wrong.float().mean()), "code_version": code_version(), "date": now(),
            "source": {"file": origin or str(source), "sha256": sha256_file(source)}, **architecture}
    return models.save(model, target, card)


def suggested_name(file_name: str) -> str:
    """A checkpoint name made from a file's name: 'My Net (v2).onnx' -> 'my-net-v2'."""
    return re.sub(r"[^a-z0-9_-]+", "-", Path(file_name).stem.lower()).strip("-_")[:40] or "my-model"


def add_upload(content: bytes, file_name: str, name: str, embedding: str | None = None,
               dataset: str = "mnist", beside: dict[str, bytes] | None = None) -> Path:
    """`add` for a file's bytes (an upload in the app), checked from a private temporary folder; `beside`: the
    files uploaded with it by name, such as the NAME.onnx.data that holds an exported model's weights."""
    suffix = ".onnx" if file_name.lower().endswith(".onnx") else ".safetensors"
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / f"upload{suffix}"
        source.write_bytes(content)
        for other, data_bytes in (beside or {}).items():
            if Path(other).name != other or other in ("", ".", "..") or other == source.name:
                raise models.CheckpointError(f"{other!r} cannot be uploaded beside a model: give it its plain name")
            (Path(folder) / other).write_bytes(data_bytes)
        try:
            return add(source, name, embedding, origin=f"{file_name}, uploaded in the app", dataset=dataset)
        except models.CheckpointError as exc:  # the message names the file the user knows, not the temporary one
            raise models.CheckpointError(str(exc).replace(str(source), file_name)) from exc
