# Reads back the data values of the lines of one plot of a report page: the plot's tick labels
# give the pixel-to-value scales, and each polyline's points are mapped back through them.
# usage: svgpoints.py PAGE TITLE  -> JSON [{"width": stroke width, "points": [[x, y], ...]}, ...]
import json
import re
import sys

page, title = sys.argv[1:3]
svg = next(v for v in re.findall(r'<svg class="plot.*?</svg>', open(page).read(), re.S)
           if re.search(r'font-weight="bold">' + re.escape(title) + '<', v))
yt = [(float(py) - 4, float(v)) for py, v in
      re.findall(r'<text x="\d+" y="([\d.]+)" text-anchor="end" font-size="11">([-\d.e+]+)</text>', svg)]
xt = [(float(px), float(v)) for px, v in
      re.findall(r'<text x="([\d.]+)" y="\d+" text-anchor="middle" font-size="11">([-\d.e+]+)</text>', svg)]


def scale(ticks):
    (p0, v0), (p1, v1) = ticks[0], ticks[-1]
    return lambda p: v0 + (p - p0) * (v1 - v0) / (p1 - p0)


sx, sy = scale(xt), scale(yt)
lines = []
for width, pts in re.findall(r'<polyline[^>]*stroke-width="([\d.]+)"[^>]*points="([^"]*)"', svg):
    xy = [tuple(map(float, p.split(","))) for p in pts.split()]
    lines.append({"width": float(width), "points": [[sx(x), sy(y)] for x, y in xy],
                  "per_pixel": [abs(sx(1) - sx(0)), abs(sy(1) - sy(0))]})
print(json.dumps(lines))
