"""The model zoo: the seeds' named architectures, written in the spec language.

Each entry is a spec plus the defaults its source used (init, dropout scaling); a bare ``fc``
at the end has one unit per class and the first layer takes the data's channels, so every
model adapts to the dataset. Zoo models round non-integer pooling sizes up (``ceil``, as Caffe
and cuda-convnet do), so the CIFAR networks also build for 28x28 MNIST. Select one with
``model: NAME``; ``cnnlab summary NAME --input CxHxW`` prints its table.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnlab.models.spec import LayerSpec, SpecError, parse_spec
from cnnlab.registry import Registry, did_you_mean


@dataclass(frozen=True)
class ZooModel:
    """A named architecture: its spec and the defaults of the work it comes from."""

    name: str
    spec: str
    source: str
    init: str = "glorot"
    zero_last: bool = False
    dropout_mode: str = "inverted"
    pool_round: str = "ceil"

    def __call__(self, input_shape: tuple[int, int, int], num_classes: int):
        """Build with the zoo defaults (``build_model`` applies config overrides)."""
        from cnnlab.models import ModelConfig, build_model

        return build_model(ModelConfig(arch=self.name), input_shape, num_classes)

    @property
    def layers(self):
        return parse_spec(self.spec, f"zoo model '{self.name}'")


MODELS: Registry[ZooModel] = Registry("model")


def resolve_arch(arch) -> tuple[ZooModel | None, list[LayerSpec] | None]:
    """``model.arch`` -> (zoo entry or None, layers). Raises :class:`SpecError`. No torch: the
    config validates ``model.arch`` with it.

    A registry entry that is not a :class:`ZooModel` is a plain factory
    ``(input_shape, num_classes) -> nn.Module`` (custom models, test doubles): no layers."""
    if isinstance(arch, str) and arch.strip() in MODELS:
        entry = MODELS.get(arch.strip())
        return entry, (entry.layers if isinstance(entry, ZooModel) else None)
    try:
        return None, parse_spec(arch, "model.arch")
    except SpecError as exc:
        if isinstance(arch, str) and len(arch.split()) == 1:
            raise SpecError(f"unknown model '{arch}'.{did_you_mean(arch, MODELS.names())} "
                            f"Models: {', '.join(MODELS.names())}. (Nor is it a layer spec: {exc})") from None
        raise


def _zoo(name: str, spec: str, source: str, **defaults) -> None:
    MODELS.register(name)(ZooModel(name, " ".join(spec.split()), source, **defaults))


_zoo("logreg", "fc", init="small", zero_last=True,
     source="seeds/001: softmax (multinomial logistic) regression on the pixels, weights "
            "and biases initialised to zero")
_zoo("mlp", "fc20 tanh fc", init="glorot", zero_last=True,
     source="seeds/001: one tanh hidden layer of 20 units (n_hidden_neurons = 20), Glorot "
            "uniform weights, zero output layer and biases")
_zoo("lenet5", "conv5-20 pool2 tanh conv5-50 pool2 tanh fc500 tanh fc", init="glorot",
     source="seeds/000 s.1 (the Theano tutorial's LeNet): conv 5x5-20, maxpool 2, conv 5x5-50, "
            "maxpool 2, fc 500, all tanh; Glorot-uniform weights, zero biases. Pooling before "
            "tanh equals tanh before pooling (tanh is monotonic) and is 4x cheaper")
_zoo("convnet", "conv5-16p2 relu pool2 conv5-20p2 relu pool2 conv5-20p2 relu pool2 fc",
     init="glorot",
     source="seeds/000 s.2.1, figure 2.2 (the cs231n / ConvNetJS CIFAR-10 demo): three conv "
            "5x5 pad 2 layers of 16, 20, 20 filters, ReLU, maxpool 2; 22,400 weights on CIFAR-10; "
            "Glorot init as the seed's code (derived from the Theano LeNet) had")
_zoo("maxout-convnet",
     "conv5-16p2 maxout2 pool2 keep0.8 conv5-20p2 maxout2 pool2 keep0.8 "
     "conv5-20p2 maxout2 pool2 keep0.8 fc",
     init="glorot", dropout_mode="inverted",
     source="seeds/000 s.2.3: the ConvNet with every ReLU replaced by a 2-piece maxout unit, "
            "inverted dropout keeping 0.8 of the hidden units (s.2.1.2)")
_zoo("maxout-net",
     "keep1 conv5-50p2 maxout2 pool2 keep0.75 conv5-100p2 maxout2 pool2 keep0.75 "
     "conv5-200p2 maxout2 pool2 keep0.75 fc500 maxout2 keep0.5 fc",
     init="glorot", dropout_mode="classic",
     source="seeds/000 s.2.4: conv layers of 50, 100, 200 filters and fc 500, maxout (2 pieces) "
            "everywhere; keep probabilities [1.0, 0.75, 0.75, 0.75, 0.5] from the input on, "
            "classic ('normal') dropout, which the seed found better than inverted here")
_zoo("maxout-goodfellow",
     "keep0.8 conv8-96p4 maxout2 pool4s2 keep0.5 conv8-192p3 maxout2 pool4s2 keep0.5 "
     "conv5-192p3 maxout2 pool2s2 keep0.5 fc500 maxout5 keep0.5 fc",
     init="glorot", dropout_mode="inverted",
     source="Goodfellow et al. 2013 (cited by seeds/000 s.2.4), the CIFAR-10 network of pylearn2's "
            "cifar10.yaml: maxout conv 96/192/192 units x 2 pieces, kernels 8/8/5, pads 4/3/3, "
            "max pools 4/4/2 at stride 2 (rounded up, as cuda-convnet does), maxout fc 500 x 5 "
            "pieces; keep 0.8 on the input and 0.5 elsewhere")
_zoo("jetnet",
     "keep0.9 conv5-32p2 maxout2 pool2 keep0.75 conv5-64p2 maxout2 pool2 keep0.75 "
     "conv5-128p2 maxout2 pool2 keep0.75 fc128 maxout2 keep0.5 fc64 maxout2 keep0.5 fc",
     init="glorot", dropout_mode="classic",
     source="seeds/000 s.3.2 (quark/gluon jet images): maxout conv 5x5 pad 2 of 32, 64, 128 "
            "filters with maxpool 2, maxout fc 128 and 64; keep probabilities "
            "[0.9, 0.75, 0.75, 0.75, 0.5, 0.5] including the input; classic dropout as in the "
            "seed's Maxout Network it grew from")
_zoo("network3",
     "conv5-20 pool2 relu conv5-40 pool2 relu drop0.5 fc1000 relu drop0.5 fc1000 relu drop0.5 fc",
     init="xavier", zero_last=True, dropout_mode="classic",
     source="seeds/004 (Nielsen, network3.py, the final MNIST network): conv 5x5-20 and 5x5-40 "
            "with maxpool 2 and ReLU, two fc 1000 ReLU layers, p_dropout = 0.5 on the inputs of "
            "the fc layers, scaled at test time ((1-p) W x); weights N(0, 1/n_in) as the book's "
            "2016 note advises, zero softmax layer as in the book")
_zoo("resnet9",
     "conv3-64p1 bn relu conv3-128p1 bn relu pool2 res(conv3-128p1 bn relu conv3-128p1 bn relu) "
     "conv3-256p1 bn relu pool2 conv3-512p1 bn relu pool2 res(conv3-512p1 bn relu conv3-512p1 bn relu) "
     "gap fc",
     init="he",
     source="a modern fast CIFAR-10 network (not in the seeds): the ResNet-9 of Myrtle's "
            "DAWNBench entry (D. Page 2018), batch norm before ReLU (seeds/002), two residual "
            "blocks, widths 64-128-256-512 that keep GPU matmuls large; He init (seeds/003)")
