"""The search on a multi-node Ray cluster simulated on this machine (ray.cluster_utils.Cluster)."""

import pytest

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from ecgtune.data import holdout_split, make_synthetic  # noqa: E402
from ecgtune.search_spaces import EpochBudget  # noqa: E402
from ecgtune.raytune.tune_search import SearchSettings, run, trial_rows  # noqa: E402


# The Tuner pickles its callbacks into the experiment state; a Cluster cannot be pickled, so the
# callback finds it here.
RUNNING = {}


class RemoveNodeMidTrial(tune.Callback):
    """Once a trial on the doomed node has its first checkpoint, removes that node from the cluster
    (a crashed machine) and adds a fresh one in its place."""

    def __init__(self):
        self.victim_trial = None

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        doomed = RUNNING["doomed"]
        if self.victim_trial is None and trial.last_result.get("node_id") == doomed.node_id:
            self.victim_trial = trial.trial_id
            RUNNING["cluster"].remove_node(doomed, allow_graceful=False)
            RUNNING["cluster"].add_node(num_cpus=1)


@pytest.fixture
def cluster():
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    ray.init(address=cluster.address)
    cluster.wait_for_nodes()
    yield cluster, workers
    ray.shutdown()
    cluster.shutdown()


def test_trials_spread_over_nodes_and_survive_a_lost_node(cluster, tmp_path):
    cluster, workers = cluster
    data = make_synthetic(900, seed=0)
    train_rows, val_rows = holdout_split(data.labels, 0.25, seed=0)
    settings = SearchSettings(families=["plain_cnn"], name="cluster", storage=str(tmp_path), num_samples=4,
                              budget=EpochBudget(3, 3), scheduler="fifo", max_failures=3)
    RUNNING.update(cluster=cluster, doomed=workers[1])
    remover = RemoveNodeMidTrial()
    results = list(run(settings, data, train_rows, val_rows, callbacks=[remover]))

    rows = trial_rows(results)
    assert len(rows) == 4 and all(row["epochs_run"] == 3 and row["status"] == "ok" for row in rows)
    nodes = {node for result in results for node in result.metrics_dataframe["node_id"]}
    assert len(nodes) >= 2, "trials should have run on at least two nodes"

    assert remover.victim_trial is not None, "no trial ran on the node that was to be removed"
    victim = next(result for result in results if result.metrics["trial_id"] == remover.victim_trial)
    history = victim.metrics_dataframe
    epochs = list(history["epoch"])
    assert epochs == sorted(epochs) and epochs.count(1) == 1 and epochs[-1] == 3, \
        f"resumed from its checkpoint, not restarted: epochs reported {epochs}"
    assert history["node_id"].iloc[-1] != workers[1].node_id
