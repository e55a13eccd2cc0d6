// FAQ (issue 6; docs/faq.md) for every signed-in role: #/faq (search by FAQ number or
// words, department and category filters, ranked results, pages) and #/faq/{id} (one FAQ,
// its answer shown as the residents' page shows it). Supervisors and administrators also
// get the state and visibility filters and, on an FAQ, its actions (edit, history, review,
// approve, archive, delete); their other screens are in faq_admin.js. Server text is
// shown with DOM APIs only (h()): HTML in an answer stays text.
//
// Learning from operators (docs/faq.md): opening an FAQ from the results of a search tells
// the server which words led to it (POST /api/v1/faqs/{id}/clicks, fire and forget); the
// FAQs a search showed are remembered for this tab, so that putting one into a record's
// 利用FAQ at the desk sends the words too (clicksForFaqNumbers). On an FAQ, supervisors and
// administrators see the words that led users to it and delete a wrong one.

import { api, ApiError, isAbort } from '../api.js';
import { h, clear, notice, pager, confirmDialog } from '../dom.js';
import { t, formatTime } from '../i18n.js';
import { field, select, errorText, busy } from '../forms.js';

export const PER_PAGE = 20;
export const QUERY_MAX = 1000;

const EDITOR_ROLES = ['supervisor', 'admin'];
const STATUS_KEYS = {
  draft: 'faq.status_draft', review: 'faq.status_review', published: 'faq.status_published', archived: 'faq.status_archived',
};
const VISIBILITY_KEYS = { public: 'faq.vis_public', internal: 'faq.vis_internal' };

function roles(user) {
  return Array.isArray(user?.roles) ? user.roles : [];
}

export function isEditor(user) {
  return roles(user).some((r) => EDITOR_ROLES.includes(r));
}

export function seesZeroHits(user) {
  return isEditor(user) || roles(user).includes('staff');
}

export function stop(ctx, error) {
  return isAbort(error) || ctx.signal.aborted || error?.status === 401;
}

export function text(value) {
  if (value === undefined || value === null || value === '') return t('common.dash');
  return String(value);
}

export function statusText(status) {
  return STATUS_KEYS[status] ? t(STATUS_KEYS[status]) : text(status);
}

export function visibilityText(visibility) {
  return VISIBILITY_KEYS[visibility] ? t(VISIBILITY_KEYS[visibility]) : text(visibility);
}

export function statusBadge(status) {
  return h('span', { class: `faq-status faq-status-${STATUS_KEYS[status] ? status : 'other'}` }, statusText(status));
}

// ---- department reviewers (所管課の確認者; docs/faq.md "States") --------------------------
// When an FAQ's department has reviewers, only one of them approves it (staff too); else
// supervisors and administrators do. The server decides; the client only offers the button.

// Department id -> its reviewers [{user_id, login, ...}] (GET /api/v1/faq-reviewers:
// supervisors, administrators, staff); one department when `departmentId` is given. Empty
// for other roles, or when the list cannot be read (the server still decides).
export async function loadReviewers(ctx, departmentId) {
  const map = new Map();
  if (!seesZeroHits(ctx.user)) return map;
  try {
    const answer = await api('GET', '/api/v1/faq-reviewers', {
      query: { department_id: departmentId ? String(departmentId) : undefined }, signal: ctx.signal,
    });
    for (const d of Array.isArray(answer.items) ? answer.items : []) {
      map.set(Number(d.department_id), Array.isArray(d.users) ? d.users : []);
    }
  } catch (error) {
    if (stop(ctx, error)) throw error;
  }
  return map;
}

function reviewersOf(item, reviewers) {
  return reviewers.get(Number(item?.department_id ?? 0)) ?? [];
}

// May `user` approve `item` (a draft or in review)? Its department's reviewers only, when it
// has some; else supervisors and administrators.
export function mayApprove(user, item, reviewers) {
  if (item?.status !== 'draft' && item?.status !== 'review') return false;
  const list = reviewersOf(item, reviewers);
  if (list.length) return list.some((r) => Number(r.user_id) === Number(user?.id));
  return isEditor(user);
}

