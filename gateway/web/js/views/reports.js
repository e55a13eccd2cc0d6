// レポート (#/reports?from&to&group&page: supervisors, staff, administrators; docs/kpi.md,
// docs/web.md): the period (dates, presets 今月 / 先月 / 今年度) and the grouping in the
// address; the KPI table (definitions as tooltips and in a list under it), a chart of the
// grouping (offered / answered / abandoned bars, the service level as a line), the FAQ
// usage ranking, zero-hit searches, survey satisfaction; CSV (UTF-8, Shift_JIS) and XLSX
// downloads; the batch runs (GET /api/v1/reports/runs) with their files.

import { api, isAbort, ApiError } from '../api.js';
import { h, clear, notice, pager } from '../dom.js';
import { t, has, formatTime, getLang } from '../i18n.js';
import { field, select, errorText, clearErrors, setFieldError, setFormError } from '../forms.js';
import { loadChart, loadStyles, chartColors } from './chart.js';

export const GROUPS = ['hour', 'day', 'month', 'department', 'category', 'operator', 'channel'];
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const RUNS_PER_PAGE = 20;

// The KPI table's columns: JSON field, message key, kind (count, rate, seconds, score).
const COLUMNS = [
  ['offered', 'count'], ['answered', 'count'], ['abandoned', 'count'], ['abandon_rate', 'rate'],
  ['answered_within_sl', 'count'], ['service_level', 'rate'], ['asa_seconds', 'seconds'],
  ['talk_seconds', 'seconds'], ['acw_seconds', 'seconds'], ['aht_seconds', 'seconds'],
  ['transferred', 'count'], ['one_stop', 'count'], ['one_stop_rate', 'rate'],
  ['surveys', 'count'], ['satisfaction', 'score'],
];

// ---- dates (Tokyo) --------------------------------------------------------------------

// Today in Tokyo as YYYY-MM-DD.
export function tokyoToday(now = new Date()) {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: 'Asia/Tokyo', year: 'numeric', month: '2-digit', day: '2-digit',
  }).formatToParts(now);
  const get = (type) => parts.find((p) => p.type === type)?.value;
  return `${get('year')}-${get('month')}-${get('day')}`;
}

function ymd(y, m, d) {
  // y, m (1-12), d through Date.UTC so that month 0 and day 0 roll over.
  const date = new Date(Date.UTC(y, m - 1, d));
  return date.toISOString().slice(0, 10);
}

// A date that exists (2027-02-30 does not).
export function validDate(text) {
  if (!DATE.test(text ?? '')) return false;
  const [y, m, d] = text.split('-').map(Number);
  return ymd(y, m, d) === text;
}

// {from, to} of a preset: this_month, last_month, this_fiscal_year (April to March).
export function preset(name, today = tokyoToday()) {
  const [y, m] = today.split('-').map(Number);
  if (name === 'last_month') return { from: ymd(y, m - 1, 1), to: ymd(y, m, 0) };
  if (name === 'this_fiscal_year') return { from: ymd(m >= 4 ? y : y - 1, 4, 1), to: today };
  return { from: ymd(y, m, 1), to: today };
}

// The client's own check of a period: null, or {field, key, vars}.
export function checkPeriod(from, to) {
  if (!validDate(from)) return { field: 'from', key: 'reports.err_from' };
  if (!validDate(to)) return { field: 'to', key: 'reports.err_to' };
  if (to < from) return { field: 'to', key: 'reports.err_reversed' };
  return null;
}

// The server's 400 for a period or grouping, in plain words: {field, text}.
export function periodErrorText(error) {
  const message = String(error?.message ?? '');
  const fieldName = error?.field;
  if (fieldName === 'group') return { field: 'group', text: t('reports.err_group') };
  if (/reversed|empty/i.test(message)) return { field: 'to', text: t('reports.err_reversed') };
  const longer = /longer than (\d+) days/i.exec(message);
  if (longer) return { field: 'to', text: t('reports.err_too_long', { days: longer[1] }) };
  if (/exist/i.test(message)) return { field: fieldName || 'from', text: t('reports.err_not_exist') };
  if (fieldName === 'to') return { field: 'to', text: t('reports.err_to') };
  if (fieldName === 'from') return { field: 'from', text: t('reports.err_from') };
  return { field: null, text: errorText(error) };
}

