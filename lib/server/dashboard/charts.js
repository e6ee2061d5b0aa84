// History charts, drawn with uPlot (served from node_modules as /vendor/uPlot.iife.min.js).
// Each container also carries what it shows as data attributes (data-total, data-points), so
// tests and scripts can read what the canvas draws.

const COLORS = ['#2563eb', '#d97706', '#059669', '#db2777', '#7c3aed', '#0891b2', '#65a30d'];
const charts = new Map();

function draw(container, options, data) {
  charts.get(container.id)?.destroy();
  const width = Math.max(280, container.clientWidth || 480);
  charts.set(container.id, new uPlot({ width, height: 200, ...options }, data, container));
}

const HALF_DAY = 43_200;

/** The charts' common time axis: the days shown, half a day either side so the end bars show whole. */
export function timeWindow(days) {
  const first = Date.parse(`${days[0].date}T00:00:00Z`) / 1000;
  const last = Date.parse(`${days.at(-1).date}T00:00:00Z`) / 1000;
  return [first - HALF_DAY, last + 3 * HALF_DAY];
}

/** Deleted items per UTC day (live runs), as bars. */
export function drawDeletions(container, days) {
  const xs = days.map((day) => Date.parse(`${day.date}T00:00:00Z`) / 1000 + HALF_DAY);
  const [from, to] = timeWindow(days);
  const deleted = days.map((day) => day.deleted);
  container.dataset.total = String(deleted.reduce((sum, value) => sum + value, 0));
  container.dataset.points = String(days.length);
  draw(
    container,
    {
      legend: { show: true },
      scales: { x: { time: true, range: () => [from, to] }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      axes: [{}, { label: 'items' }],
      series: [
        {},
        {
          label: 'deleted',
          stroke: COLORS[0],
          fill: 'rgba(37, 99, 235, 0.35)',
          paths: uPlot.paths.bars({ size: [0.7, 40] }),
          points: { show: false },
        },
      ],
    },
    [xs, deleted],
  );
}

/** The oldest overdue item left after each live run, one line per policy, in hours. */
export function drawOverdue(container, points, [from, to]) {
  const policies = [...new Set(points.map((point) => point.policy))].sort();
  const xs = [...new Set(points.map((point) => Date.parse(point.at) / 1000))].sort((a, b) => a - b);
  const columns = policies.map((policy) => {
    const byTime = new Map(
      points
        .filter((point) => point.policy === policy)
        .map((point) => [Date.parse(point.at) / 1000, point.seconds / 3600]),
    );
    return xs.map((x) => (byTime.has(x) ? byTime.get(x) : null));
  });
  container.dataset.points = String(points.length);
  container.dataset.total = String(points.reduce((sum, point) => sum + point.seconds, 0));
  draw(
    container,
    {
      scales: { x: { time: true, range: () => [from, to] }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      axes: [{}, { label: 'hours' }],
      series: [
        {},
        ...policies.map((policy, index) => ({
          label: policy,
          stroke: COLORS[index % COLORS.length],
          width: 2,
          spanGaps: true,
        })),
      ],
    },
    [xs, ...columns],
  );
}