function departmentOf(item) {
  return String(item?.department_name || item?.department_code || '');
}

// 「確認者: 〇〇課 (login, ...)」, or who approves when the department has none.
export function reviewersText(item, reviewers) {
  const list = reviewersOf(item, reviewers);
  const department = departmentOf(item);
  if (list.length) return t('faq.reviewers_line', { department, logins: list.map((r) => String(r.login ?? '')).join(', ') });
  return department ? t('faq.reviewers_none_for', { department }) : t('faq.reviewers_no_department');
}

// The reason of a refused approval (403), in the user's language.
export function approveRefusedText(error, item, reviewers) {
  if (error?.field === 'department_id') {
    const logins = reviewersOf(item, reviewers).map((r) => String(r.login ?? '')).join(', ');
    return t('faq.approve_refused_reviewer', { department: departmentOf(item), logins: logins || t('common.dash') });
  }
  return t('faq.approve_refused_editor');
}

// The heading and the FAQ sub-menu (the tabs the user's roles allow); `tab` is the
// current one ('' for search).
export function header(ctx, tab, titleText) {
  const tabs = [
    ['', 'faq.tab_search', true],
    ['/new', 'faq.tab_new', isEditor(ctx.user)],
    ['/review', 'faq.tab_review', seesZeroHits(ctx.user)], // staff: the departments they review
    ['/reviewers', 'faq.tab_reviewers', seesZeroHits(ctx.user)],
    ['/synonyms', 'faq.tab_synonyms', isEditor(ctx.user)],
    ['/zero-hits', 'faq.tab_zero_hits', seesZeroHits(ctx.user)],
    ['/import', 'faq.tab_import', isEditor(ctx.user)],
  ].filter(([, , ok]) => ok);
  const sub = tabs.length > 1 ? h('nav', { class: 'subnav', 'aria-label': t('faq.sub_label') },
    h('ul', { class: 'tabs' }, tabs.map(([path, key]) => h('li', null, h('a', {
      href: `#/faq${path}`, 'aria-current': path === tab ? 'page' : null,
    }, t(key)))))) : null;
  return [h('h2', { tabindex: '-1' }, t('faq.heading'), titleText ? ` - ${titleText}` : null), sub, ctx.flashSlot];
}

// Departments (id, code, name) and FAQ classes (code, name) for the filters and the
// editor; an empty list when they cannot be read (the filter then offers nothing).
export async function loadChoices(ctx) {
  const read = async (path) => {
    try {
      const answer = await api('GET', path, { query: { per_page: 500 }, signal: ctx.signal });
      return Array.isArray(answer.items) ? answer.items : [];
    } catch (error) {
      if (stop(ctx, error)) throw error;
      return [];
    }
  };
  const [departments, classes] = await Promise.all([read('/api/v1/departments'), read('/api/v1/faq-classes')]);
  return {
    departments: departments.filter((d) => d.active !== false),
    classes: classes.filter((c) => c.active !== false),
  };
}

// A text input offering the FAQ classes as suggestions (free text is allowed too).
export function categoryField(classes, value, id) {
  const listId = `${id}-classes`;
  const wrapper = field({ label: t('faq.f_category'), name: 'category', value: value ?? '', maxlength: 100, autocomplete: 'off', id });
  wrapper.control.setAttribute('list', listId);
  wrapper.append(h('datalist', { id: listId }, classes.map((c) => h('option', { value: String(c.code ?? '') }, String(c.name ?? '')))));
  return wrapper;
}

// The FAQ as the residents' page (/faq/{number}, gateway/public.c) shows it: the number,
// the question, the answer as text with its line breaks, the department, the views.
export function publicLook({ number, question, answer, department_name: departmentName, views }, level = 'h3') {
  return h('article', { class: 'faq-public' },
    h('p', { class: 'faq-public-number' }, number ? t('faq.number_label', { number: String(number) }) : t('faq.number_new')),
    h(level, { class: 'faq-public-question' }, question ? String(question) : t('common.dash')),
    h('div', { class: 'faq-public-answer multiline' }, answer ? String(answer) : t('common.dash')),
    departmentName ? h('p', { class: 'faq-public-department' }, t('faq.public_department', { name: String(departmentName) })) : null,
    views !== undefined ? h('p', { class: 'faq-public-views' }, t('faq.public_views', { count: String(Number(views ?? 0)) })) : null);
}

