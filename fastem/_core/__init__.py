"""The engine every model family uses; it imports no family.

``em`` (the EM driver), ``numba`` (the compile factory, thread and BLAS
scoping), ``intrinsics`` and ``fast_math`` (kernel building blocks),
``chunks`` (the fixed-chunk parallel layout), ``validation``, ``estimator``
(the scikit-learn protocol) and ``model_files`` (the portable file format).
"""
