"""Activation functions by name (the seed's ReLU, Sigmoid and Tanh, plus GELU)."""
from flax import linen as nn

ACTIVATIONS = {
    'relu': nn.relu,
    'sigmoid': nn.sigmoid,
    'tanh': nn.tanh,
    'gelu': nn.gelu,
}
