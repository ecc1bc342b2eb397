"""Models: config -> ``nn.Module`` for a given input shape and number of classes.

The network outputs class scores (logits); the softmax lives in the loss. An architecture is
a zoo name (:mod:`cnnlab.models.zoo`) or a spec (:mod:`cnnlab.models.spec`), built with
shape inference (:mod:`cnnlab.models.build`) and initialised (:mod:`cnnlab.models.init`).

Names are imported on first use (:mod:`cnnlab.lazy`), so reading a config does not import torch.
"""

from cnnlab.lazy import lazy_exports

__all__ = ["INITS", "MODELS", "ModelConfig", "Network", "SpecError", "ZooModel", "build_model",
           "format_spec", "parse_spec", "resolve_arch", "set_dropout_rates"]
#: the names that live in a torch-free submodule are imported from it; the rest from factory
_TORCH_FREE = {"INITS": "init", "MODELS": "zoo", "ZooModel": "zoo", "resolve_arch": "zoo",
               "ModelConfig": "config", "SpecError": "spec", "format_spec": "spec", "parse_spec": "spec"}
__getattr__, __dir__ = lazy_exports(__name__, {name: _TORCH_FREE.get(name, "factory") for name in __all__})
