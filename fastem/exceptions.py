"""Exceptions and warnings raised by fastem.

Drop-in code written for scikit-learn catches ``sklearn.exceptions.NotFittedError``
and filters ``sklearn.exceptions.ConvergenceWarning``. fastem cannot import
scikit-learn (it is not a dependency, and importing it costs ~0.6 s), but code
that names scikit-learn's classes has necessarily imported them. So, at the
moment of raising or warning, :func:`compatible` returns a subclass of both
fastem's class and scikit-learn's if ``sklearn.exceptions`` is loaded, and
fastem's class otherwise. ``except fastem.NotFittedError`` works either way.
"""

from __future__ import annotations

import functools
import sys


class NotFittedError(ValueError, AttributeError):
    """Raised when a method needs a fitted model and the model is not fitted.

    Subclasses both ``ValueError`` and ``AttributeError``, like scikit-learn's
    exception of the same name.
    """


class ModelFileError(ValueError):
    """A model file cannot be loaded: corrupted, truncated, of another format or version, or invalid.

    A ``ValueError``, so ``except ValueError`` catches it too. The message names
    the problem (the member, array or value at fault).
    """


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before the lower bound changed less than ``tol``."""


@functools.cache
def _combined(ours: type, theirs: type) -> type:
    return type(ours.__name__, (ours, theirs), {"__module__": ours.__module__, "__doc__": ours.__doc__})


def compatible(ours: type) -> type:
    """``ours``, or a subclass of it and scikit-learn's same-named class if scikit-learn is loaded."""
    module = sys.modules.get("sklearn.exceptions")
    theirs = getattr(module, ours.__name__, None) if module is not None else None
    return ours if theirs is None else _combined(ours, theirs)


def warn_at_caller(message: str, category=UserWarning) -> None:
    """``warnings.warn`` attributed to the first frame outside fastem: the user's line, however deep the call."""
    import os
    import sys
    import warnings

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 2  # level 1 is this function
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
