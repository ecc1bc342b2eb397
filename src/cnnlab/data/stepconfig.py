"""The parameters of every preprocessing step (``data.normalize``) and augmentation op
(``data.augment``) as small config classes, without torch.

A config is checked against these tables when it is read, so validating it never imports
torch; the steps themselves (torch modules in :mod:`cnnlab.data.preprocess`,
:mod:`cnnlab.data.whitening` and :mod:`cnnlab.data.augment`) are built from the validated
parameters and check nothing again: each constraint lives here, once. A class's fields are
its step's ``__init__`` parameters with the same defaults; ``tests/data/test_data_stepconfig.py``
checks that the tables and the step registries never drift apart. The equations are in the
steps' docstrings.
"""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cnnlab.data.steps import StepSpec, parse_steps
from cnnlab.registry import did_you_mean

FitImages = int | None


class StepParams(BaseModel):
    """Base: the parameters of one step. Unknown parameters are refused by
    :func:`validate_steps` (with a did-you-mean) before the fields are checked."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _fit_images(default: int) -> Any:
    return Field(default, ge=2, description="random training images the statistics are fitted on "
                                            "(seed 0); null = all")


# -- preprocessing (data.normalize) ------------------------------------------------------------
class IdentityParams(StepParams):
    """``none``: x -> x (as float)."""


class ScaleParams(StepParams):
    """``scale``: x / 255 for uint8 images; float images pass through."""


class StandardizeParams(StepParams):
    """``standardize``: per-channel (x - mu_c) / sigma_c over the training pixels."""


class MeanImageParams(StepParams):
    """``mean_image``: subtract the C x H x W mean training image."""


class ChannelMeanParams(StepParams):
    """``channel_mean``: subtract the per-channel training mean."""


class StdNormalizeParams(StepParams):
    """``std``: divide by the training standard deviation."""

    per: Literal["channel", "pixel"] = Field(
        "channel", description="channel: one sigma per channel over all pixels; pixel: one per "
                               "input dimension (seeds/002's X /= np.std(X, axis=0))")


class GlobalContrastNormalizeParams(StepParams):
    """``gcn``: X' = s (X - mean X) / max(eps, sqrt(lam + mean((X - mean X)^2))), per image."""

    scale: float = Field(1.0, gt=0, description="s, the output contrast (55 in the maxout paper)")
    lam: float = Field(0.0, ge=0, description="lambda, regularises the contrast of flat images")
    eps: float = Field(1e-8, ge=0, description="floor of the divisor")
    per_channel: bool = Field(False, description="statistics per channel instead of per image")
    divide: bool = Field(True, description="false: only centre (seeds/000's version)")


class PCAWhitenParams(StepParams):
    """``pca``: x' = U_k^T (x - mu) / sqrt(S_k + eps), a k x 1 x 1 output."""

    dims: int | None = Field(None, ge=1, description="components kept k; null = those with "
                                                     "eigenvalue > threshold")
    eps: float = Field(1e-5, ge=0, description="added to the eigenvalues before the square root")
    threshold: float = Field(1e-5, description="eigenvalue cut when dims is null (seeds/001's 1e-5)")
    fit_images: FitImages = _fit_images(10_000)


class ZCAWhitenParams(StepParams):
    """``zca``: x' = U diag(1 / sqrt(S + eps)) U^T (x - mu), the image shape kept."""

    eps: float = Field(1e-5, ge=0, description="added to the eigenvalues; 0.01-0.1 suit CIFAR-10 in [0, 1]")
    fit_images: FitImages = _fit_images(10_000)


class PatchWhitenParams(StepParams):
    """``patch_whiten``: airbench's fixed whitening convolution on size x size patches."""

    size: int = Field(2, ge=1, description="patch (kernel) size in pixels")
    eps: float = Field(5e-4, ge=0, description="added to the eigenvalues of the patch covariance")
    fit_images: FitImages = _fit_images(5_000)


# -- augmentation (data.augment) ---------------------------------------------------------------
class RandomCropParams(StepParams):
    """``crop``: random crop after padding, i.e. a random translation by up to padding pixels."""

    padding: int = Field(4, ge=0, description="pixels of padding on every side (0: no-op)")
    mode: Literal["reflect", "constant", "replicate"] = Field(
        "reflect", description="border fill: reflect, constant (zeros) or replicate")


class RandomFlipParams(StepParams):
    """``flip``: horizontal flip of each image with probability p."""

    p: float = Field(0.5, ge=0, le=1, description="probability of flipping an image")


class AlternatingFlipParams(StepParams):
    """``alternating_flip``: airbench's derandomised flip, every image both ways in two epochs."""

    seed: int = Field(0, description="seed of each image's fixed parity")


class RandomTranslateParams(StepParams):
    """``translate``: random translation with zero fill (crop with mode constant)."""

    pixels: int = Field(2, ge=0, description="largest shift in x and in y")


class OnePixelShiftParams(StepParams):
    """``one_pixel_shift``: unchanged or moved one pixel up, down, left or right (1/5 each)."""


class RandomRotateScaleParams(StepParams):
    """``rotate_scale``: rotation in +-degrees and zoom in [1 - scale, 1 + scale]."""

    degrees: float = Field(10.0, ge=0, description="largest rotation angle in degrees")
    scale: float = Field(0.1, ge=0, lt=1, description="largest relative zoom in or out")


