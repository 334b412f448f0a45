"""Topic models: ``LatentDirichletAllocation`` by variational EM, parallel over documents.

``estimator`` holds the estimator; ``corpus`` the checks of count matrices
and the CSR form the kernels read. The private kernels:
``_document_kernels`` (the per-document E-step, the topic-word statistics,
the per-document bound), ``_topic_word_kernels`` (the M-step and
exp(E[log beta])) and ``_digamma`` (scikit-learn's digamma approximation).
``precompile`` lists what ``python -m fastem compile`` builds.
"""

from fastem.topics.estimator import LatentDirichletAllocation

__all__ = ["LatentDirichletAllocation"]
