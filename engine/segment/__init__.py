"""The segmenter: a small U-Net that learns the *visible* face of this workspace's people.

Occluders in front of a face (a hand, a microphone, hair, glasses) must stay in front of the swapped
face. The segmenter learns "face vs not face" from the workspace's own aligned faces with labels made
automatically, no hand-labelling:

- the face region from the landmarks (the record's mask polygon) minus the occluders recorded at
  extraction (hands, ``engine.faces.hands``);
- synthetic occluders pasted on the fly (``synth``): hands and patches cut from other frames, random
  polygons and ellipses with textures, glasses-like strokes, hair-like strands;
- labels the user painted (``swapwizard masks import``) outrank the automatic ones.

Modules: ``store`` (where masks, labels and review marks live, reading them; no OpenCV or torch:
merge, training and the wizard read masks through it), ``synth`` (occluders), ``net`` (the U-Net),
``data`` (faces and labels of a workspace), ``trainer`` (training, checkpoints, held-out IoU),
``apply`` (masks for every crop), ``model`` (a segmenter on disk as safetensors + JSON), ``exchange``
(crop + mask PNG pairs for editing), ``painted`` (the one check of a painted folder, run by the CLI
before queuing and by the import job; Pillow), ``review`` (the wizard's mask review: faces worst
first, pictures, accept / reject marks and what they change; Pillow, no OpenCV).

Floor: between ``train`` and ``faces`` (pyproject.toml): training and merge read its masks; it
reads the face records.
"""
