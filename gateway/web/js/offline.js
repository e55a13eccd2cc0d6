// Degraded mode (R20; docs/web.md "When a service is down", docs/operations.md): which of
// the services a screen needs is down, a plain banner saying so, the operator's unsaved
// record input kept in the browser, and the offline CSV template.
//
// What is down comes from three places: every API answer (api.js onAnswer: 502, 503 or 504
// from a service's routes, or no answer at all), the push stream (not open for a few
// seconds), and GET /api/v1/health (asked when a screen with a banner opens, and every
// POLL_MS while something is down, so the banner goes away by itself once the service is
// back). A later good answer from the same service clears it at once.
//
// Unsaved input: the record forms (records.js recordEditor) keep what was typed and not
// saved in sessionStorage under "ncc.unsaved.<user id>", one entry per form (a call's record,
// a record page, a record typed without a call). sessionStorage and not localStorage: it
// survives a reload and a crash-restore of the tab, but not the tab being closed, so a
// resident's words do not stay on a shared ward computer's disk; an entry is removed as soon
// as it is saved or discarded, and any entry older than DRAFT_TTL_MS is dropped unread.

import { onAnswer } from './api.js';
import * as push from './push.js';
import { h, clear } from './dom.js';
import { t } from './i18n.js';

const POLL_MS = 5000;
const RECHECK_MS = 1500; // health said a service is down: asked again this soon
const PUSH_GRACE_MS = 5000; // the stream may reconnect this long before the banner says so
const DRAFT_PREFIX = 'ncc.unsaved.';
const DRAFT_TTL_MS = 12 * 3600 * 1000;

// The import's header line (docs/history.md "CSV"; services/history/transfer.c checks it).
export const IMPORT_HEADER = 'receipt_id,call_id,channel,operator_id,operator_name,started_at,ended_at,'
  + 'wrapup_ended_at,reception_type,department_id,handling_type,faq_ids,category,inquiry,response,'
  + 'transfer_to,summary,status,caller_number,created_at,updated_at';
export const TEMPLATE_NAME = 'ncc-records-template.csv';

// The order the banner lists them in. 'network': the gateway itself does not answer.
const KNOWN = ['network', 'history', 'calls', 'push', 'directory', 'summary', 'faq', 'sms', 'report'];

const down = new Set();
const suspect = new Set(); // said down by health once
const banners = new Set(); // the mounted banners: {needs, draw}
let pollTimer = null;
let pushTimer = null;
let polling = false;

// The service behind an API path (gateway/routes.c).
function serviceOf(path) {
  const p = String(path).split('?')[0];
  if (p.startsWith('/api/v1/records')) return 'history';
  if (/^\/api\/v1\/calls\/[^/]+\/summary$/.test(p) || p.startsWith('/api/v1/answers') || p.startsWith('/api/v1/summaries')) return 'summary';
  if (p.startsWith('/api/v1/calls')) return 'calls';
  if (p.startsWith('/api/v1/faq')) return 'faq';
  if (p.startsWith('/api/v1/sms')) return 'sms';
  if (p.startsWith('/api/v1/reports') || p.startsWith('/api/v1/metrics')) return 'report';
  if (p === '/api/v1/health' || p === '/api/v1/stream' || p.startsWith('/api/v1/session')) return null;
  return p.startsWith('/api/v1/') ? 'directory' : null;
}

function changed() {
  for (const b of [...banners]) b.draw();
  schedule();
}

function mark(service, isDown) {
  if (!service) return;
  if (isDown === down.has(service)) return;
  if (isDown) down.add(service);
  else down.delete(service);
  changed();
}

onAnswer(({ path, status, code }) => {
  if (status === 0) {
    mark('network', true);
    return;
  }
  mark('network', false);
  // An audited route whose audit entry cannot be written: the directory (audit) is down.
  const service = code === 'audit_unavailable' ? 'directory' : serviceOf(path);
  mark(service, status === 502 || status === 503 || status === 504);
});

// Services the health fan-out says are down or not ready (the gateway not answering at all
// is 'network').
export async function checkHealth(again = false) {
  let health = null;
  try {
    const response = await fetch('/api/v1/health', {
      headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin',
    });
    health = await response.json(); // 503 still carries the list
  } catch {
    health = null;
  }
  if (!health || !Array.isArray(health.services)) {
    mark('network', true);
    return;
  }
  mark('network', false);
  // A service said down by health twice in a row is down (one slow answer to the 1-s health
  // probe on a busy machine is not an outage); up once is up.
  const doubtful = [];
  for (const s of health.services) {
    if (typeof s?.name !== 'string' || !KNOWN.includes(s.name) || s.name === 'push' || s.name === 'network') continue;
    if (s.status === 'up') {
      suspect.delete(s.name);
      mark(s.name, false);
    } else if (suspect.has(s.name) || down.has(s.name)) {
      mark(s.name, true);
    } else {
      doubtful.push(s.name);
    }
  }
  suspect.clear();
  for (const name of doubtful) suspect.add(name);
  if (doubtful.length && !again) setTimeout(() => checkHealth(true), RECHECK_MS);
}

// Whether a mounted banner has something to show: then health is asked every POLL_MS.
function wanted() {
  for (const b of banners) if (b.needs.some((n) => down.has(n))) return true;
  return false;
}

function schedule() {
  if (pollTimer || polling || !wanted()) return;
  pollTimer = setTimeout(async () => {
    pollTimer = null;
    polling = true;
    try {
      await checkHealth();
    } finally {
      polling = false;
    }
    schedule();
  }, POLL_MS);
}

