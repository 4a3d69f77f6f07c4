r"""Metrics of generative models: likelihood in bits/dim and two-sample tests on samples.

:mod:`~gendist.metrics.likelihood` turns a continuous density's NLL on dequantized
discrete data into bits/dim; :mod:`~gendist.metrics.two_sample` compares model samples
with data by kernel (MMD), energy and sliced Wasserstein distances with permutation
p-values, and :mod:`~gendist.metrics.classifier` by a classifier two-sample test, the
one that keeps its power on a few hundred points in tens of dimensions.
Sample quality on small data: :mod:`~gendist.metrics.modes` (modes covered of a known
mixture), :mod:`~gendist.metrics.precision_recall` (precision, recall, density, coverage),
:mod:`~gendist.metrics.frechet` (the Fréchet distance, and a small feature network to
train in seconds) and :func:`~gendist.metrics.quality.sample_quality` (one table row).
"""

from gendist.metrics.classifier import classifier_two_sample_test
from gendist.metrics.frechet import FeatureClassifier, frechet_distance, train_feature_classifier
from gendist.metrics.likelihood import bits_per_dim, nll
from gendist.metrics.modes import ModeCoverage, mode_coverage
from gendist.metrics.precision_recall import PRDC, prdc
from gendist.metrics.quality import sample_quality
from gendist.metrics.two_sample import TestResult, energy_distance, mmd, sliced_wasserstein

__all__ = [
    "TestResult",
    "bits_per_dim",
    "classifier_two_sample_test",
    "energy_distance",
    "mmd",
    "nll",
    "sliced_wasserstein",
    "ModeCoverage",
    "mode_coverage",
    "PRDC",
    "prdc",
    "FeatureClassifier",
    "frechet_distance",
    "train_feature_classifier",
    "sample_quality",
]
