"""Using pushed models: batch scoring of raw logs (and, later, a TF-Serving-compatible REST server)."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
