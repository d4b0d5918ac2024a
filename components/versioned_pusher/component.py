"""VersionedPusher: TFX's Pusher with an atomic, versioned push and a retention count (executor.py).

The same inputs, outputs and parameters as `tfx.components.Pusher` (model, model_blessing, push_destination,
custom_config); `custom_config={"keep_versions": N}` sets how many versions stay in the serving folder.
"""
from __future__ import annotations

from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components.versioned_pusher import executor


class VersionedPusher(tfx.components.Pusher):
    """tfx.components.Pusher whose executor writes each version beside the others and renames it into place."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
