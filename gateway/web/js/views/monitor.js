// モニタリング (#/monitor: supervisors, administrators, staff; docs/web.md "The live floor").
//
// The live floor (R39): GET /api/v1/metrics/live when the page opens, then the
// `metrics.live` push of ncc-report (every second and soon after a change; supervisors and
// administrators, docs/push.md): calls waiting (ringing), in progress, operators talking
// and in after-call work, today so far (offered, answered, abandoned, service level), and
// a chart of the last minutes. Staff get no push: the page asks again every few seconds
// while it is open (and so does anyone whose last figures are older than that).
//
// The anger alerts (R37, supervisors): the calls whose caller's anger rose past
// NCC_SUMMARY_ANGER_ALERT (`emotion.alert` pushed by ncc-summary, docs/push.md), newest
// first. watch(user), called by the app at sign-in, opens the push stream for a supervisor
// and keeps the alerts and the live samples for this tab; a new alert also shows a banner on
// any page, with a link here.

import * as push from '../push.js';
import { api, isAbort } from '../api.js';
import { h, clear, notice } from '../dom.js';
import { t, formatTime, getLang } from '../i18n.js';
import { errorText } from '../forms.js';
import { loadChart, loadStyles, chartColors } from './chart.js';

const MAX_ALERTS = 50;
const alerts = []; // newest first: {call_id, operator_id, operator_name, anger, at}
const watchers = new Set(); // the mounted page's redraw
let owner = null;
let bound = false;

const LIVE_WINDOW_S = 10 * 60; // the chart's minutes
const POLL_MS = 5000; // staff, or figures older than this: ask GET /api/v1/metrics/live
const live = { last: null, receivedAt: 0, samples: [] }; // samples: {t (s), waiting, inProgress, talking, afterCall}
const liveWatchers = new Set();
let liveBound = false;
let liveOwner = null; // the user the samples were kept for

function isSupervisor(user) {
  return Array.isArray(user?.roles) && user.roles.includes('supervisor');
}

function hasPush(user) {
  return Array.isArray(user?.roles) && (user.roles.includes('supervisor') || user.roles.includes('admin'));
}

function percent(value) {
  const n = Number(value);
  return Number.isFinite(n) ? Math.round(Math.min(1, Math.max(0, n)) * 100) : 0;
}

function count(value) {
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 ? Math.round(n) : 0;
}

function banner(alert) {
  document.getElementById('monitor-banner')?.remove();
  const close = h('button', { type: 'button', class: 'secondary', id: 'monitor-banner-close' }, t('monitor.banner_close'));
  const box = h('div', { class: 'monitor-banner', id: 'monitor-banner', role: 'alert' },
    h('p', null, t('monitor.banner', { call: alert.call_id, anger: percent(alert.anger) })),
    h('p', null, h('a', { href: '#/monitor' }, t('monitor.banner_open')), ' ', close));
  close.addEventListener('click', () => box.remove());
  document.body.append(box);
}

async function operatorName(alert) {
  try {
    const call = await api('GET', `/api/v1/calls/${encodeURIComponent(alert.call_id)}`);
    if (call && typeof call.operator_name === 'string' && call.operator_name) {
      alert.operator_name = call.operator_name;
      for (const fn of [...watchers]) fn();
    }
  } catch {
    // the operator's id is shown instead
  }
}

function onAlert(data) {
  if (!data || typeof data.call_id !== 'string' || !data.call_id) return;
  const existing = alerts.findIndex((a) => a.call_id === data.call_id);
  if (existing >= 0) alerts.splice(existing, 1);
  const alert = {
    call_id: data.call_id,
    operator_id: Number.isInteger(data.operator_id) ? data.operator_id : null,
    operator_name: null,
    anger: data.call?.anger,
    at: new Date().toISOString(),
  };
  alerts.unshift(alert);
  alerts.length = Math.min(alerts.length, MAX_ALERTS);
  for (const fn of [...watchers]) fn();
  if (!location.hash.startsWith('#/monitor')) banner(alert);
  operatorName(alert);
}

// ---- live figures ---------------------------------------------------------------------

// One set of figures (the push's or GET's JSON): kept, sampled for the chart, drawn.
function onLive(data) {
  if (!data || typeof data !== 'object' || typeof data.today !== 'object' || !data.today) return;
  const at = Date.parse(data.at);
  // A GET answered after a newer push: nothing new.
  if (live.last && Number.isFinite(at) && Date.parse(live.last.at) > at) return;
  live.last = data;
  live.receivedAt = Date.now();
  const tSec = (Number.isFinite(at) ? at : Date.now()) / 1000;
  const prev = live.samples[live.samples.length - 1];
  const sample = {
    t: tSec, waiting: count(data.waiting), inProgress: count(data.in_progress),
    talking: count(data.operators?.talking), afterCall: count(data.operators?.after_call_work),
  };
  if (prev && prev.t >= tSec) live.samples[live.samples.length - 1] = { ...sample, t: prev.t };
  else live.samples.push(sample);
  while (live.samples.length && live.samples[0].t < tSec - LIVE_WINDOW_S) live.samples.shift();
  for (const fn of [...liveWatchers]) fn();
}

