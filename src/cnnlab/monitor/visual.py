"""Pictures of a network's insides, shared by TensorBoard logging and the HTML report:
first-layer filters as an image grid (cs231n: "visualize the first-layer weights"; they should
look like edge and blob detectors, seeds/004) and feature maps of one example (seeds/004)."""

from __future__ import annotations

import math

import numpy as np
import torch

from cnnlab.monitor.layers import activation_layers, parametric_layers


def first_layer_filters(model: torch.nn.Module, input_shape: tuple[int, int, int]) -> tuple[str, torch.Tensor] | None:
    """(layer name, K x C x h x w) weights of the first layer seen as images: a conv layer's
    kernels, or an fc layer's rows reshaped to the input image. None when neither applies."""
    layers = parametric_layers(model)
    if not layers:
        return None
    layer, w = layers[0], layers[0].weight.detach().float().cpu()
    if w.ndim == 4:
        return layer.name, w
    if w.ndim == 2 and w.shape[1] == math.prod(input_shape):
        return layer.name, w.view(-1, *input_shape)
    return None


def to_display(images: torch.Tensor) -> np.ndarray:
    """N x C x H x W -> N x H x W x 3 in [0, 1], each image min-max scaled on its own.

    Three channels show as RGB; any other number as grey (their mean).
    """
    x = images.detach().float().cpu()
    x = x if x.shape[1] == 3 else x.mean(1, keepdim=True)
    lo = x.flatten(1).min(1).values.view(-1, 1, 1, 1)
    hi = x.flatten(1).max(1).values.view(-1, 1, 1, 1)
    x = (x - lo) / (hi - lo).clamp_min(1e-12)
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    return x.permute(0, 2, 3, 1).numpy()


def image_grid(images: np.ndarray, columns: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile N x H x W x 3 images into one picture, ``pad`` white pixels between them."""
    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.ones((rows * (h + pad) + pad, columns * (w + pad) + pad, c), dtype=np.float32)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = image
    return grid


def filter_grid(model: torch.nn.Module, input_shape: tuple[int, int, int]) -> tuple[str, np.ndarray] | None:
    found = first_layer_filters(model, input_shape)
    if found is None:
        return None
    name, weights = found
    return name, image_grid(to_display(weights))


@torch.no_grad()
def feature_maps(model: torch.nn.Module, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """(layer name, C x H x W) activations of one preprocessed example ``x`` (1 x C x H x W)
    through the network: the outputs of its nonlinearities that are still images (4-D), or of
    its conv layers when the nonlinearities are not modules."""
    candidates = [l for l in activation_layers(model)]
    candidates += [l for l in parametric_layers(model) if l.kind == "conv"]
    captured: dict[str, torch.Tensor] = {}
    handles = []
    for layer in candidates:
        def hook(module, inputs, output, name=layer.name):
            if output.ndim == 4 and name not in captured:
                captured[name] = output[0].detach().float().cpu()
        handles.append(layer.module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    activations = [(l.name, captured[l.name]) for l in activation_layers(model) if l.name in captured]
    if activations:
        return activations
    return [(l.name, captured[l.name]) for l in parametric_layers(model) if l.name in captured]
