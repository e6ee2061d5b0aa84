// The dashboard: plain ES modules, no build step. Everything it shows comes from the REST API
// with the token the operator typed in once (kept in sessionStorage: this tab only).
import { drawDeletions, drawOverdue, timeWindow } from './charts.js';
import { badge, bytes, count, duration, fill, h, relative, when } from './ui.js';

const TOKEN_KEY = 'retention.token';
const REFRESH_MS = 10_000;
const $ = (id) => document.getElementById(id);
const state = { role: null, following: new Map(), timer: null };

class Unauthorized extends Error {}

async function api(path, { method = 'GET', body, stream = false } = {}) {
  const headers = { authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) ?? ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) throw new Unauthorized('the token was not accepted');
  if (stream && response.ok) return response;
  const payload = await response.json();
  if (!response.ok) throw new Error(payload.error?.message ?? `HTTP ${response.status}`);
  return payload;
}

/**
 * Server-sent events over fetch (EventSource cannot send the Authorization header). A stream that
 * ends before `done` or `failed` with a `retry` (the cloud API answers one snapshot per request)
 * is asked for again after that many milliseconds.
 */
async function events(runId, onEvent) {
  for (;;) {
    const response = await api(`/api/runs/${encodeURIComponent(runId)}/events`, { stream: true });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let retry = null;
    let ended = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const field = (name) =>
          block
            .split('\n')
            .find((line) => line.startsWith(`${name}:`))
            ?.slice(name.length + 1)
            .trim();
        const data = field('data');
        const type = field('event') ?? 'message';
        if (field('retry') !== undefined) retry = Number(field('retry'));
        if (type === 'done' || type === 'failed') ended = true;
        if (data !== undefined) onEvent(type, JSON.parse(data));
      }
    }
    if (ended || retry === null) return;
    await new Promise((resolve) => setTimeout(resolve, retry));
  }
}

function showError(error) {
  if (error instanceof Unauthorized) return signOut('Your token was not accepted: sign in again.');
  $('error').textContent = String(error.message ?? error);
  $('error').hidden = false;
}

async function action(work) {
  $('error').hidden = true;
  try {
    await work();
  } catch (error) {
    showError(error);
  }
  await refresh();
}

// ---- overview, policies, history, holds ------------------------------------------------------

function card(id, title, value, detail) {
  return h(
    'article',
    { class: 'card', dataset: { card: id } },
    h('h3', {}, title),
    h('p', { class: 'value' }, value),
    h('p', { class: 'detail' }, detail),
  );
}

function renderCards(overview) {
  const sla = overview.sla;
  const last = overview.lastRun;
  $('cards').replaceChildren(
    card(
      'items-to-clean',
      'Items to clean',
      count(overview.itemsToClean),
      overview.unmeasured.length > 0
        ? `not measured yet: ${overview.unmeasured.join(', ')}`
        : 'past retention, not held',
    ),
    card(
      'bytes-to-free',
      'Bytes to free',
      bytes(overview.bytesToFree),
      overview.bytesToFreeFrom.length > 0
        ? `measured: ${overview.bytesToFreeFrom.join(', ')}`
        : 'dry-run a policy to measure',
    ),
    card(
      'freed-30d',
      'Space freed in 30 days',
      bytes(overview.bytesFreedLast30d),
      `${count(overview.deletedLast30d)} items deleted`,
    ),
    card(
      'last-run',
      'Last run',
      last ? relative(last.startedAt) : 'never',
      last ? `${last.policy} · ${last.status}${last.dryRun ? ' (dry run)' : ''}` : '',
    ),
    card(
      'sla',
      'SLA',
      h('span', {}, badge(overview.health)),
      `${sla.ok} ok · ${sla.warning} warning · ${sla.breach} breach · ${sla.none} not run`,
    ),
    card(
      'attention',
      'Need attention',
      count(overview.attentionOpen),
      'failed to delete run after run: retention attention list',
    ),
  );
}