// ---- numbers ------------------------------------------------------------------------

function num(value) {
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

function locale() {
  return getLang() === 'ja' ? 'ja-JP' : 'en-GB';
}

export function formatValue(value, kind) {
  const n = num(value);
  if (kind === 'rate') return `${(n * 100).toLocaleString(locale(), { minimumFractionDigits: 1, maximumFractionDigits: 1 })}%`;
  if (kind === 'seconds') return n.toLocaleString(locale(), { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  if (kind === 'score') return n.toLocaleString(locale(), { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  return Math.round(n).toLocaleString(locale());
}

function rowLabel(row, group) {
  const key = String(row?.key ?? '');
  const label = String(row?.label ?? '');
  if (group === 'hour' && /^\d{1,2}$/.test(key)) return t('reports.hour_label', { hour: key.padStart(2, '0') });
  if (group === 'channel' && has(`records.channel_${key}`)) return t(`records.channel_${key}`);
  return label || key || t('reports.unset');
}

// ---- pieces ---------------------------------------------------------------------------

function kpiTable(answer, group) {
  const rows = Array.isArray(answer.rows) ? answer.rows : [];
  const head = h('tr', null, h('th', { scope: 'col' }, t(`reports.group.${group}`)),
    COLUMNS.map(([name]) => h('th', { scope: 'col', class: 'num', title: t(`reports.def.${name}`), dataset: { field: name } },
      h('abbr', { title: t(`reports.def.${name}`) }, t(`reports.col.${name}`)))));
  const line = (row, total) => h('tr', { dataset: { key: total ? '' : String(row.key ?? '') }, id: total ? 'reports-total' : null },
    h('th', { scope: 'row' }, total ? t('reports.total') : rowLabel(row, group)),
    COLUMNS.map(([name, kind]) => h('td', { class: 'num', dataset: { field: name, value: String(num(row[name])) } },
      formatValue(row[name], kind))));
  return h('table', { id: 'reports-table', class: 'reports-table' },
    h('caption', null, t('reports.table_caption', { group: t(`reports.group.${group}`) })),
    h('thead', null, head),
    h('tbody', null, rows.length ? rows.map((row) => line(row, false))
      : h('tr', null, h('td', { colSpan: COLUMNS.length + 1 }, t('reports.no_rows')))),
    h('tfoot', null, line(answer.total ?? {}, true)));
}

function definitions(serviceLevel) {
  return h('details', { class: 'reports-defs', id: 'reports-definitions' },
    h('summary', null, t('reports.defs_heading')),
    h('dl', null, COLUMNS.map(([name]) => [
      h('dt', null, t(`reports.col.${name}`)),
      h('dd', null, t(`reports.def.${name}`), name === 'service_level' || name === 'answered_within_sl'
        ? ` ${t('reports.def_sl_seconds', { seconds: serviceLevel })}` : null)])));
}

function faqRanking(answer) {
  const items = Array.isArray(answer.faq_ranking) ? answer.faq_ranking : [];
  const body = items.length
    ? h('div', { class: 'table-wrap' }, h('table', { id: 'reports-faq-ranking' },
      h('caption', { class: 'visually-hidden' }, t('reports.faq_heading')),
      h('thead', null, h('tr', null, h('th', { scope: 'col', class: 'num' }, t('reports.rank')),
        h('th', { scope: 'col' }, t('reports.faq_number')), h('th', { scope: 'col' }, t('reports.faq_question')),
        h('th', { scope: 'col', class: 'num', title: t('reports.faq_used_hint') }, t('reports.faq_used')),
        h('th', { scope: 'col', class: 'num', title: t('reports.faq_shown_hint') }, t('reports.faq_shown')))),
      h('tbody', null, items.map((item, i) => h('tr', { dataset: { number: String(item.number ?? '') } },
        h('td', { class: 'num' }, String(i + 1)),
        h('td', null, h('a', { href: `#/faq?q=${encodeURIComponent(String(item.number ?? ''))}` }, t('reports.faq_no', { number: String(item.number ?? '') }))),
        h('td', null, String(item.question ?? '') || t('common.dash')),
        h('td', { class: 'num' }, formatValue(item.used, 'count')),
        h('td', { class: 'num' }, formatValue(item.shown, 'count')))))))
    : h('p', { class: 'muted' }, t('reports.none'));
  return h('section', { class: 'card', 'aria-labelledby': 'reports-faq-heading' },
    h('h3', { id: 'reports-faq-heading' }, t('reports.faq_heading')),
    h('p', { class: 'hint' }, t('reports.faq_hint')), body);
}

function zeroHits(answer) {
  const items = Array.isArray(answer.zero_hits) ? answer.zero_hits : [];
  const searches = num(answer.faq_searches);
  const zero = num(answer.faq_zero_hit_searches);
  const body = items.length
    ? h('div', { class: 'table-wrap' }, h('table', { id: 'reports-zero-hits' },
      h('caption', { class: 'visually-hidden' }, t('reports.zero_heading')),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, t('reports.zero_query')),
        h('th', { scope: 'col', class: 'num' }, t('reports.zero_count')),
        h('th', { scope: 'col', class: 'num' }, t('reports.zero_public')),
        h('th', { scope: 'col' }, t('reports.zero_last')))),
      h('tbody', null, items.map((item) => h('tr', null,
        h('td', null, String(item.query ?? '')),
        h('td', { class: 'num' }, formatValue(item.count, 'count')),
        h('td', { class: 'num' }, formatValue(item.public_count, 'count')),
        h('td', { class: 'nowrap' }, formatTime(item.last_at)))))))
    : h('p', { class: 'muted' }, t('reports.none'));
  return h('section', { class: 'card', 'aria-labelledby': 'reports-zero-heading' },
    h('h3', { id: 'reports-zero-heading' }, t('reports.zero_heading')),
    h('p', { id: 'reports-search-counts' }, t('reports.zero_counts', {
      searches: formatValue(searches, 'count'), zero: formatValue(zero, 'count'),
      rate: formatValue(searches ? zero / searches : 0, 'rate'),
    })),
    body);
}

function satisfaction(answer) {
  const s = answer.satisfaction && typeof answer.satisfaction === 'object' ? answer.satisfaction : {};
  const scores = Array.isArray(s.by_score) ? s.by_score : [];
  const answers = num(s.answers);
  return h('section', { class: 'card', 'aria-labelledby': 'reports-sat-heading', id: 'reports-satisfaction' },
    h('h3', { id: 'reports-sat-heading' }, t('reports.sat_heading')),
    h('dl', { class: 'live-figures' },
      h('div', { class: 'live-figure' }, h('dt', null, t('reports.sat_answers')), h('dd', { dataset: { field: 'answers' } }, formatValue(answers, 'count'))),
      h('div', { class: 'live-figure' }, h('dt', null, t('reports.sat_average')), h('dd', { dataset: { field: 'average' } }, answers ? formatValue(s.average, 'score') : t('common.dash'))),
      h('div', { class: 'live-figure' }, h('dt', null, t('reports.sat_resolved')), h('dd', { dataset: { field: 'resolved' } },
        `${formatValue(s.resolved, 'count')}${answers ? ` (${formatValue(num(s.resolved) / answers, 'rate')})` : ''}`))),
    h('table', { class: 'reports-scores' },
      h('caption', null, t('reports.sat_by_score')),
      h('thead', null, h('tr', null, [1, 2, 3, 4, 5].map((score) => h('th', { scope: 'col', class: 'num' }, t('reports.sat_score', { score }))))),
      h('tbody', null, h('tr', null, [0, 1, 2, 3, 4].map((i) => h('td', { class: 'num' }, formatValue(scores[i], 'count')))))));
}

function downloads(from, to, group) {
  const q = (extra) => new URLSearchParams({ from, to, ...extra }).toString();
  return h('section', { class: 'card', 'aria-labelledby': 'reports-dl-heading' },
    h('h3', { id: 'reports-dl-heading' }, t('reports.dl_heading')),
    h('p', { class: 'hint' }, t('reports.dl_hint')),
    h('p', { class: 'exports' },
      h('a', { class: 'button secondary', id: 'reports-csv', download: '', href: `/api/v1/reports/export.csv?${q({ group })}` }, t('reports.dl_csv')), ' ',
      h('a', { class: 'button secondary', id: 'reports-csv-sjis', download: '', href: `/api/v1/reports/export.csv?${q({ group, encoding: 'shift_jis' })}` }, t('reports.dl_csv_sjis')), ' ',
      h('a', { class: 'button secondary', id: 'reports-xlsx', download: '', href: `/api/v1/reports/export.xlsx?${q({})}` }, t('reports.dl_xlsx'))));
}

function sizeText(bytes) {
  const n = num(bytes);
  if (n >= 1048576) return `${(n / 1048576).toFixed(1)} MB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${n} B`;
}

async function runsSection(ctx, page) {
  const slot = h('div', { class: 'table-wrap', 'aria-busy': 'true' }, h('p', { role: 'status' }, t('common.loading')));
  const section = h('section', { class: 'card', 'aria-labelledby': 'reports-runs-heading' },
    h('h3', { id: 'reports-runs-heading' }, t('reports.runs_heading')),
    h('p', { class: 'hint' }, t('reports.runs_hint')), slot);
  const load = (async () => {
    let answer;
    try {
      answer = await api('GET', '/api/v1/reports/runs', { query: { page, per_page: RUNS_PER_PAGE }, signal: ctx.signal });
    } catch (error) {
      if (isAbort(error) || ctx.signal.aborted || error?.status === 401) return;
      clear(slot, notice('error', errorText(error)));
      slot.setAttribute('aria-busy', 'false');
      return;
    }
    const items = Array.isArray(answer.items) ? answer.items : [];
    const total = num(answer.total ?? items.length);
    const table = h('table', { id: 'reports-runs' },
      h('caption', { class: 'visually-hidden' }, t('reports.runs_heading')),
      h('thead', null, h('tr', null, ['runs_started', 'runs_kind', 'runs_period', 'runs_format', 'runs_status', 'runs_size', 'runs_file']
        .map((key) => h('th', { scope: 'col' }, t(`reports.${key}`))))),
      h('tbody', null, items.map((run) => {
        const ok = run.status === 'ok';
        const kind = ['daily', 'monthly'].includes(run.kind) ? t(`reports.kind_${run.kind}`) : String(run.kind ?? '');
        return h('tr', { dataset: { id: String(run.id ?? '') } },
          h('td', { class: 'nowrap' }, formatTime(run.started_at)),
          h('td', null, kind),
          h('td', null, String(run.period ?? '')),
          h('td', null, String(run.format ?? '').toUpperCase()),
          h('td', { class: ok ? 'outcome-success' : 'outcome-failure' }, ok ? t('reports.runs_ok')
            : t('reports.runs_failed', { code: String(run.exit_code ?? '') }),
          !ok && run.error ? h('span', { class: 'muted' }, ` ${String(run.error)}`) : null),
          h('td', { class: 'num' }, ok ? sizeText(run.bytes) : t('common.dash')),
          h('td', null, ok ? h('a', { href: `/api/v1/reports/runs/${encodeURIComponent(String(run.id))}/file`, download: '' },
            t('reports.runs_download', { name: String(run.out ?? '').split('/').pop() || String(run.id) })) : t('common.dash')));
      })));
    clear(slot, items.length ? table : h('p', { class: 'muted' }, t('reports.runs_none')),
      total > RUNS_PER_PAGE ? pager({
        page, perPage: RUNS_PER_PAGE, total, t, label: t('reports.runs_heading'),
        href: (p) => ctx.hrefWith({ page: p > 1 ? String(p) : '' }, true),
      }) : null);
    slot.setAttribute('aria-busy', 'false');
  })();
  return { section, load };
}

// The chart: x = the rows in order; bars offered / answered / abandoned (left scale),
// the service level as a line (right scale, %).
async function drawChart(slot, answer, group, signal) {
  const rows = Array.isArray(answer.rows) ? answer.rows : [];
  if (!rows.length) {
    clear(slot, h('p', { class: 'muted' }, t('reports.chart_empty')));
    return;
  }
  let uPlot;
  try {
    uPlot = await loadChart();
  } catch {
    clear(slot, notice('info', t('reports.chart_unavailable')));
    return;
  }
  if (signal.aborted) return;
  const labels = rows.map((row) => rowLabel(row, group));
  const xs = rows.map((_, i) => i);
  const colors = chartColors();
  const width = Math.max(320, Math.min(1100, slot.clientWidth || 900));
  // Three bars side by side around each x: a slot of at most 0.26 of a group, at most 48 px.
  const barSlot = (u) => {
    const perUnit = u.bbox.width / Math.max(1e-9, u.scales.x.max - u.scales.x.min);
    return Math.min(0.26, (48 * (window.devicePixelRatio || 1)) / perUnit);
  };
  const bar = (k) => uPlot.paths.bars({
    disp: {
      x0: { unit: 1, values: (u) => u.data[0].map((x) => x + (k - 1.5) * barSlot(u)) },
      size: { unit: 1, values: (u) => u.data[0].map(() => barSlot(u) * 0.9) },
    },
  });
  const figure = h('figure', { class: 'reports-chart', id: 'reports-chart' });
  const caption = h('figcaption', null, t('reports.chart_caption', { group: t(`reports.group.${group}`) }));
  clear(slot, figure);
  const plot = new uPlot({
    width,
    height: 300,
    scales: {
      x: { time: false, range: [-0.6, rows.length - 0.4] },
      y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] },
      pct: { range: [0, 100] },
    },
    axes: [
      { values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? labels[v] ?? '' : '')), incrs: [1], gap: 4 },
      { label: t('reports.chart_count'), values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? String(v) : '')) },
      { scale: 'pct', side: 1, label: t('reports.chart_sl'), grid: { show: false }, values: (u, splits) => splits.map((v) => `${v}%`) },
    ],
    series: [
      { label: t(`reports.group.${group}`), value: (u, v) => (v == null ? '' : labels[v] ?? '') },
      { label: t('reports.col.offered'), fill: colors.offered, stroke: colors.offered, width: 0, paths: bar(0), points: { show: false } },
      { label: t('reports.col.answered'), fill: colors.answered, stroke: colors.answered, width: 0, paths: bar(1), points: { show: false } },
      { label: t('reports.col.abandoned'), fill: colors.abandoned, stroke: colors.abandoned, width: 0, paths: bar(2), points: { show: false } },
      { label: t('reports.col.service_level'), scale: 'pct', stroke: colors.level, width: 2, value: (u, v) => (v == null ? '' : `${v.toFixed(1)}%`) },
    ],
  }, [
    xs,
    rows.map((r) => num(r.offered)),
    rows.map((r) => num(r.answered)),
    rows.map((r) => num(r.abandoned)),
    rows.map((r) => Math.round(num(r.service_level) * 1000) / 10),
  ], figure);
  plot.root.setAttribute('role', 'img');
  plot.root.setAttribute('aria-label', t('reports.chart_alt', { group: t(`reports.group.${group}`) }));
  figure.append(caption);
  figure.dataset.points = String(rows.length);
  signal.addEventListener('abort', () => plot.destroy(), { once: true });
}

