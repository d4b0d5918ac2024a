"""One module per click-log layout: its fields, its line parser and the reference runs' settings on it.

transform/features.py registers them (DATASETS); see transform/spec.py for what a layout holds.
"""
