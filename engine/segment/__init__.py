"""The segmenter: a small U-Net that learns the *visible* face of this workspace's people.

Occluders in front of a face (a hand, a microphone, hair, glasses) must stay in front of the swapped
face. The segmenter learns "face vs not face" from the workspace's own aligned faces with labels made
automatically, no hand-labelling:

- the face region from the landmarks (the record's mask polygon) minus the occluders recorded at
  extraction (hands, ``engine.faces.hands``);
- synthetic occluders pasted on the fly (``synth``): hands and patches cut from other frames, random
  polygons and ellipses with textures, glasses-like strokes, hair-like strands;
- labels the user painted (``swapwizard masks import``) outrank the automatic ones.

Modules: ``store`` (where masks and labels live, reading them; no torch: merge and training read
masks through it), ``synth`` (occluders), ``net`` (the U-Net), ``data`` (faces and labels of a
workspace), ``trainer`` (training, checkpoints, held-out IoU), ``apply`` (masks for every crop),
``transfer`` (export/import as safetensors + JSON), ``exchange`` (crop + mask PNG pairs for editing).

Floor: between ``train`` and ``faces`` (pyproject.toml): training and merge read its masks; it
reads the face records.
"""
