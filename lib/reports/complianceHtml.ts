import type { DayFigures, PolicyPeriodReport } from './compliance.ts';
import type { ComplianceReport } from './complianceRead.ts';

/**
 * The report as one self-contained printable page: inline CSS, charts drawn here as inline SVG
 * (deletions per day as bars, the oldest overdue item per day as a line), no script, no network.
 */
const escaped = (text: string | number): string => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const CSS = `body{font:13px/1.4 system-ui,sans-serif;margin:24px;color:#111}h1{font-size:20px}h2{font-size:16px;margin-top:28px;
border-bottom:1px solid #ccc}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.compliant{color:#176f2c}.attention{color:#b00020}
.disabled{color:#666}.findings li{color:#b00020}section{break-inside:avoid}svg text{font-size:10px;fill:#333}
@media print{body{margin:0}h2{break-after:avoid}}`;

export function complianceHtml(report: ComplianceReport): string {
  const { summary, chains } = report;
  const chain = chains.intact
    ? `<p class="compliant">Audit chains intact: ${chains.verified_records} record(s) and ${chains.verified_batches} row batch(es) verified since ${escaped(chains.since)}.</p>`
    : `<p class="attention">Audit chains ALTERED: ${chains.problem_count} problem(s); first: ${escaped(chains.first_problem ?? '')}</p>`;
  const rows = report.policies.map(
    (p) =>
      `<tr><td>${escaped(p.policy)}</td><td class="${p.verdict}">${p.verdict}</td><td>${p.deleted}</td><td>${p.failed}</td>` +
      `<td>${p.failure_rate_percent}%</td><td>${p.end.held ?? '-'}</td><td>${p.end.unclassified ?? '-'}</td>` +
      `<td>${p.end.backlog ?? '-'}</td><td>${overdue(p.end.oldest_overdue_seconds)}</td><td>${p.sla_breaches}</td>` +
      `<td>${p.missed_runs.count}</td><td>${p.reconciliation.findings.length}</td></tr>`,
  );
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Retention compliance ${escaped(report.period.label)}</title>
<style>${CSS}</style></head><body>
<h1>Retention compliance report: ${escaped(report.period.label)}</h1>
<p>Period ${escaped(report.period.from)} to ${escaped(report.period.to)} (UTC, end excluded); generated ${escaped(report.generated_at)}.
${summary.compliant} compliant, ${summary.attention} need attention, ${summary.disabled} disabled; ${summary.findings} reconciliation finding(s).</p>
${chain}
<table><tr><th>policy</th><th>verdict</th><th>deleted</th><th>failed</th><th>failure rate</th><th>held</th><th>unclassified</th>
<th>backlog</th><th>oldest overdue</th><th>SLA breaches</th><th>missed runs</th><th>findings</th></tr>
${rows.join('\n')}</table>
<p>Held, unclassified, backlog and oldest overdue: at the end of the period. Deleted: the audit trail's records.</p>
${report.policies.map(policySection).join('\n')}
</body></html>
`;
}

function policySection(p: PolicyPeriodReport): string {
  const reasons = p.reasons.length
    ? `<ul class="findings">${p.reasons.map((reason) => `<li>${escaped(reason)}</li>`).join('')}</ul>`
    : '<p class="compliant">Nothing to explain.</p>';
  const purposes = p.purposes
    .map(
      (f) =>
        `<tr><td>${escaped(f.purpose)}</td><td>${f.deleted}</td><td>${f.failed}</td><td>${f.kept}</td><td>${f.pending}</td></tr>`,
    )
    .join('');
  const governance = Object.entries(p.governance)
    .map(([action, count]) => `${escaped(action)} ${count}`)
    .join(', ');
  const { reconciliation: r } = p;
  return `<section><h2>${escaped(p.policy)} <span class="${p.verdict}">(${p.verdict})</span></h2>
${reasons}
<p>Reconciliation: ${r.audit_deleted} deletion(s) recorded in the period; the ${p.runs.total} run(s) started in it report ${r.history_deleted};
${r.runs_checked} run(s) checked whole against their records, ${r.unreported.length} without a report.
Governance: ${governance || 'none'}.</p>
${chart(p.days)}
${purposes ? `<table><tr><th>purpose</th><th>deleted</th><th>failed</th><th>kept</th><th>pending</th></tr>${purposes}</table>` : ''}
</section>`;
}

function overdue(seconds: number | null): string {
  if (seconds === null) return '-';
  return seconds < 3600 ? `${Math.round(seconds)} s` : `${(seconds / 3600).toFixed(1)} h`;
}

/** Bars: deletions per day (left scale); line: oldest overdue in hours after each day's last run (right scale). */
export function chart(days: DayFigures[]): string {
  const [width, height, left, right, top, bottom] = [720, 180, 44, 44, 10, 28];
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const maxDeleted = Math.max(1, ...days.map((d) => d.deleted));
  const hours = days.map((d) => (d.oldest_overdue_seconds === null ? null : d.oldest_overdue_seconds / 3600));
  const maxHours = Math.max(1, ...hours.map((h) => h ?? 0));
  const step = plotW / Math.max(1, days.length);
  const bars = days.map((d, i) => {
    const h = (d.deleted / maxDeleted) * plotH;
    return `<rect x="${(left + i * step + step * 0.15).toFixed(1)}" y="${(top + plotH - h).toFixed(1)}" width="${(step * 0.7).toFixed(1)}" height="${h.toFixed(1)}" fill="#4a78b5"><title>${d.day}: ${d.deleted} deleted</title></rect>`;
  });
  const points = hours.flatMap((h, i) =>
    h === null
      ? []
      : [`${(left + i * step + step / 2).toFixed(1)},${(top + plotH - (h / maxHours) * plotH).toFixed(1)}`],
  );
  const line = points.length
    ? `<polyline points="${points.join(' ')}" fill="none" stroke="#d0641c" stroke-width="2"/>` +
      points
        .map((point) => `<circle cx="${point.split(',')[0]}" cy="${point.split(',')[1]}" r="2.5" fill="#d0641c"/>`)
        .join('')
    : '';
  const labels = days
    .map((d, i) =>
      i % Math.ceil(days.length / 10) === 0
        ? `<text x="${(left + i * step + step / 2).toFixed(1)}" y="${height - 12}" text-anchor="middle">${d.day.slice(5)}</text>`
        : '',
    )
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" aria-label="deletions per day and oldest overdue">
<line x1="${left}" y1="${top + plotH}" x2="${width - right}" y2="${top + plotH}" stroke="#999"/>
<text x="${left - 4}" y="${top + 8}" text-anchor="end">${maxDeleted}</text><text x="${left - 4}" y="${top + plotH}" text-anchor="end">0</text>
<text x="${width - right + 4}" y="${top + 8}" fill="#d0641c">${maxHours.toFixed(1)} h</text>
${bars.join('')}${line}${labels}
<text x="${left}" y="${height - 1}">bars: deleted per day</text><text x="${width - right}" y="${height - 1}" text-anchor="end" fill="#d0641c">line: oldest overdue (hours)</text>
</svg>`;
}
