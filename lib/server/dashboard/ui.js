// Small DOM and formatting helpers. Data is only ever put into the page as text (textContent),
// never as HTML: keys, reasons and actors come from operators and stores.

/** h('td', { class: 'x', onclick }, 'text', child) */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function fill(tbody, rows, empty) {
  tbody.replaceChildren(...(rows.length > 0 ? rows : [h('tr', {}, h('td', { colspan: 12, class: 'empty' }, empty))]));
}

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];
export function bytes(value) {
  if (value === null || value === undefined) return '–';
  let amount = value;
  let unit = 0;
  while (amount >= 1000 && unit < UNITS.length - 1) {
    amount /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? amount : amount.toFixed(1)} ${UNITS[unit]}`;
}

export function count(value) {
  return value === null || value === undefined ? '–' : Number(value).toLocaleString('en');
}

/** "3 h ago", "in 12 min" */
export function relative(iso, now = Date.now()) {
  if (!iso) return '–';
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const magnitude = Math.abs(seconds);
  const [amount, unit] =
    magnitude < 60
      ? [magnitude, 's']
      : magnitude < 3600
        ? [Math.round(magnitude / 60), 'min']
        : magnitude < 172_800
          ? [Math.round(magnitude / 3600), 'h']
          : [Math.round(magnitude / 86_400), 'd'];
  return seconds >= 0 ? `in ${amount} ${unit}` : `${amount} ${unit} ago`;
}

export function when(iso) {
  return iso ? `${new Date(iso).toISOString().replace('T', ' ').slice(0, 19)}Z` : '–';
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} d`;
}

export function badge(text, kind = text) {
  return h('span', { class: `badge ${kind}` }, text);
}
