"""The rows of the results table: each experiment of the seeds, the number the seed reports,
the best known reference, and the recipes that reproduce it (``-seed``: the seed's settings as
written) and beat it (cnnlab's best with the same network). A row is one entry of this table;
``cnnlab results run ROW`` trains its recipes, ``cnnlab results table`` writes RESULTS.md.

Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cnnlab.registry import Registry


@dataclass(frozen=True)
class ResultRow:
    """One experiment. ``seed_recipe`` / ``best_recipe`` name recipes (either may be None);
    ``seeds`` are the run seeds each recipe is trained with (``best_runs``: the best flavour's,
    when they differ: a long as-written run may get one seed, its short best flavour three);
    ``ensemble``: the best flavour is also reported as the ensemble (mean softmax) of its first ``ensemble`` seeds; ``needs``: what
    the row needs beyond this repository and a CPU (``gpu``: hours on a CPU; ``jets``: the
    simulated 100k-jet sample); ``seed_needs``: the same for the seed flavour when it differs."""

    key: str
    experiment: str
    source: str
    seed_result: str
    reference: str = ""
    seed_recipe: str | None = None
    best_recipe: str | None = None
    seeds: tuple[int, ...] = (0, 1, 2)
    best_runs: tuple[int, ...] | None = None
    ensemble: int = 0
    needs: Literal["cpu", "gpu", "jets"] = "cpu"
    seed_needs: Literal["cpu", "gpu", "jets"] | None = None

    def needs_of(self, recipe: str) -> str:
        """What one of the row's recipes needs (the seed flavour may need more than the best)."""
        return self.seed_needs or self.needs if recipe == self.seed_recipe else self.needs

    @property
    def recipes(self) -> list[str]:
        return [r for r in (self.seed_recipe, self.best_recipe) if r]

    @property
    def best_seeds(self) -> tuple[int, ...]:
        """Seeds the best flavour trains with: its own, and enough for its ensemble."""
        own = self.best_runs if self.best_runs is not None else self.seeds
        return tuple(range(max(self.ensemble, len(own)))) if self.ensemble else own


ROWS: Registry[ResultRow] = Registry("results row")
#: the rows in table order (the registry lists names sorted)
TABLE: list[ResultRow] = []


def _row(key: str, experiment: str, source: str, seed_result: str, *args, **kwargs) -> None:
    TABLE.append(ROWS.register(key)(ResultRow(key, experiment, source, seed_result, *args, **kwargs)))


_row("logreg-mnist", "logistic regression, MNIST", "seeds/001", "~8%",
     "7.6% (LeCun et al. 1998, linear, deskewed)", "logreg-mnist-seed", "logreg-mnist")
_row("mlp-mnist", "MLP 784-20-10 (tanh), MNIST", "seeds/001", "~2% (5,000 train images)",
     "", "mlp-mnist-seed", "mlp-mnist")
_row("lenet5-mnist", "LeNet-5, MNIST", "seeds/000 s.1", "0.9%", "0.92% (Theano tutorial)",
     "lenet5-mnist-seed", "lenet5-mnist", seeds=(0,), best_runs=(0, 1, 2))
_row("network3-fc100", "network3 FC-100 (sigmoid), MNIST", "seeds/004", "2.20% (97.80%)", "",
     "network3-fc100-seed")
_row("network3-conv", "network3 conv-pool + FC-100, MNIST", "seeds/004", "1.22% (98.78%)", "",
     "network3-conv-seed", seeds=(0,))
_row("network3-expanded", "network3 2 conv + FC-100 ReLU, expanded data, MNIST", "seeds/004",
     "0.63% (99.37%)", "", "network3-expanded-seed", seeds=(0,), needs="gpu")
_row("network3-dropout", "network3 + 2 x FC-1000 dropout, MNIST (cnnlab best: ensemble of 5)",
     "seeds/004", "0.40% (99.60%)", "0.33% (the book's ensemble of 5 networks, 99.67%)",
     "network3-dropout-seed", "network3-mnist", seeds=(0,), ensemble=5, seed_needs="gpu")
_row("dbn-mnist", "DBN: 2 RBMs pre-train an MLP 784-500-500-10, MNIST", "seeds/001", "— (taught, not run)",
     "1.3% (Theano tutorial DBN, 784-1000-1000-1000-10)", None, "dbn-mnist")
_row("lstm-mnist", "LSTM-128 over image rows, MNIST", "seeds/001", "— (taught, not run)",
     "~1-2% (sequential MNIST by rows)", None, "lstm-mnist", seeds=(0,))
_row("lenet5-cifar10", "LeNet-5, CIFAR-10", "seeds/000 s.2", "40%", "",
     "lenet5-cifar10-seed", "lenet5-cifar10", seeds=(0,), best_runs=(0, 1, 2))
_row("convnet-cifar10", "cs231n ConvNet (Adadelta, batch 4), CIFAR-10", "seeds/000 s.2.1.1", "40%",
     "~20-25% (ConvNetJS demo)", "convnet-cifar10-seed", "convnet-cifar10", seeds=(0,),
     best_runs=(0, 1, 2))
_row("convnet-l2-cifar10", "ConvNet + L2 0.075, CIFAR-10", "seeds/000 s.2.1.2", "30%", "",
     "convnet-l2-cifar10-seed", seeds=(0,))
_row("convnet-dropout-cifar10", "ConvNet + dropout (keep 0.8), CIFAR-10", "seeds/000 s.2.1.2", "30%", "",
     "convnet-dropout-cifar10-seed", seeds=(0,))
_row("maxout-convnet-cifar10", "ConvNet with maxout + dropout (RMSprop 1e-4), CIFAR-10",
     "seeds/000 s.2.3", "25%", "", "maxout-convnet-cifar10-seed", seeds=(0,))
_row("maxout-net-cifar10", "Maxout Network, CIFAR-10", "seeds/000 s.2.4", "18% (6 h on a K40)",
     "11.68% (Goodfellow et al. 2013; 9.38% with augmentation)", "maxout-net-cifar10-seed",
     "maxout-goodfellow-cifar10", seeds=(0,), needs="gpu")
_row("jets", "quark/gluon jet images", "seeds/000 s.3", "35.3% (CMS sample)",
     "", "jetnet", "jetnet-100k", seeds=(0,), needs="jets")
