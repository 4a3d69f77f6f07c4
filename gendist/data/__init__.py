r"""Data: synthetic 2-D densities with known log-density and entropy, the 8x8 digits, binarized MNIST, user tables."""

from gendist.data.digits import DIGITS_LEVELS, DIGITS_SHAPE, DIGITS_SPLITS, dequantize, load_digits
from gendist.data.files import load_table
from gendist.data.mnist import MNIST_FILE, MNIST_LEVELS, MNIST_SHAPE, binarized_mnist_path, load_binarized_mnist
from gendist.data.toy2d import (
    Checkerboard,
    Circles,
    EightGaussians,
    Moons,
    Pinwheel,
    Rings,
    Toy2D,
    TwoSpirals,
    densities,
)

__all__ = [
    "DIGITS_LEVELS",
    "DIGITS_SHAPE",
    "DIGITS_SPLITS",
    "MNIST_FILE",
    "MNIST_LEVELS",
    "MNIST_SHAPE",
    "binarized_mnist_path",
    "dequantize",
    "load_binarized_mnist",
    "load_digits",
    "load_table",
    "Checkerboard",
    "Circles",
    "EightGaussians",
    "Moons",
    "Pinwheel",
    "Rings",
    "Toy2D",
    "TwoSpirals",
    "densities",
]
