"""Shared fixtures: a tiny sample dataset written once per test session."""
import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory):
    """A tiny dataset in the VITON layout (4 train pairs, 2 test pairs), made by the sample generator."""
    import sample_data

    root = tmp_path_factory.mktemp("sample_data")
    sample_data.generate(root, n_train=4, n_test=2, seed=0)
    return root