/** One card per file system under fs policies (none: the section stays hidden). */
function renderDisks(disk) {
  const kinds = { critical: 'breach', unknown: 'warning' };
  const cards = disk.filesystems.map((fs) =>
    card(
      `disk-${fs.id}`,
      `Disk: ${fs.roots.join(', ')}`,
      h(
        'span',
        {},
        fs.usedPercent === undefined ? '-' : `${fs.usedPercent.toFixed(1)}% `,
        badge(fs.level, kinds[fs.level] ?? fs.level),
      ),
      fs.error ?? `${fs.policies.join(', ')} · warning ${disk.warning}%, critical ${disk.critical}%`,
    ),
  );
  $('disk-cards').replaceChildren(...cards);
  $('disk-cards').hidden = cards.length === 0;
}

function renderPolicies(policies) {
  const operator = state.role === 'operator';
  const rows = policies.map((policy) => {
    const globalPause = policy.paused?.scope === '*';
    const toggle = h('input', {
      type: 'checkbox',
      role: 'switch',
      class: 'toggle',
      'aria-label': `${policy.name} active`,
      title: policy.paused ? `paused by ${policy.paused.by}: ${policy.paused.reason}` : 'active: click to pause',
      checked: !policy.paused,
      disabled: !operator || globalPause,
      dataset: { action: 'toggle' },
      onchange: (event) =>
        action(() =>
          api(`/api/policies/${encodeURIComponent(policy.name)}/${event.target.checked ? 'resume' : 'pause'}`, {
            method: 'POST',
            body: event.target.checked ? undefined : { reason: 'paused from the dashboard' },
          }),
        ),
    });
    const busy = policy.running !== null;
    return h(
      'tr',
      { dataset: { policy: policy.name, status: policy.status } },
      h(
        'td',
        {},
        h('strong', {}, policy.name),
        h('div', { class: 'muted' }, policy.description ?? `${policy.dataClass} · ${policy.storeKind}`),
      ),
      h(
        'td',
        {},
        badge(policy.status),
        policy.health.problems.length > 0 ? h('div', { class: 'muted small' }, policy.health.problems[0]) : null,
      ),
      h('td', {}, toggle),
      h(
        'td',
        {},
        h('code', {}, policy.schedule),
        h('div', { class: 'muted' }, policy.nextRun ? relative(policy.nextRun) : 'disabled'),
      ),
      h(
        'td',
        {},
        policy.retention.map((rule) => h('div', { class: 'small' }, rule.rule)),
      ),
      h(
        'td',
        {},
        policy.lastRun
          ? [
              relative(policy.lastRun.startedAt),
              h('div', { class: 'muted' }, `${policy.lastRun.status}${policy.lastRun.dryRun ? ' (dry run)' : ''}`),
            ]
          : 'never',
      ),
      h('td', {}, policy.sla.status ? badge(policy.sla.status) : '–'),
      h(
        'td',
        { dataset: { cell: 'to-clean' } },
        policy.toClean ? count(policy.toClean.items) : '–',
        policy.bytesToFree !== null ? h('div', { class: 'muted' }, bytes(policy.bytesToFree)) : null,
      ),
      h(
        'td',
        { class: 'actions' },
        h(
          'button',
          {
            type: 'button',
            dataset: { action: 'dry-run' },
            disabled: !operator || busy,
            onclick: () => action(() => dryRun(policy.name)),
          },
          'Dry run',
        ),
        h(
          'button',
          {
            type: 'button',
            class: 'danger',
            dataset: { action: 'run' },
            disabled: !operator || busy,
            onclick: () => action(() => confirmAndRun(policy.name)),
          },
          'Run…',
        ),
      ),
    );
  });
  fill($('policies').tBodies[0], rows, 'no policies');
  for (const policy of policies)
    if (policy.running && !state.following.has(policy.running.runId))
      follow(policy.running.runId, policy.name, policy.running.dryRun);
  // Rebuilt on every refresh: what the operator picked stays picked.
  const picked = $('hold-policy').value;
  $('hold-policy').replaceChildren(
    h('option', { value: '' }, 'every policy'),
    ...policies.map((policy) => h('option', { value: policy.name }, policy.name)),
  );
  $('hold-policy').value = policies.some((policy) => policy.name === picked) ? picked : '';
}