// The start of an answer, on one line.
function snippet(answer, max = 120) {
  const flat = String(answer ?? '').replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

// ---- learning from operators ----------------------------------------------------------

// A search for an FAQ number (as the server reads one) teaches nothing.
const NUMBER_QUERY = /^\s*(?:#|No\.?|FAQ)?\s*[0-9０-９]+\s*$/i;
const FOUND_MAX = 200; // FAQs remembered per tab and user

function foundKey(userId) {
  return `ncc.faq.found.${userId ?? ''}`;
}

// The words worth sending, or '' (empty, too long, an FAQ number).
function clickWords(q) {
  const words = String(q ?? '').trim();
  return words && words.length <= QUERY_MAX && !NUMBER_QUERY.test(words) ? words : '';
}

// Tells the server that the words `q` led the signed-in user to FAQ `id`. Fire and forget:
// no signal (leaving the screen does not cancel it), errors ignored, nothing waits on it.
export function sendClick(id, q) {
  const words = clickWords(q);
  if (!id || !words) return;
  api('POST', `/api/v1/faqs/${encodeURIComponent(String(id))}/clicks`, { body: { q: words } }).catch(() => {});
}

// [[number, id, q], ...] newest first: the FAQs the user's searches in this tab showed.
function readFound(userId) {
  try {
    const list = JSON.parse(sessionStorage.getItem(foundKey(userId)) ?? '[]');
    return Array.isArray(list) ? list.filter((e) => Array.isArray(e) && e.length === 3) : [];
  } catch {
    return [];
  }
}

// Remembers that the search `q` showed these FAQs (the latest search wins for each).
export function noteFound(userId, items, q) {
  const words = clickWords(q);
  if (!words || !items.length) return;
  const shown = items.filter((item) => item?.id && item.number).map((item) => [String(item.number), item.id, words]);
  const numbers = new Set(shown.map(([number]) => number));
  const list = [...shown, ...readFound(userId).filter(([number]) => !numbers.has(String(number)))].slice(0, FOUND_MAX);
  try {
    sessionStorage.setItem(foundKey(userId), JSON.stringify(list));
  } catch {
    // storage full or refused: the desk then sends nothing for these
  }
}

// The FAQs of a record's 利用FAQ (numbers) that a search in this tab found: their clicks
// are sent with the words of that search (the server counts a user once per FAQ and words).
export function clicksForFaqNumbers(userId, numbers) {
  const found = readFound(userId);
  for (const number of Array.isArray(numbers) ? numbers : []) {
    const entry = found.find(([n]) => String(n) === String(number));
    if (entry) sendClick(entry[1], entry[2]);
  }
}

// ---- #/faq?q=&department_id=&category=&status=&visibility=&page= ---------------------

// A result's link: opening it (click, Enter, middle click) sends the words searched.
function resultLink(item, q) {
  const link = h('a', { href: `#/faq/${encodeURIComponent(String(item.id))}` }, text(item.question));
  link.addEventListener('click', () => sendClick(item.id, q));
  link.addEventListener('auxclick', (event) => { if (event.button === 1) sendClick(item.id, q); });
  return link;
}

export const search = {
  async mount(ctx) {
    const editor = isEditor(ctx.user);
    const q = ctx.query.get('q') ?? '';
    const departmentId = ctx.query.get('department_id') ?? '';
    const category = ctx.query.get('category') ?? '';
    const status = editor ? (ctx.query.get('status') ?? '') : '';
    const visibility = editor ? (ctx.query.get('visibility') ?? '') : '';
    const page = Math.max(1, Number.parseInt(ctx.query.get('page') ?? '1', 10) || 1);
    clear(ctx.view, ...header(ctx, ''), h('p', { role: 'status' }, t('common.loading')));
    const { departments, classes } = await loadChoices(ctx);
    if (ctx.signal.aborted) return;

    const qField = field({
      label: t('faq.q'), name: 'q', type: 'search', value: q, maxlength: QUERY_MAX, autocomplete: 'off',
      hint: t('faq.q_hint'), id: 'faq-q',
    });
    const depField = field({
      label: t('faq.f_department'), name: 'department_id',
      control: select([['', t('faq.all_departments')], ...departments.map((d) => [String(d.id), `${d.name ?? ''}（${d.code ?? ''}）`])], departmentId),
    });
    const catField = categoryField(classes, category, 'faq-search-category');
    const extra = [];
    let statusField = null;
    let visField = null;
    if (editor) {
      statusField = field({
        label: t('faq.f_status'), name: 'status',
        control: select([['', t('faq.all_statuses')], ...Object.keys(STATUS_KEYS).map((s) => [s, statusText(s)])], status),
      });
      visField = field({
        label: t('faq.f_visibility'), name: 'visibility',
        control: select([['', t('faq.all_visibilities')], ['public', visibilityText('public')], ['internal', visibilityText('internal')]], visibility),
      });
      extra.push(statusField, visField);
    }
    const form = h('form', { id: 'faq-search', class: 'search', role: 'search', 'data-draft': true, novalidate: true },
      h('fieldset', null, h('legend', null, t('faq.search_legend')),
        h('div', { class: 'row' }, qField, depField, catField, ...extra,
          h('div', { class: 'actions' },
            h('button', { type: 'submit', class: 'primary' }, t('common.search')),
            h('a', { href: '#/faq', class: 'button secondary' }, t('common.clear'))))));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const params = new URLSearchParams();
      const set = (key, value) => { if (value) params.set(key, value); };
      set('q', qField.control.value.trim());
      set('department_id', depField.control.value);
      set('category', catField.control.value.trim());
      if (statusField) set('status', statusField.control.value);
      if (visField) set('visibility', visField.control.value);
      const s = params.toString();
      ctx.navigate(`#/faq${s ? `?${s}` : ''}`);
    });
    const slot = h('div', { class: 'faq-results-wrap', 'aria-busy': 'true' }, h('p', { role: 'status' }, t('common.loading')));
    clear(ctx.view, ...header(ctx, ''), form, slot);
    ctx.focus = q ? null : qField.control;

    let answer;
    try {
      answer = await api('GET', '/api/v1/faqs', {
        query: { q, department_id: departmentId, category, status, visibility, page, per_page: PER_PAGE },
        signal: ctx.signal,
      });
    } catch (error) {
      if (stop(ctx, error)) return;
      const box = notice('error', error instanceof ApiError && error.field === 'q' ? t('faq.q_invalid') : errorText(error));
      box.id = 'faq-search-error';
      clear(slot, box);
      slot.setAttribute('aria-busy', 'false');
      return;
    }
    if (ctx.signal.aborted) return;
    const items = Array.isArray(answer.items) ? answer.items : [];
    noteFound(ctx.user?.id, items, q);
    const total = Number(answer.total ?? items.length);
    let summary;
    if (q) summary = total ? t('faq.results_for', { q, total: String(total) }) : t('faq.no_results_for', { q });
    else summary = t('faq.results_all', { total: String(total) });
    const summaryNode = h('p', { id: 'faq-result-count', class: 'faq-result-count', role: 'status' }, summary);
    const list = h('ol', { id: 'faq-results', class: 'faq-results', start: (page - 1) * PER_PAGE + 1 },
      items.map((item) => h('li', { class: 'faq-result', dataset: { number: String(item.number ?? '') } },
        h('div', { class: 'faq-result-title' },
          h('span', { class: 'faq-number' }, t('faq.number_label', { number: String(item.number ?? '') })),
          ' ',
          resultLink(item, q),
          editor && item.status !== 'published' ? [' ', statusBadge(item.status)] : null),
        h('p', { class: 'faq-result-snippet' }, snippet(item.answer)),
        h('p', { class: 'faq-result-meta' },
          item.department_name || item.department_code ? h('span', null, `${t('faq.f_department')}: ${item.department_name || item.department_code}`) : null,
          item.category ? h('span', null, `${t('faq.f_category')}: ${item.category}`) : null,
          editor ? h('span', null, `${t('faq.f_visibility')}: ${visibilityText(item.visibility)}`) : null,
          h('span', null, `${t('faq.f_views')}: ${Number(item.views ?? 0)}`)))));
    clear(slot, summaryNode, items.length ? list : null,
      !items.length && q ? h('p', { class: 'hint' }, t('faq.no_results_hint')) : null,
      total > PER_PAGE ? pager({
        page, perPage: PER_PAGE, total, t, label: t('faq.results_label'),
        href: (p) => ctx.hrefWith({ page: p > 1 ? String(p) : '' }, true),
      }) : null);
    slot.setAttribute('aria-busy', 'false');
  },
};

