"""The project's custom artifact types under the names Kubeflow V2 gives them.

A custom artifact type's Kubeflow V2 schema title is its TYPE_NAME, "<namespace>.<Title>" (the only form TFX's V2
compiler accepts), and TFX's V2 container entrypoint imports the artifact class from that title as a dotted path.
So every custom TYPE_NAME "fusionctr.X" must import from here (tests/kubeflow/test_compile.py checks it).
"""
from components.optfusion.artifacts import OptFusionArchitecture

__all__ = ["OptFusionArchitecture"]
