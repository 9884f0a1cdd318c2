"""Fixtures shared by test modules: ``new_book``, the book conformance suite's engine parameter."""

import pytest
from book_cases import ENGINES

from abm.book import make_book


@pytest.fixture(params=ENGINES)
def new_book(request):
    """A factory of empty books of one engine."""
    return lambda: make_book(request.param)
