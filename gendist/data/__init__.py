r"""Data: synthetic 2-D densities with known log-density and entropy."""

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