// ---- #/faq/{id} ----------------------------------------------------------------------

function metaList(item, editor) {
  const rows = [
    ['faq.f_number', text(item.number)],
    ['faq.f_department', text(item.department_name || item.department_code)],
    ['faq.f_category', text(item.category)],
    ['faq.f_keywords', text(item.keywords)],
    ['faq.f_visibility', visibilityText(item.visibility)],
  ];
  if (editor) {
    rows.push(['faq.f_status', statusBadge(item.status)], ['faq.f_version', text(item.version)],
      ['faq.f_updated', t('faq.at_by', { time: formatTime(item.updated_at), who: text(item.updated_by) })],
      ['faq.f_approved', item.approved_at ? t('faq.at_by', { time: formatTime(item.approved_at), who: text(item.approved_by) }) : t('faq.not_approved')]);
  } else {
    rows.push(['faq.f_updated', formatTime(item.updated_at)]);
  }
  rows.push(['faq.f_views', text(item.views)],
    ['faq.f_votes', t('faq.votes', { helpful: String(Number(item.helpful ?? 0)), not_helpful: String(Number(item.not_helpful ?? 0)) })]);
  return h('dl', { class: 'faq-meta', id: 'faq-meta' }, rows.map(([key, value]) => h('div', null, h('dt', null, t(key)), h('dd', null, value))));
}

