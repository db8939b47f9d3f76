import pytest

pytest.register_assert_rewrite("backend_mixin", "families")  # their asserts explain a failure as a test's do


@pytest.fixture(scope="session")
def family_pipes():
    """family_pipes(families.X()): that family's tiny offline pipeline, built once per test run (the shared tests of
    backend_mixin and a family's own tests run on the same one; every test leaves it as it found it)."""
    cache = {}

    def get(family):
        name = type(family).__name__
        if name not in cache:
            pipe = family.build(seed=0)
            pipe.set_progress_bar_config(disable=True)
            cache[name] = pipe
        return cache[name]
    return get
