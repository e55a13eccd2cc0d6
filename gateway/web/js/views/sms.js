// SMS (issue 8, R44; docs/sms.md).
//   #/sms?record_id=     operators, supervisors, administrators: send an SMS from a template
//                        (the variables the template names, a live preview with the
//                        character and part count), and the messages sent (of one record).
//   #/sms/templates      administrators: the templates, a new one, an edit (?edit=id) with
//                        the live count, and a template's versions.
// Each send form carries one idempotency key: pressing twice, or again after a time-out,
// sends one SMS.

import { api, isAbort } from '../api.js';
import { h, clear, notice } from '../dom.js';
import { t, formatTime } from '../i18n.js';
import { field, select, errorText, showError, clearErrors, busy } from '../forms.js';

const PREVIEW_DELAY_MS = 250;

function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return `web-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

function statusText(status) {
  const s = String(status ?? '');
  return ['queued', 'sent', 'delivered', 'failed', 'expired'].includes(s) ? t(`sms.status_${s}`) : s;
}

// "70文字 / 1通 (UCS-2) 上限4通" and whether it fits.
function countText(count) {
  if (!count) return '';
  return t('sms.count', {
    characters: Number(count.characters ?? 0),
    parts: Number(count.parts ?? 0),
    encoding: count.encoding === 'gsm7' ? 'GSM-7' : 'UCS-2',
    limit: Number(count.part_limit ?? 0),
    remaining: Number(count.remaining ?? 0),
  });
}

// The count panel: filled by update(answer) or update(null, error).
function countPanel(id) {
  const text = h('p', { id: `${id}-count`, class: 'sms-count' });
  const warn = h('p', { id: `${id}-warn`, class: 'field-error', hidden: true });
  const preview = h('pre', { id: `${id}-text`, class: 'sms-preview' });
  const panel = h('section', { class: 'card', 'aria-live': 'polite', 'aria-labelledby': `${id}-h` },
    h('h3', { id: `${id}-h` }, t('sms.preview')), preview, text, warn);
  panel.update = (answer, error) => {
    if (error) {
      preview.textContent = '';
      text.textContent = '';
      warn.hidden = false;
      warn.textContent = errorText(error);
      return;
    }
    preview.textContent = String(answer?.text ?? '');
    text.textContent = countText(answer?.count ?? answer);
    const problems = [];
    if (answer?.count && answer.count.within_limit === false) problems.push(t('sms.over_limit'));
    const missing = Array.isArray(answer?.missing) ? answer.missing.filter((m) => m !== 'survey_url') : [];
    if (missing.length) problems.push(t('sms.missing', { names: missing.join(', ') }));
    warn.hidden = problems.length === 0;
    warn.textContent = problems.join(' ');
  };
  return panel;
}

// Calls fn() PREVIEW_DELAY_MS after the last call of the returned function.
function debounce(fn) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, PREVIEW_DELAY_MS);
  };
}

function smsTable(items) {
  const body = h('tbody');
  for (const sms of items) {
    const survey = sms.survey
      ? (sms.survey.state === 'answered'
        ? t('sms.survey_answered', {
          satisfaction: Number(sms.survey.satisfaction ?? 0),
          resolved: sms.survey.resolved ? t('sms.resolved_yes') : t('sms.resolved_no'),
        })
        : t(`sms.survey_${sms.survey.state === 'expired' ? 'expired' : 'open'}`))
      : t('common.dash');
    body.append(h('tr', { dataset: { id: String(sms.id ?? '') } },
      h('td', { class: 'num' }, String(sms.id ?? '')),
      h('td', { class: 'nowrap' }, h('time', { dateTime: String(sms.created_at ?? '') }, formatTime(sms.created_at))),
      h('td', { class: 'nowrap' }, String(sms.to ?? '')),
      h('td', null, String(sms.template_name ?? '')),
      h('td', { class: `sms-status sms-${String(sms.status ?? '')}` }, statusText(sms.status),
        sms.error ? h('span', { class: 'muted' }, ` (${String(sms.error)})`) : null),
      h('td', { class: 'num' }, String(sms.parts ?? '')),
      h('td', null, survey)));
  }
  return h('table', { id: 'sms-table' },
    h('caption', null, t('sms.list_caption')),
    h('thead', null, h('tr', null,
      ['col_id', 'col_at', 'col_to', 'col_template', 'col_status', 'col_parts', 'col_survey']
        .map((key) => h('th', { scope: 'col' }, t(`sms.${key}`))))),
    body);
}

async function loadList(ctx, slot, recordId) {
  try {
    const answer = await api('GET', '/api/v1/sms', {
      query: { record_id: recordId || undefined, per_page: 50 }, signal: ctx.signal,
    });
    const items = Array.isArray(answer.items) ? answer.items : [];
    clear(slot, items.length ? smsTable(items) : h('p', null, t('common.none')));
  } catch (error) {
    if (isAbort(error) || error?.status === 401) return;
    clear(slot, notice('error', errorText(error)));
  }
}

// ---- #/sms -------------------------------------------------------------------------------

// The record's receipt id and its caller's number when that is a mobile one (what an SMS
// can reach; the server checks again): the desk's and the record page's SMS link carry only
// the record id, never the number. null when the record cannot be read.
async function callerOf(ctx, recordId) {
  try {
    const record = await api('GET', `/api/v1/records/${encodeURIComponent(recordId)}`, { signal: ctx.signal });
    const number = String(record.caller_number ?? '');
    const digits = number.replace(/[\s\-()]/g, '');
    return {
      receipt: String(record.receipt_id || record.id),
      number: /^(\+81|0)[789]0\d{8}$/.test(digits) ? number : '',
    };
  } catch (error) {
    return null;
  }
}

export const send = {
  async mount(ctx) {
    const recordId = (ctx.query.get('record_id') ?? '').replace(/[^0-9]/g, '');
    let templates = [];
    try {
      const answer = await api('GET', '/api/v1/sms-templates', { signal: ctx.signal });
      templates = Array.isArray(answer.items) ? answer.items : [];
    } catch (error) {
      if (isAbort(error) || error?.status === 401) return;
      clear(ctx.view, h('h2', { tabindex: '-1' }, t('sms.heading')), ctx.flashSlot,
        notice('error', errorText(error)));
      return;
    }
    let key = newKey();
    const templateSelect = select([['', t('sms.choose_template')],
      ...templates.map((tpl) => [String(tpl.id), String(tpl.name ?? '')])]);
    const templateField = field({ label: t('sms.template'), name: 'template_id', control: templateSelect, required: true });
    const toField = field({
      label: t('sms.to'), name: 'to', type: 'text', inputmode: 'tel', required: true, hint: t('sms.to_hint'),
      autocomplete: 'off', maxlength: 40,
    });
    const recordField = field({
      label: t('sms.record_id'), name: 'record_id', type: 'text', inputmode: 'numeric',
      value: recordId, maxlength: 18, hint: t('sms.record_hint'),
    });
    const urgentBox = h('input', { type: 'checkbox', id: 'sms-urgent', name: 'urgent' });
    const varsSlot = h('div', { id: 'sms-vars' });
    const panel = countPanel('sms-send');
    const result = h('div', { id: 'sms-result', 'aria-live': 'polite' });
    const submit = h('button', { type: 'submit', class: 'primary', id: 'sms-submit' }, t('sms.send'));
    const form = h('form', { id: 'sms-form', novalidate: true },
      h('fieldset', null, h('legend', null, t('sms.send_legend')),
        templateField, toField, varsSlot, recordField,
        h('div', { class: 'check' }, urgentBox, h('label', { htmlFor: 'sms-urgent' }, t('sms.urgent'))),
        h('div', { class: 'actions' }, submit)));
    const listSlot = h('div', { class: 'table-wrap' }, h('p', { role: 'status' }, t('common.loading')));

    const variables = () => Array.from(varsSlot.querySelectorAll('input[data-var]'))
      .map((input) => ({ name: input.dataset.var, value: input.value }));
    const refresh = debounce(async () => {
      if (!templateSelect.value) {
        panel.update({ text: '', count: null });
        return;
      }
      try {
        panel.update(await api('POST', '/api/v1/sms/preview', {
          body: { template_id: Number(templateSelect.value), variables: variables() },
          signal: ctx.signal,
        }));
      } catch (error) {
        if (isAbort(error) || error?.status === 401) return;
        panel.update(null, error);
      }
    });
    templateSelect.addEventListener('change', () => {
      const tpl = templates.find((x) => String(x.id) === templateSelect.value);
      const names = (tpl?.variables ?? []).filter((n) => n !== 'survey_url');
      clear(varsSlot, names.map((name) => {
        const f = field({ label: t('sms.variable', { name }), name: `var-${name}`, maxlength: 500 });
        f.control.dataset.var = name;
        f.control.addEventListener('input', refresh);
        return f;
      }));
      if ((tpl?.variables ?? []).includes('survey_url')) varsSlot.append(h('p', { class: 'hint' }, t('sms.survey_hint')));
      refresh();
    });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(form);
      clear(result);
      const body = {
        to: toField.control.value.trim(),
        template_id: templateSelect.value ? Number(templateSelect.value) : undefined,
        variables: variables(),
        idempotency_key: key,
        urgent: urgentBox.checked || undefined,
      };
      const record = recordField.control.value.trim();
      if (record) body.record_id = Number(record);
      try {
        const sms = await busy(submit, t('sms.sending'), () => api('POST', '/api/v1/sms', { body }));
        key = newKey();
        clear(result, notice('ok', t(sms.duplicate ? 'sms.sent_again' : 'sms.sent', { id: String(sms.id) })));
        await loadList(ctx, listSlot, record || recordId);
      } catch (error) {
        if (isAbort(error) || error?.status === 401) return;
        showError(form, error);
        clear(result, notice('error', errorText(error), error?.message ? h('p', { class: 'muted' }, String(error.message)) : null));
      }
    });
    const fromRecord = recordId ? await callerOf(ctx, recordId) : null;
    if (ctx.signal.aborted) return;
    if (fromRecord?.number && !toField.control.value) toField.control.value = fromRecord.number;
    clear(ctx.view, h('h2', { tabindex: '-1' }, t('sms.heading')), ctx.flashSlot,
      templates.length ? null : notice('info', t('sms.no_templates')),
      fromRecord ? notice('info', t(fromRecord.number ? 'sms.to_from_record' : 'sms.to_not_mobile',
        { receipt: fromRecord.receipt })) : null,
      h('div', { class: 'sms-layout' }, form, panel), result,
      h('h3', null, recordId ? t('sms.list_record', { id: recordId }) : t('sms.list_recent')), listSlot);
    await loadList(ctx, listSlot, recordId);
  },
};

// ---- #/sms/templates ---------------------------------------------------------------------

function templateTable(items) {
  const body = h('tbody');
  for (const tpl of items) {
    body.append(h('tr', null,
      h('td', null, h('a', { href: `#/sms/templates?edit=${encodeURIComponent(String(tpl.id))}` }, String(tpl.name ?? ''))),
      h('td', { class: 'body' }, String(tpl.body ?? '')),
      h('td', null, (tpl.variables ?? []).join(', ') || t('common.dash')),
      h('td', null, tpl.urgent ? t('sms.yes') : t('sms.no')),
      h('td', null, tpl.active === false ? t('sms.retired') : t('sms.active')),
      h('td', { class: 'num' }, String(tpl.version ?? ''))));
  }
  return h('table', { id: 'sms-templates' },
    h('caption', null, t('sms.templates_caption')),
    h('thead', null, h('tr', null,
      ['col_name', 'col_body', 'col_variables', 'col_urgent', 'col_active', 'col_version']
        .map((key) => h('th', { scope: 'col' }, t(`sms.${key}`))))),
    body);
}

