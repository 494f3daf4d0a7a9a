// branchnet's web app: regions, scenarios, runs, results, compare and batch reports of the key's organisation.
// Views are chosen by the URL's hash (#/regions, #/scenarios/ID, #/runs/ID, #/compare?a=ID&b=ID, #/batches).
// Everything shown is built as DOM nodes (dom.js), never from HTML strings.

import { ApiError, download, key, request } from './api.js';
import { append, h, num, parseCsv, pct, replace, signed, table, when } from './dom.js';
import { swipe } from './swipe.js';

const ROLES = ['viewer', 'planner', 'admin'];
const POLL_MS = 1000;
const view = document.getElementById('view');
const message = document.getElementById('message');
const state = { session: null, timer: null, maps: [], gen: 0 };

function can(role) {
  return state.session && ROLES.indexOf(state.session.role) >= ROLES.indexOf(role);
}

// ---------------------------------------------------------------------------------------------------------------
// messages and errors: always a sentence in the page, never a blank one

function say(text, kind = 'error') {
  replace(message, text ? h(`div.msg.${kind}`, { role: kind === 'error' ? 'alert' : 'status' }, text) : null);
}

function explain(err) {
  if (!(err instanceof ApiError)) return `Something went wrong in the page: ${err && err.message ? err.message : err}`;
  if (err.status === 0) return `Cannot reach the server: ${err.detail}.`;
  if (err.status === 401) return 'This API key is not valid: it is wrong or has been revoked. Sign in with another key.';
  if (err.status === 403) return `Not allowed: ${err.detail}.`;
  if (err.status === 404) return `Not found: ${err.detail}. It may have been deleted, or it belongs to another organisation.`;
  if (err.status === 409) return `Not possible now: ${err.detail}.`;
  if (err.status === 413) return `Too large: ${err.detail}.`;
  if (err.status === 422) return `Please correct the input: ${err.detail}.`;
  return `The server could not do this (${err.status}): ${err.detail}.`;
}

function fail(err) {
  if (err instanceof ApiError && err.status === 401) {
    key.clear();
    state.session = null;
    renderSignIn(explain(err));
    return;
  }
  say(explain(err));
  if (!view.firstChild) replace(view, h('p.empty', 'Nothing to show.'));
}

// ---------------------------------------------------------------------------------------------------------------
// sign in and the frame

function renderSignIn(note) {
  stopWork();
  document.body.classList.remove('signed-in');
  replace(document.getElementById('who'));
  say(note || '', note ? 'error' : 'info');
  const input = h('input', { type: 'password', id: 'key', name: 'key', autocomplete: 'off', required: true,
    placeholder: 'bn_…', 'aria-label': 'API key' });
  const form = h('form.card.signin', { onsubmit: async (e) => {
    e.preventDefault();
    const value = input.value.trim();
    if (!value) return say('Enter your API key.');
    try {
      state.session = await request('GET', '/ui/session', { key: value });
    } catch (err) {
      input.value = '';
      return say(err instanceof ApiError && err.status === 401
        ? 'This API key is not valid: it is wrong or has been revoked.' : explain(err));
    }
    key.set(value);
    say('');
    if (!location.hash || location.hash === '#/signin') location.hash = '#/regions';
    else route();
  } },
  h('h2', 'Sign in'),
  h('p', 'Sign in with your organisation\'s API key (ask an admin: branchnet keys create). It is kept in this tab only.'),
  h('label', { for: 'key' }, 'API key'), input, h('button', { type: 'submit' }, 'Sign in'));
  replace(view, form);
  input.focus();
}

function renderFrame() {
  document.body.classList.add('signed-in');
  const s = state.session;
  replace(document.getElementById('who'),
    h('span.org', s.organisation), ' · ', h('span.role', { id: 'role' }, s.role), ' ',
    h('button.link', { type: 'button', id: 'signout', onclick: () => { key.clear(); state.session = null;
      location.hash = '#/signin'; renderSignIn('Signed out.'); } }, 'Sign out'));
}

function stopWork() {
  state.gen += 1; // a poll still in flight sees the view has changed and stops
  if (state.timer) clearTimeout(state.timer);
  state.timer = null;
  state.maps.forEach((m) => m.remove());
  state.maps = [];
}

async function route() {
  stopWork();
  say('');
  if (!key.get()) return renderSignIn();
  try {
    if (!state.session) state.session = await request('GET', '/ui/session');
  } catch (err) {
    return fail(err);
  }
  renderFrame();
  const [path, query] = (location.hash.slice(1) || '/regions').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || '');
  document.querySelectorAll('nav a').forEach((a) => a.classList.toggle('active', a.dataset.view === parts[0]));
  replace(view, h('p.loading', 'Loading…'));
  try {
    if (parts[0] === 'scenarios' && parts[1] === 'new') await renderScenarioForm(null, params.get('from'));
    else if (parts[0] === 'scenarios' && parts[1]) await renderScenario(parts[1]);
    else if (parts[0] === 'scenarios') await renderScenarios();
    else if (parts[0] === 'runs' && parts[1]) await renderRun(parts[1]);
    else if (parts[0] === 'compare') await renderCompare(params);
    else if (parts[0] === 'batches') await renderBatches(parts[1]);
    else await renderRegions();
  } catch (err) {
    replace(view);
    fail(err);
  }
}

