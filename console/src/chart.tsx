/** A small SVG line chart: a few series over time, with axes, a legend and a value per point on hover. */

export interface Series {
  name: string;
  color: string;
  values: (number | null)[];
}

const WIDTH = 960;
const HEIGHT = 220;
const PAD = { left: 52, right: 16, top: 12, bottom: 28 };

/** A round upper bound and its ticks: 0, 1, 2, 5, 10, 20, 50, ... */
function scale(max: number): { top: number; ticks: number[] } {
  if (max <= 0) return { top: 1, ticks: [0, 1] };
  const magnitude = 10 ** Math.floor(Math.log10(max));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => max / s <= 5) ?? 10 * magnitude;
  const top = Math.ceil(max / step) * step;
  const ticks = [];
  for (let t = 0; t <= top + step / 2; t += step) ticks.push(t);
  return { top, ticks };
}

export function LineChart(props: {
  title: string;
  times: string[];
  series: Series[];
  format?: (value: number) => string;
  timeLabel: (iso: string) => string;
  max?: number;
}) {
  const format = props.format ?? ((v: number) => String(v));
  const values = props.series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const { top, ticks } = scale(props.max ?? Math.max(0, ...values));
  const n = props.times.length;
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (i: number) => PAD.left + (n <= 1 ? plotW / 2 : (i * plotW) / (n - 1));
  const y = (v: number) => PAD.top + plotH - (v / top) * plotH;
  const labelEvery = Math.max(1, Math.ceil(n / 8));

  const path = (s: Series) => {
    let d = '';
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    return d;
  };

  return (
    <figure class="chart" data-chart={props.title}>
      <figcaption>{props.title}</figcaption>
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={props.title}>
        {ticks.map((t) => (
          <g key={t}>
            <line class="grid" x1={PAD.left} x2={WIDTH - PAD.right} y1={y(t)} y2={y(t)} />
            <text class="axis" x={PAD.left - 6} y={y(t) + 4} text-anchor="end">
              {format(t)}
            </text>
          </g>
        ))}
        {props.times.map((t, i) =>
          i % labelEvery === 0 ? (
            <text key={t} class="axis" x={x(i)} y={HEIGHT - 8} text-anchor="middle">
              {props.timeLabel(t)}
            </text>
          ) : null,
        )}
        {props.series.map((s) => (
          <g key={s.name}>
            <path d={path(s)} fill="none" stroke={s.color} stroke-width="2" />
            {s.values.map((v, i) =>
              v === null ? null : (
                <circle key={i} cx={x(i)} cy={y(v)} r={n > 60 ? 1.5 : 3} fill={s.color}>
                  <title>{`${s.name} ${props.timeLabel(props.times[i] as string)}: ${format(v)}`}</title>
                </circle>
              ),
            )}
          </g>
        ))}
      </svg>
      <ul class="legend">
        {props.series.map((s) => (
          <li key={s.name}>
            <span class="swatch" style={{ background: s.color }} />
            {s.name}
          </li>
        ))}
      </ul>
    </figure>
  );
}

/** Horizontal bars for a funnel: each step's count and its share of the first. */
export function Funnel(props: { steps: { name: string; count: number; rate?: number | null }[] }) {
  const first = Math.max(1, props.steps[0]?.count ?? 1);
  return (
    <div class="funnel">
      {props.steps.map((step) => (
        <div class="funnel-step" key={step.name} data-step={step.name}>
          <span class="funnel-name">{step.name}</span>
          <span class="funnel-bar">
            <span style={{ width: `${Math.min(100, (step.count / first) * 100)}%` }} />
          </span>
          <span class="funnel-count">{step.count}</span>
          <span class="funnel-rate">{step.rate === undefined ? '' : step.rate === null ? '–' : `${(step.rate * 100).toFixed(1)}%`}</span>
        </div>
      ))}
    </div>
  );
}
