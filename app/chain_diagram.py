"""Home's chain diagram as inline SVG: no plotly.js for the first page.

:func:`chain_layout` describes the chain of a :class:`ChainSpec` as data (one
:class:`StageRow` per stage: its title, inputs, latents and targets, each target
naming its kind of band gap and its unit); :func:`chain_svg` draws it: one row
per stage, inputs -> encoder -> latents -> targets, a dotted decoder back to the
inputs, and an arrow from each stage's latents to the next stage's encoder.
Every text in the SVG is XML-escaped (stage and dataset names come from a
bundle's files), so the markup is ours alone and may be shown with
``st.markdown(..., unsafe_allow_html=True)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from nestedae_core.api import (
    ChainSpec, StageSpec, TargetSpec, column_label as label, gap_name, input_groups, target_fidelity,
)

__all__ = ["StageRow", "chain_layout", "chain_svg", "target_text"]

_SCALES = ("atomic scale", "film scale", "device scale")
#: The stages' colours: :data:`app.figures.SITE_COLORS` A, X, B (not imported: that module loads plotly).
_STAGE_COLORS = ("#4C78A8", "#54A24B", "#F58518")
_SUB = "₀₁₂₃₄₅₆₇₈₉"

# geometry (SVG user units; the drawing scales to the page's width)
_WIDTH = 980
_COLS = {"inp": (10, 270), "enc": (320, 450), "lat": (500, 640), "out": (690, 970)}
_LINE = 17  # text line height
_PAD = 12  # box padding, top and bottom
_TITLE_H = 26  # the stage's title above its row
_DECODER_H = 30  # the decoder's elbow and label below the row


@dataclass(frozen=True)
class StageRow:
    """One stage of the diagram: ``title`` (``Stage 1: dft``), ``subtitle`` (dataset, scale), ``inputs`` (one line
    per group, e.g. ``site descriptors (15)``), ``latents`` (``z₁``, their count) and ``targets`` (``PCE (%)``)."""

    title: str
    subtitle: str
    inputs: tuple[str, ...]
    latent_name: str
    latent_dim: int
    targets: tuple[str, ...]


def target_text(stage: StageSpec, target: TargetSpec, *, with_unit: bool = True) -> str:
    """``PCE (%)``, ``band gap, DFT PBE (no SOC) (eV)``: the target's label naming its kind of band gap (and its unit)."""
    fidelity = target_fidelity(stage, target)
    name = gap_name(fidelity) if fidelity else target.label or label(target.column)
    return f"{name} ({target.unit})" if target.unit and with_unit else name


def chain_layout(spec: ChainSpec) -> list[StageRow]:
    """The chain of ``spec`` as rows of text: what :func:`chain_svg` draws, and what a test can read."""
    n = len(spec.stages)
    rows = []
    for i, stage in enumerate(spec.stages):
        scale = _SCALES[i] if n == 3 else ("atomic scale" if i == 0 else "device scale" if i == n - 1 else "")
        inputs = [f"latents z{_SUB[i]} of {spec.stages[i - 1].name} ({spec.stages[i - 1].latent_dim})"] if stage.upstream else []
        inputs += [f"{name} ({k})" if k > 1 else name for name, k in input_groups(stage.numeric_inputs + stage.categorical_inputs)]
        rows.append(StageRow(
            title=f"Stage {i + 1}: {stage.name}",
            subtitle=" · ".join(x for x in (stage.dataset, scale) if x),
            inputs=tuple(inputs),
            latent_name=f"z{_SUB[i + 1]}",
            latent_dim=int(stage.latent_dim),
            targets=tuple(target_text(stage, t) for t in stage.targets),
        ))
    return rows


def _text(x: float, y: float, lines: list[tuple[str, bool]], *, color: str, size: int = 13,
          anchor: str = "middle") -> str:
    """An SVG ``<text>`` of one or more lines ((text, bold) pairs), the first line's baseline at ``y``."""
    bold_attr = ' font-weight="bold"'
    spans = "".join(
        f'<tspan x="{x:g}" dy="{0 if k == 0 else _LINE}"{bold_attr if bold else ""}>{escape(t)}</tspan>'
        for k, (t, bold) in enumerate(lines)
    )
    return f'<text x="{x:g}" y="{y:g}" font-size="{size}" fill="{color}" text-anchor="{anchor}">{spans}</text>'


