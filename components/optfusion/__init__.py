"""OptFusion as TFX components: Search (supernet -> Architecture artifact) and Retrain (Architecture -> Model).

The stock Trainer can neither emit nor consume an artifact of a new type, so the two steps are custom components
whose executors reuse the trainer code (trainer/optfusion/training.py).
"""
from components.optfusion.artifacts import OptFusionArchitecture
from components.optfusion.component import OptFusionRetrain, OptFusionSearch

__all__ = ["OptFusionArchitecture", "OptFusionRetrain", "OptFusionSearch"]
