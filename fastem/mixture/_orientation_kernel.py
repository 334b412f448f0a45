"""The common-orientation iterations of mclust's EVE and VVE M-steps, compiled (see ``constrained_mstep``).

Small and serial: k matrices of d x d, no data. In NumPy every plane
rotation was a dozen array operations on tiny arrays; on iris (d = 4, up to
9 components) the sweep of fourteen models spent 51 of its 57 s here.
"""

from __future__ import annotations

import math

from fastem._core.numba import helper


@helper
def _diagonals(rotated, weights, equal_volume, out):
    """Lambda_k for a fixed orientation from B_k = diag(D^T W_k D) into ``out`` (k, d)."""
    n_components, n_features = out.shape
    for c in range(n_components):
        for j in range(n_features):
            out[c, j] = rotated[c, j, j]
    if not equal_volume:
        for c in range(n_components):
            for j in range(n_features):
                out[c, j] /= weights[c]
        return
    # EVE: A_k = B_k / |B_k|^(1/d), lambda = sum_k |B_k|^(1/d) / n.
    total_volume = 0.0
    total_weight = 0.0
    for c in range(n_components):
        log_volume = 0.0
        for j in range(n_features):
            log_volume += math.log(out[c, j])
        volume = math.exp(log_volume / n_features)
        total_volume += volume
        total_weight += weights[c]
        for j in range(n_features):
            out[c, j] /= volume
    scale = total_volume / total_weight
    for c in range(n_components):
        for j in range(n_features):
            out[c, j] *= scale


@helper
def _objective(weights, diagonal):
    total = 0.0
    for c in range(diagonal.shape[0]):
        for j in range(diagonal.shape[1]):
            total += weights[c] * math.log(diagonal[c, j])
    return total


@helper
def orientation_sweeps(orientation, rotated, weights, equal_volume, tolerance, max_iterations, diagonal):
    """Alternate Lambda_k and sweeps of plane rotations of D, in place; returns the objective.

    ``orientation`` (d, d) is D; ``rotated`` (k, d, d) holds D^T W_k D and is
    kept up to date; ``diagonal`` (k, d) receives Lambda_k. The objective is
    sum_k n_k log|Lambda_k| (the trace term is constant once Lambda_k is
    fitted). Rotating columns i and j of D by t changes
    sum_k tr(Lambda_k^-1 D^T W_k D) by A cos 2t + B sin 2t + constant; each
    rotation takes the minimising t.
    """
    n_components, n_features = diagonal.shape
    objective = math.inf
    for _ in range(max_iterations):
        _diagonals(rotated, weights, equal_volume, diagonal)
        previous = objective
        objective = _objective(weights, diagonal)
        if abs(objective - previous) <= tolerance * (1.0 + abs(objective)):
            break
        for i in range(n_features):
            for j in range(i + 1, n_features):
                a = 0.0
                b = 0.0
                for c in range(n_components):
                    difference = 1.0 / diagonal[c, i] - 1.0 / diagonal[c, j]
                    a += 0.5 * difference * (rotated[c, i, i] - rotated[c, j, j])
                    b += difference * rotated[c, i, j]
                radius = math.hypot(a, b)
                if radius == 0.0:
                    continue
                cosine = math.sqrt(0.5 * (1.0 - a / radius))  # cos t, with cos 2t = -a / radius
                # sin t from sin^2 t = (1 - cos 2t) / 2 with the sign of sin 2t (cos t >= 0): no division
                # by a small cos t, which would let D drift from orthogonal.
                sine = math.copysign(math.sqrt(0.5 * (1.0 + a / radius)), -b)
                for r in range(n_features):
                    left = orientation[r, i]
                    right = orientation[r, j]
                    orientation[r, i] = cosine * left + sine * right
                    orientation[r, j] = -sine * left + cosine * right
                for c in range(n_components):
                    for r in range(n_features):
                        left = rotated[c, i, r]
                        right = rotated[c, j, r]
                        rotated[c, i, r] = cosine * left + sine * right
                        rotated[c, j, r] = -sine * left + cosine * right
                    for r in range(n_features):
                        left = rotated[c, r, i]
                        right = rotated[c, r, j]
                        rotated[c, r, i] = cosine * left + sine * right
                        rotated[c, r, j] = -sine * left + cosine * right
    _diagonals(rotated, weights, equal_volume, diagonal)
    return _objective(weights, diagonal)
