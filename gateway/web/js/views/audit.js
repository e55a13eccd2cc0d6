// 監査ログ (supervisors, administrators): #/audit?from&to&actor&action&page.
// Period in Tokyo time (datetime-local, sent as RFC 3339 with +09:00), a paged table
// (newest first) and 「改ざん検査」: GET /api/v1/audit/verify, shown in plain words.

import { api, isAbort } from '../api.js';
import { h, clear, notice, pager } from '../dom.js';
import { t, has, formatTime, roleName } from '../i18n.js';
import { field, errorText, showError, busy } from '../forms.js';

const PER_PAGE = 50;
const LOCAL_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/;

// "2027-03-01T09:00" (a datetime-local value, Tokyo) -> "2027-03-01T09:00:00+09:00".
export function tokyoRfc3339(local) {
  if (!LOCAL_TIME.test(local ?? '')) return undefined;
  return `${local.length === 16 ? `${local}:00` : local}+09:00`;
}

function actionText(action) {
  const a = String(action ?? '');
  return has(`audit.action.${a}`) ? `${t(`audit.action.${a}`)} (${a})` : a;
}

function outcomeText(outcome) {
  const o = String(outcome ?? '');
  return has(`audit.outcome.${o}`) ? t(`audit.outcome.${o}`) : o;
}

function verifyPanel() {
  const result = h('div', { id: 'verify-result', 'aria-live': 'polite' });
  const button = h('button', { type: 'button', id: 'verify', class: 'secondary' }, t('audit.verify'));
  button.addEventListener('click', async () => {
    result.replaceChildren(h('p', { role: 'status' }, t('audit.verifying')));
    let answer;
    try {
      answer = await busy(button, t('audit.verifying'), () => api('GET', '/api/v1/audit/verify'));
    } catch (error) {
      if (isAbort(error) || error?.status === 401) return;
      result.replaceChildren(notice('error', errorText(error)));
      return;
    }
    if (answer.ok === true) {
      result.replaceChildren(notice('ok', t('audit.verify_ok', { entries: Number(answer.entries ?? 0) })));
    } else {
      const seq = answer.first_bad_seq;
      result.replaceChildren(notice('error',
        h('p', null, seq !== undefined && seq !== null
          ? t('audit.verify_bad', { seq: String(seq) }) : t('audit.verify_bad_noseq')),
        answer.message ? h('p', null, t('audit.verify_message', { message: String(answer.message) })) : null));
    }
  });
  return h('section', { class: 'card verify', 'aria-labelledby': 'verify-heading' },
    h('h3', { id: 'verify-heading' }, t('audit.verify')),
    h('p', { class: 'hint' }, t('audit.verify_hint')),
    h('p', null, button), result);
}

export async function mount(ctx) {
  const from = ctx.query.get('from') ?? '';
  const to = ctx.query.get('to') ?? '';
  const actor = ctx.query.get('actor') ?? '';
  const action = ctx.query.get('action') ?? '';
  const page = Math.max(1, Number.parseInt(ctx.query.get('page') ?? '1', 10) || 1);

  const fromField = field({ label: t('audit.from'), name: 'from', type: 'datetime-local', value: LOCAL_TIME.test(from) ? from : '' });
  const toField = field({ label: t('audit.to'), name: 'to', type: 'datetime-local', value: LOCAL_TIME.test(to) ? to : '' });
  const actorField = field({
    label: t('audit.actor'), name: 'actor', value: actor, hint: t('audit.actor_hint'), autocomplete: 'off', maxlength: 200,
  });
  const actionField = field({
    label: t('audit.action'), name: 'action', value: action, hint: t('audit.action_hint'),
    autocomplete: 'off', maxlength: 100,
  });
  const form = h('form', { id: 'audit-search', class: 'search', role: 'search', 'data-draft': true, novalidate: true },
    h('fieldset', null, h('legend', null, t('audit.search_legend')),
      h('div', { class: 'row' }, fromField, toField, actorField, actionField,
        h('div', { class: 'actions' },
          h('button', { type: 'submit', class: 'primary' }, t('common.search')),
          h('a', { href: '#/audit', class: 'button secondary' }, t('common.clear'))))));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    ctx.navigate(ctx.hrefWith({
      from: fromField.control.value, to: toField.control.value,
      actor: actorField.control.value.trim(), action: actionField.control.value.trim(),
    }));
  });

  const tableSlot = h('div', { class: 'table-wrap', 'aria-busy': 'true' }, h('p', { role: 'status' }, t('common.loading')));
  clear(ctx.view, h('h2', { tabindex: '-1' }, t('audit.heading')), ctx.flashSlot,
    form, verifyPanel(), tableSlot);

  let answer;
  try {
    answer = await api('GET', '/api/v1/audit', {
      query: {
        from: tokyoRfc3339(from), to: tokyoRfc3339(to), actor, action, page, per_page: PER_PAGE,
      },
      signal: ctx.signal,
    });
  } catch (error) {
    if (isAbort(error) || ctx.signal.aborted || error?.status === 401) return;
    if (error?.field) showError(form, error);
    clear(tableSlot, notice('error', errorText(error)));
    tableSlot.setAttribute('aria-busy', 'false');
    return;
  }
  if (ctx.signal.aborted) return;
  const items = Array.isArray(answer.items) ? answer.items : [];
  const total = Number(answer.total ?? items.length);
  const body = h('tbody');
  for (const entry of items) {
    const actorCell = h('td', { class: 'actor' }, String(entry.actor_login ?? '') || t('common.dash'));
    if (entry.actor_role) {
      const roles = String(entry.actor_role).split(',').filter(Boolean).map(roleName).join(t('user.roles_sep'));
      actorCell.append(h('br'), h('span', { class: 'muted' }, roles));
    }
    const outcome = String(entry.outcome ?? '');
    body.append(h('tr', null,
      h('td', { class: 'num' }, String(entry.seq ?? '')),
      h('td', { class: 'nowrap' }, h('time', { dateTime: String(entry.at ?? '') }, formatTime(entry.at))),
      actorCell,
      h('td', null, String(entry.address ?? '') || t('common.dash')),
      h('td', null, actionText(entry.action)),
      h('td', null, String(entry.target ?? '') || t('common.dash')),
      h('td', { class: `outcome outcome-${['success', 'failure', 'denied'].includes(outcome) ? outcome : 'other'}` },
        outcomeText(outcome)),
      h('td', { class: 'detail' }, String(entry.detail ?? ''))));
  }
  const table = h('table', { id: 'audit-table' },
    h('caption', null, t('audit.caption')),
    h('thead', null, h('tr', null,
      ['col_seq', 'col_at', 'col_actor', 'col_address', 'col_action', 'col_target', 'col_outcome', 'col_detail']
        .map((key) => h('th', { scope: 'col' }, t(`audit.${key}`))))),
    body);
  clear(tableSlot, items.length ? table : h('p', null, t('common.none')),
    pager({
      page, perPage: PER_PAGE, total, t, label: t('audit.caption'),
      href: (p) => ctx.hrefWith({ page: p > 1 ? String(p) : '' }, true),
    }));
  tableSlot.setAttribute('aria-busy', 'false');
}
