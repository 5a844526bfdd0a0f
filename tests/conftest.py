"""Shared pytest fixtures."""

import pytest


@pytest.fixture(scope="session")
def mnist_test():
    """(images uint8 (10000, 28, 28), labels uint8 (10000,)) of the MNIST test split."""
    from lenet_edge.train.mnist import load_mnist

    return load_mnist("test")
