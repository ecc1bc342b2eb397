"""cnnlab: build, train, babysit and judge convolutional networks for image classification.

Data flows through the packages in this order::

    data  ->  models  ->  optim  ->  train  ->  report

See the README's "Architecture" section for the map.
"""

__version__ = "0.1.0"
