"""The report's "what filters respond to" numbers for one run (the pictures are in figures.py):
a few filters per conv layer, their maximising inputs and top-9 training patches, and the
saliency map of the example test image. Seeded, so a report is reproducible."""

from __future__ import annotations

import torch

from cnnlab.monitor import responses as M
from cnnlab.report.collect import RunData

FILTERS_PER_LAYER = 4  # the most active ones on the training sample
SAMPLE = 1000          # training images searched for the top patches
STEPS = 100            # gradient-ascent steps per layer (all its filters in one batch)


def filter_responses(run: RunData, filters: int = FILTERS_PER_LAYER, steps: int = STEPS,
                     seed: int = 0) -> list[dict]:
    """Per conv layer: ``{"name", "filters": [{"filter", "maximizer" (C x H x W), "patches"
    (9 x C x r x r, stored format)}]}``; empty when the network has no conv layer."""
    trained, model = run.trained, run.trained.model
    layers = M.conv_layers(model)
    if not layers:
        return []
    images = run.train_images if run.train_images is not None else run.test_images
    images = images[:SAMPLE]
    with torch.no_grad():
        x = trained.preprocess(images.to(trained.device))
    shape = tuple(x.shape[1:])
    out = []
    for layer in layers:
        chosen = M.strongest_filters(model, layer.module, x, filters)
        best = M.maximizing_inputs(model, layer.module, chosen, shape, steps=steps, seed=seed)
        patches = M.top_patches(model, layer.module, chosen, x, images)
        out.append({"name": layer.name, "filters": [
            {"filter": f, "maximizer": best[i], "patches": patches[i]} for i, f in enumerate(chosen)]})
    return out


def example_saliency(run: RunData) -> tuple[torch.Tensor, int] | None:
    """(H x W saliency, predicted class) of the first test image; None when it is all zero."""
    trained = run.trained
    x = trained.preprocess(run.test_images[:1].to(trained.device))
    if x.ndim != 4:
        return None
    smap, label = M.saliency(trained.model, x)
    return (smap, label) if float(smap.max()) > 0 else None
