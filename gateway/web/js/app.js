// The app shell: session, top bar, menu by role, hash routes (#/users?page=2), the
// language switch, and the return to the login screen on any 401 (what was typed in
// open forms is kept in sessionStorage and restored after the same user signs in again).

import { api, ApiError, setCsrfToken, onUnauthorized, isAbort } from './api.js';
import { h, clear, notice, confirmDialog } from './dom.js';
import { t, getLang, setLang, onLangChange, applyStatic, roleName } from './i18n.js';
import { captureForms, restoreForms, hasTyped, errorText } from './forms.js';
import * as loginView from './views/login.js';
import * as healthView from './health.js';
import * as passwordView from './views/password.js';
import * as auditView from './views/audit.js';
import * as users from './views/users.js';
import * as masters from './views/masters.js';
import * as recordForm from './views/record_form.js';
import * as faq from './views/faq.js';
import * as faqAdmin from './views/faq_admin.js';
import * as deskView from './views/desk.js';
import * as monitor from './views/monitor.js';
import * as reports from './views/reports.js';
import * as records from './views/records.js';
import * as sms from './views/sms.js';
import { home, forbidden, notFound } from './views/simple.js';

const DRAFT_KEY = 'ncc.draft';
const ANY = null; // any signed-in user

// pattern: segments, ":name" is a param. public: shown without a session.
const ROUTES = [
  { pattern: 'login', public: true, view: loginView },
  { pattern: 'status', public: true, view: healthView, titleKey: 'nav.status' },
  { pattern: 'desk', roles: ['operator'], view: deskView, titleKey: 'nav.desk' },
  { pattern: 'records', roles: ANY, view: records.list, titleKey: 'records.heading' },
  { pattern: 'records/import', roles: ['supervisor', 'admin'], view: records.importView, titleKey: 'records.import_heading' },
  { pattern: 'records/:id', roles: ANY, view: records.page, titleKey: 'records.record_heading' },
  { pattern: 'home', roles: ANY, view: home, titleKey: 'nav.home' },
  { pattern: 'users', roles: ['admin'], view: users.list, titleKey: 'nav.users' },
  { pattern: 'users/new', roles: ['admin'], view: users.create, titleKey: 'nav.users' },
  { pattern: 'users/:id', roles: ['admin'], view: users.edit, titleKey: 'nav.users' },
  { pattern: 'masters', roles: ['admin'], view: masters.list, titleKey: 'nav.masters' },
  { pattern: 'masters/new', roles: ['admin'], view: masters.create, titleKey: 'nav.masters' },
  { pattern: 'masters/import', roles: ['admin'], view: masters.importView, titleKey: 'nav.masters' },
  { pattern: 'masters/history', roles: ['admin'], view: masters.history, titleKey: 'nav.masters' },
  { pattern: 'masters/scheduled', roles: ['admin'], view: masters.scheduled, titleKey: 'nav.masters' },
  { pattern: 'masters/:id', roles: ['admin'], view: masters.edit, titleKey: 'nav.masters' },
  { pattern: 'settings/record-form', roles: ['admin'], view: recordForm.view, titleKey: 'form.heading' },
  { pattern: 'audit', roles: ['supervisor', 'admin'], view: auditView, titleKey: 'nav.audit' },
  { pattern: 'monitor', roles: ['supervisor', 'admin', 'staff'], view: monitor, titleKey: 'monitor.nav' },
  { pattern: 'reports', roles: ['supervisor', 'admin', 'staff'], view: reports, titleKey: 'reports.nav' },
  { pattern: 'faq', roles: ANY, view: faq.search, titleKey: 'faq.nav' },
  { pattern: 'faq/new', roles: ['supervisor', 'admin'], view: faqAdmin.create, titleKey: 'faq.nav' },
  { pattern: 'faq/review', roles: ['supervisor', 'admin', 'staff'], view: faqAdmin.queue, titleKey: 'faq.nav' },
  { pattern: 'faq/reviewers', roles: ['supervisor', 'admin', 'staff'], view: faqAdmin.reviewers, titleKey: 'faq.nav' },
  { pattern: 'faq/synonyms', roles: ['supervisor', 'admin'], view: faqAdmin.synonyms, titleKey: 'faq.nav' },
  { pattern: 'faq/zero-hits', roles: ['supervisor', 'admin', 'staff'], view: faqAdmin.zeroHits, titleKey: 'faq.nav' },
  { pattern: 'faq/import', roles: ['supervisor', 'admin'], view: faqAdmin.importView, titleKey: 'faq.nav' },
  { pattern: 'faq/:id', roles: ANY, view: faq.page, titleKey: 'faq.nav' },
  { pattern: 'faq/:id/edit', roles: ['supervisor', 'admin'], view: faqAdmin.edit, titleKey: 'faq.nav' },
  { pattern: 'faq/:id/history', roles: ['supervisor', 'admin'], view: faqAdmin.history, titleKey: 'faq.nav' },
  { pattern: 'sms', roles: ['operator', 'supervisor', 'admin'], view: sms.send, titleKey: 'sms.nav' },
  { pattern: 'sms/templates', roles: ['admin'], view: sms.templates, titleKey: 'sms.templates_nav' },
  { pattern: 'password', roles: ANY, view: passwordView, titleKey: 'nav.password' },
];

