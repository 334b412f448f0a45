"""The covariance models of a Gaussian mixture: scikit-learn's four names and mclust's fourteen.

mclust (Fraley & Raftery) names each model by three letters after the
eigen-decomposition of Celeux & Govaert (1995),

    Sigma_k = lambda_k D_k A_k D_k^T,

with ``lambda_k`` the volume (a scalar, ``|Sigma_k|^(1/d)``), ``A_k`` the
shape (diagonal, determinant 1) and ``D_k`` the orientation (orthogonal).
Each letter says whether that part is Equal across components, Variable, or
the Identity: 'VEV' has variable volumes, one shared shape and variable
orientations.

Every model is evaluated by one of the four kernel *layouts* of the E-step:
a scalar per component ('spherical'), a diagonal per component ('diag'), one
shared matrix ('tied') or a matrix per component ('full'). The models differ
only in the M-step (``constrained_mstep``) and in their parameter counts.
scikit-learn's names are four of mclust's models: spherical = VII,
diag = VVI, tied = EEE, full = VVV; those run the M-steps they always ran.
"""

from __future__ import annotations

#: scikit-learn's names, each the mclust model it is.
SKLEARN_TYPES = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}

#: mclust's fourteen models, in mclust's order.
MCLUST_MODELS = (
    "EII", "VII", "EEI", "VEI", "EVI", "VVI",
    "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV",
)

#: Every name ``GaussianMixture(covariance_type=...)`` accepts.
COVARIANCE_MODELS = tuple(SKLEARN_TYPES) + MCLUST_MODELS

_SAME_AS_SKLEARN = {model: name for name, model in SKLEARN_TYPES.items()}

_DESCRIPTIONS = {"E": "equal", "V": "varying", "I": "identity"}


def kernel_layout(covariance_type: str) -> str:
    """The E-step layout ('full', 'tied', 'diag' or 'spherical') that evaluates ``covariance_type``.

    Its covariances have the layout's shape: (k, d, d), (d, d), (k, d) or (k,).
    """
    name = mclust_name(covariance_type)
    if name[2] == "I":  # axis-aligned: a scalar or a diagonal per component
        return "spherical" if name[1] == "I" else "diag"
    return "tied" if name == "EEE" else "full"


def canonical_name(covariance_type: str) -> str:
    """scikit-learn's name for the four models it has ('VVV' -> 'full'), the mclust name otherwise."""
    return _SAME_AS_SKLEARN.get(covariance_type, covariance_type)


def mclust_name(covariance_type: str) -> str:
    """mclust's three letters for ``covariance_type`` ('full' -> 'VVV')."""
    return SKLEARN_TYPES.get(covariance_type, covariance_type)


def is_constrained(covariance_type: str) -> bool:
    """Whether the model needs an M-step beyond scikit-learn's four (its covariances are constrained)."""
    return canonical_name(covariance_type) not in SKLEARN_TYPES


def describe(covariance_type: str) -> str:
    """Words for the model, e.g. 'VEV: varying volume, equal shape, varying orientation'."""
    name = mclust_name(covariance_type)
    volume, shape, orientation = (_DESCRIPTIONS[letter] for letter in name)
    if name[1] == "I":
        return f"{name}: spherical, {volume} volume"
    if name[2] == "I":
        return f"{name}: diagonal, {volume} volume, {shape} shape"
    return f"{name}: ellipsoidal, {volume} volume, {shape} shape, {orientation} orientation"


def n_covariance_parameters(covariance_type: str, n_components: int, n_features: int) -> int:
    """Free parameters of the covariances, as mclust counts them (``nVarParams``).

    A volume is one number per component (V) or one in all (E); a shape
    d - 1 numbers (its determinant is 1); an orientation d (d - 1) / 2.
    'EEE' and 'VVV' keep the plain counts of one or k symmetric matrices.
    """
    name = mclust_name(covariance_type)
    k, d = n_components, n_features
    rotation = d * (d - 1) // 2
    if name == "EEE":
        return d * (d + 1) // 2
    if name == "VVV":
        return k * d * (d + 1) // 2
    per_letter = {"E": 1, "V": k, "I": 0}
    volume = per_letter[name[0]]
    shape = per_letter[name[1]] * (d - 1)
    orientation = per_letter[name[2]] * rotation
    return volume + shape + orientation
