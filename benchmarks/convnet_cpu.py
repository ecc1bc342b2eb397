"""The cs231n ConvNet on CIFAR-10 (recipe ``convnet-cifar10``): cnnlab's epoch vs the plain
NCHW loop, as ``benchmarks/lenet_cpu.py`` measures LeNet-5 (same method; see its docstring).
10,000 training images per epoch (the rest carved off as validation), batch 128.

    python benchmarks/convnet_cpu.py [--epochs 3] [--threads 2] [--json] [KEY=VALUE...]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lenet_cpu import main  # noqa: E402  (the shared method)

if __name__ == "__main__":
    main(recipe="convnet-cifar10", batch_size=128, defaults=("data.val_size=40000",))