function renderHistory(runs, stats) {
  const rows = runs.map((run) =>
    h(
      'tr',
      { dataset: { run: run.runId } },
      h('td', {}, h('code', {}, run.runId)),
      h('td', {}, run.policy),
      h('td', { title: when(run.startedAt) }, relative(run.startedAt)),
      h('td', {}, badge(run.status), run.dryRun ? ' dry run' : ''),
      h(
        'td',
        {},
        run.dryRun ? `(${count((run.report?.eligible ?? 0) - (run.report?.held ?? 0))})` : count(run.report?.deleted),
      ),
      h('td', {}, bytes(run.report?.bytesFreed)),
      h('td', {}, run.report ? badge(run.report.sla.status) : '–'),
      h('td', {}, run.report?.trigger ?? '–'),
    ),
  );
  fill($('history').tBodies[0], rows, 'no runs yet');
  drawDeletions($('chart-deletions'), stats.days);
  drawOverdue($('chart-overdue'), stats.overdue, timeWindow(stats.days));
}

function renderHolds(holds) {
  const operator = state.role === 'operator';
  const rows = holds.map((hold) =>
    h(
      'tr',
      { dataset: { hold: hold.id } },
      h('td', {}, hold.id),
      h('td', {}, hold.policy ?? '(all)'),
      h('td', {}, hold.prefix ? 'prefix' : 'key'),
      h('td', {}, h('code', {}, hold.key)),
      h('td', {}, hold.reason),
      h('td', {}, hold.createdBy),
      h('td', { title: when(hold.createdAt) }, relative(hold.createdAt)),
      h(
        'td',
        {},
        operator
          ? h(
              'button',
              {
                type: 'button',
                class: 'quiet',
                onclick: () => action(() => api(`/api/holds/${hold.id}`, { method: 'DELETE' })),
              },
              'Remove',
            )
          : null,
      ),
    ),
  );
  fill($('holds').tBodies[0], rows, 'no holds');
}

async function refresh() {
  if (!state.role) return;
  try {
    const [overview, policies, runs, stats, holds] = await Promise.all([
      api('/api/overview'),
      api('/api/policies'),
      api('/api/runs?limit=20'),
      api('/api/stats?days=30'),
      api('/api/holds'),
    ]);
    renderCards(overview);
    renderPolicies(policies);
    renderHistory(runs, stats);
    renderHolds(holds);
    renderDisks(await api('/api/disk'));
  } catch (error) {
    showError(error);
  }
}

// ---- runs ------------------------------------------------------------------------------------

/** A progress bar for one run, fed by its server-sent events; resolves with the final report. */
function follow(runId, policy, dryRun) {
  if (state.following.has(runId)) return state.following.get(runId);
  $('runs').hidden = false;
  const bar = h('progress', { max: 1, value: 0 });
  const text = h('span', { class: 'muted' }, 'starting…');
  const entry = h(
    'div',
    { class: 'run', dataset: { runId, policy, state: 'running' } },
    h('strong', {}, `${policy}${dryRun ? ' (dry run)' : ''}`),
    bar,
    text,
  );
  $('progress-list').prepend(entry);
  const finished = new Promise((resolve, reject) => {
    events(runId, (type, data) => {
      if (type === 'progress') {
        bar.value = data.fraction;
        text.textContent = dryRun
          ? `scanned ${count(data.scanned)} of ${count(data.total)}`
          : `deleted ${count(data.deleted)} of ${count(data.planned)}`;
      } else if (type === 'running') {
        text.textContent = 'running…';
      } else if (type === 'done') {
        bar.value = 1;
        entry.dataset.state = 'done';
        entry.dataset.status = data.status;
        const outcome = dryRun
          ? `${count(data.eligible - data.held)} would be deleted`
          : `deleted ${count(data.deleted)}`;
        text.textContent = `${data.status} · ${outcome} · ${duration(data.durationSeconds)}`;
        resolve(data);
      } else {
        entry.dataset.state = 'failed';
        text.textContent = data.message;
        reject(new Error(data.message));
      }
    }).catch(reject);
  });
  state.following.set(runId, finished);
  finished.finally(() => setTimeout(refresh, 0)).catch(() => undefined);
  return finished;
}

async function start(policy, body) {
  const started = await api(`/api/policies/${encodeURIComponent(policy)}/runs`, { method: 'POST', body });
  return follow(started.runId, policy, body.dryRun).then((report) => ({ ...report, runId: started.runId }));
}