// The actions an editor has on one FAQ in its state.
// `editor`: a supervisor or administrator (every action but approval); `approver`: may
// approve it (mayApprove); `reviewers` for the reason of a refused approval.
function editorActions(ctx, item, status, { editor = true, approver = true, reviewers = new Map() } = {}) {
  const id = encodeURIComponent(String(item.id));
  const actions = editor ? [
    h('a', { href: `#/faq/${id}/edit`, class: 'button primary', id: 'faq-edit' }, t('faq.edit')),
    h('a', { href: `#/faq/${id}/history`, class: 'button secondary', id: 'faq-history' }, t('faq.history')),
  ] : [];
  const conflict = (error) => {
    if (error instanceof ApiError && error.status === 403) {
      const box = notice('error', approveRefusedText(error, item, reviewers));
      box.id = 'faq-approve-refused';
      box.setAttribute('tabindex', '-1');
      clear(status, box);
      box.focus();
      return;
    }
    if (error instanceof ApiError && error.status === 409) {
      const button = h('button', { type: 'button', class: 'primary' }, t('conflict.reload'));
      button.addEventListener('click', () => ctx.reload());
      const box = notice('error', h('p', null, error.field === 'status' ? t('faq.state_conflict') : t('faq.version_conflict')), h('p', null, button));
      box.id = 'conflict';
      clear(status, box);
      button.focus();
      return;
    }
    const box = notice('error', errorText(error));
    box.setAttribute('tabindex', '-1');
    clear(status, box);
    box.focus();
  };
  const act = (label, buttonClass, buttonId, request, flashKey, confirmText) => {
    const button = h('button', { type: 'button', class: buttonClass, id: buttonId }, label);
    button.addEventListener('click', async () => {
      status.replaceChildren();
      if (confirmText) {
        const ok = await confirmDialog({ title: label, text: confirmText, ok: label, cancel: t('common.cancel'), danger: buttonClass === 'danger' });
        if (!ok || ctx.signal.aborted) return;
      }
      try {
        await busy(button, null, request);
      } catch (error) {
        if (stop(ctx, error)) return;
        conflict(error);
        return;
      }
      ctx.flash('ok', flashKey, { number: String(item.number) });
      if (flashKey === 'faq.deleted') ctx.navigate('#/faq');
      else ctx.reload();
    });
    return button;
  };
  const patch = (to) => () => api('PATCH', `/api/v1/faqs/${id}`, { body: { version: item.version, status: to }, signal: ctx.signal });
  const approve = () => api('POST', `/api/v1/faqs/${id}/approve`, { body: { version: item.version }, signal: ctx.signal });
  if (editor && item.status === 'draft') {
    actions.push(act(t('faq.to_review'), 'secondary', 'faq-to-review', patch('review'), 'faq.sent_to_review'));
  }
  if (approver && (item.status === 'draft' || item.status === 'review')) {
    actions.push(act(t('faq.approve'), 'primary', 'faq-approve', approve, 'faq.approved', t('faq.approve_confirm', { number: String(item.number) })));
  }
  if (!editor) return h('div', { class: 'actions faq-actions' }, actions);
  if (item.status === 'review' || item.status === 'archived') {
    actions.push(act(t('faq.to_draft'), 'secondary', 'faq-to-draft', patch('draft'), 'faq.sent_to_draft'));
  }
  if (item.status === 'published') {
    actions.push(act(t('faq.archive'), 'secondary', 'faq-archive', patch('archived'), 'faq.archived', t('faq.archive_confirm', { number: String(item.number) })));
  }
  actions.push(act(t('faq.delete'), 'danger', 'faq-delete',
    () => api('DELETE', `/api/v1/faqs/${id}`, { query: { version: item.version }, signal: ctx.signal }),
    'faq.deleted', t('faq.delete_confirm', { number: String(item.number) })));
  return h('div', { class: 'actions faq-actions' }, actions);
}

