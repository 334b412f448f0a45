"""The scikit-learn estimator protocol, without importing scikit-learn.

fastem's estimators work in Pipelines, ``clone`` and ``GridSearchCV``
because they implement the protocol those tools use: ``get_params``/
``set_params`` derived from the ``__init__`` signature, fitted attributes
ending in ``_``, and ``__sklearn_tags__`` (which imports scikit-learn
lazily: only scikit-learn itself ever calls it).

scikit-learn's checks and tools also expect ``isinstance(model,
sklearn.base.BaseEstimator)`` (``check_estimator`` warns otherwise).
Deriving from it at import would make every ``import fastem`` import
scikit-learn where it is installed: measured 0.85 s to 1.5 s more in a
fresh process, where fastem itself takes 0.5 s. Instead, as
``fastem.exceptions.compatible`` does for exceptions, fastem adopts it when
scikit-learn is loaded: :class:`EstimatorBase` starts on a placeholder base,
which :func:`adopt_sklearn_base` replaces by ``BaseEstimator`` the first time
an estimator is created, or scikit-learn asks for its tags or parameters,
after ``sklearn.base`` has been imported. Code that uses scikit-learn's tools
has necessarily imported it. fastem's own methods stay first in the method
order; ``BaseEstimator`` adds its notebook display and the rest below them.
"""

from __future__ import annotations

import inspect
import sys
import threading

from fastem.exceptions import NotFittedError, compatible


class _UntilScikitLearnIsLoaded:
    """The placeholder base of :class:`EstimatorBase` (a class of its own: ``object`` cannot be replaced)."""


_adoption_lock = threading.Lock()


def adopt_sklearn_base() -> bool:
    """Make scikit-learn's ``BaseEstimator`` the base of every fastem estimator, if scikit-learn is loaded.

    Cheap when there is nothing to do (one dictionary lookup); returns
    whether fastem's estimators now derive from ``BaseEstimator``.
    """
    if EstimatorBase.__bases__ != (_UntilScikitLearnIsLoaded,):
        return True
    base = getattr(sys.modules.get("sklearn.base"), "BaseEstimator", None)  # None while sklearn.base loads
    if base is None:
        return False
    with _adoption_lock:
        if EstimatorBase.__bases__ == (_UntilScikitLearnIsLoaded,):
            try:
                EstimatorBase.__bases__ = (base,)
            except TypeError:
                # A user's class defined meanwhile lists BaseEstimator before a fastem
                # estimator (class M(BaseEstimator, GaussianMixture)): the new order would
                # be inconsistent. Keep the placeholder; everything but isinstance works.
                return False
    return True


class EstimatorBase(_UntilScikitLearnIsLoaded):
    """get_params / set_params / repr / tags for estimators with keyword-only parameters."""

    def __new__(cls, *args, **kwargs):
        adopt_sklearn_base()
        return super().__new__(cls)

    def __dir__(self):
        # BaseEstimator's __dir__ evaluates every attribute (for its available_if
        # methods, which fastem has none of), so a property that raises for an
        # invalid parameter (``_layout``) would break dir() and tab completion.
        return object.__dir__(self)

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [name for name, p in signature.parameters.items() if name != "self" and p.kind != p.VAR_KEYWORD]

    def get_params(self, deep: bool = True) -> dict:
        """Constructor parameters of this estimator, by name.

        Parameters
        ----------
        deep : bool, default=True
            Accepted for scikit-learn compatibility; fastem estimators hold no
            sub-estimators.
        """
        adopt_sklearn_base()
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set constructor parameters; returns ``self``.

        Raises
        ------
        ValueError
            If a name is not a parameter of this estimator.
        """
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {type(self).__name__}. "
                    f"Valid parameters are: {sorted(valid)!r}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {
            name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items() if name != "self"
        }
        changed = []
        for name in self._param_names():
            value = getattr(self, name)
            default = defaults[name]
            try:
                same = value is default or bool(value == default)
            except (ValueError, TypeError):  # arrays
                same = False
            if not same:
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    # Whether NaN entries of X are missing values the estimator handles (scikit-learn's allow_nan tag).
    _accepts_missing_values = False

    def __sklearn_is_fitted__(self) -> bool:
        return any(name.endswith("_") and not name.startswith("__") for name in vars(self))

    def _check_is_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise compatible(NotFittedError)(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    def __sklearn_tags__(self):
        from sklearn.utils import InputTags, Tags, TargetTags

        adopt_sklearn_base()

        return Tags(
            estimator_type="density_estimator",
            target_tags=TargetTags(required=False),
            input_tags=InputTags(allow_nan=self._accepts_missing_values),
        )


adopt_sklearn_base()  # a program that imported scikit-learn first gets BaseEstimators from the start