// The live figures of user `user` (a new sign-in in this tab starts afresh).
function bindLive(user) {
  if (liveOwner !== user?.id) {
    liveOwner = user?.id ?? null;
    live.last = null;
    live.receivedAt = 0;
    live.samples.length = 0;
  }
  if (liveBound) return;
  liveBound = true;
  push.on('metrics.live', onLive);
}

// For a supervisor: the push stream, its alerts and the live figures (idempotent).
export function watch(user) {
  if (!isSupervisor(user)) return;
  if (owner !== user.id) {
    alerts.length = 0;
    owner = user.id;
  }
  if (!bound) {
    bound = true;
    push.on('emotion.alert', onAlert);
  }
  bindLive(user);
  push.start(user.id);
}

function figure(id, labelKey, hintKey) {
  const value = h('dd', { id, class: 'live-value' }, t('common.dash'));
  const box = h('div', { class: 'live-figure', title: hintKey ? t(hintKey) : null },
    h('dt', null, t(labelKey)), value);
  return { box, value };
}

function liveSection(ctx) {
  const at = h('p', { id: 'monitor-live-at', class: 'muted', 'aria-live': 'off' }, t('common.loading'));
  const error = h('div', { id: 'monitor-live-error' });
  const f = {
    waiting: figure('monitor-waiting', 'monitor.live_waiting', 'monitor.live_waiting_hint'),
    inProgress: figure('monitor-in-progress', 'monitor.live_in_progress', 'monitor.live_in_progress_hint'),
    talking: figure('monitor-talking', 'monitor.live_talking', 'monitor.live_talking_hint'),
    afterCall: figure('monitor-after-call', 'monitor.live_after_call', 'monitor.live_after_call_hint'),
    offered: figure('monitor-offered', 'monitor.live_offered', 'reports.def.offered'),
    answered: figure('monitor-answered', 'monitor.live_answered', 'reports.def.answered'),
    abandoned: figure('monitor-abandoned', 'monitor.live_abandoned', 'reports.def.abandoned'),
    level: figure('monitor-service-level', 'monitor.live_service_level', 'reports.def.service_level'),
  };
  const chartSlot = h('div', { class: 'live-chart-slot' });
  const section = h('section', { class: 'card', id: 'monitor-live', 'aria-labelledby': 'monitor-live-heading' },
    h('h3', { id: 'monitor-live-heading' }, t('monitor.live_heading')), at, error,
    h('div', { class: 'live-groups' },
      h('div', null, h('h4', null, t('monitor.live_calls')),
        h('dl', { class: 'live-figures' }, f.waiting.box, f.inProgress.box)),
      h('div', null, h('h4', null, t('monitor.live_operators')),
        h('dl', { class: 'live-figures' }, f.talking.box, f.afterCall.box)),
      h('div', null, h('h4', null, t('monitor.live_today')),
        h('dl', { class: 'live-figures' }, f.offered.box, f.answered.box, f.abandoned.box, f.level.box))),
    chartSlot,
    h('p', { class: 'hint' }, t('monitor.live_hint')),
    h('p', null, h('a', { href: '#/reports' }, t('monitor.live_reports'))));

  const locale = getLang() === 'ja' ? 'ja-JP' : 'en-GB';
  const clock = (seconds) => new Date(seconds * 1000).toLocaleTimeString(locale, {
    timeZone: 'Asia/Tokyo', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
  let plot = null;
  let chartFailed = false;

  function chartData() {
    const s = live.samples;
    return [s.map((x) => x.t), s.map((x) => x.waiting), s.map((x) => x.inProgress), s.map((x) => x.afterCall)];
  }

  async function makeChart() {
    let uPlot;
    try {
      uPlot = await loadChart();
    } catch {
      chartFailed = true;
      clear(chartSlot, notice('info', t('reports.chart_unavailable')));
      return;
    }
    if (ctx.signal.aborted || plot) return;
    const colors = chartColors();
    const fig = h('figure', { class: 'live-chart', id: 'monitor-chart' });
    clear(chartSlot, fig);
    const width = Math.max(320, Math.min(1100, chartSlot.clientWidth || 900));
    plot = new uPlot({
      width,
      height: 220,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Asia/Tokyo'),
      scales: {
        x: { time: true, range: (u, min, max) => [Math.min(min, max - 60), max] },
        y: { range: (u, min, max) => [0, Math.max(4, Math.ceil(max * 1.2))] },
      },
      axes: [{ values: (u, splits) => splits.map((v) => clock(v)) }, { label: t('monitor.chart_count'), values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? String(v) : '')) }],
      series: [
        { label: t('monitor.chart_time'), value: (u, v) => (v == null ? '' : clock(v)) },
        { label: t('monitor.live_waiting'), stroke: colors.waiting, width: 2 },
        { label: t('monitor.live_in_progress'), stroke: colors.inProgress, width: 2 },
        { label: t('monitor.live_after_call'), stroke: colors.afterCall, width: 2, dash: [6, 4] },
      ],
    }, chartData(), fig);
    plot.root.setAttribute('role', 'img');
    plot.root.setAttribute('aria-label', t('monitor.chart_alt'));
    fig.append(h('figcaption', null, t('monitor.chart_caption', { minutes: LIVE_WINDOW_S / 60 })));
    ctx.signal.addEventListener('abort', () => plot.destroy(), { once: true });
  }

  function draw() {
    const d = live.last;
    if (!d) return;
    const today = d.today ?? {};
    f.waiting.value.textContent = count(d.waiting).toLocaleString(locale);
    f.inProgress.value.textContent = count(d.in_progress).toLocaleString(locale);
    f.talking.value.textContent = count(d.operators?.talking).toLocaleString(locale);
    f.afterCall.value.textContent = count(d.operators?.after_call_work).toLocaleString(locale);
    f.offered.value.textContent = count(today.offered).toLocaleString(locale);
    f.answered.value.textContent = count(today.answered).toLocaleString(locale);
    f.abandoned.value.textContent = count(today.abandoned).toLocaleString(locale);
    const level = Number(today.service_level);
    f.level.value.textContent = Number.isFinite(level)
      ? `${(level * 100).toLocaleString(locale, { minimumFractionDigits: 1, maximumFractionDigits: 1 })}%` : t('common.dash');
    const seconds = Number(d.service_level_seconds);
    f.level.box.querySelector('dt').textContent = Number.isFinite(seconds) && seconds > 0
      ? t('monitor.live_service_level_n', { seconds }) : t('monitor.live_service_level');
    for (const [key, fig] of Object.entries(f)) fig.value.dataset.field = key;
    section.dataset.waiting = String(count(d.waiting));
    section.dataset.offered = String(count(today.offered));
    at.textContent = t('monitor.live_at', { time: formatTime(d.at) });
    clear(error);
    if (plot) plot.setData(chartData());
    else if (!chartFailed && live.samples.length) makeChart();
  }

  async function fetchLive() {
    try {
      const data = await api('GET', '/api/v1/metrics/live', { signal: ctx.signal });
      if (!ctx.signal.aborted) onLive(data);
    } catch (e) {
      if (isAbort(e) || ctx.signal.aborted || e?.status === 401) return;
      if (!live.last) clear(at);
      clear(error, notice('error', t('monitor.live_error'), ' ', errorText(e)));
    }
  }

  liveWatchers.add(draw);
  const timer = setInterval(() => {
    if (Date.now() - live.receivedAt >= POLL_MS - 500) fetchLive();
  }, POLL_MS);
  ctx.signal.addEventListener('abort', () => {
    liveWatchers.delete(draw);
    clearInterval(timer);
  }, { once: true });
  draw();
  return { section, load: fetchLive };
}

