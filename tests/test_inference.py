"""UNetInferenceAgent: padded and unpadded prediction, eval mode, no autograd, model files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import synthetic_pair
from torch import nn

from inference.UNetInferenceAgent import UNetInferenceAgent
from networks.model_file import model_file_contents, read_model_file, save_atomically
from networks.RecursiveUNet import UNet

PATCH_SIZE = 32  # px: divisible by 2**num_downs for every model here, holds the 20 x 18 slices
SMALL = {"num_classes": 3, "initial_filter_size": 4, "num_downs": 2}
LARGER = {"num_classes": 3, "initial_filter_size": 8, "num_downs": 3}


# Tiny tensors run fastest on one thread (see conftest.one_torch_thread).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def seeded_unet(architecture=None, seed: int = 0) -> UNet:
    torch.manual_seed(seed)
    return UNet(**(architecture or SMALL))


def direct_argmax(model: nn.Module, volume: np.ndarray) -> np.ndarray:
    """Argmax labels [X, H, W] of ``model`` on the slices of ``volume`` [X, H, W]."""
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(volume.astype(np.float32))[:, None])  # [X, C, H, W]
    return logits.argmax(dim=1).numpy()


def padded_volume(depth: int = 5, seed: int = 0) -> np.ndarray:
    """A normalised volume float32 [depth, PATCH_SIZE, PATCH_SIZE] in [0, 1]."""
    return np.random.default_rng(seed).random((depth, PATCH_SIZE, PATCH_SIZE), dtype=np.float32)


# --- single_volume_inference ---------------------------------------------------------------

@pytest.mark.parametrize("depth, batch_size", [(1, 64), (5, 64), (7, 3), (4, 4)])
def test_single_volume_inference_is_the_argmax_of_the_model_logits(depth, batch_size):
    model = seeded_unet()
    agent = UNetInferenceAgent(model=model, patch_size=PATCH_SIZE, batch_size=batch_size)
    volume = padded_volume(depth)  # [depth, 32, 32]
    prediction = agent.single_volume_inference(volume)
    assert prediction.dtype == np.uint8
    assert prediction.shape == (depth, PATCH_SIZE, PATCH_SIZE)
    np.testing.assert_array_equal(prediction, direct_argmax(model, volume))
    assert set(np.unique(prediction)) <= {0, 1, 2}


def test_single_volume_inference_of_a_biased_model_predicts_its_favourite_class():
    model = seeded_unet()
    with torch.no_grad():
        model.model.head.bias[:] = torch.tensor([-1e4, -1e4, 1e4])  # class 2 always wins
    agent = UNetInferenceAgent(model=model, patch_size=PATCH_SIZE)
    assert (agent.single_volume_inference(padded_volume(2)) == 2).all()


@pytest.mark.parametrize("shape", [(3, 20, 18), (3, PATCH_SIZE, 16), (3, 64, 64),
                                   (PATCH_SIZE, PATCH_SIZE), (1, 3, PATCH_SIZE, PATCH_SIZE)])
def test_single_volume_inference_rejects_volumes_not_padded_to_the_patch(shape):
    agent = UNetInferenceAgent(model=seeded_unet(), patch_size=PATCH_SIZE)
    with pytest.raises(ValueError, match=r"expected a volume \[X, 32, 32\]"):
        agent.single_volume_inference(np.zeros(shape, np.float32))


# --- single_volume_inference_unpadded ------------------------------------------------------

@pytest.mark.parametrize("shape, seed", [((6, 20, 18), 0), ((3, 32, 32), 1), ((2, 7, 31), 2)])
def test_unpadded_inference_normalises_pads_predicts_and_crops(shape, seed):
    model = seeded_unet()
    agent = UNetInferenceAgent(model=model, patch_size=PATCH_SIZE)
    raw, _ = synthetic_pair(shape=shape, seed=seed)  # float32 [X, Y, Z], raw intensities
    prediction = agent.single_volume_inference_unpadded(raw)
    assert prediction.dtype == np.uint8
    assert prediction.shape == shape
    # The padded path by hand: whole-volume min-max to [0, 1], zeros to the patch, crop.
    x, y, z = shape
    padded = np.zeros((x, PATCH_SIZE, PATCH_SIZE), np.float32)
    padded[:, :y, :z] = (raw - raw.min()) / (raw.max() - raw.min())
    np.testing.assert_array_equal(prediction, direct_argmax(model, padded)[:, :y, :z])
    np.testing.assert_array_equal(prediction,
                                  agent.single_volume_inference(padded)[:, :y, :z])


def test_unpadded_inference_ignores_the_intensity_scale_of_the_raw_volume():
    agent = UNetInferenceAgent(model=seeded_unet(), patch_size=PATCH_SIZE)
    raw, _ = synthetic_pair(shape=(4, 20, 18), seed=3)
    scaled = raw.astype(np.float64) * 5000.0 + 12.0  # same image, MSD-like huge range
    np.testing.assert_array_equal(agent.single_volume_inference_unpadded(raw),
                                  agent.single_volume_inference_unpadded(scaled))


@pytest.mark.parametrize("shape, message", [
    ((2, 33, 10), r"in-plane size \(33, 10\) exceeds the patch \(32, 32\)"),
    ((2, 10, 70), r"in-plane size \(10, 70\) exceeds the patch \(32, 32\)"),
    ((20, 18), r"expected a 3-D volume"),
])
def test_unpadded_inference_rejects_volumes_above_the_patch_or_not_3d(shape, message):
    agent = UNetInferenceAgent(model=seeded_unet(), patch_size=PATCH_SIZE)
    volume = np.random.default_rng(0).random(shape).astype(np.float32)
    with pytest.raises(ValueError, match=message):
        agent.single_volume_inference_unpadded(volume)


def test_unpadded_inference_rejects_a_constant_volume():
    agent = UNetInferenceAgent(model=seeded_unet(), patch_size=PATCH_SIZE)
    with pytest.raises(ValueError, match="constant intensity"):
        agent.single_volume_inference_unpadded(np.full((2, 8, 8), 3.0, np.float32))


# --- eval mode and autograd ----------------------------------------------------------------

def test_inference_puts_the_model_in_eval_mode_so_dropout_is_off():
    torch.manual_seed(0)
    model = nn.Sequential(UNet(**SMALL), nn.Dropout(p=0.5))  # logits [B, 3, H, W]
    model.train()
    agent = UNetInferenceAgent(model=model, patch_size=PATCH_SIZE)
    volume = padded_volume(3)
    first = agent.single_volume_inference(volume)
    assert model.training is False
    assert all(not module.training for module in model.modules())
    second = agent.single_volume_inference(volume)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, direct_argmax(model, volume))


def test_inference_switches_back_to_eval_if_the_model_was_set_to_train_after_construction():
    model = seeded_unet()
    agent = UNetInferenceAgent(model=model, patch_size=PATCH_SIZE)
    model.train()
    agent.single_volume_inference(padded_volume(1))
    assert model.training is False


def test_inference_builds_no_autograd_graph_and_leaves_gradients_alone():
    model = seeded_unet()
    agent = UNetInferenceAgent(model=model, patch_size=PATCH_SIZE)
    logits = agent.predict_logits(padded_volume(2))  # [2, 3, 32, 32]
    assert logits.shape == (2, 3, PATCH_SIZE, PATCH_SIZE)
    assert logits.requires_grad is False
    assert logits.grad_fn is None
    agent.single_volume_inference(padded_volume(2))
    assert all(param.grad is None for param in model.parameters())
    assert torch.is_grad_enabled()  # the global switch is restored after the call


# --- model files ---------------------------------------------------------------------------

def save_model(path, model: UNet, architecture: dict) -> None:
    save_atomically(model_file_contents(architecture, model.state_dict(),
                                        (PATCH_SIZE, PATCH_SIZE)), path)


@pytest.mark.parametrize("architecture", [SMALL, LARGER], ids=["filters4-depth2",
                                                               "filters8-depth3"])
def test_agent_loaded_from_a_model_file_predicts_like_the_saved_model(tmp_path, architecture):
    model = seeded_unet(architecture, seed=5)
    path = tmp_path / "model.pth"
    save_model(path, model, architecture)
    agent = UNetInferenceAgent(parameter_file_path=str(path), patch_size=PATCH_SIZE)
    assert agent.model is not model
    pools = [module for module in agent.model.modules() if isinstance(module, nn.MaxPool2d)]
    assert len(pools) == architecture["num_downs"]
    volume = padded_volume(3, seed=1)
    loaded = agent.single_volume_inference(volume)
    np.testing.assert_array_equal(loaded, direct_argmax(model, volume))
    with torch.no_grad():
        expected_logits = model(torch.from_numpy(volume)[:, None])
    torch.testing.assert_close(agent.predict_logits(volume), expected_logits)


def test_read_model_file_returns_the_weights_in_eval_mode_and_the_patch(tmp_path):
    model = seeded_unet(seed=2)
    path = tmp_path / "model.pth"
    save_model(path, model, SMALL)
    loaded, contents = read_model_file(path)
    assert contents["patch_shape"] == (PATCH_SIZE, PATCH_SIZE)
    assert isinstance(loaded, UNet)
    assert loaded.training is False
    for (name, saved), (loaded_name, value) in zip(model.state_dict().items(),
                                                   loaded.state_dict().items(), strict=True):
        assert name == loaded_name
        torch.testing.assert_close(value, saved)


def test_missing_model_file_raises_file_not_found_naming_it(tmp_path):
    path = tmp_path / "nowhere" / "model.pth"
    with pytest.raises(FileNotFoundError, match="model.pth"):
        UNetInferenceAgent(parameter_file_path=str(path))
    with pytest.raises(FileNotFoundError, match=str(path)):
        read_model_file(path)


@pytest.mark.parametrize("content", [
    {"state_dict": {}},                                     # no architecture
    {"architecture": {"num_downs": 2}},                     # no weights
    [1, 2, 3],                                              # not a dict at all
], ids=["no-architecture", "no-state-dict", "a-list"])
def test_model_file_without_architecture_and_weights_raises_value_error_naming_it(tmp_path,
                                                                                  content):
    path = tmp_path / "weights_only.pth"
    if isinstance(content, dict) and "state_dict" in content:
        content = {"state_dict": seeded_unet().state_dict()}
    torch.save(content, path)
    with pytest.raises(ValueError, match=r"weights_only\.pth lacks 'architecture'"):
        UNetInferenceAgent(parameter_file_path=str(path))


def test_agent_without_model_or_model_file_raises():
    with pytest.raises(ValueError, match="give a model or the path of a model.pth"):
        UNetInferenceAgent()


@pytest.mark.parametrize("payload", [b"hello, this is not a PyTorch file\n" * 8,
                                     np.random.default_rng(0).bytes(512)],
                         ids=["text", "random-bytes"])
def test_model_file_that_is_not_a_pytorch_file_raises_value_error(tmp_path, payload):
    path = tmp_path / "model.pth"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match="model.pth"):
        read_model_file(path)


def test_model_file_whose_weights_do_not_fit_its_architecture_raises_value_error(tmp_path):
    small = UNet(initial_filter_size=4, num_downs=2)
    path = tmp_path / "model.pth"
    torch.save({"architecture": {"initial_filter_size": 8, "num_downs": 2},
                "state_dict": small.state_dict()}, path)
    with pytest.raises(ValueError, match="do not fit"):
        read_model_file(path)