function button(label, onclick, attrs = {}) {
  return h('button', { type: 'button', onclick: async (e) => {
    const b = e.currentTarget;
    b.disabled = true;
    try { await onclick(e); } catch (err) { fail(err); } finally { b.disabled = false; }
  }, ...attrs }, label);
}

function downloadButton(label, path, filename, attrs = {}) {
  return button(label, async () => { await download(path, filename); say(`Downloaded ${filename}.`, 'info'); },
    { class: 'download', ...attrs });
}

// ---------------------------------------------------------------------------------------------------------------
// regions

async function renderRegions() {
  const regions = await request('GET', '/regions');
  const kpi = (r, k) => (r.kpis && r.kpis.overall ? r.kpis.overall[k] : null);
  replace(view,
    h('h2', 'Regions'),
    h('p.hint', 'Today\'s network: the share of residents within a drive of a branch, as imported.'),
    table([
      ['Region', (r) => h('strong', r.name)],
      ['Population', (r) => num(r.summary.population)],
      ['Branches', (r) => num(r.summary.branches)],
      ['Mean drive (min)', (r) => num(kpi(r, 'mean_drive_min'), 1)],
      ['≤ 10 min', (r) => pct(kpi(r, 'share_within_10_min'))],
      ['≤ 20 min', (r) => pct(kpi(r, 'share_within_20_min'))],
      ['≤ 2 miles', (r) => pct(kpi(r, 'share_within_2_miles'))],
      ['Imported', (r) => when(r.created_at)],
      ['', (r) => h('a', { href: `#/scenarios?region=${encodeURIComponent(r.name)}` }, 'scenarios')],
    ], regions, { empty: 'No region yet.' + (can('admin') ? ' Import one below.' : ' An admin imports them.') }),
    can('admin') ? importForm() : null);
}

function importForm() {
  const file = (name, label, required) => h('div.field', h('label', { for: `imp-${name}` }, label),
    h('input', { type: 'file', id: `imp-${name}`, name, required }));
  const text = (name, label, value = '') => h('div.field', h('label', { for: `imp-${name}` }, label),
    h('input', { type: 'text', id: `imp-${name}`, name, value }));
  const status = h('p.hint');
  const form = h('form.card', { id: 'import-form', onsubmit: async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    for (const [k, v] of [...data.entries()]) if ((v instanceof File && !v.size && !v.name) || v === '') data.delete(k);
    const submit = form.querySelector('button[type=submit]');
    submit.disabled = true;
    replace(status, 'Importing: the road network, population and travel times are prepared; this can take a minute…');
    try {
      const region = await request('POST', '/regions', { form: data });
      say(`Imported region ${region.name}.`, 'info');
      await renderRegions();
    } catch (err) {
      replace(status);
      fail(err);
    } finally {
      submit.disabled = false;
    }
  } },
  h('h3', 'Import a region (admin)'),
  text('name', 'Name'),
  file('osm', 'OSM roads (.osm.pbf, .osm)', true), file('population', 'Population (areas or points)', true),
  file('branches', 'Branches', true), file('settlements', 'Settlements (optional)', false),
  file('population_table', 'Population table (optional)', false),
  text('area_field', 'Area field'), text('group_field', 'Group field (former municipality)'),
  text('id_field', 'Branch id field'),
  h('button', { type: 'submit' }, 'Import'), status);
  return form;
}

// ---------------------------------------------------------------------------------------------------------------
// scenarios

async function renderScenarios() {
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const region = params.get('region');
  const list = await request('GET', '/scenarios' + (region ? `?region=${encodeURIComponent(region)}` : ''));
  replace(view,
    h('h2', 'Scenarios', region ? ` of ${region}` : ''),
    can('planner') ? h('p', h('a.button', { href: '#/scenarios/new', id: 'new-scenario' }, 'New scenario')) : null,
    table([
      ['Scenario', (s) => h('a', { href: `#/scenarios/${encodeURIComponent(s.id)}` }, s.name)],
      ['Region', (s) => s.region],
      ['Objective', (s) => s.body.objective || 'max_coverage'],
      ['Version', (s) => s.version],
      ['Updated', (s) => when(s.updated_at)],
    ], list, { empty: 'No scenario yet.' }));
}

