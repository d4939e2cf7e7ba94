/** One line on a chart: a label and (x, y) points. */
export interface Series { label: string; points: Array<[number, number]> }

/** Bound on points drawn per series (keeps the SVG small). */
const MAX_POINTS = 1000;
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** Renders one line chart panel as SVG elements inside a <g> at (ox, oy). */
function panel(title: string, xLabel: string, yLabel: string, series: Series[], ox: number, oy: number, w: number, h: number): string {
  const pad = { l: 70, r: 15, t: 30, b: 45 };
  const pw = w - pad.l - pad.r; const ph = h - pad.t - pad.b;
  const all = series.flatMap((s) => s.points.slice(0, MAX_POINTS)).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xMax = niceMax(Math.max(0, ...all.map(([x]) => x)));
  const yMax = niceMax(Math.max(0, ...all.map(([, y]) => y)));
  const sx = (x: number) => ox + pad.l + (x / xMax) * pw;
  const sy = (y: number) => oy + pad.t + ph - (y / yMax) * ph;
  const out: string[] = [];
  out.push(`<text x="${ox + w / 2}" y="${oy + 18}" text-anchor="middle" font-weight="bold">${esc(title)}</text>`);
  for (let i = 0; i <= 5; i++) {
    const yv = (yMax * i) / 5; const xv = (xMax * i) / 5;
    out.push(`<line x1="${sx(0)}" x2="${sx(xMax)}" y1="${sy(yv)}" y2="${sy(yv)}" stroke="#ddd"/>`);
    out.push(`<text x="${sx(0) - 6}" y="${sy(yv) + 4}" text-anchor="end" font-size="11">${Math.round(yv).toLocaleString('en-US')}</text>`);
    out.push(`<text x="${sx(xv)}" y="${sy(0) + 16}" text-anchor="middle" font-size="11">${Math.round(xv).toLocaleString('en-US')}</text>`);
  }
  out.push(`<line x1="${sx(0)}" x2="${sx(0)}" y1="${sy(0)}" y2="${sy(yMax)}" stroke="#000"/>`);
  out.push(`<line x1="${sx(0)}" x2="${sx(xMax)}" y1="${sy(0)}" y2="${sy(0)}" stroke="#000"/>`);
  out.push(`<text x="${ox + pad.l + pw / 2}" y="${oy + h - 8}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>`);
  out.push(`<text transform="translate(${ox + 14},${oy + pad.t + ph / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(yLabel)}</text>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const pts = s.points.slice(0, MAX_POINTS).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).sort((a, b) => a[0] - b[0]);
    if (pts.length > 0) out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of pts) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${color}"/>`);
    out.push(`<rect x="${ox + pad.l + 10}" y="${oy + pad.t + 6 + i * 16}" width="10" height="10" fill="${color}"/>`);
    out.push(`<text x="${ox + pad.l + 26}" y="${oy + pad.t + 15 + i * 16}" font-size="11">${esc(s.label)}</text>`);
  });
  return out.join('\n');
}

/** A self-contained SVG with one panel per chart, side by side. */
export function renderCharts(charts: Array<{ title: string; xLabel: string; yLabel: string; series: Series[] }>, caption: string): string {
  const w = 460; const h = 320;
  const width = w * charts.length; const height = h + 24;
  const body = charts.map((c, i) => panel(c.title, c.xLabel, c.yLabel, c.series, i * w, 0, w, h)).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
${body}
<text x="8" y="${height - 6}" font-size="10" fill="#555">${esc(caption)}</text>
</svg>
`;
}
