"""OptFusion (WSDM 2025): a one-shot search over fusion connections and operations, then a retrain.

Where to start reading:
- network.py   the supernet (cross and deep blocks, connection gates, fusion nodes), the Architecture read off it,
               and the derived Hard / Soft networks with the supernet's weights (algorithms.md §1.2-§1.6)
- training.py  the search and the retrain as the pipeline's OptFusionSearch / OptFusionRetrain steps run them
- optim.py     the grouped Adam of PyTorch's semantics (coupled L2, per-group learning rates), precision, XLA
- fit.py       the epoch loop: validation AUC / logloss, early stopping, best-epoch weights
- settings.py  SearchSettings / RetrainSettings, the JSON the components pass to their executors
The Keras layers are in trainer/layers/ (one per file).
"""
