"""Exceptions and warnings raised by fastem."""


class NotFittedError(ValueError, AttributeError):
    """Raised when a method needs a fitted model and the model is not fitted.

    Subclasses both ``ValueError`` and ``AttributeError``, as scikit-learn's
    exception of the same name does, so code written for either catches it.
    """


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before the lower bound changed less than ``tol``."""