class ElasticDistortionParams(StepParams):
    """``elastic``: Simard et al.'s smoothed random displacement fields."""

    alpha: float = Field(34.0, ge=0, description="displacement scale in pixels (Simard: 34)")
    sigma: float = Field(4.0, gt=0, description="std of the Gaussian smoothing in pixels (Simard: 4)")
    p: float = Field(1.0, ge=0, le=1, description="fraction of the images distorted")


class CutoutParams(StepParams):
    """``cutout``: zero a size x size square at a random centre."""

    size: int = Field(8, ge=1, description="side of the square in pixels")
    p: float = Field(1.0, ge=0, le=1, description="fraction of the images cut")


#: step name -> its parameters, for ``data.normalize``
PREPROCESSING_STEPS: dict[str, type[StepParams]] = {
    "none": IdentityParams, "scale": ScaleParams, "standardize": StandardizeParams,
    "mean_image": MeanImageParams, "channel_mean": ChannelMeanParams, "std": StdNormalizeParams,
    "gcn": GlobalContrastNormalizeParams, "pca": PCAWhitenParams, "zca": ZCAWhitenParams,
    "patch_whiten": PatchWhitenParams,
}

#: op name -> its parameters, for ``data.augment``
AUGMENTATION_OPS: dict[str, type[StepParams]] = {
    "crop": RandomCropParams, "flip": RandomFlipParams, "alternating_flip": AlternatingFlipParams,
    "translate": RandomTranslateParams, "one_pixel_shift": OnePixelShiftParams,
    "rotate_scale": RandomRotateScaleParams, "elastic": ElasticDistortionParams, "cutout": CutoutParams,
}

#: config key -> (what its entries are called in messages, their table)
TABLES: dict[str, tuple[str, dict[str, type[StepParams]]]] = {
    "data.normalize": ("preprocessing step", PREPROCESSING_STEPS),
    "data.augment": ("augmentation", AUGMENTATION_OPS),
}


# -- validation --------------------------------------------------------------------------------
_SIGNS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
_KINDS = {int: "an integer", float: "a number", bool: "true or false"}


def _bounds(field) -> str:
    """A field's numeric constraints in words: 'in [0, 1]', '>= 1', '' when it has none."""
    found = {attr: getattr(meta, attr) for meta in field.metadata for attr in _SIGNS if hasattr(meta, attr)}
    low = next((a for a in ("ge", "gt") if a in found), None)
    high = next((a for a in ("le", "lt") if a in found), None)
    if low and high:
        return f"in {'[' if low == 'ge' else '('}{found[low]}, {found[high]}{']' if high == 'le' else ')'}"
    one = low or high
    return f"{_SIGNS[one]} {found[one]}" if one else ""


def requirement(field, with_kind: bool) -> str:
    """What a parameter accepts: 'in [0, 1]', 'a number in [0, 1]', 'reflect, constant or
    replicate', '>= 1 or null' (``with_kind`` names the type too, for a value of the wrong type)."""
    optional = type(None) in get_args(field.annotation)
    kind = next(a for a in get_args(field.annotation) if a is not type(None)) if optional else field.annotation
    if get_origin(kind) is Literal:
        names = [str(c) for c in get_args(kind)]
        text = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
    else:
        bounds = _bounds(field)
        text = f"{_KINDS.get(kind, kind)} {bounds}".strip() if with_kind or not bounds else bounds
    return text + (" or null" if optional else "")


def _constraint_error(error: dict) -> bool:
    return error["type"] in ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


def check_params(params_class: type[StepParams], name: str, params: dict[str, Any], key: str) -> StepParams:
    """``params`` of step ``name`` as a validated ``params_class``; ValueError naming the key,
    the step and what each parameter accepts (unknown parameters with a did-you-mean)."""
    accepted = list(params_class.model_fields)
    for param in params:
        if param not in accepted:
            raise ValueError(f"{key}: step '{name}' has no parameter '{param}'.{did_you_mean(str(param), accepted)} "
                             f"Parameters: {', '.join(accepted) or '(none)'}")
    try:
        return params_class(**params)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0])
            needs = requirement(params_class.model_fields[field], with_kind=not _constraint_error(error))
            problems.append(f"{field} must be {needs}, got {error['input']!r}")
        raise ValueError(f"{key}: step '{name}': {'; '.join(problems)}") from None


def validate_steps(value: Any, key: str) -> list[StepSpec]:
    """A ``data.normalize`` / ``data.augment`` value (``key``) as normalised specs
    ``{"name": ..., **params}``, the given parameters checked and converted (5 -> 5.0 for a
    float); ValueError naming the key, the step and the valid names or parameters."""
    kind, table = TABLES[key]
    specs = []
    for spec in parse_steps(value, key):
        name = spec["name"]
        if name not in table:
            known = sorted(table)
            raise ValueError(f"{key}: unknown {kind} '{name}'.{did_you_mean(name, known)} Known: {', '.join(known)}")
        given = {k: v for k, v in spec.items() if k != "name"}
        checked = check_params(table[name], name, given, key)
        specs.append({"name": name, **checked.model_dump(include=set(given))})
    return specs
