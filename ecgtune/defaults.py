"""Every default a search starts from, defined once: the command line, the Python API, the experiment's
plan, the search layer's settings and the resources all read them here."""

# the data
SYNTHETIC_ROWS = 10_000     # the embedded beats when no file is given: enough for a laptop's 8 minutes
VAL_FRACTION = 0.2          # stratified; selection and the decision rule are fitted on these rows
SEED = 0                    # the split, the sampler and every trial's initialisation

# the search
TIME_BUDGET_MINUTES = 8.0   # the whole run: search, refit, ensemble, export and report
NUM_SAMPLES = 100           # trials at most without a time budget; with one, only the clock ends the search
                            # (a GPU's eight slots ran 100 trials in 2.1 of a 4-minute run's 3.3: BENCHMARKS 11k)
SEARCHER = "optuna"         # multivariate TPE after the portfolio and every family's starting points
SCHEDULER = "asha"          # stops weak trials at equal training time
REDUCTION_FACTOR = 3        # ASHA keeps the best third at each rung

# the resources of one trial
CPUS_PER_TRIAL = 1.0        # one thread a trial: these small networks scale poorly past one core
GPUS_PER_TRIAL = 0.125      # eight trials per GPU: 3-6x one trial's throughput; 16 add nothing (BENCHMARKS 11e, 11i)
MAX_FAILURES = 2            # retries of a failed trial, each from its last checkpoint

# after the search
FOLDS = 0                   # cross-fitting off: the ensemble's networks are refit on every row instead
FOLD_MEMBERS = 5            # configurations retrained with --folds
REFIT = True                # retrain the shipped networks on every labelled row (AutoGluon's refit_full)

# --smoke: a minute's check that everything runs and learns
SMOKE_ROWS, SMOKE_SAMPLES = 3000, 6
SMOKE_EPOCHS = (4, 6)       # enough steps on the smoke run's rows to learn more than the class prior
