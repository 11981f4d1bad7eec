"""Dispatch automation system (调度自动化系统) feeds: CIM/E model files and 96-point curve CSV files."""

from adapters.dispatch.cime import (
    Block,
    BlockEnd,
    BlockStart,
    CimeItem,
    CimeRow,
    CimeRowError,
    Header,
    iter_cime,
    iter_cime_bytes,
    iter_cime_lines,
    render_cime,
)
from adapters.dispatch.curves_csv import (
    Curve,
    CurveKind,
    CurveRow,
    CurveRowError,
    iter_curve_lines,
    iter_curves,
    render_curves,
)
from adapters.dispatch.encoding import BinaryReader, iter_text_lines

__all__ = [
    "BinaryReader",
    "Block",
    "BlockEnd",
    "BlockStart",
    "CimeItem",
    "CimeRow",
    "CimeRowError",
    "Curve",
    "CurveKind",
    "CurveRow",
    "CurveRowError",
    "Header",
    "iter_cime",
    "iter_cime_bytes",
    "iter_cime_lines",
    "iter_curve_lines",
    "iter_curves",
    "iter_text_lines",
    "render_cime",
    "render_curves",
]