// The menu, in order; `home` only for someone with none of the first three.
const MENU = [
  { hash: '#/desk', key: 'nav.desk', roles: ['operator'] },
  { hash: '#/users', key: 'nav.users', roles: ['admin'] },
  { hash: '#/masters', key: 'nav.masters', roles: ['admin'] },
  { hash: '#/settings/record-form', key: 'form.nav', roles: ['admin'] },
  { hash: '#/audit', key: 'nav.audit', roles: ['supervisor', 'admin'] },
  { hash: '#/records', key: 'records.nav', roles: ANY },
  // after 応対履歴: staff start there (their first entry).
  { hash: '#/monitor', key: 'monitor.nav', roles: ['supervisor', 'admin', 'staff'] },
  { hash: '#/reports', key: 'reports.nav', roles: ['supervisor', 'admin', 'staff'] },
  { hash: '#/faq', key: 'faq.nav', roles: ANY },
  { hash: '#/sms', key: 'sms.nav', roles: ['operator', 'supervisor', 'admin'] },
  { hash: '#/sms/templates', key: 'sms.templates_nav', roles: ['admin'] },
  { hash: '#/home', key: 'nav.home', roles: ANY, fallback: true },
  { hash: '#/password', key: 'nav.password', roles: ANY },
  { hash: '#/status', key: 'nav.status', roles: ANY },
];

const state = {
  user: null,
  flash: null, // {kind, keys: [[key, vars]...]} shown on the next view
  pendingDraft: null, // {hash, forms}: restored once that view is mounted
  controller: null,
  seq: 0,
  current: null, // {route, params, query, hash}
};

const el = {
  main: document.getElementById('main'),
  nav: document.getElementById('nav'),
  account: document.getElementById('account'),
  userName: document.getElementById('user-name'),
  userRoles: document.getElementById('user-roles'),
  lang: document.getElementById('lang'),
};

function allowed(route, user) {
  if (route.public) return true;
  if (!user) return false;
  if (route.roles === ANY) return true;
  const roles = Array.isArray(user.roles) ? user.roles : [];
  return route.roles.some((r) => roles.includes(r));
}

function menuFor(user) {
  const items = MENU.filter((item) => allowed({ roles: item.roles }, user));
  const main = items.filter((item) => ['#/desk', '#/users', '#/audit'].includes(item.hash));
  return items.filter((item) => !item.fallback || main.length === 0);
}

function defaultHash(user) {
  return menuFor(user)[0]?.hash ?? '#/password';
}

function parseHash(hash) {
  const text = hash.startsWith('#/') ? hash.slice(2) : '';
  const q = text.indexOf('?');
  const path = (q < 0 ? text : text.slice(0, q)).replace(/\/+$/, '');
  const query = new URLSearchParams(q < 0 ? '' : text.slice(q + 1));
  const segments = path ? path.split('/') : [];
  for (const route of ROUTES) {
    const parts = route.pattern.split('/');
    if (parts.length !== segments.length) continue;
    const params = {};
    let ok = true;
    for (let i = 0; i < parts.length && ok; i++) {
      let segment;
      try {
        segment = decodeURIComponent(segments[i]);
      } catch {
        ok = false;
        break;
      }
      if (parts[i].startsWith(':')) {
        if (!/^[0-9]+$/.test(segment)) ok = false;
        else params[parts[i].slice(1)] = segment;
      } else if (parts[i] !== segment) {
        ok = false;
      }
    }
    // users/new is listed before users/:id, and ":id" takes digits only.
    if (ok) return { route, params, query, path };
  }
  return { route: null, params: {}, query, path };
}

// ---- the shell --------------------------------------------------------------------

