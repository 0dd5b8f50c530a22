"""What every report shares: the Jinja2 environment of ``templates/`` with its number and escaping
filters, and figures drawn as PNG bytes on matplotlib's Agg canvas (never through pyplot, so no
global backend is touched)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import jinja2
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from simulator.terminal import visible

FIGURE_SIZE_IN = (8.0, 3.8)
DPI = 100
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")  # what turns text into markup inside a line


def number(value: float | None, digits: int = 4) -> str:
    """A number to ``digits`` significant digits with thousands separators (``1,234``, ``2``, ``0.0153``); a dash for none."""
    if value is None or value != value:
        return "—"
    if abs(value) >= 10**digits:
        return f"{value:,.0f}"
    return f"{value:,.{digits}g}"


def interval(item: dict[str, Any]) -> str:
    """``estimate [low, high]``; ∞ for a bound that is infinite (drops counted as infinitely late)."""
    def end(value: float | None) -> str:
        return "∞" if value is None else number(value)

    return f"{end(item['estimate'])} [{end(item['ci_low'])}, {end(item['ci_high'])}]"


def percent(value: float | None) -> str:
    """A signed share in percent (a margin or an error): ``+12.5 %``."""
    return "—" if value is None or value != value else f"{100 * value:+.1f} %"


def share(value: float | None) -> str:
    """A share in percent (a level or a tolerance): ``95 %``."""
    return "—" if value is None or value != value else f"{100 * value:g} %"


def rounded_share(value: float | None) -> str:
    """A measured share in percent to one decimal (an error, a fraction of levels): ``4.2 %``."""
    return "—" if value is None or value != value else f"{100 * value:.1f} %"


def markdown_escape(text: Any) -> str:
    """User text safe inside Markdown (and inside a Markdown table cell): punctuation backslashed, HTML as entities."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", str(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    escaped = " ".join(escaped.split())  # one line: a newline would end a table row or start a block
    return "\\" + escaped if escaped[:1] in ("#", "-", "+", "=") or re.match(r"\d+[.)]", escaped) else escaped


def environment(html: bool) -> jinja2.Environment:
    """Templates of ``simulator/report/templates``: autoescaped for HTML; ``md`` escapes user text in Markdown."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("simulator.report", "templates"),
        autoescape=html, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters.update(number=number, interval=interval, percent=percent, share=share, rounded_share=rounded_share, md=markdown_escape)
    return env


def literal_text(axes: Axes) -> None:
    """Show the axes' title, labels, legend and category ticks as written: a user's name there (``$\\frac{$``) is
    never parsed as mathtext or TeX, which would garble it or fail, and its control characters show as ``\\x1b``.
    Called once the axes are drawn and labelled."""
    from matplotlib.category import StrCategoryLocator
    from matplotlib.ticker import FuncFormatter

    texts = [axes.title, axes.xaxis.label, axes.yaxis.label]
    if axes.get_legend() is not None:
        texts += [axes.get_legend().get_title(), *axes.get_legend().get_texts()]
    for axis in (axes.xaxis, axes.yaxis):
        if isinstance(axis.get_major_locator(), StrCategoryLocator):  # their ticks are names; numbers' ticks keep mathtext
            names = axis.get_major_formatter()
            axis.set_major_formatter(FuncFormatter(lambda value, position, names=names: visible(names(value, position))))
            texts += axis.get_ticklabels()
    for text in texts:
        text.set_text(visible(text.get_text()))
        text.set_parse_math(False)
        text.set_usetex(False)


def png(title: str, xlabel: str, ylabel: str, draw: Callable[[Axes], None]) -> bytes:
    """One figure: ``draw`` fills the axes; titles, grid and legend are added here."""
    figure = Figure(figsize=FIGURE_SIZE_IN, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    draw(axes)
    axes.set_title(title, fontsize="medium")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="best", fontsize="small")
    literal_text(axes)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
