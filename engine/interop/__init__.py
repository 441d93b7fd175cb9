"""Models that travel: a trained model as an ONNX file or a DeepFaceLive ``.dfm``, a ``.dfm`` or ``.onnx``
file as a workspace model, and merging on ONNX Runtime.

- ``contract``: DeepFaceLive's DFM contract (input and output names, shapes), the face type written in a
  file's metadata, and the checks an imported (untrusted) file passes before anything runs it;
- ``export``: a model's swap path as an ONNX graph (``swapwizard export-model``);
- ``runtime``: ``OnnxSwapModel``, an ONNX file that predicts as ``engine.train.api.SwapModel`` does;
- ``load``: which of the two a merge, a preview or a comparison gets (``[merge] runtime``);
- ``importing``: a ``.dfm`` or ``.onnx`` file becomes ``model/<name>/`` (``swapwizard import-model``).

Its floor is between train (whose networks it exports) and merge (which loads models through it).
"""