def _box(col: tuple[float, float], y: float, h: float, lines: list[tuple[str, bool]], fill: str, *,
         dark: bool = False) -> str:
    x0, x1 = col
    first = y + h / 2 - (len(lines) - 1) * _LINE / 2 + 4  # the lines centred in the box
    return (f'<rect x="{x0}" y="{y:g}" width="{x1 - x0}" height="{h:g}" rx="4" fill="{fill}" stroke="#5A6B7B" '
            f'stroke-width="1.2"/>' + _text((x0 + x1) / 2, first, lines, color="white" if dark else "#1F2A36"))


def _arrow(x0: float, y0: float, x1: float, y1: float, *, dash: bool = False) -> str:
    colour = "#8A97A6" if dash else "#33414F"
    marker = "url(#nae-arrow-grey)" if dash else "url(#nae-arrow)"
    dashes = ' stroke-dasharray="2 3"' if dash else ""
    return (f'<line x1="{x0:g}" y1="{y0:g}" x2="{x1:g}" y2="{y1:g}" stroke="{colour}" stroke-width="1.6"'
            f'{dashes} marker-end="{marker}"/>')


def chain_svg(spec: ChainSpec) -> str:
    """The chain of ``spec`` as one line of SVG markup (scales to its container's width; every text escaped)."""
    rows = chain_layout(spec)
    parts: list[str] = []
    y = 0.0
    tops: list[tuple[float, float]] = []  # each row's box top and height
    for i, row in enumerate(rows):
        color = _STAGE_COLORS[i % len(_STAGE_COLORS)]
        outputs = [("Predicts", True)] + [(t, False) for t in row.targets]
        inputs = [("Inputs", True)] + [(t, False) for t in row.inputs]
        h = max(len(outputs), len(inputs), 2) * _LINE + 2 * _PAD
        parts.append(_text(_COLS["inp"][0], y + 17, [(row.title, True)], color=color, size=14, anchor="start")
                     .replace("</text>", f'<tspan font-weight="normal" fill="#5A6B7B"> · {escape(row.subtitle)}</tspan></text>'
                              if row.subtitle else "</text>"))
        top = y + _TITLE_H
        tops.append((top, h))
        mid = top + h / 2
        parts.append(_box(_COLS["inp"], top, h, inputs, "#EEF2F7"))
        parts.append(_box(_COLS["enc"], top, h, [(f"Stage-{i + 1}", True), ("encoder", True)], color, dark=True))
        parts.append(_box(_COLS["lat"], top, h, [(f"Latents {row.latent_name}", True), (f"({row.latent_dim})", False)],
                          "#D5E3F0"))
        parts.append(_box(_COLS["out"], top, h, outputs, "#FBE3D0"))
        for a, b in (("inp", "enc"), ("enc", "lat"), ("lat", "out")):
            parts.append(_arrow(_COLS[a][1], mid, _COLS[b][0] - 3, mid))
        # decoder: a dotted elbow from the latents back to the inputs
        xl, xi, yd = sum(_COLS["lat"]) / 2, sum(_COLS["inp"]) / 2, top + h + 12
        parts.append(f'<path d="M {xl:g} {top + h:g} L {xl:g} {yd:g} L {xi:g} {yd:g}" fill="none" stroke="#8A97A6" '
                     f'stroke-width="1.4" stroke-dasharray="2 3"/>')
        parts.append(_arrow(xi, yd, xi, top + h + 3, dash=True))
        parts.append(_text((xl + xi) / 2, yd + 14, [("decoder: reconstruct the inputs", False)], color="#6B7785", size=12))
        y = top + h + _DECODER_H + 8
    for i in range(len(rows) - 1):  # this stage's latents feed the next stage's encoder
        (top, h), (nxt, _) = tops[i], tops[i + 1]
        parts.append(_arrow(_COLS["lat"][1] - 20, top + h, sum(_COLS["enc"]) / 2, nxt - 3))
    height = round(y)
    defs = ('<defs>'
            '<marker id="nae-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#33414F"/></marker>'
            '<marker id="nae-arrow-grey" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#8A97A6"/></marker></defs>')
    aria = escape("The model chain: " + ", ".join(r.title for r in rows), {'"': "&quot;"})
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {height}" width="100%" '
            f'style="max-width:{_WIDTH * 1.3:g}px;font-family:sans-serif" role="img" '
            f'aria-label="{aria}">'
            + defs + "".join(parts) + "</svg>")