export const templates = {
  async mount(ctx) {
    const editId = (ctx.query.get('edit') ?? '').replace(/[^0-9]/g, '');
    let items = [];
    let versions = [];
    try {
      const answer = await api('GET', '/api/v1/sms-templates', { query: { include_inactive: 'true' }, signal: ctx.signal });
      items = Array.isArray(answer.items) ? answer.items : [];
      if (editId) {
        const history = await api('GET', `/api/v1/sms-templates/${editId}/history`, { signal: ctx.signal });
        versions = Array.isArray(history.items) ? history.items : [];
      }
    } catch (error) {
      if (isAbort(error) || error?.status === 401) return;
      clear(ctx.view, h('h2', { tabindex: '-1' }, t('sms.templates_heading')), ctx.flashSlot,
        notice('error', errorText(error)));
      return;
    }
    const editing = items.find((x) => String(x.id) === editId);
    const nameField = field({ label: t('sms.col_name'), name: 'name', required: true, maxlength: 100, value: editing?.name ?? '' });
    const bodyArea = h('textarea', { rows: 5, maxlength: 8000 });
    bodyArea.value = editing?.body ?? '';
    const bodyField = field({ label: t('sms.col_body'), name: 'body', control: bodyArea, required: true, hint: t('sms.body_hint') });
    const urgentBox = h('input', { type: 'checkbox', id: 'tpl-urgent', checked: Boolean(editing?.urgent) });
    const activeBox = h('input', { type: 'checkbox', id: 'tpl-active', checked: editing ? editing.active !== false : true });
    const panel = countPanel('tpl');
    const submit = h('button', { type: 'submit', class: 'primary', id: 'tpl-save' }, editing ? t('sms.save') : t('sms.create'));
    const form = h('form', { id: 'tpl-form', novalidate: true },
      h('fieldset', null, h('legend', null, editing ? t('sms.edit_legend', { name: editing.name }) : t('sms.new_legend')),
        nameField, bodyField,
        h('div', { class: 'check' }, urgentBox, h('label', { htmlFor: 'tpl-urgent' }, t('sms.urgent_template'))),
        editing ? h('div', { class: 'check' }, activeBox, h('label', { htmlFor: 'tpl-active' }, t('sms.active'))) : null,
        h('div', { class: 'actions' }, submit,
          editing ? h('a', { href: '#/sms/templates', class: 'button secondary' }, t('sms.new_legend')) : null)));
    const refresh = debounce(async () => {
      if (!bodyArea.value) {
        panel.update({ text: '', count: null });
        return;
      }
      try {
        // The fixed text with every variable empty: what the template costs at least.
        panel.update(await api('POST', '/api/v1/sms/preview', { body: { body: bodyArea.value }, signal: ctx.signal }));
      } catch (error) {
        if (isAbort(error) || error?.status === 401) return;
        panel.update(null, error);
      }
    });
    bodyArea.addEventListener('input', refresh);
    refresh();
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(form);
      const body = { name: nameField.control.value.trim(), body: bodyArea.value, urgent: urgentBox.checked };
      try {
        if (editing) {
          await busy(submit, t('sms.sending'), () => api('PATCH', `/api/v1/sms-templates/${editing.id}`,
            { body: { ...body, active: activeBox.checked, version: editing.version } }));
        } else {
          await busy(submit, t('sms.sending'), () => api('POST', '/api/v1/sms-templates', { body }));
        }
        ctx.flash('ok', editing ? 'sms.saved' : 'sms.created');
        ctx.navigate('#/sms/templates');
      } catch (error) {
        if (isAbort(error) || error?.status === 401) return;
        showError(form, error);
      }
    });
    const historyList = versions.length
      ? h('section', { class: 'card', 'aria-labelledby': 'tpl-history-h' },
        h('h3', { id: 'tpl-history-h' }, t('sms.history')),
        h('ol', { id: 'tpl-history' }, versions.map((v) => h('li', null,
          t('sms.version_line', { version: String(v.version ?? ''), at: formatTime(v.updated_at), by: String(v.updated_by ?? '') }),
          h('pre', { class: 'sms-preview' }, String(v.body ?? ''))))))
      : null;
    clear(ctx.view, h('h2', { tabindex: '-1' }, t('sms.templates_heading')), ctx.flashSlot,
      h('div', { class: 'sms-layout' }, form, panel), historyList,
      h('div', { class: 'table-wrap' }, items.length ? templateTable(items) : h('p', null, t('common.none'))));
  },
};