// 「この FAQ が選ばれた検索語」 (supervisors, administrators): the words that led users to
// the FAQ, with how many users and when last, each with 削除 (after a confirmation).
function clicksSection(ctx, item) {
  const id = encodeURIComponent(String(item.id));
  const status = h('div', { id: 'faq-clicks-status' });
  const slot = h('div', { id: 'faq-clicks-list', 'aria-busy': 'true' }, h('p', null, t('common.loading')));
  const load = async () => {
    let answer;
    try {
      answer = await api('GET', `/api/v1/faqs/${id}/clicks`, { query: { per_page: 100 }, signal: ctx.signal });
    } catch (error) {
      if (stop(ctx, error)) return;
      clear(slot, notice('error', errorText(error)));
      slot.setAttribute('aria-busy', 'false');
      return;
    }
    if (ctx.signal.aborted) return;
    const items = Array.isArray(answer.items) ? answer.items : [];
    const total = Number(answer.total ?? items.length);
    const rows = items.map((c) => {
      const words = String(c.q ?? '');
      const remove = h('button', {
        type: 'button', class: 'danger small faq-click-delete', 'aria-label': t('faq.clicks_delete_label', { q: words }),
      }, t('faq.clicks_delete'));
      remove.addEventListener('click', async () => {
        status.replaceChildren();
        const ok = await confirmDialog({
          title: t('faq.clicks_delete_title'), text: t('faq.clicks_delete_confirm', { q: words, users: String(Number(c.users ?? 0)) }),
          ok: t('faq.clicks_delete'), cancel: t('common.cancel'), danger: true,
        });
        if (!ok || ctx.signal.aborted) return;
        try {
          await busy(remove, null, () => api('DELETE', `/api/v1/faqs/${id}/clicks`, { query: { q: words }, signal: ctx.signal }));
        } catch (error) {
          if (stop(ctx, error)) return;
          clear(status, notice('error', errorText(error)));
          return;
        }
        clear(status, notice('ok', t('faq.clicks_deleted', { q: words })));
        load();
      });
      return h('tr', { class: 'faq-click', dataset: { q: words } },
        h('td', { class: 'detail faq-click-q' }, text(words)),
        h('td', { class: 'num faq-click-users' }, String(Number(c.users ?? 0))),
        h('td', { class: 'nowrap' }, formatTime(c.last_at)),
        h('td', null, remove));
    });
    const table = h('table', { id: 'faq-clicks' },
      h('caption', { class: 'visually-hidden' }, t('faq.clicks_heading')),
      h('thead', null, h('tr', null, ['faq.clicks_q', 'faq.clicks_users', 'faq.clicks_last', 'faq.col_actions']
        .map((key) => h('th', { scope: 'col' }, t(key))))),
      h('tbody', null, rows));
    clear(slot, items.length ? table : h('p', { id: 'faq-clicks-empty' }, t('faq.clicks_empty')),
      total > items.length ? h('p', { class: 'hint' }, t('faq.clicks_more', { count: String(total - items.length), shown: String(items.length) })) : null);
    slot.setAttribute('aria-busy', 'false');
  };
  load();
  return h('section', { class: 'card faq-clicks-card', id: 'faq-clicks-card', 'aria-labelledby': 'faq-clicks-title' },
    h('h3', { id: 'faq-clicks-title' }, t('faq.clicks_heading')),
    h('p', { class: 'hint' }, t('faq.clicks_hint')), status, slot);
}