function renderShell() {
  applyStatic();
  document.documentElement.lang = getLang();
  el.lang.textContent = t('lang.switch');
  el.lang.lang = getLang() === 'ja' ? 'en' : 'ja';
  el.lang.setAttribute('aria-label', t('lang.switch_label'));
  const user = state.user;
  if (!user) {
    el.account.hidden = true;
    clear(el.userName);
    clear(el.userRoles);
    el.nav.hidden = true;
    clear(el.nav);
    return;
  }
  el.account.hidden = false;
  el.userName.textContent = String(user.name || user.login || '');
  el.userRoles.textContent = (Array.isArray(user.roles) ? user.roles : []).map(roleName).join(t('user.roles_sep'));
  const current = location.hash.split('?')[0];
  const links = menuFor(user).map((item) => {
    const active = current === item.hash || current.startsWith(`${item.hash}/`);
    return h('li', null, h('a', { href: item.hash, 'aria-current': active ? 'page' : null }, t(item.key)));
  });
  const logout = h('button', { type: 'button', id: 'logout', class: 'nav-button' }, t('nav.logout'));
  logout.addEventListener('click', () => signOut(false));
  const logoutAll = h('button', { type: 'button', id: 'logout-all', class: 'nav-button' }, t('nav.logout_all'));
  logoutAll.addEventListener('click', () => signOut(true));
  clear(el.nav, h('ul', { class: 'menu' }, links),
    h('ul', { class: 'menu session' }, h('li', null, logout), h('li', null, logoutAll)));
  el.nav.setAttribute('aria-label', t('nav.label'));
  el.nav.hidden = false;
}

function flashNode() {
  if (!state.flash) return null;
  const { kind, keys } = state.flash;
  return notice(kind, ...keys.map(([key, vars]) => h('p', null, t(key, vars))));
}

function setFlash(kind, ...keys) {
  state.flash = { kind, keys: keys.filter(Boolean).map((k) => (Array.isArray(k) ? k : [k])) };
}

// ---- routing ------------------------------------------------------------------------

function hrefWith(changes, keep = false) {
  const cur = state.current;
  const query = keep ? new URLSearchParams(cur.query) : new URLSearchParams();
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined || value === null || value === '') query.delete(key);
    else query.set(key, value);
  }
  const text = query.toString();
  return `#/${cur.path}${text ? `?${text}` : ''}`;
}

function navigate(hash, { replace = false } = {}) {
  if (location.hash === hash) {
    route();
  } else if (replace) {
    location.replace(hash);
  } else {
    location.hash = hash;
  }
}

async function route({ keepForms = null } = {}) {
  const seq = ++state.seq;
  state.controller?.abort();
  const controller = new AbortController();
  state.controller = controller;

  const parsed = parseHash(location.hash);
  if (!location.hash.startsWith('#/')) {
    // No route in the address: the user's first page (the login screen when signed out).
    location.replace(state.user ? defaultHash(state.user) : '#/login');
    return;
  }
  let view = parsed.route?.view ?? notFound;
  let titleKey = parsed.route?.titleKey ?? 'notfound.heading';
  if (!state.user && !(parsed.route?.public)) {
    view = loginView; // the address stays: after sign-in the user comes back here
    titleKey = 'login.heading';
  } else if (state.user && parsed.route?.pattern === 'login') {
    location.replace(defaultHash(state.user));
    return;
  } else if (parsed.route && !allowed(parsed.route, state.user)) {
    view = forbidden;
    titleKey = 'forbidden.heading';
  }
  if (view === loginView) titleKey = 'login.heading';
  state.current = { ...parsed, hash: location.hash };
  renderShell();

  // Busy until the view has its data: screen readers wait, and so can the tests
  // (main[aria-busy="false"][data-hash] = the address shown).
  el.main.setAttribute('aria-busy', 'true');
  delete el.main.dataset.hash;
  const container = h('div', { class: 'view' });
  const flashSlot = h('div', { class: 'flash' });
  const flash = flashNode();
  if (flash) flashSlot.append(flash);
  state.flash = null;
  clear(el.main, container);
  document.title = `${t(titleKey)} - ${t('app.title')}`;

  const ctx = {
    view: container,
    flashSlot,
    user: state.user,
    params: parsed.params,
    query: parsed.query,
    signal: controller.signal,
    focus: null,
    navigate,
    hrefWith,
    reload: () => route(),
    flash: (kind, key, vars) => setFlash(kind, [key, vars]),
    signedIn,
    // A view changed a user: when it is the signed-in one, the top bar follows.
    userChanged: (user) => {
      if (state.user && user && user.id === state.user.id) {
        state.user = { ...state.user, ...user };
        renderShell();
      }
    },
  };
  try {
    await view.mount(ctx);
  } catch (error) {
    if (isAbort(error) || controller.signal.aborted) return;
    if (error instanceof ApiError && error.status === 401) return;
    clear(container, notice('error', errorText(error)));
    console.error(error);
  }
  if (seq !== state.seq) return;
  if (!flashSlot.isConnected && flashSlot.firstChild) container.prepend(flashSlot);

  if (keepForms) restoreForms(container, keepForms);
  const draft = state.pendingDraft;
  if (draft && state.user && draft.hash === location.hash) {
    state.pendingDraft = null;
    if (restoreForms(container, draft.forms)) {
      const box = notice('ok', t('session.draft_restored'));
      box.id = 'draft-restored';
      flashSlot.append(box);
      if (!flashSlot.isConnected) container.prepend(flashSlot);
    }
  }
  if (!keepForms) {
    const target = ctx.focus ?? container.querySelector('h2');
    target?.focus();
  }
  el.main.setAttribute('aria-busy', 'false');
  el.main.dataset.hash = location.hash;
}