async function dryRun(policy) {
  const report = await start(policy, { dryRun: true, list: true });
  const listed = await api(`/api/runs/${encodeURIComponent(report.runId)}/items?limit=1000`);
  const wouldDelete = listed.items.filter((item) => item.outcome === 'would_delete');
  const section = $('dry-run');
  section.hidden = false;
  section.dataset.runId = report.runId;
  section.dataset.count = String(wouldDelete.length);
  $('dry-run-title').textContent = `Dry run of ${policy}`;
  $('dry-run-summary').textContent =
    `${count(report.eligible - report.held)} item(s) would be deleted (${bytes(listed.bytesToFree)}), ` +
    `${count(report.held)} held; ${report.status}` +
    `${listed.total > listed.items.length ? `; first ${listed.items.length} of ${listed.total} listed` : ''}.`;
  const rows = listed.items.map((item) =>
    h(
      'tr',
      { dataset: { outcome: item.outcome } },
      h('td', {}, h('code', {}, item.key)),
      h('td', {}, when(item.timestamp)),
      h('td', {}, item.outcome === 'held' ? `held: ${item.error}` : item.rule),
    ),
  );
  fill($('dry-run-items').tBodies[0], rows, 'nothing is past retention');
  section.scrollIntoView({ block: 'nearest' });
}

/** The confirmation states what a dry run just found: the operator confirms a number, not a guess. */
async function confirmAndRun(policy) {
  const plan = await start(policy, { dryRun: true });
  const planned = plan.eligible - plan.held;
  const dialog = $('confirm-run');
  $('confirm-title').textContent = `Run ${policy} now?`;
  $('confirm-text').textContent =
    `A dry run just found ${count(planned)} item(s) past retention to delete` +
    `${plan.held > 0 ? ` (${count(plan.held)} held, kept)` : ''}. Deleted items are recorded in the audit trail.`;
  $('confirm-text').dataset.count = String(planned);
  $('confirm-go').disabled = planned === 0;
  dialog.returnValue = '';
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener('close', resolve, { once: true }));
  if (dialog.returnValue === 'run') await start(policy, { dryRun: false });
}

// ---- session ---------------------------------------------------------------------------------

async function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    const who = await api('/api/whoami');
    state.role = who.role;
  } catch (error) {
    return signOut(error instanceof Unauthorized ? 'That token was not accepted.' : String(error.message));
  }
  $('login').hidden = true;
  $('app').hidden = false;
  $('session').hidden = false;
  $('role').textContent = state.role === 'operator' ? 'operator' : 'viewer (read only)';
  for (const element of document.querySelectorAll('[data-operator]')) element.hidden = state.role !== 'operator';
  await refresh();
  state.timer = setInterval(refresh, REFRESH_MS);
}

function signOut(message = '') {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(state.timer);
  state.role = null;
  $('app').hidden = true;
  $('session').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
}

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  void signIn($('token').value.trim());
});
$('sign-out').addEventListener('click', () => signOut());
$('pause-all').addEventListener('click', () =>
  action(() => api('/api/pause', { method: 'POST', body: { reason: 'kill switch (dashboard)' } })),
);
$('resume-all').addEventListener('click', () => action(() => api('/api/resume', { method: 'POST' })));
$('audit-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void action(async () => {
    const records = await api(`/api/audit?key=${encodeURIComponent($('audit-key').value)}`);
    const rows = records.map((record) =>
      h(
        'tr',
        {},
        h('td', {}, when(record.resolvedAt ?? record.createdAt)),
        h('td', {}, record.action),
        h('td', {}, badge(record.status)),
        h('td', {}, record.policy),
        h('td', {}, h('code', {}, record.key)),
        h('td', {}, record.rule),
        h('td', {}, record.actor),
        h('td', {}, h('code', {}, record.runId)),
      ),
    );
    fill($('audit').tBodies[0], rows, 'no records for this key');
  });
});
$('hold-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const value = $('hold-key').value;
  const body = {
    reason: $('hold-reason').value,
    [$('hold-match').value]: value,
    policy: $('hold-policy').value || null,
  };
  void action(() => api('/api/holds', { method: 'POST', body }).then(() => event.target.reset()));
});

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) void signIn(saved);
else signOut();
