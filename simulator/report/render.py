"""What every report shares: the Jinja2 environment of ``templates/`` with its number and escaping
filters, and figures drawn as PNG bytes on matplotlib's Agg canvas (never through pyplot, so no
global backend is touched)."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from simulator.files import make_output_folder, write_atomically, write_text_atomically
from simulator.terminal import visible

FIGURE_SIZE_IN = (8.0, 3.8)
DPI = 100
HTML_FILE = "report.html"
MARKDOWN_FILE = "report.md"
PLOTS_FOLDER = "plots"
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


def measured(stat: dict[str, Any] | None, digits: int = 4) -> str:
    """A measured statistic: ``estimate [low, high]``, the estimate alone when it has no interval, a dash for none."""
    if stat is None or stat["estimate"] is None:
        return "—"
    if stat.get("ci_low") is None or stat.get("ci_high") is None:
        return number(stat["estimate"], digits)
    return f"{number(stat['estimate'], digits)} [{number(stat['ci_low'], digits)}, {number(stat['ci_high'], digits)}]"


def measured_share(stat: dict[str, Any] | None) -> str:
    """A measured share in percent with its interval: ``96.5 % [95.9, 97.1]``; a dash for none."""
    if stat is None or stat["estimate"] is None:
        return "—"
    scaled = {key: None if stat.get(key) is None else 100 * stat[key] for key in ("estimate", "ci_low", "ci_high")}
    text = measured(scaled, digits=3)
    return text.replace(" [", " % [", 1) if "[" in text else text + " %"


def percent(value: float | None) -> str:
    """A signed share in percent (a margin or an error): ``+12.5 %``."""
    return "—" if value is None or value != value else f"{100 * value:+.1f} %"


def headroom(value: float | None) -> str:
    """A headroom already in percent (max load / target − 1, × 100): ``headroom +12.5 %``."""
    return "headroom —" if value is None or value != value else f"headroom {value:+.1f} %"


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
    if escaped[:1] in ("#", "-", "+", "="):
        return "\\" + escaped
    return re.sub(r"^(\d+)([.)])(?=\s|$)", r"\1\\\2", escaped)  # "1. x" would start a list: "1\. x"; "0.1.0" is text


def environment(html: bool) -> jinja2.Environment:
    """Templates of ``simulator/report/templates``: autoescaped for HTML; ``md`` escapes user text in Markdown."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("simulator.report", "templates"),
        autoescape=html, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters.update(number=number, interval=interval, measured=measured, measured_share=measured_share, percent=percent, headroom=headroom, share=share, rounded_share=rounded_share, md=markdown_escape)
    return env


def plain_log_ticks(axes: Axes, axis: str = "y") -> None:
    """Plain-number tick labels on a log axis (``6``, ``20``; never ``6 × 10⁰``), the minor ticks labelled too while
    the axis spans no more than a decade (else they would crowd)."""
    target, limits = (axes.yaxis, axes.get_ylim) if axis == "y" else (axes.xaxis, axes.get_xlim)

    def minor(value: float, _position: int) -> str:
        low, high = sorted(limits())
        return f"{value:g}" if 0 < low and high <= 10 * low else ""

    target.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:g}"))
    target.set_minor_formatter(FuncFormatter(minor))


def mark_limit(axes: Axes, value_ms: float, label: str, axis: str = "y", color: str = "crimson") -> None:
    """An SLO bound or deadline: a dashed line where it lies within the data's range; beyond it, an arrow at the edge
    naming it, so the axis stays scaled to the data. Call it once the data are drawn (and the scale set)."""
    low, high = axes.get_ylim() if axis == "y" else axes.get_xlim()
    if low <= value_ms <= high:
        (axes.axhline if axis == "y" else axes.axvline)(value_ms, color=color, linestyle="--", linewidth=1, label=label)
        return
    beyond = value_ms > high
    edge = (0.99, 1.0 if beyond else 0.0) if axis == "y" else (1.0 if beyond else 0.0, 0.97)
    offset = (0, -14 if beyond else 14) if axis == "y" else (-14 if beyond else 14, 0)
    arrow = ("↑" if beyond else "↓") if axis == "y" else ("→" if beyond else "←")
    axes.annotate(
        f"{label}: {value_ms:g} ms {arrow}", xy=edge, xycoords="axes fraction", xytext=offset, textcoords="offset points",
        ha="right" if axis == "y" or beyond else "left", va="center", color=color, fontsize="small",
        arrowprops={"arrowstyle": "->", "color": color},
    )


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


def write_pages(out: Path, template: str, context: dict[str, Any], figures: dict[str, bytes]) -> list[Path]:
    """Render ``TEMPLATE.html.j2`` (figures embedded as data URIs: one file that opens offline) and ``TEMPLATE.md.j2``
    (figures linked as ``plots/NAME.png``, written beside it) into ``out`` (created), every file written atomically.
    Both templates get ``images``: figure name → its source. Returns the HTML, the Markdown, then the PNG files."""
    out = make_output_folder(Path(out))
    html_images = {name: Markup("data:image/png;base64," + base64.b64encode(image).decode()) for name, image in figures.items()}
    markdown_images = {name: f"{PLOTS_FOLDER}/{name}.png" for name in figures}
    html = environment(html=True).get_template(f"{template}.html.j2").render(**context, images=html_images)
    markdown = environment(html=False).get_template(f"{template}.md.j2").render(**context, images=markdown_images)
    plots = make_output_folder(out / PLOTS_FOLDER) if figures else out
    written = []
    for name, image in figures.items():
        write_atomically(plots / f"{name}.png", lambda path, image=image: path.write_bytes(image))
        written.append(plots / f"{name}.png")
    write_text_atomically(out / HTML_FILE, html)
    write_text_atomically(out / MARKDOWN_FILE, markdown)
    return [out / HTML_FILE, out / MARKDOWN_FILE, *written]
