"""Column names of DataFrames: recorded by ``fit`` as ``feature_names_in_``, checked by every later method.

scikit-learn's rules, which code moving from scikit-learn relies on:

* ``fit`` on a table whose column names are all strings (pandas, polars)
  records them; ``fit`` on anything else removes a previous record.
* A later call with other names, or the same names in another order, raises
  a ``ValueError`` listing the unexpected and the missing names. Passing a
  plain array to a model fitted on names, or names to a model fitted on an
  array, warns (the columns are then taken by position).
* Column names of mixed types (some strings, some not) raise a ``TypeError``.
"""

from __future__ import annotations

import numpy as np

from fastem.exceptions import warn_at_caller


def feature_names_of(X) -> np.ndarray | None:
    """The string column names of a DataFrame-like ``X`` as an object array, or None."""
    if isinstance(X, np.ndarray):
        return None
    columns = getattr(X, "columns", None)
    if columns is None or isinstance(columns, (str, bytes)):
        return None
    try:
        names = list(columns)
    except TypeError:
        return None
    is_text = [isinstance(name, str) for name in names]
    if not names or not any(is_text):
        return None
    if not all(is_text):
        kinds = sorted({type(name).__name__ for name in names})
        raise TypeError(
            "Feature names are only supported if all input features have string names, but your input has "
            f"{kinds} as feature name / column name types. If you want feature names to be stored and validated, "
            "you must convert them all to strings, by using X.columns = X.columns.astype(str) for example. "
            "Otherwise you can remove feature / column names from your input data, or convert them all to a "
            "non-string data type."
        )
    return np.asarray(names, dtype=object)


def record_feature_names(estimator, names: np.ndarray | None) -> None:
    """Set ``feature_names_in_`` from a successful fit's ``names`` (from :func:`feature_names_of`), or remove it."""
    if names is None:
        estimator.__dict__.pop("feature_names_in_", None)
    else:
        estimator.feature_names_in_ = names


def check_feature_names(estimator, X) -> None:
    """Raise or warn, as scikit-learn does, when X's column names differ from those seen by ``fit``."""
    fitted = getattr(estimator, "feature_names_in_", None)
    names = feature_names_of(X)
    who = type(estimator).__name__
    if fitted is None and names is None:
        return
    if fitted is None:
        warn_at_caller(f"X has feature names, but {who} was fitted without feature names")
        return
    if names is None:
        warn_at_caller(f"X does not have valid feature names, but {who} was fitted with feature names")
        return
    if len(fitted) == len(names) and (fitted == names).all():
        return
    message = "The feature names should match those that were passed during fit.\n"
    fitted_set, given_set = set(fitted), set(names)
    unexpected = [name for name in names if name not in fitted_set]
    missing = [name for name in fitted if name not in given_set]

    def listed(title, items, limit=5):
        shown = "".join(f"- {name}\n" for name in items[:limit])
        return f"{title}\n{shown}" + ("- ...\n" if len(items) > limit else "")

    if unexpected:
        message += listed("Feature names unseen at fit time:", unexpected)
    if missing:
        message += listed("Feature names seen at fit time, yet now missing:", missing)
    if not unexpected and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    raise ValueError(message)
