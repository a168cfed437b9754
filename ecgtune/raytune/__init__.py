"""The search layer, the only code that uses Ray: the search (`tune_search`), its searchers, schedulers
and trackers by name (`registry`), the trial that trains one sampled configuration (`tune_adapter`),
retraining on folds or every row (`tune_folds`), Ray's folder layout (`tune_layout`) and Ray's session
on this machine (`ray_session`). The training loop itself is Ray-free (`ecgtune.trainer`)."""