function pushStatus(state) {
  clearTimeout(pushTimer);
  pushTimer = null;
  if (state === 'open') {
    mark('push', false);
  } else if (state === 'connecting' && !down.has('push')) {
    pushTimer = setTimeout(() => {
      pushTimer = null;
      if (push.status() !== 'open') {
        mark('push', true);
        checkHealth(); // which service it is, if it is one
      }
    }, PUSH_GRACE_MS);
  } else if (state === 'off') {
    mark('push', false); // signed out: not an outage
  }
}
push.on('status', pushStatus);

export function isDown(service) {
  return down.has(service);
}

// fn() whenever the set of services down changes; returns the function that unsubscribes.
export function watch(fn, signal) {
  const entry = { needs: KNOWN, draw: fn };
  banners.add(entry);
  const stop = () => banners.delete(entry);
  signal?.addEventListener('abort', stop, { once: true });
  return stop;
}

// ---- the offline CSV template -----------------------------------------------------------

let templateUrl = null;

// A link that downloads the import's header line as a CSV file (UTF-8 with a BOM, CRLF):
// Excel opens it; saved as "CSV (コンマ区切り)" (Shift_JIS) or "CSV UTF-8", the import reads
// either (docs/operations.md). Built here as a Blob: the header is the only content.
export function templateLink(props = {}) {
  templateUrl ??= URL.createObjectURL(new Blob([`\ufeff${IMPORT_HEADER}\r\n`], { type: 'text/csv;charset=utf-8' }));
  return h('a', { href: templateUrl, download: TEMPLATE_NAME, class: 'degraded-template', ...props }, t('degraded.template'));
}

// ---- the banner ---------------------------------------------------------------------------

// A banner for a screen that needs `needs` (service names, 'push', 'network'); drawn into an
// element that is always there (role=alert, so its new content is read out) and empty while
// all is well. `signal`: the view's; the banner stops with it. Health is asked once now.
export function banner({ needs, signal, id = 'degraded-banner', kept = true }) {
  const list = [...new Set(['network', ...needs])];
  const box = h('div', { id, class: 'degraded-banner', role: 'alert', 'aria-live': 'assertive', hidden: true });
  let shown = '';
  const draw = () => {
    const now = KNOWN.filter((n) => list.includes(n) && down.has(n));
    const key = now.join(',');
    if (key === shown) return;
    shown = key;
    box.dataset.down = key;
    if (!now.length) {
      box.hidden = true;
      clear(box);
      return;
    }
    // Without the gateway nothing else can be known: it alone is said.
    const lines = now.includes('network') ? ['network'] : now;
    clear(box,
      h('p', { class: 'degraded-title' }, h('strong', null, t('degraded.title'))),
      h('ul', { class: 'degraded-list' }, lines.map((n) => h('li', { dataset: { service: n } }, t(`degraded.down_${n}`)))),
      kept ? h('p', { class: 'degraded-kept' }, t('degraded.kept')) : null,
      h('p', { class: 'degraded-offline' }, t('degraded.offline'), ' ', templateLink({ id: `${id}-template` })),
      h('p', { class: 'degraded-back muted' }, t('degraded.back_by_itself')));
    box.hidden = false;
  };
  const entry = { needs: list, draw };
  banners.add(entry);
  signal?.addEventListener('abort', () => {
    banners.delete(entry);
  }, { once: true });
  if (list.includes('push')) pushStatus(push.status());
  draw();
  checkHealth().then(() => schedule());
  return box;
}

// ---- unsaved input ------------------------------------------------------------------------

function storageKey(userId) {
  return `${DRAFT_PREFIX}${userId}`;
}

function readAll(userId) {
  try {
    const all = JSON.parse(sessionStorage.getItem(storageKey(userId)) ?? '{}');
    if (!all || typeof all !== 'object' || Array.isArray(all)) return {};
    const now = Date.now();
    for (const [key, entry] of Object.entries(all)) {
      if (!entry || typeof entry !== 'object' || !(now - Number(entry.at) < DRAFT_TTL_MS)) delete all[key];
    }
    return all;
  } catch {
    return {};
  }
}

function writeAll(userId, all) {
  try {
    if (Object.keys(all).length) sessionStorage.setItem(storageKey(userId), JSON.stringify(all));
    else sessionStorage.removeItem(storageKey(userId));
    return true;
  } catch {
    return false; // storage full or disabled: the input stays on the screen only
  }
}

// Entries: {typed: {field: text}, meta: {...}, failed: bool, idempotency_key, at: ms}.
export const drafts = {
  get(userId, key) {
    return readAll(userId)[key] ?? null;
  },
  // Merges `entry` into the stored one; returns whether it could be kept.
  put(userId, key, entry) {
    const all = readAll(userId);
    all[key] = { ...(all[key] ?? {}), ...entry, at: Date.now() };
    return writeAll(userId, all);
  },
  remove(userId, key) {
    const all = readAll(userId);
    if (!(key in all)) return;
    delete all[key];
    writeAll(userId, all);
  },
  // [[key, entry]] of the user's entries whose key starts with `prefix`, oldest first.
  list(userId, prefix = '') {
    return Object.entries(readAll(userId)).filter(([key]) => key.startsWith(prefix))
      .sort((a, b) => a[1].at - b[1].at);
  },
};

// A key for one record the client means to create (POST /api/v1/records idempotency_key:
// 8-100 of A-Z a-z 0-9 _ -).
export function newIdempotencyKey() {
  if (typeof crypto.randomUUID === 'function') return `rec-${crypto.randomUUID()}`;
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `rec-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

// Sweep: entries of every user past their time are dropped when the client loads.
try {
  for (let i = sessionStorage.length - 1; i >= 0; i--) {
    const key = sessionStorage.key(i);
    if (key?.startsWith(DRAFT_PREFIX)) writeAll(key.slice(DRAFT_PREFIX.length), readAll(key.slice(DRAFT_PREFIX.length)));
  }
} catch {
  // storage disabled
}
