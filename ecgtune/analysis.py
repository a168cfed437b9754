"""What the report shows, computed apart from how it is drawn: parameter importances from the search's
Optuna journal, and confusion matrices of decisions."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecgtune.errors import EcgtuneError

MIN_TRIALS_FOR_IMPORTANCE = 4   # fewer, and fANOVA's forest has nothing to split
FEW_TRIALS_FOR_IMPORTANCE = 20  # below this, importances are a rough hint (the report says so)


@dataclass
class Importances:
    """fANOVA importances of the finished trials' validation abs-sum, by group ("all families": the
    parameters every family shares, the family among them; then each family with enough trials), and
    how many trials each group had."""

    by_group: dict[str, dict[str, float]] = field(default_factory=dict)
    trials: dict[str, int] = field(default_factory=dict)

    def few_trials(self) -> list[str]:
        """The groups whose importances rest on fewer than FEW_TRIALS_FOR_IMPORTANCE trials."""
        return [group for group, count in self.trials.items() if count < FEW_TRIALS_FOR_IMPORTANCE]


def finished_trials(journal: Path, study_name: str) -> list:
    """The finished trials of a search's Optuna study, read from its journal (RUNS_DIR/NAME/optuna.journal)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=study_name, storage=JournalStorage(JournalFileBackend(str(journal))))
    except (KeyError, ValueError, RuntimeError) as error:
        raise EcgtuneError(f"{journal}: not a readable Optuna journal of study {study_name!r} ({error})") from None
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def study_importances(journal: Path, study_name: str, families: list[str]) -> Importances:
    """Importances from the search's own study in its Optuna journal: the trials the searcher told,
    with the values it learnt from. An empty result without a journal."""
    import optuna

    if not journal.is_file():
        return Importances()
    finished = finished_trials(journal, study_name)
    groups = {"all families": finished}
    groups.update({family: [trial for trial in finished if trial.params.get("family") == family]
                   for family in families})
    importances = Importances()
    for title, trials in groups.items():
        if len(trials) < MIN_TRIALS_FOR_IMPORTANCE:
            continue
        group = optuna.create_study(direction="minimize")
        group.add_trials(trials)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                found = optuna.importance.get_param_importances(
                    group, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
            except (ValueError, RuntimeError):
                continue  # every trial alike in every parameter: nothing to attribute
        if found:
            importances.by_group[title], importances.trials[title] = found, len(trials)
    return importances


def confusion_matrix(labels: np.ndarray, decisions: np.ndarray) -> np.ndarray:
    """Counts of (true class, decided class) for 0/1 decisions of shape (rows, classes); the last
    column counts rows where no class was decided."""
    n_classes = decisions.shape[1]
    decided = np.where(decisions.max(axis=1) >= 1.0, decisions.argmax(axis=1), n_classes)
    matrix = np.zeros((n_classes, n_classes + 1), dtype=int)
    np.add.at(matrix, (labels, decided), 1)
    return matrix
