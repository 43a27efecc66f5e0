"""Pictures drawn on the server as SVG: no chart library, nothing for the phone to fetch.

Each function returns a complete ``<svg>`` element (escaped text, ``role="img"`` and a
``<title>`` for screen readers) to inline in a page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#1b7f3b", "#2f5d9e", "#b35c00", "#7a3e9d", "#8a6d00", "#a12b2b", "#3c6e71")


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    text: str  # the value as the reader should read it


def _frame(width: int, height: int, title: str, body: str) -> str:
    t = escape(title)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{t}"><title>{t}</title>{body}</svg>'
    )


def waterfall(title: str, total_label: str, total_text: str, parts: Sequence[Bar]) -> str:
    """Where an amount went: the total, then each part stepping down from it."""
    total = sum(p.value for p in parts)
    width, row, label_w = 640, 34, 220
    height = row * (len(parts) + 1) + 10
    scale = (width - label_w - 120) / total if total > 0 else 0.0
    out = [
        f'<text x="0" y="22" font-size="14">{escape(total_label)}</text>',
        f'<rect x="{label_w}" y="8" width="{total * scale:.1f}" height="22" fill="#444"/>',
        f'<text x="{label_w + total * scale + 6:.1f}" y="24" font-size="14">'
        f"{escape(total_text)}</text>",
    ]
    left = float(label_w)
    for i, part in enumerate(parts, start=1):
        y = i * row + 8
        w = part.value * scale
        colour = PALETTE[(i - 1) % len(PALETTE)]
        out.append(f'<text x="0" y="{y + 15}" font-size="14">{escape(part.label)}</text>')
        out.append(
            f'<rect x="{left:.1f}" y="{y}" width="{max(w, 1):.1f}" height="22" fill="{colour}"/>'
        )
        out.append(
            f'<text x="{left + w + 6:.1f}" y="{y + 16}" font-size="14">{escape(part.text)}</text>'
        )
        left += w
    return _frame(width, height, title, "".join(out))


def bars(title: str, items: Sequence[Bar]) -> str:
    """Horizontal bars, one per item (e.g. the payout of each farmer)."""
    top = max((b.value for b in items), default=0)
    width, row, label_w = 640, 30, 180
    height = row * max(len(items), 1) + 6
    scale = (width - label_w - 130) / top if top > 0 else 0.0
    out = []
    for i, item in enumerate(items):
        y = i * row + 4
        w = item.value * scale
        out.append(f'<text x="0" y="{y + 15}" font-size="14">{escape(item.label)}</text>')
        out.append(
            f'<rect x="{label_w}" y="{y}" width="{max(w, 1):.1f}" height="20" fill="{PALETTE[0]}"/>'
        )
        x = label_w + w + 6
        out.append(f'<text x="{x:.1f}" y="{y + 15}" font-size="14">{escape(item.text)}</text>')
    return _frame(width, height, title, "".join(out))


@dataclass(frozen=True)
class Step:
    at: int  # unix seconds
    label: str
    when: str  # the time as the reader should read it


def timeline(title: str, steps: Sequence[Step]) -> str:
    """Steps on a time axis, each with its label and time, one per line (narrow screens)."""
    width, row = 640, 44
    height = row * max(len(steps), 1) + 10
    first = min((s.at for s in steps), default=0)
    last = max((s.at for s in steps), default=0)
    span = max(last - first, 1)
    out = [f'<line x1="20" y1="10" x2="20" y2="{height - 10}" stroke="#888" stroke-width="2"/>']
    for i, step in enumerate(steps):
        y = i * row + 22
        # The dot's shade says how far along in time the step is.
        share = (step.at - first) / span
        colour = PALETTE[1] if share < 1 else PALETTE[0]
        out.append(f'<circle cx="20" cy="{y}" r="8" fill="{colour}"/>')
        out.append(f'<text x="40" y="{y - 2}" font-size="14">{escape(step.label)}</text>')
        out.append(
            f'<text x="40" y="{y + 15}" font-size="12" fill="#333">{escape(step.when)}</text>'
        )
    return _frame(width, height, title, "".join(out))
