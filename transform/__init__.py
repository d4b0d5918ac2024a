"""Feature definitions and the TF Transform preprocessing shared by Transform, the trainer and serving."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
