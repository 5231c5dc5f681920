import pytest

from purge_engine.config import PurgeConfig


@pytest.fixture(scope="session")
def tiny_config() -> PurgeConfig:
    """A layout that trains in about a second on 2 CPU cores: every code path, little work."""
    return PurgeConfig(n_teachers=4, n_students=2, teacher_slices=2, student_slices=2, epochs=2, batch_size=64,
                       threads=1)