// ---- the page -------------------------------------------------------------------------

export async function mount(ctx) {
  loadStyles();
  watch(ctx.user);
  bindLive(ctx.user);
  if (hasPush(ctx.user)) push.start(ctx.user.id);
  document.getElementById('monitor-banner')?.remove();
  const heading = h('h2', { tabindex: '-1' }, t('monitor.heading'));
  const conn = h('p', { id: 'monitor-connection' });
  const list = h('div', { id: 'monitor-alerts' });

  function drawConnection() {
    const state = push.status();
    conn.className = `desk-conn desk-conn-${state}`;
    conn.dataset.state = state;
    conn.textContent = t(state === 'open' ? 'desk.conn_open' : state === 'connecting' ? 'desk.conn_connecting' : 'desk.conn_off');
  }

  function draw() {
    if (!alerts.length) {
      clear(list, h('p', { class: 'muted', id: 'monitor-none' }, t('monitor.none')));
      return;
    }
    clear(list, h('table', { class: 'monitor-table', id: 'monitor-table' },
      h('caption', { class: 'visually-hidden' }, t('monitor.alerts_heading')),
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, t('monitor.col_time')), h('th', { scope: 'col' }, t('monitor.col_call')),
        h('th', { scope: 'col' }, t('monitor.col_operator')), h('th', { scope: 'col' }, t('monitor.col_anger')))),
      h('tbody', null, alerts.map((a) => h('tr', { dataset: { callId: a.call_id } },
        h('td', null, formatTime(a.at)), h('td', null, a.call_id),
        h('td', null, a.operator_name ?? (a.operator_id !== null ? `#${a.operator_id}` : t('common.dash'))),
        h('td', { class: 'monitor-anger' }, `${percent(a.anger)}%`))))));
  }

  watchers.add(draw);
  const off = push.on('status', drawConnection);
  ctx.signal.addEventListener('abort', () => {
    watchers.delete(draw);
    off();
  }, { once: true });
  drawConnection();
  draw();
  const floor = liveSection(ctx);
  clear(ctx.view, heading, ctx.flashSlot,
    hasPush(ctx.user) ? conn : null,
    floor.section,
    isSupervisor(ctx.user) ? h('section', { class: 'card', 'aria-labelledby': 'monitor-alerts-heading' },
      h('h3', { id: 'monitor-alerts-heading' }, t('monitor.alerts_heading')),
      h('p', { class: 'muted' }, t('monitor.hint')), list) : null);
  await floor.load();
}