// The form's main fields: [path in the scenario, label, kind, choices]
const FIELDS = [
  ['name', 'Name', 'text'],
  ['region', 'Region', 'region'],
  ['objective', 'Objective', 'select', ['max_coverage', 'min_cost', 'pareto', 'location']],
  ['budget_share', 'Budget (share of today\'s cost)', 'number'],
  ['standards.branch_drive_min', 'Standard: branch within (min drive)', 'number'],
  ['standards.coverage_target', 'Coverage target (share)', 'number'],
  ['fleet.max_vehicles', 'Bookmobiles at most', 'number'],
  ['solve.time_limit_s', 'Solver time limit (s)', 'number'],
];

function getPath(obj, path) {
  return path.split('.').reduce((o, k) => (o && typeof o === 'object' ? o[k] : undefined), obj);
}

function setPath(obj, path, value) {
  const keys = path.split('.');
  let o = obj;
  keys.slice(0, -1).forEach((k) => { if (!o[k] || typeof o[k] !== 'object') o[k] = {}; o = o[k]; });
  if (value === undefined) delete o[keys.at(-1)];
  else o[keys.at(-1)] = value;
}

/** The API's 422 as [field, message] pairs: its `errors` list, or the fields its detail names ("a.b: message"). */
function fieldErrors(err) {
  if (err.errors && err.errors.length) return err.errors.map((e) => [e.field || '', e.message]);
  const detail = String(err.detail || '').replace(/^scenario( [^:]*)?: /, '');
  return detail.split('; ').map((part) => {
    const m = /^([A-Za-z_][\w.[\]]*): (.+)$/.exec(part);
    return m ? [m[1], m[2]] : ['', part];
  });
}

async function renderScenario(id) {
  const sc = await request('GET', `/scenarios/${encodeURIComponent(id)}`);
  const runs = await request('GET', `/scenarios/${encodeURIComponent(id)}/runs`);
  const runsBox = h('section', h('h3', 'Runs'), runsTable(runs));
  replace(view,
    h('h2', 'Scenario ', h('span.name', sc.name)),
    h('p.hint', `Region ${sc.region} · version ${sc.version} · updated ${when(sc.updated_at)}`),
    h('div.actions',
      can('planner') ? button('Run', async () => {
        const run = await request('POST', `/scenarios/${encodeURIComponent(id)}/runs`);
        location.hash = `#/runs/${encodeURIComponent(run.id)}`;
      }, { id: 'run-scenario', class: 'primary' }) : null,
      can('planner') ? h('a.button', { href: `#/scenarios/new?from=${encodeURIComponent(id)}`, id: 'copy-scenario' },
        'Copy to a new name') : null),
    runsBox,
    can('planner') ? await scenarioForm(sc) : h('section', h('h3', 'Scenario file'),
      h('pre.json', JSON.stringify(sc.body, null, 2))));
}

function runsTable(runs) {
  return table([
    ['Run', (r) => h('a', { href: `#/runs/${encodeURIComponent(r.id)}` }, r.id)],
    ['Status', (r) => h(`span.status.${r.status}`, r.status)],
    ['Progress', (r) => `${num(r.progress)} %`],
    ['Started', (r) => when(r.started_at || r.created_at)],
    ['Covered', (r) => (r.summary && r.summary.covered_share
      ? pct(Object.values(r.summary.covered_share)[0]) : '–')],
    ['Cost', (r) => num(r.summary && r.summary.cost)],
    ['By', (r) => r.trigger],
  ], runs, { empty: 'Not run yet.' });
}

async function renderScenarioForm(_unused, fromId) {
  let body = { name: '', region: '', objective: 'max_coverage', budget_share: 0.8, solve: { time_limit_s: 30 } };
  if (fromId) {
    const src = await request('GET', `/scenarios/${encodeURIComponent(fromId)}`);
    body = structuredClone(src.body);
    body.name = `${src.name} (copy)`;
  }
  if (!can('planner')) throw new ApiError(403, 'creating scenarios needs the planner role');
  replace(view, h('h2', fromId ? 'Copy a scenario' : 'New scenario'), await scenarioForm(null, body));
}