// ---- the view -----------------------------------------------------------------------

export async function mount(ctx) {
  loadStyles();
  const today = tokyoToday();
  const fallback = preset('this_month', today);
  const from = ctx.query.get('from') ?? fallback.from;
  const to = ctx.query.get('to') ?? fallback.to;
  const group = ctx.query.get('group') ?? 'day'; // the server judges an unknown one (400)
  const page = Math.max(1, Number.parseInt(ctx.query.get('page') ?? '1', 10) || 1);

  const fromField = field({ label: t('reports.from'), name: 'from', type: 'date', value: DATE.test(from) ? from : '', required: true });
  const toField = field({ label: t('reports.to'), name: 'to', type: 'date', value: DATE.test(to) ? to : '', required: true });
  const groupField = field({
    label: t('reports.group_label'), name: 'group',
    control: select(GROUPS.map((g) => [g, t(`reports.group.${g}`)]), GROUPS.includes(group) ? group : 'day'),
  });
  const presets = h('div', { class: 'actions reports-presets', role: 'group', 'aria-label': t('reports.presets') },
    ['this_month', 'last_month', 'this_fiscal_year'].map((name) => {
      const button = h('button', { type: 'button', class: 'secondary', dataset: { preset: name } }, t(`reports.preset.${name}`));
      button.addEventListener('click', () => {
        const p = preset(name, tokyoToday());
        ctx.navigate(ctx.hrefWith({ from: p.from, to: p.to, group: groupField.control.value }));
      });
      return button;
    }));
  const form = h('form', { id: 'reports-form', class: 'search', novalidate: true },
    h('fieldset', null, h('legend', null, t('reports.period_legend')),
      h('div', { class: 'row' }, fromField, toField, groupField,
        h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('reports.show')))),
      presets));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearErrors(form);
    const problem = checkPeriod(fromField.control.value, toField.control.value);
    if (problem) {
      setFormError(form, t('reports.err_period'), { focus: false });
      setFieldError(form, problem.field, t(problem.key));
      return;
    }
    ctx.navigate(ctx.hrefWith({ from: fromField.control.value, to: toField.control.value, group: groupField.control.value }));
  });

  const result = h('div', { id: 'reports-result', 'aria-live': 'polite', 'aria-busy': 'true' },
    h('p', { role: 'status' }, t('common.loading')));
  const runs = await runsSection(ctx, page);
  clear(ctx.view, h('h2', { tabindex: '-1' }, t('reports.heading')), ctx.flashSlot, form, result, runs.section);

  let answer;
  try {
    answer = await api('GET', '/api/v1/reports/kpi', { query: { from, to, group }, signal: ctx.signal });
  } catch (error) {
    if (isAbort(error) || ctx.signal.aborted || error?.status === 401) return;
    if (error instanceof ApiError && error.status === 400) {
      const { field: name, text } = periodErrorText(error);
      setFormError(form, t('reports.err_period'), { focus: false });
      if (name) setFieldError(form, name, text);
      clear(result, notice('error', h('p', { id: 'reports-error' }, text)));
    } else {
      clear(result, notice('error', errorText(error)));
    }
    result.setAttribute('aria-busy', 'false');
    await runs.load;
    return;
  }
  if (ctx.signal.aborted) return;
  const shownGroup = GROUPS.includes(answer.group) ? answer.group : group;
  const serviceLevel = num(answer.service_level_seconds) || 20;
  const periodText = t('reports.period_shown', { from, to });
  const chartSlot = h('div', { class: 'reports-chart-slot' });
  clear(result,
    h('p', { id: 'reports-period', class: 'muted' }, periodText, ' ', t('reports.sl_note', { seconds: serviceLevel })),
    h('section', { class: 'card', 'aria-labelledby': 'reports-kpi-heading' },
      h('h3', { id: 'reports-kpi-heading' }, t('reports.kpi_heading')),
      chartSlot,
      h('div', { class: 'table-wrap' }, kpiTable(answer, shownGroup)),
      definitions(serviceLevel)),
    downloads(from, to, shownGroup),
    h('div', { class: 'reports-grid' }, faqRanking(answer), zeroHits(answer), satisfaction(answer)));
  await drawChart(chartSlot, answer, shownGroup, ctx.signal);
  result.setAttribute('aria-busy', 'false');
  await runs.load;
}
