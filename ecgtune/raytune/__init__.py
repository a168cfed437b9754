"""The search layer, the only code that uses Ray: the search (`tune_search`), the trial that trains one
sampled configuration (`tune_adapter`), retraining on folds or every row (`tune_folds`), and Ray's
folder layout (`tune_layout`). The training loop itself is Ray-free (`ecgtune.trainer`)."""
