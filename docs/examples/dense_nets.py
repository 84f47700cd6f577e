from torch import nn


def mlp(num_classes, in_shape, norm_layer, width=64):
    """Two hidden Linear layers, the variant's dense norm (norm_layer(F, dims=1)) after each."""
    features = in_shape[0] * in_shape[1] * in_shape[2]
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(features, width),
        norm_layer(width, dims=1),
        nn.ReLU(),
        nn.Linear(width, width),
        norm_layer(width, dims=1),
        nn.ReLU(),
        nn.Linear(width, num_classes),
    )
