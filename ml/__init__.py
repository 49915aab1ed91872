"""rtml's framework: configs, features, data, training, registry. No Flask or click here."""

__version__ = "0.1.0"
