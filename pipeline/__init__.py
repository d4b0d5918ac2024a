"""Pipeline definition: typed configs and the pure `create_pipeline`."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
