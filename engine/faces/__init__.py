"""Faces: from decoded frames to aligned face sets and per-frame records (extraction), and the tools
that check and clean them.

    detect.py     mediapipe's full-range detector and 468-point mesh (on a region per face)
    track.py      faces linked across frames, followed by their landmarks between detections
    smooth.py     One Euro filter per track, and the jitter measurement
    align.py      template, face types, Umeyama transform (frame -> aligned crop)
    landmarks.py  mesh index sets and the classic 68-point mapping
    quality.py    head pose, blur, brightness, mask polygon
    pipeline.py   decode / find / write threads, checkpoints
    extract.py    one side of a workspace, resumable; tracks, people and target choice
    identity.py   face identity embeddings (dlib), people linked from tracks, reference photos, purity
    records.py    the alignments file format (JSON lines) and readers for training and merging
    split.py      the held-out frames (kept out of training, measured by engine.quality), training_faces
    check.py      data collection checks and contact sheet
    sort.py       faceset sorting, trash and restore
    faceset.py    pack / unpack a face set (zip, no pickle)
"""
