// ncc status page: shows GET /api/v1/health as a table, refreshed every 10 s.
// Japanese first, English on request (remembered in localStorage).
// Text is only ever set with textContent: nothing from the server is parsed as HTML.

const REFRESH_MS = 10000;

const TEXT = {
  ja: {
    title: '中野区コンタクトセンター',
    status_heading: 'システムの状態',
    loading: '読み込み中…',
    col_service: 'サービス',
    col_status: '状態',
    col_latency: '応答時間',
    col_version: 'バージョン',
    col_uptime: '稼働時間',
    updated: '最終更新',
    ok: 'すべてのサービスが稼働しています。',
    degraded: '一部のサービスが利用できません。',
    unreachable: 'ゲートウェイに接続できません。',
    up: '稼働中',
    down: '停止',
    not_ready: '準備中',
    switch_to: 'English',
    services: {
      directory: 'マスタ・職員', calls: '通話', history: '応対履歴', faq: 'FAQ',
      sms: 'SMS', summary: '要約', report: 'レポート',
    },
  },
  en: {
    title: 'Nakano Contact Center',
    status_heading: 'System status',
    loading: 'Loading…',
    col_service: 'Service',
    col_status: 'Status',
    col_latency: 'Latency',
    col_version: 'Version',
    col_uptime: 'Uptime',
    updated: 'Last updated',
    ok: 'All services are up.',
    degraded: 'Some services are unavailable.',
    unreachable: 'The gateway cannot be reached.',
    up: 'up',
    down: 'down',
    not_ready: 'not ready',
    switch_to: '日本語',
    services: {},
  },
};

let lang = localStorage.getItem('ncc.lang') === 'en' ? 'en' : 'ja';
let last; // last health answer (null: unreachable), re-rendered on a language switch

function t(key) {
  return TEXT[lang][key] ?? TEXT.ja[key] ?? key;
}

function applyLanguage() {
  document.documentElement.lang = lang;
  document.title = t('title');
  for (const el of document.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n);
  }
  const button = document.getElementById('lang');
  button.textContent = t('switch_to');
  button.lang = lang === 'ja' ? 'en' : 'ja';
}

function formatUptime(seconds) {
  if (typeof seconds !== 'number') return '-';
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return lang === 'ja' ? `${d}日 ${h}時間 ${m}分` : `${d}d ${h}h ${m}m`;
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function render(health) {
  const summary = document.getElementById('summary');
  const body = document.querySelector('#services tbody');
  body.replaceChildren();
  if (!health) {
    summary.textContent = t('unreachable');
    return;
  }
  summary.textContent = health.status === 'ok' ? t('ok') : t('degraded');
  for (const service of health.services ?? []) {
    const row = body.insertRow();
    const local = TEXT[lang].services[service.name];
    cell(row, local ? `${local} (${service.name})` : service.name);
    const status = ['up', 'down', 'not_ready'].includes(service.status) ? service.status : 'down';
    cell(row, t(status), `status-${status}`);
    cell(row, typeof service.latency_ms === 'number' ? `${service.latency_ms} ms` : '-', 'num');
    cell(row, service.detail?.version ?? '-');
    cell(row, formatUptime(service.detail?.uptime_s), 'num');
  }
}

async function refresh() {
  try {
    // 503 still carries the summary (some services down).
    const response = await fetch('/api/v1/health', {
      headers: { Accept: 'application/json' },
      cache: 'no-store',
    });
    last = await response.json();
  } catch {
    last = null;
  }
  render(last);
  const updated = document.getElementById('updated');
  const now = new Date();
  updated.dateTime = now.toISOString();
  updated.textContent = now.toLocaleString(lang === 'ja' ? 'ja-JP' : 'en-GB', { timeZone: 'Asia/Tokyo' });
}

document.getElementById('lang').addEventListener('click', () => {
  lang = lang === 'ja' ? 'en' : 'ja';
  localStorage.setItem('ncc.lang', lang);
  applyLanguage();
  if (last !== undefined) render(last);
});

applyLanguage();
refresh();
setInterval(refresh, REFRESH_MS);
