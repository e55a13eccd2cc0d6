// The system status view (#/status, no sign-in needed): GET /api/v1/health as a table,
// refreshed every 10 s while shown. Text is only ever set with textContent.

import { h, clear } from './dom.js';
import { t, has, locale } from './i18n.js';

const REFRESH_MS = 10000;

function formatUptime(seconds) {
  if (typeof seconds !== 'number') return t('common.dash');
  return t('health.uptime', {
    d: Math.floor(seconds / 86400),
    h: Math.floor((seconds % 86400) / 3600),
    m: Math.floor((seconds % 3600) / 60),
  });
}

function render(parts, health) {
  clear(parts.body);
  if (!health) {
    parts.summary.textContent = t('health.unreachable');
    return;
  }
  parts.summary.textContent = health.status === 'ok' ? t('health.ok') : t('health.degraded');
  for (const service of Array.isArray(health.services) ? health.services : []) {
    const name = String(service.name ?? '');
    const status = ['up', 'down', 'not_ready'].includes(service.status) ? service.status : 'down';
    const local = has(`health.service.${name}`) ? t(`health.service.${name}`) : null;
    parts.body.append(h('tr', null,
      h('th', { scope: 'row' }, local && local !== name ? `${local} (${name})` : name),
      h('td', { class: `status-${status}` }, t(`health.${status}`)),
      h('td', { class: 'num' }, typeof service.latency_ms === 'number' ? `${service.latency_ms} ms` : t('common.dash')),
      h('td', null, service.detail?.version ?? t('common.dash')),
      h('td', { class: 'num' }, formatUptime(service.detail?.uptime_s))));
  }
}

export async function mount(ctx) {
  const parts = {
    summary: h('p', { role: 'status', 'aria-live': 'polite' }, t('common.loading')),
    body: h('tbody'),
    updated: h('time', null, t('common.dash')),
  };
  clear(ctx.view,
    h('h2', { tabindex: '-1' }, t('health.heading')),
    parts.summary,
    h('div', { class: 'table-wrap' },
      h('table', { id: 'services' },
        h('thead', null, h('tr', null,
          h('th', { scope: 'col' }, t('health.col_service')),
          h('th', { scope: 'col' }, t('health.col_status')),
          h('th', { scope: 'col' }, t('health.col_latency')),
          h('th', { scope: 'col' }, t('health.col_version')),
          h('th', { scope: 'col' }, t('health.col_uptime')))),
        parts.body)),
    h('p', { class: 'note' }, t('health.updated'), ': ', parts.updated),
    ctx.user ? null : h('p', null, h('a', { href: '#/login' }, t('health.back_to_login'))));

  async function refresh() {
    let health = null;
    try {
      // 503 still carries the summary (some services down).
      const response = await fetch('/api/v1/health', {
        headers: { Accept: 'application/json' }, cache: 'no-store', signal: ctx.signal,
      });
      health = await response.json();
    } catch (error) {
      if (error?.name === 'AbortError') return;
      health = null;
    }
    if (ctx.signal.aborted) return;
    render(parts, health);
    const now = new Date();
    parts.updated.dateTime = now.toISOString();
    parts.updated.textContent = now.toLocaleString(locale(), { timeZone: 'Asia/Tokyo' });
  }

  const timer = setInterval(refresh, REFRESH_MS);
  ctx.signal.addEventListener('abort', () => clearInterval(timer));
  await refresh();
}
