"""The `OptFusionArchitecture` artifact: a searched OptFusion architecture, first-class in MLMD.

Payload (the artifact's uri is a folder; see trainer/optfusion/training.py):

    architecture.json        human-readable: the 0/1 connection matrix [consumer][producer], the op logits and the
                             chosen op of every fusion node, the best validation AUC of the search
                             (trainer.optfusion.network.Architecture.to_json / from_json;
                             trainer.optfusion.training.read_architecture reads it)
    supernet/config.json     how to rebuild the supernet the architecture was read off
    supernet/weights.*       its best-epoch weights, for the retrain's weight inheritance
    search_result.json       the search's per-epoch history and throughput

Custom properties (queryable in MLMD without opening the folder): best_val_auc, best_epoch, epochs_run, ops
(comma-separated, cross_1, deep_1, ..., output), kept_connections, num_blocks.
"""
from __future__ import annotations

from tfx.types.artifact import Artifact


class OptFusionArchitecture(Artifact):
    """A searched OptFusion architecture plus the supernet weights it was derived from (layout above)."""

    # "<namespace>.<Title>": the only form of a custom artifact type that Kubeflow V2 compiles (its schema title);
    # TFX's V2 entrypoint imports the class from it, so fusionctr/__init__.py exports this class.
    TYPE_NAME = "fusionctr.OptFusionArchitecture"
