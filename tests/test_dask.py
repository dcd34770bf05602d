"""skae on Dask: dask-ml's wrappers, and a grid search spread over a cluster.

Runs against a real two-worker ``distributed.LocalCluster`` on the loopback
interface, started once for the module; skipped where the ``dask`` extra
(``pip install "skae[dask]"``) is not installed.
"""

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV

from skae import AutoencoderTransformer
from tests.helpers import low_rank_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
dask_ml_wrappers = pytest.importorskip("dask_ml.wrappers")

N_SAMPLES, CHUNK_ROWS = 400, 100


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def X():
    return low_rank_data(N_SAMPLES, 10, rank=3, noise=0.05).astype(np.float32)


def tiny_autoencoder(**params):
    return AutoencoderTransformer(
        n_components=3,
        hidden_layer_sizes=(16,),
        max_iter=20,
        learning_rate_init=0.01,
        random_state=0,
    ).set_params(**params)


def workers_used(client, compute):
    """Run ``compute()``; return its result and the workers that ran its tasks."""
    with distributed.get_task_stream(client) as stream:
        result = compute()
    return result, {task["worker"] for task in stream.data}


def test_workers_run_one_torch_thread(client):
    threads = client.run(torch.get_num_threads)
    assert sorted(threads.values()) == [1, 1]


def test_parallel_post_fit_transforms_on_the_workers(client, X):
    model = dask_ml_wrappers.ParallelPostFit(tiny_autoencoder().fit(X))
    X_dask = da.from_array(X, chunks=(CHUNK_ROWS, -1))
    codes = model.transform(X_dask)
    assert isinstance(codes, da.Array)
    computed, workers = workers_used(client, codes.compute)
    assert workers <= set(client.scheduler_info()["workers"])
    assert workers
    expected = model.estimator.transform(X)
    assert computed.shape == expected.shape == (N_SAMPLES, 3)
    assert computed.dtype == np.float32
    np.testing.assert_allclose(computed, expected, rtol=1e-5, atol=1e-6)


def test_map_blocks_gives_lazy_arrays_their_true_shape(client, X):
    """The recipe for code arrays that know their width before computing."""
    ae = tiny_autoencoder().fit(X)
    X_dask = da.from_array(X, chunks=(CHUNK_ROWS, -1))
    codes = X_dask.map_blocks(
        ae.transform, chunks=(X_dask.chunks[0], (ae.n_components,)), dtype=X.dtype
    )
    scores = X_dask.map_blocks(ae.score_samples, drop_axis=1, dtype=np.float64)
    assert codes.shape == (N_SAMPLES, 3)
    assert scores.shape == (N_SAMPLES,)
    np.testing.assert_allclose(codes.compute(), ae.transform(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores.compute(), ae.score_samples(X), rtol=1e-5)


def test_incremental_streams_blocks_through_partial_fit(client, X):
    X_dask = da.from_array(X, chunks=(CHUNK_ROWS, -1))
    model = dask_ml_wrappers.Incremental(tiny_autoencoder(), shuffle_blocks=False)
    n_epochs = 2
    for _ in range(n_epochs):
        model.partial_fit(X_dask)
    n_blocks = X_dask.numblocks[0]
    assert model.estimator_.n_iter_ == n_epochs * n_blocks

    local = tiny_autoencoder()
    for _ in range(n_epochs):
        for start in range(0, N_SAMPLES, CHUNK_ROWS):
            local.partial_fit(X[start : start + CHUNK_ROWS])
    np.testing.assert_allclose(
        model.estimator_.loss_curve_, local.loss_curve_, rtol=1e-4
    )
    np.testing.assert_allclose(
        model.transform(X_dask).compute(), local.transform(X), rtol=1e-3, atol=1e-4
    )


def test_grid_search_runs_on_the_cluster(client, X):
    def search():
        grid = GridSearchCV(
            tiny_autoencoder(), {"n_components": [1, 3], "alpha": [0.0, 1e-4]}, cv=2
        )
        return grid.fit(X)

    sequential = search()

    def on_cluster():
        with joblib.parallel_config(backend="dask"):
            return search()

    spread, workers = workers_used(client, on_cluster)
    assert workers == set(client.scheduler_info()["workers"])
    assert spread.best_params_ == sequential.best_params_
    assert spread.best_params_["n_components"] == 3
    np.testing.assert_allclose(
        spread.cv_results_["mean_test_score"],
        sequential.cv_results_["mean_test_score"],
        rtol=1e-4,
    )
