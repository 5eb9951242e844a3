"""Shared test set-up."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """One torch thread for the whole suite.

    Identical float results (determinism and resume tests) need identical thread counts. On the
    2-core CI machine, torch's intra-op threads also slow small operations down far more than
    they speed large ones up.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
