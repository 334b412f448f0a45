"""Starting partitions for a model-selection sweep, shared by every covariance model of a number of components.

A start is a set of k centres; the rows are assigned to their nearest centre,
and each covariance model's own M-step on that hard partition gives its
initial parameters. Computing the centres once per number of components and
reusing them for every model is what makes a sweep of 14 models cheap.

* The first start comes from agglomerative clustering (Ward's criterion) of a
  seeded subsample of the standardised rows, as mclust starts from a
  model-based hierarchical agglomeration: one tree serves every number of
  components, cut at k clusters.
* Then k-means runs (k-means++ seeding, Lloyd iterations) and bare k-means++
  seedings, alternately, with different seeds. Lloyd iterations from
  different seeds often end at the same partition, and the k-means optimum
  is not always near the mixture's (three blobs cut in two: k-means splits
  off the farthest blob, the mixture the tightest one); the seedings keep
  the starts diverse.
"""

from __future__ import annotations

import numpy as np

from fastem._core.kmeans import kmeans, kmeans_plusplus

#: Rows of the subsample the hierarchical tree is built on (Ward's algorithm
#: needs O(m^2) memory and time: 2,000 rows take ~50 ms and 16 MB).
HIERARCHY_ROWS = 2000

# Rows per NumPy batch when assigning rows to their nearest centre: bounds the
# batch's distance matrix to ASSIGN_BATCH_ROWS * k floats.
_ASSIGN_BATCH_ROWS = 65536


def hierarchy(X: np.ndarray, sample_weight, random_state):
    """The Ward tree of a seeded subsample of X's standardised rows: (linkage matrix, subsample rows)."""
    from scipy.cluster.hierarchy import linkage

    n_samples = X.shape[0]
    candidates = np.arange(n_samples) if sample_weight is None else np.flatnonzero(sample_weight > 0)
    if candidates.size > HIERARCHY_ROWS:
        candidates = np.sort(random_state.choice(candidates, size=HIERARCHY_ROWS, replace=False))
    rows = X[candidates].astype(np.float64)
    scale = rows.std(axis=0)
    scale[scale == 0] = 1.0
    standardised = (rows - rows.mean(axis=0)) / scale
    if rows.shape[0] < 2:
        return None, rows
    return linkage(standardised, method="ward"), rows


def hierarchy_centres(tree, rows: np.ndarray, n_components: int):
    """Centres of the tree cut at ``n_components`` clusters, or None when it has fewer distinct clusters."""
    from scipy.cluster.hierarchy import fcluster

    if tree is None or rows.shape[0] < n_components:
        return None
    labels = fcluster(tree, n_components, criterion="maxclust") - 1
    if np.unique(labels).size != n_components:
        return None
    return np.stack([rows[labels == j].mean(axis=0) for j in range(n_components)])


def kmeans_centres(X: np.ndarray, sample_weight, n_components: int, random_state, lloyd: bool = True) -> np.ndarray:
    """Centres of a k-means run (``lloyd``) or of its k-means++ seeding alone, as float64."""
    weights = np.empty(0) if sample_weight is None else sample_weight
    if lloyd:
        centres, _ = kmeans(X, weights, n_components, random_state)
    else:
        centres, _ = kmeans_plusplus(X, weights, n_components, random_state)
    return np.asarray(centres, dtype=np.float64)


def nearest_centre(X: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Label of each row's nearest centre (squared Euclidean distance), in row batches."""
    labels = np.empty(X.shape[0], dtype=np.intp)
    centre_norms = (centres**2).sum(axis=1)
    for start in range(0, X.shape[0], _ASSIGN_BATCH_ROWS):
        batch = X[start:start + _ASSIGN_BATCH_ROWS].astype(np.float64)
        distances = centre_norms[None, :] - 2.0 * batch @ centres.T
        labels[start:start + batch.shape[0]] = np.argmin(distances, axis=1)
    return labels
