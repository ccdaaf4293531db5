/* global ResizeObserver */
/** Time-series charts with uPlot: one plot per chart, resized with its container, data swapped in place. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { html } from './ui.js';

/**
 * A line chart. `data` is uPlot's columns: `[xs (unix seconds), ...ys]`; `series` gives each y
 * column `{ label, stroke, fill?, unit? }`. `yUnit` labels the y axis values.
 */
export function TimeChart({ data, series, height = 220, yUnit = '', testId }) {
  const box = useRef();
  const plot = useRef();
  const key = series.map((s) => s.label).join('|');

  useEffect(() => {
    const el = box.current;
    const fmt = (v) => (v === null || v === undefined ? '—' : `${formatValue(v)}${yUnit ? ` ${yUnit}` : ''}`);
    const opts = {
      width: Math.max(200, el.clientWidth),
      height,
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true },
        y: { range: (_u, min, max) => [0, Math.max(max ?? 0, min ?? 0, 1) * 1.1] },
      },
      axes: [
        { stroke: '#64748b', grid: { stroke: '#eef1f5' }, ticks: { stroke: '#e2e8f0' } },
        {
          stroke: '#64748b',
          grid: { stroke: '#eef1f5' },
          ticks: { stroke: '#e2e8f0' },
          size: 56,
          values: (_u, splits) => splits.map((v) => formatValue(v)),
        },
      ],
      series: [
        { label: 'time' },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.stroke,
          fill: s.fill,
          width: 1.75,
          spanGaps: false,
          // Lines need two points: a bucket alone between empty ones is drawn as a dot.
          points: { show: true, size: 5, filter: isolated },
          value: (_u, v) => fmt(v),
        })),
      ],
    };
    plot.current = new uPlot(opts, data, el);
    const observer = new ResizeObserver(() => {
      plot.current?.setSize({ width: Math.max(200, el.clientWidth), height });
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.current?.destroy();
      plot.current = undefined;
    };
    // The plot is rebuilt only when its series change; new data goes through setData below.
  }, [key, height]);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  return html`<div class="chart" ref=${box} data-chart=${testId}></div>`;
}

/** Indices of values with no value on either side (no line reaches them). */
function isolated(u, seriesIdx) {
  const ys = u.data[seriesIdx];
  const out = [];
  for (let i = 0; i < ys.length; i++) {
    if (
      ys[i] !== null &&
      ys[i] !== undefined &&
      (ys[i - 1] ?? null) === null &&
      (ys[i + 1] ?? null) === null
    ) {
      out.push(i);
    }
  }
  return out;
}

function formatValue(v) {
  if (v === 0) {
    return '0';
  }
  if (Math.abs(v) >= 1000) {
    return `${(v / 1000).toFixed(v >= 10_000 ? 0 : 1)}k`;
  }
  if (Math.abs(v) >= 10) {
    return String(Math.round(v));
  }
  return v.toFixed(2).replace(/\.?0+$/, '');
}
