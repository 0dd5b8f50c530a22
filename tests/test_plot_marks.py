"""Latency plots: SLO and deadline marks that keep the axis on the data, and plain tick labels on short log axes."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from simulator.report.render import mark_limit, plain_log_ticks


def _axes():
    figure = Figure()
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def test_a_bound_within_the_data_is_a_line():
    _, axes = _axes()
    axes.plot([0, 1, 2], [2.0, 12.0, 6.0])
    mark_limit(axes, 8.0, "p99 ≤ 8 ms")
    assert [list(line.get_ydata()) for line in axes.get_lines()[1:]] == [[8.0, 8.0]]
    assert not axes.texts


def test_a_bound_far_above_the_data_is_an_arrow_at_the_edge_and_the_axis_stays_on_the_data():
    _, axes = _axes()
    axes.plot([0, 1, 2], [2.0, 12.0, 6.0])
    mark_limit(axes, 105.0, "deadline interactive")
    assert axes.get_ylim()[1] < 20  # not stretched to 105
    assert len(axes.get_lines()) == 1
    assert [text.get_text() for text in axes.texts] == ["deadline interactive: 105 ms ↑"]


def test_a_log_axis_within_a_decade_has_plain_readable_ticks():
    figure, axes = _axes()
    axes.plot(np.arange(10), np.linspace(3.0, 9.0, 10))
    axes.set_yscale("log")
    plain_log_ticks(axes)
    figure.canvas.draw()
    labels = [tick.get_text() for tick in [*axes.get_yticklabels(), *axes.get_yticklabels(minor=True)] if tick.get_text()]
    assert len(labels) >= 3, labels
    assert all(label.replace(".", "").isdigit() for label in labels), labels  # 3, 4, 6: no "6 × 10⁰"
