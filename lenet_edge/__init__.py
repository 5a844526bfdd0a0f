"""lenet-edge: LeNet-5 from MNIST training to bit-exact int8 C on Cortex-M."""

__version__ = "0.1.0"
