"""VersionedPusher: the stock Pusher with an atomic push to serving_model/<version>/ and old versions pruned."""
from components.versioned_pusher.component import VersionedPusher

__all__ = ["VersionedPusher"]
