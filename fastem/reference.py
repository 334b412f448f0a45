"""The naive textbook EMs of fastem's model families, in plain NumPy/SciPy.

These are the algorithms a user would write first, slow on purpose and kept
simple so that they serve as the correctness oracles of the fast kernels and
as baselines of the benchmarks:

* Gaussian mixtures (``e_step``, ``m_step``, ``fit``): per-component
  ``scipy.stats.multivariate_normal`` densities, an explicit n x k
  responsibility matrix, two-pass weighted covariances.
* mclust's constrained covariance models (``constrained_mstep``): the
  M-step maximised numerically (BFGS over the volume, shape and orientation
  of Celeux & Govaert's decomposition, from several starts), with no use of
  the closed forms or the iterations of ``fastem.mixture.constrained_mstep``.
* Gaussian mixtures on data with missing values (``missing_e_step``,
  ``missing_m_step``, ``missing_fit``, ``missing_impute``): one row at a
  time, the marginal density of its observed coordinates, then the
  conditional mean and covariance of its missing ones.
* Gaussian HMMs (``hmm_forward_backward``, ``hmm_viterbi``, ``hmm_fit``):
  Baum-Welch in log space, one sequence at a time, with explicit
  (T - 1, k, k) transition posteriors.
* Topic models (``lda_digamma``, ``lda_e_step``, ``lda_bound``,
  ``lda_batch_fit``): variational EM for LDA one document at a time, with
  dense per-document arrays, as Hoffman, Blei & Bach (2010) write it, using
  scikit-learn's digamma approximation so that its answers are comparable
  to the bit-level rounding of the kernels.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp
from scipy.stats import multivariate_normal


def full_covariances(covariances, covariance_type: str, n_components: int, n_features: int) -> np.ndarray:
    """Expand covariances of any type to (n_components, n_features, n_features)."""
    covariances = np.asarray(covariances, dtype=np.float64)
    if covariance_type == "full":
        return covariances.copy()
    if covariance_type == "tied":
        return np.repeat(covariances[None], n_components, axis=0)
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in covariances])
    return np.stack([np.eye(n_features) * c for c in covariances])


def covariances_from_scatter(scatter, nk, covariance_type: str, reg_covar: float) -> np.ndarray:
    """Covariances of ``covariance_type`` from per-component scatter matrices (k, d, d) about the means."""
    n_features = scatter.shape[-1]
    if covariance_type == "full":
        return scatter / nk[:, None, None] + reg_covar * np.eye(n_features)
    if covariance_type == "tied":
        return scatter.sum(axis=0) / nk.sum() + reg_covar * np.eye(n_features)
    if covariance_type == "diag":
        return np.diagonal(scatter, axis1=1, axis2=2) / nk[:, None] + reg_covar
    return np.diagonal(scatter, axis1=1, axis2=2).mean(axis=1) / nk + reg_covar


def weighted_log_prob(X, weights, means, covariances, covariance_type: str) -> np.ndarray:
    """log w_j + log N(x_i | mean_j, Sigma_j), shape (n_samples, n_components)."""
    X = np.asarray(X, dtype=np.float64)
    n_components, n_features = np.shape(means)
    full = full_covariances(covariances, covariance_type, n_components, n_features)
    columns = [
        np.log(weights[j]) + multivariate_normal(mean=means[j], cov=full[j]).logpdf(X).reshape(-1)
        for j in range(n_components)
    ]
    return np.stack(columns, axis=1)


def e_step(X, weights, means, covariances, covariance_type: str):
    """Responsibilities (n_samples, n_components) and per-row log-likelihoods (n_samples,)."""
    log_prob = weighted_log_prob(X, weights, means, covariances, covariance_type)
    log_norm = logsumexp(log_prob, axis=1)
    return np.exp(log_prob - log_norm[:, None]), log_norm


def m_step(X, resp, covariance_type: str, reg_covar: float, sample_weight=None):
    """Weighted maximum-likelihood parameters given responsibilities."""
    X = np.asarray(X, dtype=np.float64)
    n_samples, n_features = X.shape
    sample_weight = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    weighted_resp = resp * sample_weight[:, None]
    nk = weighted_resp.sum(axis=0)
    means = (weighted_resp.T @ X) / nk[:, None]
    scatter = np.stack([((X - means[j]).T * weighted_resp[:, j]) @ (X - means[j]) for j in range(len(nk))])
    return nk / nk.sum(), means, covariances_from_scatter(scatter, nk, covariance_type, reg_covar)


def fit(X, weights, means, covariances, covariance_type: str = "full", n_iter: int = 10, reg_covar: float = 1e-6, sample_weight=None):
    """Run ``n_iter`` EM iterations from the given parameters.

    Returns
    -------
    result : dict
        ``weights``, ``means``, ``covariances`` after the last M-step and
        ``lower_bounds``: the weighted mean log-likelihood before each M-step.
    """
    X = np.asarray(X, dtype=np.float64)
    sample_weight = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    lower_bounds = []
    for _ in range(n_iter):
        resp, log_norm = e_step(X, weights, means, covariances, covariance_type)
        lower_bounds.append(float(sample_weight @ log_norm / sample_weight.sum()))
        weights, means, covariances = m_step(X, resp, covariance_type, reg_covar, sample_weight)
    return {"weights": weights, "means": means, "covariances": covariances, "lower_bounds": lower_bounds}


def stepwise_fit(batches, weights, means, covariances, covariance_type: str = "full", decay: float = 0.6,
                 reg_covar: float = 1e-6):
    """Stepwise (online) EM from given parameters over a list of mini-batches, in plain sums.

    Running per-row averages of sum r, sum r x and sum r x x^T, blended with
    each batch's as ``s <- (1 - rho_t) s + rho_t b``, ``rho_t = (t + 2) **
    -decay`` for batch t = 1, 2, ... (batch 0 replaces them), then the M-step. The oracle of
    ``GaussianMixture.partial_fit`` after its initialisation.
    """
    running = None
    for t, X in enumerate(batches):
        X = np.asarray(X, dtype=np.float64)
        resp, _ = e_step(X, weights, means, covariances, covariance_type)
        batch = (
            resp.sum(axis=0) / len(X),
            resp.T @ X / len(X),
            np.einsum("ij,ia,ib->jab", resp, X, X) / len(X),
        )
        rho = 1.0 if running is None else (t + 2.0) ** -decay  # batch t (from 0); the first replaces
        running = batch if running is None else tuple((1 - rho) * r + rho * b for r, b in zip(running, batch))
        nk, sum_x, sum_xx = running
        nk = nk + 10 * np.finfo(np.float64).eps
        means = sum_x / nk[:, None]
        scatter = sum_xx - nk[:, None, None] * means[:, :, None] * means[:, None, :]
        weights = nk / nk.sum()
        covariances = covariances_from_scatter(scatter, nk, covariance_type, reg_covar)
    return weights, means, covariances


###############################################################################
# mclust's constrained covariance models: the M-step maximised numerically


def _skew(entries, n_features):
    """The skew-symmetric matrix with ``entries`` above the diagonal."""
    matrix = np.zeros((n_features, n_features))
    matrix[np.triu_indices(n_features, 1)] = entries
    return matrix - matrix.T


def _decomposition_parts(letters: str, n_components: int, n_features: int) -> list:
    """(part, count per instance, instances) of Sigma_k = lambda_k D_k A_k D_k^T for mclust's three letters."""
    instances = {"E": 1, "V": n_components, "I": 0}
    parts = [("volume", 1, instances[letters[0]]), ("shape", n_features - 1, instances[letters[1]])]
    parts.append(("orientation", n_features * (n_features - 1) // 2, instances[letters[2]]))
    return parts


def constrained_covariances_from_theta(theta, letters: str, n_components: int, n_features: int) -> np.ndarray:
    """Sigma_k (k, d, d) from the free parameters: log volumes, log shapes (summing to 0), skew entries -> expm."""
    from scipy.linalg import expm

    values, offset = {}, 0
    for part, count, instances in _decomposition_parts(letters, n_components, n_features):
        chunk = np.asarray(theta[offset:offset + count * instances]).reshape(instances, count)
        offset += count * instances
        values[part] = [chunk[min(j, instances - 1)] if instances else None for j in range(n_components)]
    covariances = np.empty((n_components, n_features, n_features))
    for j in range(n_components):
        volume = np.exp(values["volume"][j][0])
        log_shape = np.zeros(n_features) if values["shape"][j] is None else np.append(values["shape"][j], 0.0)
        shape = np.exp(log_shape - log_shape.mean())
        rotation = np.eye(n_features) if values["orientation"][j] is None else expm(_skew(values["orientation"][j], n_features))
        covariances[j] = volume * (rotation * shape) @ rotation.T
    return covariances


def constrained_objective(covariances, resp_sum, scatter) -> float:
    """sum_k n_k log|Sigma_k| + tr(W_k Sigma_k^-1): minus twice the M-step's objective, up to a constant."""
    total = 0.0
    for n_k, sigma, w in zip(resp_sum, covariances, scatter):
        total += n_k * np.linalg.slogdet(sigma)[1] + np.trace(np.linalg.solve(sigma, w))
    return float(total)


def constrained_mstep(letters: str, resp_sum, covariances, n_random_starts: int = 4, seed: int = 0):
    """The covariances of mclust model ``letters`` (e.g. 'VEV') that maximise the M-step's objective, numerically.

    ``covariances`` are the unconstrained per-component covariances S_k
    (k, d, d), ``resp_sum`` the weights n_k; the scatter is W_k = n_k S_k.
    BFGS runs over the model's free parameters (their number is mclust's
    count) from a start near the unconstrained covariances and from random
    starts; the best end is returned as (covariances (k, d, d), number of free
    parameters).
    """
    from scipy.linalg import logm
    from scipy.optimize import minimize

    resp_sum = np.asarray(resp_sum, dtype=np.float64)
    covariances = np.asarray(covariances, dtype=np.float64)
    n_components, n_features = covariances.shape[:2]
    scatter = resp_sum[:, None, None] * covariances
    parts = _decomposition_parts(letters, n_components, n_features)
    n_free = sum(count * instances for _, count, instances in parts)

    def objective(theta):
        return constrained_objective(constrained_covariances_from_theta(theta, letters, n_components, n_features), resp_sum, scatter)

    # A start from the unconstrained covariances: each instance takes the mean of its components' logs.
    start = []
    eigen = []
    for sigma in covariances:
        vals, vecs = np.linalg.eigh(sigma)
        vals, vecs = vals[::-1], vecs[:, ::-1]
        if np.linalg.det(vecs) < 0:
            vecs[:, -1] *= -1
        eigen.append((np.log(vals), vecs))
    for part, count, instances in parts:
        for i in range(instances):
            members = range(n_components) if instances == 1 else [i]
            if part == "volume":
                start.append(np.mean([eigen[j][0].mean() for j in members]))
            elif part == "shape":
                log_shape = np.mean([eigen[j][0] - eigen[j][0].mean() for j in members], axis=0)
                start.extend(log_shape[:-1] - log_shape[-1])
            else:
                skew = np.real(logm(eigen[next(iter(members))][1]))
                start.extend(skew[np.triu_indices(n_features, 1)])
    rng = np.random.default_rng(seed)
    starts = [np.array(start)] + [rng.normal(scale=0.5, size=n_free) for _ in range(n_random_starts)]
    best = None
    for theta in starts:
        result = minimize(objective, theta, method="BFGS", options={"gtol": 1e-10, "maxiter": 20000})
        if best is None or result.fun < best.fun:
            best = result
    return constrained_covariances_from_theta(best.x, letters, n_components, n_features), n_free


###############################################################################
# Gaussian mixtures with missing values (NaN): exact EM, one row at a time


def _row_conditionals(x, means, full):
    """For one row with NaN: its observed mask, log N(x_O | component j) for each j, and for each j
    the completed row (x_O kept, x_M = E[x_M | x_O, j]) and the (d, d) conditional covariance
    (zero outside the missing block)."""
    observed = ~np.isnan(x)
    n_components, n_features = means.shape
    log_dens = np.zeros(n_components)
    completed = np.tile(x, (n_components, 1))
    cond = np.zeros((n_components, n_features, n_features))
    o, m = np.flatnonzero(observed), np.flatnonzero(~observed)
    for j in range(n_components):
        sigma = full[j]
        if o.size:
            log_dens[j] = multivariate_normal(mean=means[j, o], cov=sigma[np.ix_(o, o)]).logpdf(x[o])
        if m.size:
            if o.size:
                regression = sigma[np.ix_(m, o)] @ np.linalg.inv(sigma[np.ix_(o, o)])
                completed[j, m] = means[j, m] + regression @ (x[o] - means[j, o])
                cond[j][np.ix_(m, m)] = sigma[np.ix_(m, m)] - regression @ sigma[np.ix_(o, m)]
            else:
                completed[j, m] = means[j, m]
                cond[j] = sigma
    return observed, log_dens, completed, cond


def missing_e_step(X, weights, means, covariances, covariance_type: str):
    """Per row: responsibilities (n, k), log p(x_O) (n,), completed rows (n, k, d), conditional covariances (n, k, d, d).

    A row with no observed value has log p = 0 and the weights as responsibilities.
    """
    X = np.asarray(X, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    n_components, n_features = means.shape
    full = full_covariances(covariances, covariance_type, n_components, n_features)
    n_samples = X.shape[0]
    resp = np.empty((n_samples, n_components))
    log_norm = np.empty(n_samples)
    completed = np.empty((n_samples, n_components, n_features))
    cond = np.empty((n_samples, n_components, n_features, n_features))
    for i, x in enumerate(X):
        _, log_dens, completed[i], cond[i] = _row_conditionals(x, means, full)
        log_prob = np.log(weights) + log_dens
        log_norm[i] = logsumexp(log_prob)
        resp[i] = np.exp(log_prob - log_norm[i])
    return resp, log_norm, completed, cond


def missing_m_step(resp, completed, cond, covariance_type: str, reg_covar: float, sample_weight=None):
    """Maximum-likelihood parameters from the expected complete-data statistics (two passes)."""
    n_samples, n_components, n_features = completed.shape
    sample_weight = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    weighted_resp = resp * sample_weight[:, None]
    nk = weighted_resp.sum(axis=0)
    means = np.einsum("ij,ijd->jd", weighted_resp, completed) / nk[:, None]
    diff = completed - means[None]
    scatter = np.einsum("ij,ija,ijb->jab", weighted_resp, diff, diff) + np.einsum("ij,ijab->jab", weighted_resp, cond)
    return nk / nk.sum(), means, covariances_from_scatter(scatter, nk, covariance_type, reg_covar)


def missing_fit(X, weights, means, covariances, covariance_type: str = "full", n_iter: int = 10,
                reg_covar: float = 1e-6, sample_weight=None):
    """``n_iter`` exact EM iterations on X with NaN, from the given parameters.

    Rows with no observed value are left out of the statistics (they carry
    no information) but count in the mean log-likelihood with log p = 0.
    Returns a dict like :func:`fit`.
    """
    X = np.asarray(X, dtype=np.float64)
    sample_weight = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    informative = ~np.isnan(X).all(axis=1)
    lower_bounds = []
    for _ in range(n_iter):
        resp, log_norm, completed, cond = missing_e_step(X, weights, means, covariances, covariance_type)
        lower_bounds.append(float(sample_weight @ log_norm / sample_weight.sum()))
        weights, means, covariances = missing_m_step(
            resp[informative], completed[informative], cond[informative], covariance_type, reg_covar,
            sample_weight[informative],
        )
    return {"weights": weights, "means": means, "covariances": covariances, "lower_bounds": lower_bounds}


def missing_impute(X, weights, means, covariances, covariance_type: str):
    """X with each NaN replaced by sum_j r_j E[x_M | x_O, j]."""
    resp, _, completed, _ = missing_e_step(X, weights, means, covariances, covariance_type)
    return np.einsum("ij,ijd->id", resp, completed)


###############################################################################
# Gaussian HMM: Baum-Welch and Viterbi in log space


def _split(X, lengths):
    X = np.asarray(X, dtype=np.float64)
    lengths = [X.shape[0]] if lengths is None else list(lengths)
    return np.split(X, np.cumsum(lengths)[:-1])


def hmm_forward_backward(X, startprob, transmat, means, covars, covariance_type: str):
    """One sequence: (log-likelihood, posteriors (T, k), summed transition posteriors (k, k))."""
    ones = np.ones(len(startprob))
    log_b = weighted_log_prob(X, ones, means, covars, covariance_type)
    with np.errstate(divide="ignore"):
        log_pi, log_a = np.log(startprob), np.log(transmat)
    n_rows, n_states = log_b.shape
    log_alpha = np.empty((n_rows, n_states))
    log_beta = np.zeros((n_rows, n_states))
    log_alpha[0] = log_pi + log_b[0]
    for t in range(1, n_rows):
        log_alpha[t] = logsumexp(log_alpha[t - 1][:, None] + log_a, axis=0) + log_b[t]
    for t in range(n_rows - 2, -1, -1):
        log_beta[t] = logsumexp(log_a + (log_b[t + 1] + log_beta[t + 1])[None, :], axis=1)
    log_likelihood = logsumexp(log_alpha[-1])
    posteriors = np.exp(log_alpha + log_beta - log_likelihood)
    log_xi = log_alpha[:-1, :, None] + log_a[None] + (log_b[1:] + log_beta[1:])[:, None, :] - log_likelihood
    return float(log_likelihood), posteriors, np.exp(log_xi).sum(axis=0)


def hmm_viterbi(X, startprob, transmat, means, covars, covariance_type: str):
    """One sequence: (log-probability of the most likely path, the path)."""
    log_b = weighted_log_prob(X, np.ones(len(startprob)), means, covars, covariance_type)
    with np.errstate(divide="ignore"):
        log_pi, log_a = np.log(startprob), np.log(transmat)
    n_rows = log_b.shape[0]
    lattice = np.empty_like(log_b)
    lattice[0] = log_pi + log_b[0]
    for t in range(1, n_rows):
        lattice[t] = (lattice[t - 1][:, None] + log_a).max(axis=0) + log_b[t]
    path = np.empty(n_rows, dtype=np.int64)
    path[-1] = np.argmax(lattice[-1])
    for t in range(n_rows - 2, -1, -1):
        path[t] = np.argmax(lattice[t] + log_a[:, path[t + 1]])
    return float(lattice[-1].max()), path


def hmm_fit(X, lengths, startprob, transmat, means, covars, covariance_type: str = "diag", n_iter: int = 10,
            sequence_weights=None):
    """Maximum-likelihood Baum-Welch from the given parameters, ``n_iter`` iterations.

    ``sequence_weights`` multiplies each sequence's statistics. Returns a dict
    with the parameters after the last M-step and ``history``: the weighted
    log-likelihood before each M-step.
    """
    sequences = _split(X, lengths)
    weights = np.ones(len(sequences)) if sequence_weights is None else np.asarray(sequence_weights, dtype=np.float64)
    startprob, transmat = np.array(startprob, dtype=float), np.array(transmat, dtype=float)
    means, covars = np.array(means, dtype=float), np.array(covars, dtype=float)
    n_states, n_features = means.shape
    history = []
    for _ in range(n_iter):
        start, trans, log_likelihood = np.zeros(n_states), np.zeros((n_states, n_states)), 0.0
        rows, resp = [], []
        for w, sequence in zip(weights, sequences):
            sequence_ll, posterior, xi = hmm_forward_backward(sequence, startprob, transmat, means, covars, covariance_type)
            log_likelihood += w * sequence_ll
            start += w * posterior[0]
            trans += w * xi
            rows.append(sequence)
            resp.append(posterior * w)
        history.append(log_likelihood)
        startprob = start / start.sum()
        transmat = trans / trans.sum(axis=1, keepdims=True)
        data, resp = np.vstack(rows), np.vstack(resp)
        nk = resp.sum(axis=0)
        means = (resp.T @ data) / nk[:, None]
        scatter = np.stack([((data - means[j]).T * resp[:, j]) @ (data - means[j]) for j in range(n_states)])
        covars = covariances_from_scatter(scatter, nk, covariance_type, 0.0)
    return {"startprob": startprob, "transmat": transmat, "means": means, "covars": covars, "history": history}


def lda_digamma(x) -> np.ndarray:
    """Digamma by J. Bernardo's Algorithm AS 103 (scikit-learn's LDA uses it), elementwise, for x > 0."""
    x = np.array(x, dtype=np.float64)
    result = np.zeros_like(x)
    shifted = x.copy()
    while True:
        below = shifted < 6.0
        if not below.any():
            break
        result[below] -= 1.0 / shifted[below]
        shifted[below] += 1.0
    r = 1.0 / shifted
    result += np.log(shifted) - 0.5 * r
    r = r * r
    result -= r * ((1.0 / 12.0) - r * ((1.0 / 120.0) - r * (1.0 / 252.0)))
    tiny = x <= 1e-6
    result[tiny] = -0.5772156649015329 - 1.0 / x[tiny]
    return result


def _lda_log_expectation(concentrations) -> np.ndarray:
    """E[log theta] of Dirichlet rows, with the AS 103 digamma."""
    concentrations = np.asarray(concentrations, dtype=np.float64)
    return lda_digamma(concentrations) - lda_digamma(concentrations.sum(axis=-1, keepdims=True))


def lda_e_step(X, topics, doc_topic_prior: float, start, max_updates: int = 100, tol: float = 1e-3,
               eps: float = np.finfo(np.float64).eps):
    """The variational E-step of LDA, one document at a time.

    ``X`` (n_docs, n_words) dense counts, ``topics`` lambda (K, V), ``start``
    each document's first gamma (n_docs, K). Returns (gamma (n_docs, K),
    statistics (K, V)): the expected topic-word counts, the completed
    ``sum_d phi_dwk n_dw``.
    """
    X = np.asarray(X, dtype=np.float64)
    exp_topics = np.exp(_lda_log_expectation(topics))
    gamma = np.array(start, dtype=np.float64)
    statistics = np.zeros_like(exp_topics)
    for d in range(X.shape[0]):
        words = np.flatnonzero(X[d])
        counts = X[d, words]
        beta = exp_topics[:, words]
        doc_gamma = gamma[d]
        theta = np.exp(_lda_log_expectation(doc_gamma))
        for _ in range(max_updates):
            phi_norm = theta @ beta + eps
            new_gamma = doc_topic_prior + theta * (beta @ (counts / phi_norm))
            theta = np.exp(_lda_log_expectation(new_gamma))
            change = np.mean(np.abs(new_gamma - doc_gamma))
            doc_gamma = new_gamma
            if change < tol:
                break
        gamma[d] = doc_gamma
        phi_norm = theta @ beta + eps
        statistics[:, words] += np.outer(theta, counts / phi_norm) * beta
    return gamma, statistics


def lda_bound(X, topics, gamma, doc_topic_prior: float, topic_word_prior: float) -> float:
    """The variational lower bound of the log-likelihood of the documents X under (lambda, gamma)."""
    from scipy.special import gammaln

    X = np.asarray(X, dtype=np.float64)
    log_theta = _lda_log_expectation(gamma)
    log_beta = _lda_log_expectation(topics)
    score = 0.0
    for d in range(X.shape[0]):
        words = np.flatnonzero(X[d])
        score += X[d, words] @ logsumexp(log_theta[d][:, None] + log_beta[:, words], axis=0)
    n_topics, n_words = topics.shape
    for prior, concentrations, log_expectation, size in ((doc_topic_prior, gamma, log_theta, n_topics),
                                                         (topic_word_prior, topics, log_beta, n_words)):
        score += np.sum((prior - concentrations) * log_expectation)
        score += np.sum(gammaln(concentrations) - gammaln(prior))
        score += np.sum(gammaln(prior * size) - gammaln(concentrations.sum(axis=1)))
    return float(score)


def lda_batch_fit(X, topics, doc_topic_prior: float, topic_word_prior: float, starts, max_updates: int = 100,
                  tol: float = 1e-3):
    """Batch variational EM for LDA from lambda ``topics``; ``starts`` gives each iteration's starting gamma.

    Returns lambda after ``len(starts)`` iterations.
    """
    topics = np.array(topics, dtype=np.float64)
    for start in starts:
        _, statistics = lda_e_step(X, topics, doc_topic_prior, start, max_updates, tol)
        topics = topic_word_prior + statistics
    return topics