/** The scenario editor: main fields and the raw JSON, kept in step; errors shown at their field. */
async function scenarioForm(existing, initial) {
  const regions = await request('GET', '/regions');
  const body = structuredClone(existing ? existing.body : initial);
  if (!body.region && regions.length) body.region = regions[0].name;
  const inputs = {};
  const errorsAt = {};
  const raw = h('textarea.json', { id: 'sc-json', name: 'json', rows: 18, spellcheck: false });
  const rawError = h('div.field-error', { id: 'err-json' });
  const general = h('div.field-error', { id: 'err-general' });
  const sync = () => { raw.value = JSON.stringify(body, null, 2); };

  const fields = FIELDS.map(([path, label, kind, choices]) => {
    const id = `sc-${path.replace(/\./g, '-')}`;
    let input;
    if (kind === 'region') {
      input = h('select', { id, name: path }, regions.map((r) => h('option', { value: r.name }, r.name)));
    } else if (kind === 'select') {
      input = h('select', { id, name: path }, choices.map((c) => h('option', { value: c }, c)));
    } else {
      input = h('input', { id, name: path, type: kind, step: kind === 'number' ? 'any' : null });
    }
    const value = getPath(body, path);
    input.value = value == null ? '' : String(value);
    input.addEventListener('input', () => {
      const v = input.value.trim();
      setPath(body, path, v === '' ? undefined : kind === 'number' ? Number(v) : v);
      sync();
    });
    inputs[path] = input;
    errorsAt[path] = h('div.field-error', { id: `err-${id}` });
    return h('div.field', h('label', { for: id }, label), input, errorsAt[path]);
  });
  raw.addEventListener('change', () => {
    try {
      const parsed = JSON.parse(raw.value);
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
      Object.keys(body).forEach((k) => delete body[k]);
      Object.assign(body, parsed);
      FIELDS.forEach(([path]) => { const v = getPath(body, path); inputs[path].value = v == null ? '' : String(v); });
      replace(rawError);
    } catch (err) {
      replace(rawError, `Not valid JSON: ${err.message}`);
    }
  });
  sync();

  const form = h('form.card.scenario', { id: 'scenario-form', onsubmit: async (e) => {
    e.preventDefault();
    [rawError, general, ...Object.values(errorsAt)].forEach((el) => replace(el));
    form.querySelectorAll('.invalid').forEach((el) => el.classList.remove('invalid'));
    let payload;
    try {
      payload = JSON.parse(raw.value);
    } catch (err) {
      return replace(rawError, `Not valid JSON: ${err.message}`);
    }
    try {
      const saved = existing
        ? await request('PUT', `/scenarios/${encodeURIComponent(existing.id)}`, { json: payload })
        : await request('POST', '/scenarios', { json: payload });
      say(`Saved scenario ${saved.name} (version ${saved.version}).`, 'info');
      if (!existing) location.hash = `#/scenarios/${encodeURIComponent(saved.id)}`;
      else await renderScenario(saved.id);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 422) return fail(err);
      say('The scenario was not saved: please correct the fields marked below.');
      for (const [field, msg] of fieldErrors(err)) {
        const at = Object.keys(errorsAt).filter((p) => field === p || field.startsWith(`${p}.`))[0];
        if (at) {
          append(errorsAt[at], h('div', msg));
          inputs[at].classList.add('invalid');
        } else if (field) {
          append(rawError, h('div', `${field}: ${msg}`));
          raw.classList.add('invalid');
        } else {
          append(general, h('div', msg));
        }
      }
    }
  } },
  h('h3', existing ? 'Edit' : 'Fields'), general, h('div.fields', fields),
  h('div.field.wide', h('label', { for: 'sc-json' }, 'The whole scenario (JSON; every setting of examples/*.yaml)'),
    raw, rawError),
  h('button.primary', { type: 'submit', id: 'save-scenario' }, existing ? 'Save changes' : 'Create scenario'));
  return form;
}

// ---------------------------------------------------------------------------------------------------------------
// a run: live progress, then its results

async function renderRun(id) {
  const run = await request('GET', `/runs/${encodeURIComponent(id)}`);
  const sc = await request('GET', `/scenarios/${encodeURIComponent(run.scenario_id)}`).catch(() => null);
  const bar = h('progress', { id: 'progress', max: 100, value: run.progress });
  const label = h('span', { id: 'progress-label' });
  const status = h('span', { id: 'run-status' });
  const error = h('div', { id: 'run-error' });
  const cancel = can('planner') ? button('Cancel run', async () => {
    await request('DELETE', `/runs/${encodeURIComponent(id)}`);
    await poll();
  }, { id: 'cancel-run' }) : null;
  const results = h('div', { id: 'results' });
  replace(view,
    h('h2', 'Run ', h('code', run.id)),
    h('p.hint', 'Scenario ', sc ? h('a', { href: `#/scenarios/${encodeURIComponent(sc.id)}` }, sc.name) : run.scenario_id),
    h('div.card.progress', status, ' ', bar, ' ', label, ' ', cancel, error),
    results);

  const show = (r) => {
    bar.value = r.progress;
    replace(status, h(`span.status.${r.status}`, r.status));
    replace(label, `${num(r.progress)} % · ${r.stage}`);
    if (cancel) cancel.hidden = !['queued', 'running'].includes(r.status);
    replace(error, r.status === 'failed' ? h('div.msg.error', { role: 'alert' }, `The run failed: ${r.error}`)
      : r.status === 'cancelled' ? h('div.msg.info', r.error || 'cancelled') : null);
  };
  const gen = state.gen;
  async function poll() {
    const r = await request('GET', `/runs/${encodeURIComponent(id)}`);
    if (gen !== state.gen) return;
    show(r);
    if (['queued', 'running'].includes(r.status)) {
      state.timer = setTimeout(() => poll().catch(fail), POLL_MS);
    } else if (r.status === 'succeeded') {
      await renderResult(r, sc, results);
    }
  }
  show(run);
  if (['queued', 'running'].includes(run.status)) state.timer = setTimeout(() => poll().catch(fail), POLL_MS);
  else if (run.status === 'succeeded') await renderResult(run, sc, results);
}

