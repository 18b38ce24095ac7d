"""Fixtures shared by the test files: the notes' grocery data, R's reference numbers for RM ANOVA, and
closing the figures each test draws."""


import matplotlib

matplotlib.use("Agg")  # figures are drawn off screen in the tests

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import _shared as shared
import lmmteach as lt



@pytest.fixture(scope="module")
def groceries():
    """The notes' wide grocery table (subject, storeA..storeD)."""
    return lt.load_groceries()


@pytest.fixture(scope="module")
def grocery():
    """The notes' long grocery data (price, item, store)."""
    return lt.load_grocery()


@pytest.fixture(scope="module")
def ref():
    """R's numbers for RM ANOVA (tests/reference/rmanova_reference.R → rmanova_reference.json)."""
    return shared.reference("rmanova_reference")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")
