/**
 * 5-field UTC cron (the config's `schedule`) → EventBridge `cron(min hour dom month dow year)`.
 *
 * Pure. Each field is expanded to the set of instants it matches and written back in the plainest
 * form EventBridge accepts (`*`, `start/step`, or a list of values and ranges), so steps on ranges
 * and Sunday-as-7 never reach AWS in a form it reads differently. Differences handled here:
 * - day of week: cron 0–7 with 0 and 7 = Sunday; EventBridge 1–7 with 1 = Sunday.
 * - EventBridge needs `?` in exactly one of day-of-month / day-of-week.
 * - a schedule restricting both day fields (cron ORs them, or ANDs them after a `*` step) has no
 *   EventBridge equivalent: it is refused rather than silently narrowed or widened.
 */
export type EventBridgeCron = { ok: true; expression: string } | { ok: false; message: string; fix: string };

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  /** EventBridge takes `/` in every field but day-of-week. */
  steps: boolean;
}

const MINUTE: FieldSpec = { name: 'minute', min: 0, max: 59, steps: true };
const HOUR: FieldSpec = { name: 'hour', min: 0, max: 23, steps: true };
const DAY_OF_MONTH: FieldSpec = { name: 'day-of-month', min: 1, max: 31, steps: true };
const MONTH: FieldSpec = { name: 'month', min: 1, max: 12, steps: true };
/** cron's day of week: 7 is accepted as a second Sunday. */
const DAY_OF_WEEK: FieldSpec = { name: 'day-of-week', min: 0, max: 7, steps: true };
/** EventBridge's day of week, 1 = Sunday … 7 = Saturday. */
const EVENTBRIDGE_DAY_OF_WEEK: FieldSpec = { name: 'day-of-week', min: 1, max: 7, steps: false };

class FieldError extends Error {}

/** Every value a field matches, e.g. `1-10/3` → {1, 4, 7, 10}. */
function expand(field: string, spec: FieldSpec): Set<number> {
  const values = new Set<number>();
  for (const part of field.split(',')) {
    const match = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    if (!match) throw new FieldError(`${spec.name} "${part}" is not a number, range, * or step`);
    const [, whole, from, to, step] = match;
    const start = whole === '*' ? spec.min : Number(from);
    // `5/15` (no range) means "from 5 to the end", as in cron and EventBridge.
    const end = whole === '*' || (to === undefined && step !== undefined) ? spec.max : Number(to ?? from);
    const increment = step === undefined ? 1 : Number(step);
    if (start < spec.min || end > spec.max || start > end || increment < 1) {
      throw new FieldError(`${spec.name} "${part}" is outside ${spec.min}-${spec.max}`);
    }
    for (let value = start; value <= end; value += increment) values.add(value);
  }
  return values;
}

/** The plainest EventBridge form of a value set. */
function compress(values: Set<number>, spec: FieldSpec): string {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === spec.max - spec.min + 1) return '*';
  const first = sorted[0]!;
  if (spec.steps && sorted.length >= 3) {
    const step = sorted[1]! - first;
    const progression = sorted.every((value, index) => value === first + index * step);
    // `start/step` runs to the field's end, so it is exact only when the set does too.
    if (progression && sorted[sorted.length - 1]! + step > spec.max) return `${first}/${step}`;
  }
  const parts: string[] = [];
  for (let index = 0; index < sorted.length; ) {
    let end = index;
    while (end + 1 < sorted.length && sorted[end + 1] === sorted[end]! + 1) end += 1;
    const low = sorted[index]!;
    const high = sorted[end]!;
    if (high - low >= 2) parts.push(`${low}-${high}`);
    else for (let at = index; at <= end; at += 1) parts.push(String(sorted[at]));
    index = end + 1;
  }
  return parts.join(',');
}

function convertDayOfWeek(field: string): string {
  const days = new Set([...expand(field, DAY_OF_WEEK)].map((day) => (day % 7) + 1));
  return compress(days, EVENTBRIDGE_DAY_OF_WEEK);
}

export function toEventBridgeCron(schedule: string): EventBridgeCron {
  const fix =
    'use a 5-field UTC cron with numbers, * , - / (e.g. "0 2 * * *"); restrict day-of-month or day-of-week, not both';
  const fields = schedule.trim().split(/\s+/);
  if (fields.length !== 5) return { ok: false, message: `"${schedule}" has ${fields.length} fields, not 5`, fix };
  const [minute, hour, dayOfMonth, month, dayOfWeek] = fields as [string, string, string, string, string];
  try {
    const minutes = compress(expand(minute, MINUTE), MINUTE);
    const hours = compress(expand(hour, HOUR), HOUR);
    const months = compress(expand(month, MONTH), MONTH);
    const days = compress(expand(dayOfMonth, DAY_OF_MONTH), DAY_OF_MONTH);
    const weekdays = convertDayOfWeek(dayOfWeek);
    // cron ORs the two day fields when neither starts with `*`, and ANDs them otherwise.
    const eitherDay = !dayOfMonth.startsWith('*') && !dayOfWeek.startsWith('*');
    if (eitherDay || (days !== '*' && weekdays !== '*')) {
      return {
        ok: false,
        message: `"${schedule}" restricts both day-of-month and day-of-week, which EventBridge cannot express`,
        fix: 'keep one of them "*", or split the schedule into two policies',
      };
    }
    const [domField, dowField] = weekdays === '*' ? [days, '?'] : ['?', weekdays];
    return { ok: true, expression: `cron(${minutes} ${hours} ${domField} ${months} ${dowField} *)` };
  } catch (error) {
    if (error instanceof FieldError) return { ok: false, message: `"${schedule}": ${error.message}`, fix };
    throw error;
  }
}
