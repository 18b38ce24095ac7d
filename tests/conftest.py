"""Fixtures shared by the test files: the notes' grocery data and R's reference numbers for RM ANOVA."""

import json
from pathlib import Path

import pytest

import lmmteach as lt

REFERENCE = Path(__file__).parent / "reference"


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
    return json.loads((REFERENCE / "rmanova_reference.json").read_text())
