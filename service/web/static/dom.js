// DOM building without HTML strings: every value becomes a text node, so names from a user's files show as text.

/**
 * h('tag.class', {attr: value, onclick: fn, dataset: {...}}, child, ...): an element. Children are nodes, strings
 * (text nodes), numbers, arrays of children, or null/false (skipped). No attribute ever takes HTML.
 */
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs && (attrs.nodeType || typeof attrs !== 'object' || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'class') el.className = value;
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

/** Append children (a node, a string, or an array of them, nested as deep as you like) to an element. */
export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child == null || child === false) continue;
    el.appendChild(child.nodeType ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A number for people: grouped digits, `digits` decimals at most; a dash for missing values. */
export function num(value, digits = 0) {
  if (value == null || value === '' || !Number.isFinite(Number(value))) return '–';
  return Number(value).toLocaleString('en-GB', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

/** A share (0..1) as a percentage. */
export function pct(value, digits = 1) {
  if (value == null || !Number.isFinite(Number(value))) return '–';
  return (100 * Number(value)).toFixed(digits) + ' %';
}

/** A signed difference, e.g. "+1.2". */
export function signed(value, digits = 1, unit = '') {
  if (value == null || !Number.isFinite(Number(value))) return '–';
  const v = Number(value);
  return (v > 0 ? '+' : v < 0 ? '−' : '±') + Math.abs(v).toLocaleString('en-GB', { maximumFractionDigits: digits }) + unit;
}

/** A date-time in the reader's locale, or a dash. */
export function when(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString('en-GB');
}

/**
 * A table: columns are [heading, row => cell] pairs (a cell is text, a number or a node); rows an array.
 * `empty` is the text shown when there is no row.
 */
export function table(columns, rows, { empty = 'None.', className = 'data' } = {}) {
  if (!rows.length) return h('p.empty', empty);
  return h(`table.${className}`,
    h('thead', h('tr', columns.map(([head]) => h('th', head)))),
    h('tbody', rows.map((row) => h('tr', columns.map(([, cell]) => {
      const value = cell(row);
      return h(typeof value === 'number' ? 'td.num' : 'td', value);
    })))));
}

/** Parse CSV text (RFC 4180: quotes, doubled quotes, newlines inside quotes) into an array of objects. */
export function parseCsv(text) {
  const rows = [];
  let row = [], field = '', quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; }
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field); field = '';
      if (row.length > 1 || row[0] !== '') rows.push(row);
      row = [];
    } else field += c;
  }
  if (field !== '' || row.length) { row.push(field); rows.push(row); }
  const [head, ...body] = rows;
  return (body || []).map((r) => Object.fromEntries((head || []).map((k, j) => [k, r[j] ?? ''])));
}
