"""Keras layers, one per file. Every layer is registered under the `fusionctr` package for (de)serialization."""