/** The layers of a run that plan.json says exist (so no request is made for an absent layer). */
function layerNames(plan) {
  const names = ['roads', 'areas', 'catchments', 'demand', 'branches'];
  const cand = (plan.solver && plan.solver.candidates) || {};
  if (cand.stops > 0) names.push('bookmobile_stops');
  if (plan.decisions && plan.decisions.bookmobile && plan.decisions.bookmobile.route_days > 0) {
    names.push('bookmobile_routes');
  }
  if (cand.desks > 0) names.push('outreach_desks');
  return names;
}

async function fetchLayers(runId, plan) {
  const out = {};
  await Promise.all(layerNames(plan).map(async (name) => {
    try {
      out[name] = await request('GET', `/runs/${encodeURIComponent(runId)}/layers/${name}.geojson`);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
    }
  }));
  return out;
}

function makeMap(el, attribution) {
  const map = L.map(el, { attributionControl: true });
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution(branchnetMap.esc(attribution || 'Roads © OpenStreetMap contributors (ODbL)'));
  L.control.scale({ imperial: false }).addTo(map);
  state.maps.push(map);
  return map;
}

async function renderResult(run, sc, box) {
  const id = encodeURIComponent(run.id);
  const plan = await request('GET', `/runs/${id}/plan`);
  const layers = await fetchLayers(run.id, plan);
  const year = (plan.years || [])[0];
  const base = (sc ? sc.name : run.id).replace(/[^\w.-]+/g, '_');
  const mapEl = h('div.map', { id: 'map' });
  const downloads = h('div.actions.downloads',
    downloadButton('plan.json', `/runs/${id}/plan`, `${base}-plan.json`, { id: 'dl-plan' }),
    downloadButton('layers.gpkg', `/runs/${id}/layers.gpkg`, `${base}-layers.gpkg`, { id: 'dl-gpkg' }),
    plan.decisions.bookmobile.timetable
      ? downloadButton('timetable.csv', `/runs/${id}/timetable.csv`, `${base}-timetable.csv`, { id: 'dl-timetable' })
      : null,
    downloadButton('Map PNG', `/runs/${id}/map.png`, `${base}-map.png`, { id: 'dl-png' }),
    downloadButton('Offline map (HTML)', `/runs/${id}/map`, `${base}-map.html`, { id: 'dl-html' }),
    h('a.button', { href: `#/compare?a=${id}&b=today` }, 'Compare with today'));
  replace(box,
    h('h3', 'Result'),
    downloads,
    h('div.result', mapEl, h('div.side', kpiTable(plan, year))),
    closures(plan),
    groupTable(plan, year),
    winnersLosers(plan),
    await timetable(run, plan),
    pareto(plan),
    checks(plan));
  const map = makeMap(mapEl, plan.attribution);
  const built = branchnetMap.buildLayers(L, layers, { view: 'plan' });
  built.on.forEach((k) => built.overlays[k].addTo(map));
  L.control.layers(null, branchnetMap.escapedOverlays(built.overlays), { collapsed: false }).addTo(map);
  branchnetMap.keepOrder(map, built.overlays);
  branchnetMap.legendControl(L, h('strong', sc ? sc.name : run.id)).addTo(map);
  if (built.bounds.isValid()) map.fitBounds(built.bounds); else map.setView([0, 0], 2);
}

const KPI_ROWS = [
  ['covered_share', 'Meeting the standard', 'pct'],
  ['credit_share', 'Need-weighted credit', 'pct'],
  ['mean_drive_min', 'Mean drive to a branch (min)', 'min'],
  ['p95_drive_min', '95th percentile drive (min)', 'min'],
  ['share_within_10_min', 'Within 10 min drive', 'pct'],
  ['share_within_20_min', 'Within 20 min drive', 'pct'],
  ['share_within_2_miles', 'Within 2 miles', 'pct'],
  ['unreachable', 'No branch reachable (people)', 'num'],
  ['population', 'Population', 'num'],
];

function fmtKpi(kind, v) {
  return kind === 'pct' ? pct(v) : kind === 'min' ? num(v, 1) : num(v);
}

function fmtDiff(kind, a, b) {
  if (a == null || b == null) return '–';
  return kind === 'pct' ? signed(100 * (b - a), 1, ' pp') : signed(b - a, kind === 'min' ? 1 : 0);
}

