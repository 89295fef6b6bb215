"""Small SVG pieces the pause plots share (stdlib only): a document, a
timeline of pauses on a log scale, a legend.

Each function returns a list of SVG element strings; document() wraps them.
"""
import math


def document(width, height, parts):
    """A whole SVG file's text: white background, sans-serif, then parts."""
    head = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
            'font-size="11"><rect width="100%%" height="100%%" fill="white"/>' % (width, height)]
    return "\n".join(head + list(parts) + ["</svg>"])


def timeline(box, series, tmax, title, xlabel, lo_ms=0.01, hi_ms=1000, grid=(0.1, 1, 10, 100), radius=1.6,
             title_y=None):
    """Pause length (log scale, lo_ms..hi_ms) against time (0..tmax).

    box: (x0, y_top, x1, y_bottom) of the plot area; series: [(colour,
    [(t, pause_ms), ...]), ...], drawn in that order; the title sits above
    the box (or at title_y)."""
    x0, y1, x1, y0 = box
    lo, hi = math.log10(lo_ms), math.log10(hi_ms)
    tmax = tmax or 1

    def y_of(ms):
        return y0 - (y0 - y1) * (math.log10(min(max(ms, lo_ms), hi_ms)) - lo) / (hi - lo)

    parts = ['<text x="%d" y="%d" font-size="13">%s</text>' % (x0, y1 - 10 if title_y is None else title_y, title)]
    for ms in grid:
        y = y_of(ms)
        parts.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ccc"/>' % (x0, y, x1, y))
        parts.append('<text x="%d" y="%.1f" text-anchor="end">%g</text>' % (x0 - 4, y + 4, ms))
    for colour, points in series:
        for t, d in points:
            parts.append('<circle cx="%.1f" cy="%.1f" r="%g" fill="%s" fill-opacity="0.6"/>' %
                         (x0 + (x1 - x0) * t / tmax, y_of(d), radius, colour))
    for k in range(5):  # time ticks
        x = x0 + (x1 - x0) * k / 4
        parts.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black"/>' % (x, y0, x, y0 + 4))
        parts.append('<text x="%.1f" y="%d" text-anchor="%s">%.0f</text>' %
                     (x, y0 + 15, "end" if k == 4 else "middle", tmax * k / 4))
    parts.append('<text x="%d" y="%d" text-anchor="middle">%s</text>' % ((x0 + x1) // 2, y0 + 30, xlabel))
    return parts


def legend(x, y, items, step=200):
    """A row of colour swatches with labels: items [(colour, label), ...]."""
    return ['<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>' %
            (x + j * step, y, colour, x + 14 + j * step, y + 9, label) for j, (colour, label) in enumerate(items)]
