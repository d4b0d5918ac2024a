"""GbdtResidual: ResFusion's tree stage. Trains TF-DF GBDTs on the raw fields and writes each example's
GBDT logit (out-of-fold for the training split) into the raw examples, before Transform."""
