"""Linking pieces of tracks into people: close embeddings join, faces seen together never do."""

from __future__ import annotations

import numpy as np

from engine.faces.identity import _cluster, purity


def vectors(*first: float) -> np.ndarray:
    out = np.zeros((len(first), 128))
    out[:, 0] = first
    return out


def test_close_pieces_join_and_pieces_seen_in_one_frame_never_do() -> None:
    means = vectors(0.0, 0.1, 1.0)
    assert _cluster(means, 0.5) == [0, 0, 1]
    assert _cluster(means, 0.5, [{1, 2}, {2, 3}, {9}]) == [0, 1, 2]  # pieces 0 and 1 share frame 2
    assert _cluster(means, 0.5, [{1}, {2}, {9}]) == [0, 0, 1]


def test_purity_counts_faces_far_from_the_target() -> None:
    faces = vectors(*([0.0] * 10 + [0.9] * 3))
    found = purity(faces, None, 0.6)  # the target is the largest group
    assert found["other_faces"] == 3 and found["other_rows"] == [10, 11, 12] and found["people"] == 2
    found = purity(faces, faces[-1], 0.6)  # or the given identity
    assert found["other_faces"] == 10
