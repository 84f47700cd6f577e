"""The networks a trial trains: the built-in MLP and CNN, torchvision's and timm's models with a variant's norm, and
the user's own factory."""