// ---- session ----------------------------------------------------------------------

function readDraft() {
  try {
    const draft = JSON.parse(sessionStorage.getItem(DRAFT_KEY) ?? 'null');
    return draft && typeof draft === 'object' ? draft : null;
  } catch {
    return null;
  }
}

function dropDraft() {
  try {
    sessionStorage.removeItem(DRAFT_KEY);
  } catch {
    // nothing kept
  }
}

async function signedIn(data) {
  if (!data || typeof data.user !== 'object' || !data.user) throw new ApiError(502, 'bad_gateway', 'no user');
  state.user = data.user;
  setCsrfToken(data.csrf_token);
  monitor.watch(data.user); // supervisors: alerts on rising anger (R37)
  const draft = readDraft();
  dropDraft();
  if (draft && draft.user_id === data.user.id && typeof draft.hash === 'string' && draft.hash.startsWith('#/')) {
    state.pendingDraft = { hash: draft.hash, forms: draft.forms };
    navigate(draft.hash);
    return;
  }
  const parsed = parseHash(location.hash);
  if (parsed.route && !parsed.route.public && allowed(parsed.route, data.user)) navigate(location.hash);
  else navigate(defaultHash(data.user), { replace: true });
}

// Any 401 from the API while signed in: back to the login screen, keeping what was typed.
function expired() {
  if (!state.user) return;
  const forms = captureForms(el.main);
  const kept = hasTyped(forms);
  if (kept) {
    try {
      sessionStorage.setItem(DRAFT_KEY, JSON.stringify({ user_id: state.user.id, hash: location.hash, forms }));
    } catch {
      // storage full or disabled: nothing kept
    }
  }
  state.user = null;
  state.pendingDraft = null;
  setCsrfToken(null);
  setFlash('error', 'session.expired', kept ? 'session.draft_kept' : null);
  route();
}

async function signOut(everywhere) {
  if (everywhere) {
    const ok = await confirmDialog({
      title: t('session.logout_all_title'), text: t('session.logout_all_confirm'),
      ok: t('session.logout_all_ok'), cancel: t('common.cancel'), danger: true,
    });
    if (!ok) return;
  }
  try {
    await api('DELETE', everywhere ? '/api/v1/sessions' : '/api/v1/session', { signIn: true });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) {
      // The server still holds the session: say so rather than pretend.
      const box = notice('error', errorText(error));
      el.main.prepend(box);
      box.setAttribute('tabindex', '-1');
      box.focus();
      return;
    }
  }
  dropDraft();
  state.user = null;
  state.pendingDraft = null;
  setCsrfToken(null);
  setFlash('ok', everywhere ? 'session.logged_out_all' : 'session.logged_out');
  clear(el.main);
  navigate('#/login', { replace: true });
}

// ---- start ------------------------------------------------------------------------

function switchLanguage() {
  const forms = captureForms(el.main, { secrets: true });
  setLang(getLang() === 'ja' ? 'en' : 'ja');
  route({ keepForms: forms }).then(() => el.lang.focus());
}

async function start() {
  onUnauthorized(expired);
  el.lang.addEventListener('click', switchLanguage);
  onLangChange(() => renderShell());
  document.querySelector('.skip-link')?.addEventListener('click', (event) => {
    event.preventDefault();
    el.main.focus();
  });
  renderShell();
  try {
    const me = await api('GET', '/api/v1/me', { signIn: true });
    if (me?.user) {
      state.user = me.user;
      setCsrfToken(me.csrf_token);
      monitor.watch(me.user);
    }
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) {
      setFlash('error', [errorKey(error)]);
    }
  }
  window.addEventListener('hashchange', () => route());
  await route();
}

// The message key for a start-up failure (the gateway down, a network failure).
function errorKey(error) {
  if (error instanceof ApiError && error.status === 0) return 'err.network';
  if (error instanceof ApiError && error.status === 503) return 'err.service_unavailable';
  return 'err.internal';
}

start();
