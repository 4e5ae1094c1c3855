"""Tests for models/registry.py and the built-in architectures in models/archs.py."""

import pytest
import torch
from torch import nn

from models import ModelNotFoundError, create_model, list_models, register_model
from models import registry as registry_module


def test_list_models_has_builtins() -> None:
    assert {"digits-cnn", "mlp", "tiny-cnn"} <= set(list_models())


def test_create_model_unknown_arch_lists_known() -> None:
    with pytest.raises(ModelNotFoundError, match="known architectures: .*digits-cnn.*mlp.*tiny-cnn"):
        create_model("resnet-9000", num_classes=10, in_channels=1)


@pytest.mark.parametrize("arch", ["digits-cnn", "mlp", "tiny-cnn"])
@pytest.mark.parametrize("in_channels", [1, 3])
def test_create_model_output_shape(arch: str, in_channels: int) -> None:
    torch.manual_seed(0)
    model = create_model(arch, num_classes=10, in_channels=in_channels).eval()
    with torch.inference_mode():
        out = model(torch.randn(5, in_channels, 8, 8))
    assert out.shape == (5, 10)


@pytest.mark.parametrize(("arch", "size"), [("tiny-cnn", (17, 23)), ("digits-cnn", (28, 28))])
def test_create_model_other_input_sizes(arch: str, size: tuple[int, int]) -> None:
    model = create_model(arch, num_classes=3, in_channels=3).eval()
    with torch.inference_mode():
        assert model(torch.zeros(2, 3, *size)).shape == (2, 3)


def test_create_model_mlp_input_size_kwarg() -> None:
    model = create_model("mlp", num_classes=2, in_channels=1, input_size=(4, 6), hidden=[8])
    assert model(torch.zeros(3, 1, 4, 6)).shape == (3, 2)


def test_create_model_drops_none_kwargs() -> None:
    model = create_model("tiny-cnn", num_classes=2, in_channels=1, seed=None)
    assert isinstance(model, nn.Module)


def test_tiny_cnn_is_small_and_seedable() -> None:
    state = torch.get_rng_state()
    a = create_model("tiny-cnn", num_classes=10, in_channels=3, seed=7)
    b = create_model("tiny-cnn", num_classes=10, in_channels=3, seed=7)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert sum(p.numel() for p in a.parameters()) * 4 < 4096


def test_register_model_custom_and_duplicate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module, "_MODEL_FACTORIES", dict(registry_module._MODEL_FACTORIES))

    @register_model("linear-test")
    def linear(num_classes: int, in_channels: int, height: int = 8, width: int = 8) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * height * width, num_classes))

    assert "linear-test" in list_models()
    assert create_model("linear-test", 4, 1, height=2, width=2)(torch.zeros(1, 1, 2, 2)).shape == (1, 4)
    with pytest.raises(ValueError, match="already registered"):
        register_model("linear-test")(linear)
