// モニタリング (#/monitor, supervisors): the calls whose caller's anger rose past
// NCC_SUMMARY_ANGER_ALERT (`emotion.alert` pushed by ncc-summary to supervisors,
// docs/push.md), newest first. A small page on purpose: the live figures and reports come
// later. watch(user), called by the app at sign-in, opens the push stream for a supervisor
// and keeps the alerts for this tab; a new alert also shows a banner on any page, with a
// link here.

import * as push from '../push.js';
import { api } from '../api.js';
import { h, clear } from '../dom.js';
import { t, formatTime } from '../i18n.js';

const MAX_ALERTS = 50;
const alerts = []; // newest first: {call_id, operator_id, operator_name, anger, at}
const watchers = new Set(); // the mounted page's redraw
let owner = null;
let bound = false;

function isSupervisor(user) {
  return Array.isArray(user?.roles) && user.roles.includes('supervisor');
}

function percent(value) {
  const n = Number(value);
  return Number.isFinite(n) ? Math.round(Math.min(1, Math.max(0, n)) * 100) : 0;
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

// For a supervisor: the push stream and its alerts (idempotent).
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
  push.start(user.id);
}

export async function mount(ctx) {
  watch(ctx.user);
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
  clear(ctx.view, heading, ctx.flashSlot,
    h('section', { class: 'card', 'aria-labelledby': 'monitor-alerts-heading' },
      h('h3', { id: 'monitor-alerts-heading' }, t('monitor.alerts_heading')),
      h('p', { class: 'muted' }, t('monitor.hint')), conn, list));
}
