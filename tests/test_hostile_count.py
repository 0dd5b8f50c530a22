"""The hostile-input suite's size by category (one module per category); ``pytest -s`` prints the table.

Counts the cases collected in this session, so run it with the suite:
``python -m pytest -s tests/test_hostile_*.py``. Property tests count once each here; each runs
``max_examples`` generated inputs.
"""

from __future__ import annotations

from collections import Counter

import pytest

CATEGORIES = ("encoding", "yaml", "schema", "data_files", "bundles", "options", "outputs", "signals", "properties", "names", "plan_files", "peers", "testbed_tables", "bounds")
MINIMUM_CASES = 200


def test_case_count_by_category(request):
    modules = Counter(
        item.module.__name__.rpartition(".test_hostile_")[2]
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.module.__name__.startswith("tests.test_hostile_")
    )
    counts = {category: modules.get(category, 0) for category in CATEGORIES}
    xfails = sum(
        1 for item in request.session.items
        if item.module.__name__.startswith("tests.test_hostile_") and item.get_closest_marker("xfail")
    )
    print("\nhostile-input cases by category:")
    for category, count in counts.items():
        print(f"  {category:<11} {count:>4}")
    print(f"  {'total':<11} {sum(counts.values()):>4} ({xfails} xfail: the lead's part of issue 9)")
    if all(counts.values()):  # the whole suite was collected
        assert sum(counts.values()) >= MINIMUM_CASES
