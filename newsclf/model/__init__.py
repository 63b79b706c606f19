"""The neural network and how it runs.

- :mod:`newsclf.model.layers`: the encoder classifier and the ensemble (Paddle layers), built
  from a :class:`~newsclf.spec.ModelSpec`;
- :mod:`newsclf.model.inference`: batching encoded texts through a network or the Paddle
  Inference engine; softmax;
- :mod:`newsclf.model.export`: the inference export of a model directory and its check.

Importing this package imports nothing heavy; import the submodule you need.
"""
