"""CTR models built from trainer.layers."""