function kpiTable(plan, year) {
  const k = (plan.kpis || {})[year] || {};
  const today = k.today || {}, planned = k.plan || {};
  const rows = KPI_ROWS.filter(([m]) => m in planned).map(([m, label, kind]) => ({ label, kind,
    a: today[m], b: planned[m] }));
  const costs = plan.costs || {};
  rows.push({ label: 'Annual cost', kind: 'num', a: costs.today && costs.today.total, b: costs.plan && costs.plan.total });
  return h('section', { id: 'kpis' }, h('h3', /^\d{4}$/.test(year) ? `KPIs in ${year}` : 'KPIs'),
    table([['', (r) => r.label], ['Today', (r) => fmtKpi(r.kind, r.a)], ['Plan', (r) => fmtKpi(r.kind, r.b)],
      ['Change', (r) => fmtDiff(r.kind, r.a, r.b)]], rows, { className: 'data kpi' }));
}

function closures(plan) {
  const closed = (plan.decisions.branches || []).filter((b) => b.decision === 'close');
  return h('section', { id: 'closures' }, h('h3', 'Closures and why'),
    closed.length ? h('ul.closures', closed.map((b) => h('li', h('strong', b.name), ' — ',
      b.explanation ? b.explanation.text : 'closed'))) : h('p.empty', 'No branch closes.'),
    h('h3', 'Every branch'),
    table([['Branch', (b) => b.name], ['Decision', (b) => b.decision], ['Hours today', (b) => num(b.hours_today, 1)],
      ['Hours plan', (b) => num(b.hours_plan, 1)], ['Annual saving', (b) => num(b.annual_saving)]],
    plan.decisions.branches || []));
}

function groupTable(plan, year) {
  const k = (plan.kpis || {})[year] || {};
  const a = (k.today || {}).by_group || {}, b = (k.plan || {}).by_group || {};
  const rows = Object.keys(b).map((g) => ({ g, a: a[g] || {}, b: b[g] }));
  return h('section', { id: 'groups' }, h('h3', 'Winners and losers by age group'),
    table([['Age group', (r) => r.g.replace('age_', '').replace('_plus', '+').replace('_', '–')],
      ['People', (r) => num(r.b.population)], ['Meeting the standard today', (r) => pct(r.a.share)],
      ['Plan', (r) => pct(r.b.share)], ['Change', (r) => fmtDiff('pct', r.a.share, r.b.share)]], rows));
}

function winnersLosers(plan) {
  return h('section', { id: 'winners-losers' }, h('h3', 'Winners and losers by area'),
    table([['Area', (r) => r.area_id], ['Zone', (r) => r.zone], ['People', (r) => num(r.population)],
      ['Gain the standard', (r) => num(r.gain_standard)], ['Lose the standard', (r) => num(r.lose_standard)],
      ['Mean drive today (min)', (r) => num(r.mean_drive_min_today, 1)],
      ['Mean drive plan (min)', (r) => num(r.mean_drive_min_plan, 1)]], plan.winners_losers || []));
}

async function timetable(run, plan) {
  if (!plan.decisions.bookmobile.timetable) {
    return h('section', { id: 'timetable' }, h('h3', 'Bookmobile timetable'), h('p.empty', 'No bookmobile stop.'));
  }
  const rows = parseCsv(await request('GET', `/runs/${encodeURIComponent(run.id)}/timetable.csv`, { as: 'text' }));
  return h('section', { id: 'timetable' }, h('h3', 'Bookmobile timetable'),
    table([['Stop', (r) => r.community], ['Id', (r) => r.stop], ['Day', (r) => r.day], ['Arrives', (r) => r.arrival],
      ['Leaves', (r) => r.departure], ['Every', (r) => r.frequency.replace('FREQ=WEEKLY;INTERVAL=', '').replace(
        'FREQ=WEEKLY', '1') + ' week(s)'], ['Route', (r) => r.route], ['From', (r) => r.start]], rows),
    calendarButtons(run, (await request('GET', `/runs/${encodeURIComponent(run.id)}/calendars`)).calendars));
}

function calendarButtons(run, names) {
  // one iCalendar file per vehicle: every stop visit with its recurrence, for a phone or the library's website
  return h('div.actions.calendars', h('span.hint', 'Calendars (.ics): '),
    ...names.map((name) => downloadButton(name, `/runs/${encodeURIComponent(run.id)}/calendars/${encodeURIComponent(name)}`,
      `${run.id}-${name}`)));
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  Object.entries(attrs || {}).forEach(([k, v]) => el.setAttribute(k, String(v)));
  children.forEach((c) => el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c));
  return el;
}

