r"""Metrics of generative models: likelihood in bits/dim and two-sample tests on samples.

:mod:`~gendist.metrics.likelihood` turns a continuous density's NLL on dequantized
discrete data into bits/dim; :mod:`~gendist.metrics.two_sample` compares model samples
with data by kernel (MMD), energy and sliced Wasserstein distances with permutation
p-values, and :mod:`~gendist.metrics.classifier` by a classifier two-sample test, the
one that keeps its power on a few hundred points in tens of dimensions.
"""

from gendist.metrics.classifier import classifier_two_sample_test
from gendist.metrics.likelihood import bits_per_dim, nll
from gendist.metrics.two_sample import TestResult, energy_distance, mmd, sliced_wasserstein

__all__ = [
    "TestResult",
    "bits_per_dim",
    "classifier_two_sample_test",
    "energy_distance",
    "mmd",
    "nll",
    "sliced_wasserstein",
]
