"""Slow, obviously-correct references for fastem's kernels (loops and plain NumPy)."""

from __future__ import annotations

import numpy as np

from fastem import reference


def estep_stats(X, sample_weight, weights, means, covariances, covariance_type):
    """What an E-step kernel must produce, computed from an explicit responsibility matrix.

    Returns resp_sum (k,), first (k, d) and second in the covariance type's
    layout, all centred at ``means``, plus sum_i w_i log p(x_i) and sum_i w_i.
    """
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    resp, log_norm = reference.e_step(X, weights, means, covariances, covariance_type)
    weighted = resp * w[:, None]
    k = len(weights)
    diffs = [X - means[j] for j in range(k)]
    resp_sum = weighted.sum(axis=0)
    first = np.stack([weighted[:, j] @ diffs[j] for j in range(k)])
    full = np.stack([(diffs[j].T * weighted[:, j]) @ diffs[j] for j in range(k)])
    if covariance_type == "full":
        second = full
    elif covariance_type == "tied":
        second = full.sum(axis=0)
    else:
        second = np.diagonal(full, axis1=1, axis2=2)
    return resp_sum, first, second, float(w @ log_norm), float(w.sum())


def label_stats(X, sample_weight, labels, shift):
    """N_j, S1_j, S2_j of the rows labelled j, centred at shift_j, by a loop over rows."""
    k, d = shift.shape
    resp_sum = np.zeros(k)
    first = np.zeros((k, d))
    second = np.zeros((k, d, d))
    for i, j in enumerate(labels):
        w = 1.0 if sample_weight is None else sample_weight[i]
        diff = X[i].astype(np.float64) - shift[j]
        resp_sum[j] += w
        first[j] += w * diff
        second[j] += w * np.outer(diff, diff)
    return resp_sum, first, second


def lloyd(X, sample_weight, centers, n_iter):
    """Plain weighted Lloyd iterations from given centres; returns (centers, labels)."""
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(len(X)) if sample_weight is None else sample_weight
    centers = np.array(centers, dtype=np.float64)
    for _ in range(n_iter):
        labels = np.argmin(((X[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
        for j in range(len(centers)):
            mask = labels == j
            if w[mask].sum() > 0:
                centers[j] = (w[mask] @ X[mask]) / w[mask].sum()
    labels = np.argmin(((X[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
    return centers, labels


def read_data_csv(name):
    """A file of tests/data (lines starting with # are comments, then a header; NA is missing) as float64."""
    from pathlib import Path

    lines = [line for line in (Path(__file__).parent / "data" / name).read_text().splitlines() if line and line[0] != "#"]
    return np.array([[np.nan if value == "NA" else float(value) for value in line.split(",")] for line in lines[1:]])


def normal_em_missing(X, n_iter):
    """Textbook EM for one multivariate normal with missing values (Little & Rubin, section 11.2).

    Plain sums of the completed rows and their expected cross-products, not
    centred: the algorithm as textbooks print it. Starts from each column's
    observed mean and variance.
    """
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    mean = np.nanmean(X, axis=0)
    cov = np.diag(np.nanvar(X, axis=0))
    for _ in range(n_iter):
        t1 = np.zeros(d)
        t2 = np.zeros((d, d))
        for x in X:
            o = ~np.isnan(x)
            m = ~o
            filled = x.copy()
            extra = np.zeros((d, d))
            if m.any():
                coef = cov[np.ix_(m, o)] @ np.linalg.inv(cov[np.ix_(o, o)])
                filled[m] = mean[m] + coef @ (x[o] - mean[o])
                extra[np.ix_(m, m)] = cov[np.ix_(m, m)] - coef @ cov[np.ix_(o, m)]
            t1 += filled
            t2 += np.outer(filled, filled) + extra
        mean = t1 / n
        cov = t2 / n - np.outer(mean, mean)
    return mean, cov


def monotone_normal_mle(X):
    """The closed-form maximum-likelihood mean and covariance of a normal from monotone missing data.

    Factored likelihood (Anderson 1957; Little & Rubin, chapter 7): columns in
    decreasing order of observed count; each column is regressed on all the
    previous ones over the rows where it is observed (which, the pattern being
    monotone, observe all the previous ones too), and the regressions are
    composed into the joint mean and covariance.
    """
    X = np.asarray(X, dtype=np.float64)
    observed = ~np.isnan(X)
    columns = sorted(range(X.shape[1]), key=lambda c: -observed[:, c].sum())
    first = columns[0]
    rows = observed[:, first]
    mean = {first: X[rows, first].mean()}
    cov = {(first, first): X[rows, first].var()}
    done = [first]
    for c in columns[1:]:
        rows = observed[:, c]
        assert observed[np.ix_(rows, done)].all(), "the pattern is not monotone"
        design = np.column_stack([np.ones(rows.sum()), X[np.ix_(rows, done)]])
        beta, *_ = np.linalg.lstsq(design, X[rows, c], rcond=None)
        residual = X[rows, c] - design @ beta
        variance = residual @ residual / rows.sum()
        slope = beta[1:]
        previous = np.array([[cov[(a, b)] for b in done] for a in done])
        mean[c] = beta[0] + slope @ np.array([mean[a] for a in done])
        covariances_with_done = previous @ slope
        for a, value in zip(done, covariances_with_done):
            cov[(a, c)] = cov[(c, a)] = value
        cov[(c, c)] = variance + slope @ previous @ slope
        done.append(c)
    d = X.shape[1]
    return np.array([mean[c] for c in range(d)]), np.array([[cov[(a, b)] for b in range(d)] for a in range(d)])