function pareto(plan) {
  const points = ((plan.pareto || {}).points || []).filter((p) => p.cost != null && p.credit_share != null);
  if (!points.length) return null;
  const W = 480, H = 260, P = 44;
  const xs = points.map((p) => p.cost), ys = points.map((p) => p.credit_share);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x) => P + ((x - x0) / ((x1 - x0) || 1)) * (W - 2 * P);
  const sy = (y) => H - P - ((y - y0) / ((y1 - y0) || 1)) * (H - 2 * P);
  const front = points.filter((p) => p.non_dominated).sort((a, b) => a.cost - b.cost);
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'pareto', role: 'img',
    'aria-label': 'Pareto front: coverage credit against annual cost' },
  svg('line', { x1: P, y1: H - P, x2: W - P, y2: H - P, class: 'axis' }),
  svg('line', { x1: P, y1: P, x2: P, y2: H - P, class: 'axis' }),
  svg('text', { x: W / 2, y: H - 8, 'text-anchor': 'middle' }, 'annual cost'),
  svg('text', { x: 12, y: H / 2, transform: `rotate(-90 12 ${H / 2})`, 'text-anchor': 'middle' }, 'credit share'),
  svg('text', { x: P, y: H - P + 16, 'text-anchor': 'start' }, num(x0)),
  svg('text', { x: W - P, y: H - P + 16, 'text-anchor': 'end' }, num(x1)),
  svg('text', { x: P - 4, y: sy(y0), 'text-anchor': 'end' }, pct(y0)),
  svg('text', { x: P - 4, y: sy(y1) + 8, 'text-anchor': 'end' }, pct(y1)),
  svg('polyline', { points: front.map((p) => `${sx(p.cost)},${sy(p.credit_share)}`).join(' '), class: 'front' }),
  ...points.map((p) => svg('circle', { cx: sx(p.cost), cy: sy(p.credit_share), r: 4,
    class: p.non_dominated ? 'nd' : 'dominated' }, svg('title', {}, `${num(p.cost)}: ${pct(p.credit_share)}`))));
  return h('section', { id: 'pareto' }, h('h3', 'Pareto front'), chart);
}

function checks(plan) {
  return h('section', { id: 'checks' }, h('h3', 'Statutory-style checks'),
    table([['Check', (c) => c.name], ['Value', (c) => (typeof c.value === 'number' && c.value <= 1 && c.threshold <= 1
      && !Number.isInteger(c.threshold) ? pct(c.value) : num(c.value, 3))], ['Rule', (c) => c.rule],
    ['Passed', (c) => (c.passed ? 'yes' : 'no')]], plan.statutory_checks || []));
}

// ---------------------------------------------------------------------------------------------------------------
// compare: two runs, or a run against today's network, with a swipe

async function succeededRuns() {
  const scenarios = await request('GET', '/scenarios');
  const lists = await Promise.all(scenarios.map((s) => request('GET', `/scenarios/${encodeURIComponent(s.id)}/runs`)
    .then((runs) => runs.filter((r) => r.status === 'succeeded').map((r) => ({ ...r, scenario: s.name })))));
  return lists.flat();
}

