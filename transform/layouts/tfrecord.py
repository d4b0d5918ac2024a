"""OptFusion TFRecords: tf.Examples already holding the global ids (`feature`) and the label, split into files.

No parser (not text) and no settings of their own: a run takes those of the dataset the records were made from
(`--layout`, or the folder's meta.json: local_runner.settings_layout), else Criteo's.
"""
from __future__ import annotations

from transform.spec import FEATURE_KEY, DatasetSpec

LAYOUT = DatasetSpec(name="tfrecord", prebuilt_ids=True, required_fields=(FEATURE_KEY,), settings_of="criteo")
