"""ResFusion (Bao et al., CCIR 2020): stage-wise residual fusion of GBDTs and deep CTR models.

The model is a sum of stage logits, prediction = sigmoid(sum_s logit_s). Stage 0 is a GBDT (GBDTRes+NN,
the paper's ResFusion) or a deep model (NNres+GBDT); each later stage has the other kind and is fitted
with the sum of every earlier stage's logit as a FIXED offset (trainer.resfusion.settings.ResFusionOptions):

- GBDT stage 0: TF-DF binary GBT on the raw fields (or the id columns of OptFusion TFRecords), its raw
  score (logit, `apply_link_function=False`); trained by components/gbdt_residual, which writes its logit
  into the examples (`gbdt_logit`), out-of-fold for training rows.
- deep stage: a registered network y_D(ids) trained with BCE on sigmoid(y_D + offset) (paper Eq. 5,
  algorithms.md §2.3: the offset is a logit and the deep model learns an additive correction).
- later GBDT stage: TF-DF has no initial score (LightGBM's `init_score`), so the stage is one LogitBoost /
  Newton step (Friedman, Hastie & Tibshirani 2000, "Additive logistic regression"): with p = sigmoid(F)
  for the offset F, a regression GBDT h is fitted by weighted least squares to the working response
  z = (y - p) / (p (1 - p)), weights w = p (1 - p), and the stage's logit is h. Why this is the right
  fit: the second-order expansion of the logloss around F is
      L(F + h) ~= L(F) + sum_i g_i h_i + 1/2 sum_i H_i h_i^2,  g = p - y, H = p (1 - p)
             = const + 1/2 sum_i w_i (h_i - z_i)^2,
  so the weighted squared error that the regression GBDT minimises (and early-stops on, on the eval
  split) is exactly the Newton quadratic model of the logloss with F as fixed offset; for a constant h
  it gives the Newton step sum(y - p) / sum(p (1 - p)). z is clipped to [-z_max, z_max] (their
  recommendation, z_max in [2, 4]) so that rows with p near 0 or 1 cannot dominate.

Offsets on training rows: every stage that feeds a later one hands it OUT-OF-FOLD logits on the training
rows, GBDT or deep (k-fold on the fold ids recorded in the examples; the stage-0 GBDT's are recorded by
components/gbdt_residual), so no order or K trains on an offset fitted to its own rows. Eval rows (early
stopping) and serving always use the stage model fitted on every training row. Early stopping on the eval
split at every stage.

Which K is served: all K stages are fitted and each prefix's eval AUC / logloss recorded (K = 0..rounds);
the exported model is the prefix with the lowest eval logloss (best_prefix), so a stage that makes the eval
logloss worse is never served silently. result.json in model_run says which K was served and lists every
stage's metrics (summarize); all_stages/ holds every stage when a shorter prefix was served, so each K can
still be scored (logits_by_rounds).

The exported SavedModel holds every served stage: `serving_default` parses serialized raw tf.Examples (a raw
log's fields, or OptFusion TFRecords' `feature` int64[F]), runs the Transform graph (ids for the deep stages)
and the GBDT input parser (trainer.resfusion.gbdt.GbdtInputs), the TF-DF models and the deep models in one graph, and
returns `probability` float32 [B, 1]; `stage_logits` returns each stage's logit; `transform_features` the
transformed features. Loading it needs `import tensorflow_decision_forests`
(the TF-DF ops) and nothing else.

Where to start reading: residual.py (the rows, the stage fits, K rounds, which K is served), gbdt.py (the TF-DF
GBDT and its inputs), models.py (the fused Keras models), comparators.py (the paper's Table 2 comparators),
export.py (the serving SavedModel and result.json), run.py (the Trainer's run_fn), settings.py (ResFusionOptions).
"""
