"""`make test` (xdist, --dist loadgroup) keeps tests/ml on one worker so the model is trained once: the group
must reach xdist's node ids (pytest 9.2 with xdist 3.8 silently dropped it; tests/conftest.py adds it)."""

from __future__ import annotations

import os

import pytest


def test_this_folder_runs_as_one_xdist_group(request: pytest.FixtureRequest) -> None:
    if not (os.environ.get("PYTEST_XDIST_WORKER") and request.config.getvalue("loadgroup")):
        pytest.skip("only under xdist with --dist loadgroup (make test)")
    assert request.node.nodeid.endswith("@ml"), request.node.nodeid