export const page = {
  async mount(ctx) {
    const editor = isEditor(ctx.user);
    clear(ctx.view, ...header(ctx, null), h('p', { role: 'status' }, t('common.loading')));
    let item;
    try {
      item = await api('GET', `/api/v1/faqs/${encodeURIComponent(ctx.params.id)}`, { signal: ctx.signal });
    } catch (error) {
      if (stop(ctx, error)) return;
      clear(ctx.view, ...header(ctx, null), notice('error', errorText(error)), h('p', null, h('a', { href: '#/faq' }, t('faq.back_to_search'))));
      return;
    }
    if (ctx.signal.aborted) return;
    // A draft or an FAQ in review: who confirms it (所管課の確認者), and whether this user may.
    const pending = item.status === 'draft' || item.status === 'review';
    const reviewers = pending ? await loadReviewers(ctx, item.department_id) : new Map();
    if (ctx.signal.aborted) return;
    const approver = mayApprove(ctx.user, item, reviewers);
    const reviewersNote = pending && seesZeroHits(ctx.user)
      ? h('p', { id: 'faq-reviewers-note', class: 'faq-reviewers-note' }, reviewersText(item, reviewers)) : null;
    const status = h('div', { id: 'faq-action-status' });
    const isPublic = item.status === 'published' && item.visibility === 'public';
    const publicLink = isPublic
      ? h('p', null, h('a', { href: `/faq/${encodeURIComponent(String(item.number))}`, id: 'faq-public-link', rel: 'noopener', target: '_blank' }, t('faq.open_public')))
      : h('p', { class: 'hint' }, item.visibility === 'public' ? t('faq.not_public_yet') : t('faq.internal_only'));
    clear(ctx.view, ...header(ctx, null, t('faq.number_label', { number: String(item.number) })),
      h('p', null, h('a', { href: '#/faq' }, t('faq.back_to_search'))),
      reviewersNote,
      status,
      editor || approver ? editorActions(ctx, item, status, { editor, approver, reviewers }) : null,
      h('div', { class: 'faq-page' },
        h('section', { class: 'card faq-answer-card', 'aria-label': t('faq.answer_label') },
          publicLook(item), h('p', { class: 'hint' }, t('faq.answer_as_public'))),
        h('section', { class: 'card faq-info-card', 'aria-labelledby': 'faq-info-title' },
          h('h3', { id: 'faq-info-title' }, t('faq.info_label')), metaList(item, editor || approver), publicLink)),
      editor ? clicksSection(ctx, item) : null);
  },
};
