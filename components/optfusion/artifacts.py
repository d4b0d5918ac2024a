"""The `OptFusionArchitecture` artifact: a searched OptFusion architecture, first-class in MLMD.

Payload (the artifact's uri is a folder; see trainer/optfusion_train.py):

    architecture.json        human-readable: the 0/1 connection matrix [consumer][producer], the op logits and the
                             chosen op of every fusion node, the best validation AUC of the search
                             (trainer.models.optfusion.Architecture.to_json / from_json)
    supernet/config.json     how to rebuild the supernet the architecture was read off
    supernet/weights.*       its best-epoch weights, for the retrain's weight inheritance
    search_result.json       the search's per-epoch history and throughput

Custom properties (queryable in MLMD without opening the folder): best_val_auc, best_epoch, epochs_run, ops
(comma-separated, cross_1, deep_1, ..., output), kept_connections, num_blocks.
"""
from __future__ import annotations

from tfx.types.artifact import Artifact

from trainer import optfusion_train
from trainer.models.optfusion import Architecture


class OptFusionArchitecture(Artifact):
    """A searched OptFusion architecture plus the supernet weights it was derived from (layout above)."""

    TYPE_NAME = "OptFusionArchitecture"


def read_architecture(artifact: Artifact) -> Architecture:
    """The Architecture in an OptFusionArchitecture artifact (any Artifact instance of that type)."""
    return optfusion_train.read_architecture(artifact.uri)


def record_search(artifact: Artifact, architecture: Architecture, search_result: dict) -> None:
    """Sets the artifact's custom properties from a search result (the search writes the payload itself).

    A function, not a method: an executor may receive the artifact as a generic Artifact of this type.
    """
    artifact.set_float_custom_property("best_val_auc", float(search_result["best_val_auc"]))
    artifact.set_int_custom_property("best_epoch", int(search_result["best_epoch"]))
    artifact.set_int_custom_property("epochs_run", int(search_result["epochs_run"]))
    artifact.set_string_custom_property("ops", ",".join(architecture.ops))
    artifact.set_int_custom_property("kept_connections", int(sum(map(sum, architecture.connections))))
    artifact.set_int_custom_property("num_blocks", architecture.num_blocks)
