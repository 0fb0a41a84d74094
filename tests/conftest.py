import os

# The tests build their models locally; nothing may reach for the Hugging Face hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from hypothesis import HealthCheck, settings

# Derandomised so that CI is reproducible; `HYPOTHESIS_PROFILE=explore` draws fresh examples.
settings.register_profile(
    "default",
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def replica_cache(tmp_path_factory):
    """Tiny replicas of the paper's six checkpoints in a hub cache, HF_HOME/hub: (the cache,
    the revisions); HF_HOME is the cache's parent."""
    from tradeoff.testing.replicas import install_cache

    path = tmp_path_factory.mktemp("hf-home") / "hub"
    return path, install_cache(path)