async function renderCompare(params) {
  const runs = await succeededRuns();
  const a = params.get('a') || (runs[0] && runs[0].id) || '';
  const b = params.get('b') || 'today';
  const label = (r) => `${r.scenario} · ${when(r.finished_at)} · ${r.id}`;
  const pickA = h('select', { id: 'cmp-a' }, runs.map((r) => h('option', { value: r.id }, label(r))));
  const pickB = h('select', { id: 'cmp-b' }, h('option', { value: 'today' }, 'today\'s network (of the left run)'),
    runs.map((r) => h('option', { value: r.id }, label(r))));
  pickA.value = a;
  pickB.value = b;
  const go = () => { location.hash = `#/compare?a=${encodeURIComponent(pickA.value)}&b=${encodeURIComponent(pickB.value)}`; };
  pickA.addEventListener('change', go);
  pickB.addEventListener('change', go);
  const mapEl = h('div.map', { id: 'map' });
  const side = h('div.side', { id: 'compare-kpis' });
  replace(view, h('h2', 'Compare'),
    h('div.card.pickers', h('label', { for: 'cmp-a' }, 'Left'), pickA, h('label', { for: 'cmp-b' }, 'Right'), pickB),
    runs.length ? h('div.result', mapEl, side) : h('p.empty', 'No succeeded run to compare yet.'));
  if (!runs.length || !a) return;
  if (a === b) return say('Choose two different runs, or a run and today\'s network.', 'info');
  const planA = await request('GET', `/runs/${encodeURIComponent(a)}/plan`);
  const layersA = await fetchLayers(a, planA);
  const today = b === 'today';
  const planB = today ? planA : await request('GET', `/runs/${encodeURIComponent(b)}/plan`);
  const layersB = today ? layersA : await fetchLayers(b, planB);
  const nameA = today ? 'Today' : planA.scenario, nameB = today ? planA.scenario : planB.scenario;

  const map = makeMap(mapEl, planA.attribution);
  ['left', 'right'].forEach((pane) => { map.createPane(pane).classList.add('bn-side'); });
  const roads = branchnetMap.buildLayers(L, { roads: layersA.roads }, {});
  if (roads.overlays.Roads) roads.overlays.Roads.addTo(map);
  const noRoads = (d) => Object.fromEntries(Object.entries(d).filter(([k]) => k !== 'roads'));
  const left = branchnetMap.buildLayers(L, noRoads(layersA), { view: today ? 'today' : 'plan', pane: 'left',
    renderer: L.svg({ pane: 'left' }) });
  const right = branchnetMap.buildLayers(L, noRoads(layersB), { view: 'plan', pane: 'right',
    renderer: L.svg({ pane: 'right' }) });
  const overlays = {};
  for (const [prefix, built] of [[`◀ ${nameA}`, left], [`${nameB} ▶`, right]]) {
    built.on.forEach((k) => built.overlays[k].addTo(map));
    Object.entries(built.overlays).forEach(([k, layer]) => { overlays[`${prefix}: ${k}`] = layer; });
  }
  L.control.layers(null, branchnetMap.escapedOverlays(overlays), { collapsed: true }).addTo(map);
  branchnetMap.keepOrder(map, overlays);
  branchnetMap.legendControl(L, h('strong', `◀ ${nameA} | ${nameB} ▶`)).addTo(map);
  const bounds = left.bounds.extend(right.bounds);
  if (bounds.isValid()) map.fitBounds(bounds); else map.setView([0, 0], 2);
  swipe(L, map, map.getPane('left'), map.getPane('right'));

  let rows;
  if (today) {
    const y = (planA.years || [])[0];
    const k = (planA.kpis || {})[y] || {};
    rows = KPI_ROWS.filter(([m]) => k.plan && m in k.plan).map(([m, lbl, kind]) => ({ lbl, kind,
      a: (k.today || {})[m], b: k.plan[m] }));
  } else {
    const cmp = await request('GET', `/compare?runs=${encodeURIComponent(a)},${encodeURIComponent(b)}`);
    const c = cmp.comparisons[0];
    const y = c.years[0];
    const kinds = Object.fromEntries(KPI_ROWS.map(([m, lbl, kind]) => [m, [lbl, kind]]));
    rows = ((c.kpis || {})[y] || []).filter((r) => kinds[r.metric]).map((r) => ({ lbl: kinds[r.metric][0],
      kind: kinds[r.metric][1], a: r.a, b: r.b }));
    rows.push(...(c.costs || []).filter((r) => r.key === 'total' && !r.year).map((r) => ({ lbl: 'Annual cost',
      kind: 'num', a: r.a, b: r.b })));
  }
  replace(side, h('h3', 'KPI differences'), h('p.hint', `Left: ${nameA}. Right: ${nameB}. Change is right − left.`),
    table([['', (r) => r.lbl], ['Left', (r) => fmtKpi(r.kind, r.a)], ['Right', (r) => fmtKpi(r.kind, r.b)],
      ['Change', (r) => fmtDiff(r.kind, r.a, r.b)]], rows, { className: 'data kpi' }));
}

// ---------------------------------------------------------------------------------------------------------------
// the nightly batch's reports

async function renderBatches(id) {
  const batches = await request('GET', '/batches');
  const detail = h('div', { id: 'batch-detail' });
  replace(view, h('h2', 'Nightly batch reports'),
    table([
      ['Batch', (b) => h('a', { href: `#/batches/${encodeURIComponent(b.id)}` }, b.id)],
      ['Status', (b) => b.status], ['Started', (b) => when(b.started_at)], ['Finished', (b) => when(b.finished_at)],
      ['Scenarios', (b) => num(b.counts.total)], ['Recomputed', (b) => num(b.counts.recomputed)],
      ['Failed', (b) => num(b.counts.failed)], ['Changes', (b) => num(b.changes)],
      ['', (b) => downloadButton('report.html', `/batches/${encodeURIComponent(b.id)}/report.html`,
        `batch-${b.id}.html`)],
    ], batches, { empty: 'No nightly batch has run any of your scenarios yet.' }), detail);
  if (!id) return;
  const rep = await request('GET', `/batches/${encodeURIComponent(id)}`);
  replace(detail, h('h3', `Batch ${rep.id}`),
    h('h3', 'Changes that matter'),
    table([['Scenario', (c) => c.name], ['Region', (c) => c.region],
      ['Covered', (c) => `${pct(c.kpis.covered_share.before)} → ${pct(c.kpis.covered_share.after)}`],
      ['Cost', (c) => `${num(c.kpis.cost.before)} → ${num(c.kpis.cost.after)}`],
      ['Decisions', (c) => h('ul', (c.decisions || []).map((d) => h('li', d)))]], rep.changes || []),
    h('h3', 'Scenarios'),
    table([['Scenario', (r) => r.name], ['Region', (r) => r.region], ['Status', (r) => r.status],
      ['Why', (r) => (r.reasons || []).join('; ')], ['Seconds', (r) => num(r.seconds, 1)],
      ['Error', (r) => r.error || '']], rep.scenarios || []));
}

// ---------------------------------------------------------------------------------------------------------------

window.addEventListener('hashchange', () => { route(); });
window.addEventListener('unhandledrejection', (e) => { e.preventDefault(); fail(e.reason); });
route();
