// 応対履歴 (interaction records, API.md "Interaction records"; docs/web.md):
//   #/records        the list for every role: keyword, period, status, department,
//                    category, operator and channel filters, sort by any field (column
//                    headers with aria-sort, or the 並べ替え choice), pages, CSV links;
//   #/records/{id}   one record: read for everyone, edited by operators, supervisors and
//                    administrators (PATCH with `version`; a stale one answers 409 and the
//                    latest is merged without losing what was typed).
// recordEditor() is the form both this page and the operator desk (views/desk.js) use:
// drawn by recordform.js from the record form setting (docs/record-form.md).
// Server text reaches the page only through h() (text nodes and attribute values).

import { api, ApiError, isAbort } from '../api.js';
import { h, clear, notice, pager } from '../dom.js';
import { t, formatTime } from '../i18n.js';
import { field, select, clearErrors, setFieldError, setFormError, errorText, busy } from '../forms.js';
import {
  drafts, newIdempotencyKey, watch as watchServices, isDown, banner as degradedBanner, templateLink, IMPORT_HEADER,
} from '../offline.js';
import {
  renderRecordForm, readValues, validate, showProblems, statusChoices, loadChoiceLists, labelOf,
  choicesOf, isSystem,
} from '../recordform.js';

const PER_PAGE = 50;
const FORM_PATH = '/api/v1/settings/record-form';
export const EDIT_ROLES = ['operator', 'supervisor', 'admin'];
// ExportRecords (proto/history.proto): supervisors, administrators and staff.
export const EXPORT_ROLES = ['supervisor', 'admin', 'staff'];
// ImportRecords: supervisors and administrators.
export const IMPORT_ROLES = ['supervisor', 'admin'];
const CHANNELS = ['phone', 'sms', 'form', 'chat', 'line', 'visit'];
// Record fields the list can be sorted by (API.md: `sort` takes any record field).
const SORT_FIELDS = ['started_at', 'receipt_id', 'ended_at', 'wrapup_ended_at', 'channel', 'operator_name',
  'reception_type', 'department_id', 'handling_type', 'category', 'status', 'transfer_to', 'inquiry',
  'response', 'call_id', 'created_at', 'updated_at'];
const TIME_FIELDS = new Set(['started_at', 'ended_at', 'wrapup_ended_at', 'created_at', 'updated_at']);
// Labels of fields that are not on the record form (or when the setting cannot be read).
const FALLBACK_LABELS = {
  receipt_id: 'records.f_receipt_id', call_id: 'records.f_call_id', channel: 'records.f_channel',
  operator_name: 'records.f_operator_name', started_at: 'records.f_started_at', ended_at: 'records.f_ended_at',
  wrapup_ended_at: 'records.f_wrapup_ended_at', reception_type: 'records.f_reception_type',
  department_id: 'records.f_department_id', handling_type: 'records.f_handling_type', faq_ids: 'records.f_faq_ids',
  category: 'records.f_category', inquiry: 'records.f_inquiry', response: 'records.f_response',
  transfer_to: 'records.f_transfer_to', summary: 'records.f_summary', status: 'records.f_status',
  created_at: 'records.f_created_at', updated_at: 'records.f_updated_at', caller_number: 'records.f_caller_number',
  version: 'records.f_version',
};
const CODE_KINDS = {
  department_id: 'departments', category: 'categories', reception_type: 'reception-types',
  handling_type: 'handling-types', transfer_to: 'directory',
};

// ---- small helpers --------------------------------------------------------------------

function fieldsOf(definition) {
  return Array.isArray(definition?.fields) ? definition.fields : [];
}

function statusesOf(definition) {
  return Array.isArray(definition?.statuses) ? definition.statuses : [];
}

function stop(signal, error) {
  return isAbort(error) || signal?.aborted || error?.status === 401;
}

export function hasRole(user, roles) {
  const mine = Array.isArray(user?.roles) ? user.roles : [];
  return roles.some((r) => mine.includes(r));
}

// The label of a record field: the form setting's, else the built-in one.
export function fieldLabel(definition, name) {
  const f = fieldsOf(definition).find((x) => x.name === name);
  if (f) return labelOf(f);
  return FALLBACK_LABELS[name] ? t(FALLBACK_LABELS[name]) : name;
}

const TOKYO_PARTS = new Intl.DateTimeFormat('en-CA', {
  timeZone: 'Asia/Tokyo', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit',
  minute: '2-digit', hourCycle: 'h23',
});

// "2027-04-01T00:00:05Z" -> "2027-04-01T09:00" (Tokyo time, a datetime-local value).
export function toLocalInput(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const p = Object.fromEntries(TOKYO_PARTS.formatToParts(date).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

// "2027-04-01T09:00" (Tokyo) -> "2027-04-01T09:00:00+09:00"; anything else as it is.
export function fromLocalInput(text) {
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(text)) return `${text}:00+09:00`;
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/.test(text)) return `${text}+09:00`;
  return text;
}

// What a control of `f` shows for a stored value (to compare with what is typed).
function rawOf(f, value) {
  if (value === undefined || value === null) return '';
  if (f.type === 'datetime') return toLocalInput(value);
  if (f.type === 'date') return String(value).slice(0, 10);
  if (Array.isArray(value)) return value.join(' ');
  return String(value);
}

// The record as values for renderRecordForm (times as Tokyo datetime-local values).
// A field's value in a record: the built-in ones are the record's own fields, the ward's own
// (x_...) are in its `extra` list as text (docs/history.md).
function valueOf(record, name) {
  if (!name.startsWith('x_')) return record?.[name];
  const entry = Array.isArray(record?.extra) ? record.extra.find((e) => e?.name === name) : null;
  return entry ? entry.value : undefined;
}

function formValues(definition, record) {
  const values = { status: record?.status ?? '' };
  for (const f of fieldsOf(definition)) {
    if (typeof f.name !== 'string') continue;
    const value = valueOf(record, f.name);
    if (value === undefined || value === null) continue;
    values[f.name] = f.type === 'datetime' || f.type === 'date' ? rawOf(f, value) : value;
  }
  return values;
}

// The fields an editor may send: visible and not the system's (the ward's own, x_..., go
// in the record's `extra`).
function editable(definition) {
  return fieldsOf(definition).filter((f) => typeof f.name === 'string' && f.visible !== false && !isSystem(f));
}

// A code shown by its master entry's text ("税務課"), else the code itself.
export function codeText(lists, name, code) {
  if (code === undefined || code === null || code === '') return t('common.dash');
  const kind = CODE_KINDS[name];
  const entry = kind ? lists?.[kind]?.find((e) => e.code === String(code)) : null;
  return entry ? entry.text : String(code);
}

export function channelText(definition, code) {
  if (!code) return t('common.dash');
  const f = fieldsOf(definition).find((x) => x.name === 'channel');
  const own = f ? choicesOf(f, {}).find(([c]) => c === code) : null;
  if (own) return own[1];
  return CHANNELS.includes(code) ? t(`records.channel_${code}`) : String(code);
}

// The status as colour and text: initial (not started), final (done) or in between.
export function statusBadge(definition, code) {
  const s = statusesOf(definition).find((x) => x.code === code);
  const kind = !s ? 'other' : s.final === true ? 'final' : s.initial === true ? 'initial' : 'middle';
  return h('span', { class: `rec-status rec-status-${kind}`, dataset: { status: String(code ?? '') } },
    s ? labelOf(s) : String(code || t('common.dash')));
}

// The form setting and the choice lists: {definition, lists}. kinds: the masters to
// read (default: those the form's choice fields use).
export async function loadSetup(signal, { kinds } = {}) {
  const form = await api('GET', FORM_PATH, { signal });
  const definition = form?.definition && typeof form.definition === 'object' ? form.definition : { fields: [], statuses: [] };
  const lists = await loadChoiceLists(definition, { kinds, signal });
  return { definition, lists };
}

// Katakana as hiragana, full width as half, lower case, without spaces and dashes: what
// the phone-book search compares.
function fold(text) {
  return String(text).normalize('NFKC').toLowerCase()
    .replace(/[\u30a1-\u30f6]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0x60))
    .replace(/[\s\-‐‑–—−()]/g, '');
}

// ---- the record editor ------------------------------------------------------------------

// The status "save and close" gives: a final status the current one may move to
// ('closed' first), or null.
function closeStatus(definition, current) {
  const allowed = statusChoices(definition, current).filter((s) => s.final === true);
  return (allowed.find((s) => s.code === 'closed') ?? allowed[0])?.code ?? null;
}

// The phone-book search in front of the 転送先 choice: typing narrows the choices (name,
// section or number; kana and width ignored), Enter takes the first one, ↓ goes to the list.
function transferSearch(wrapper, idPrefix) {
  const choice = wrapper?.querySelector('select');
  if (!choice) return null;
  const all = [...choice.options].filter((o) => o.value !== '').map((o) => ({ code: o.value, text: o.textContent, key: fold(`${o.value} ${o.textContent}`) }));
  const id = `${idPrefix}-transfer-q`;
  const countId = `${id}-count`;
  const input = h('input', {
    type: 'search', id, autocomplete: 'off', 'aria-controls': choice.id, 'aria-describedby': countId,
    'aria-keyshortcuts': 'Alt+K', placeholder: t('records.transfer_placeholder'),
  });
  const count = h('p', { class: 'hint', id: countId, 'aria-live': 'polite' });
  const draw = () => {
    const words = fold(input.value);
    const keep = choice.value;
    const matches = words ? all.filter((e) => e.key.includes(words)) : all;
    const shown = matches.some((e) => e.code === keep) || !keep ? matches : [...all.filter((e) => e.code === keep), ...matches];
    choice.replaceChildren(h('option', { value: '' }, t('form.choose')),
      ...shown.map((e) => h('option', { value: e.code }, e.text)));
    choice.value = keep;
    count.textContent = words ? t('records.transfer_count', { count: matches.length }) : '';
    return matches;
  };
  input.addEventListener('input', draw);
  input.addEventListener('keydown', (event) => {
    if (event.isComposing) return;
    if (event.key === 'Enter' && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      const first = draw()[0];
      if (first) {
        choice.value = first.code;
        choice.dispatchEvent(new Event('change', { bubbles: true }));
        count.textContent = t('records.transfer_picked', { name: first.text });
      }
    } else if (event.key === 'ArrowDown') {
      event.preventDefault();
      choice.focus();
    }
  });
  const box = h('div', { class: 'transfer-search' },
    h('label', { htmlFor: id }, t('records.transfer_search')), input, count);
  wrapper.insertBefore(box, wrapper.firstChild);
  return input;
}

// The record form of `record` with 保存 and 保存して完了. Returns {form, save, rebase,
// focusFirst, focusField, dirty, typed, applyTyped, record, keydown}:
//   save({close}): validates, PATCHes what changed with `version`; resolves true when saved;
//   rebase(latest): takes a newer version of the record into the form, keeping what the
//     user typed (used after a 409 and when the call's end updated the record);
//   keydown(event): the shortcuts (Ctrl+Enter, Ctrl+Shift+Enter, Alt+S, Alt+C, Alt+I,
//     Alt+R, Alt+K) for a document-level listener.
// options: definition, lists, record, idPrefix, formId, signal, onSaved(record, {close}),
// onInput();
//   draft {userId, key, meta()}: what is typed and not saved is kept in the browser under
//     `key` (offline.js drafts, degraded mode R20) until it is saved or discarded, and a
//     failed save says so and offers "もう一度保存"; offerRestore() offers a kept entry back;
//   create(changes, {idempotencyKey}): saves a record that has no id yet (a form typed while
//     the record could not be read, or without a call) and resolves the stored record; the
//     key stays the same for every try of the same input (kept with the draft).
export function recordEditor({ definition, lists, record, idPrefix = 'rec', formId, signal, onSaved, onInput, draft, create }) {
  let base = record;
  let saving = false;
  let failed = null; // {close} of a save that did not reach the service
  const fields = editable(definition);
  const message = h('div', { class: 'editor-message' });
  const box = h('div', { class: 'rf-fields' });
  const saveButton = h('button', { type: 'submit', class: 'primary', 'aria-keyshortcuts': 'Control+Enter Alt+S' },
    t('records.save'));
  const closeButton = h('button', { type: 'button', class: 'secondary', 'aria-keyshortcuts': 'Control+Shift+Enter Alt+C' },
    t('records.save_close'));
  const form = h('form', {
    id: formId ?? `record-edit-${record.id}`, class: 'rf-form record-editor', 'data-draft': true, novalidate: true,
    dataset: { recordId: record.id ? String(record.id) : '' },
  }, message, box, h('div', { class: 'actions editor-actions' }, saveButton, closeButton,
    h('span', { class: 'hint' }, t('records.save_hint'))));
  let transferInput = null;

  // A code no longer in its list (a retired entry) stays a choice, so saving does not
  // silently empty it; the same for a status the setting no longer knows.
  function keepCodes(values) {
    for (const f of fields) {
      const control = box.querySelector(`select[name="${CSS.escape(f.name)}"]`);
      const value = values[f.name];
      if (!control || value === undefined || value === null || value === '') continue;
      if (![...control.options].some((o) => o.value === String(value))) {
        control.append(h('option', { value: String(value) }, t('records.unknown_code', { code: String(value) })));
      }
      control.value = String(value);
    }
    const status = box.querySelector('select[name="status"]');
    if (status && base.status && ![...status.options].some((o) => o.value === base.status)) {
      status.prepend(h('option', { value: base.status }, String(base.status)));
      status.value = base.status;
    }
  }

  function draw() {
    const values = formValues(definition, base);
    renderRecordForm(box, definition, lists, { values, idPrefix });
    keepCodes(values);
    // System fields (receipt id, operator...) are read, not filled in: out of the tab order.
    for (const control of box.querySelectorAll('.rf-system')) control.tabIndex = -1;
    transferInput = transferSearch(box.querySelector('[data-field="transfer_to"]'), idPrefix);
  }

  function controlOf(name) {
    return box.querySelector(`[name="${CSS.escape(name)}"]`);
  }

  // {name: typed text} of the fields that differ from the stored record.
  function typed() {
    const out = {};
    for (const f of [...fields, { name: 'status', type: 'choice' }]) {
      const control = controlOf(f.name);
      if (!control) continue;
      const now = String(control.value ?? '').trim();
      if (now !== rawOf(f, valueOf(base, f.name)).trim()) out[f.name] = String(control.value ?? '');
    }
    return out;
  }

  function applyTyped(map) {
    for (const [name, value] of Object.entries(map ?? {})) {
      const control = controlOf(name);
      if (!control || typeof value !== 'string') continue;
      if (control.tagName === 'SELECT' && ![...control.options].some((o) => o.value === value)) {
        control.append(h('option', { value }, t('records.unknown_code', { code: value })));
      }
      control.value = value;
    }
  }

  // The PATCH body: the fields that changed, in the API's types.
  function body(values, close) {
    const out = {};
    for (const f of fields) {
      const control = controlOf(f.name);
      if (!control) continue;
      const now = String(control.value ?? '').trim();
      if (now === rawOf(f, valueOf(base, f.name)).trim()) continue;
      if (f.name.startsWith('x_')) {
        // the ward's own fields: text; "" removes the value
        const value = f.type === 'datetime' && now ? fromLocalInput(now) : now;
        (out.extra ??= []).push({ name: f.name, value });
      } else if (f.type === 'faq_ids') {
        if (Array.isArray(values[f.name]) && values[f.name].length) out.faq_ids = values[f.name];
        else out.clear_faq_ids = true;
      } else if (f.type === 'datetime') {
        out[f.name] = now ? fromLocalInput(now) : '';
      } else if (f.type === 'number') {
        out[f.name] = now === '' ? '' : Number(now);
      } else {
        out[f.name] = now;
      }
    }
    const status = close ? closeStatus(definition, base.status) : controlOf('status')?.value;
    if (status && status !== base.status) out.status = status;
    return out;
  }

  function say(kind, ...children) {
    const box2 = notice(kind, ...children);
    clear(message, box2);
    return box2;
  }

  function conflict(error) {
    const reload = h('button', { type: 'button', class: 'primary', id: `${form.id}-reload` }, t('records.conflict_reload'));
    const alert = say('error', h('p', null, t('records.conflict')), h('p', null, reload));
    alert.classList.add('record-conflict');
    reload.addEventListener('click', async () => {
      let latest = error.data?.current && typeof error.data.current === 'object' ? error.data.current : null;
      if (!latest || latest.id !== base.id) {
        try {
          latest = await api('GET', `/api/v1/records/${encodeURIComponent(base.id)}`, { signal });
        } catch (e) {
          if (stop(signal, e)) return;
          say('error', h('p', null, errorText(e)));
          return;
        }
      }
      const both = rebase(latest);
      const done = say('ok', h('p', null, t('records.conflict_merged')),
        both.length ? h('p', null, t('records.conflict_both', { fields: both.join(t('records.list_sep')) })) : null);
      done.id = `${form.id}-merged`;
      done.setAttribute('tabindex', '-1');
      done.focus();
    });
    reload.focus();
  }

  // Takes `latest` as the stored record: fields the user did not touch show its values,
  // typed ones stay. Returns the labels of fields changed on both sides.
  function rebase(latest) {
    if (!latest || typeof latest !== 'object') return [];
    const mine = typed();
    const both = [];
    for (const f of fields) {
      if (mine[f.name] !== undefined && rawOf(f, valueOf(latest, f.name)) !== rawOf(f, valueOf(base, f.name))) both.push(labelOf(f));
    }
    base = latest;
    draw();
    applyTyped(mine);
    return both;
  }

  // ---- unsaved input kept in the browser (offline.js) ----

  function persist() {
    if (!draft) return;
    const now = typed();
    if (!Object.keys(now).length && !failed) {
      drafts.remove(draft.userId, draft.key);
      return;
    }
    drafts.put(draft.userId, draft.key, {
      typed: now, meta: draft.meta?.() ?? null, failed: Boolean(failed), close: Boolean(failed?.close),
      record_id: base.id ?? null, version: base.version ?? null,
    });
  }

  let ownKey = null; // the key when the browser cannot keep it
  function idempotencyKey() {
    const kept = draft ? drafts.get(draft.userId, draft.key)?.idempotency_key : null;
    if (kept) return kept;
    ownKey ??= newIdempotencyKey();
    if (draft) drafts.put(draft.userId, draft.key, { typed: typed(), meta: draft.meta?.() ?? null, idempotency_key: ownKey });
    return ownKey;
  }

  // The service did not answer (or answered 502/503/504): nothing was stored.
  function unreachable(error) {
    return error instanceof ApiError && (error.status === 0 || error.status === 502 || error.status === 503 || error.status === 504);
  }

  // The save did not reach the service: the form stays filled, the input is kept, and one
  // click saves it again once the service is back.
  function notSaved(error, close) {
    failed = { close };
    persist();
    const retry = h('button', { type: 'button', class: 'primary', id: `${form.id}-retry` }, t('degraded.retry'));
    retry.addEventListener('click', () => save({ close }));
    const state = h('p', { class: 'degraded-state', id: `${form.id}-service-state` });
    const drawState = () => {
      const back = !isDown('history') && !isDown('network');
      state.textContent = t(back ? 'degraded.service_back' : 'degraded.service_still_down');
      state.dataset.back = String(back);
    };
    const box = say('error',
      h('p', { id: `${form.id}-not-saved` }, h('strong', null, t('degraded.not_saved')), ' ', errorText(error)),
      h('p', null, t(draft ? 'degraded.not_saved_kept' : 'degraded.not_saved_screen')),
      state, h('p', null, retry));
    box.classList.add('record-not-saved');
    box.scrollIntoView?.({ block: 'nearest' });
    drawState();
    const stopWatch = watchServices(() => {
      if (!box.isConnected) {
        stopWatch();
        return;
      }
      drawState();
    }, signal);
  }

  // A kept entry of this form that differs from what it shows: offered back.
  function offerRestore() {
    if (!draft) return false;
    const entry = drafts.get(draft.userId, draft.key);
    const kept = entry?.typed && typeof entry.typed === 'object' ? entry.typed : null;
    if (!kept || !Object.keys(kept).length) return false;
    const now = typed();
    const same = Object.keys(kept).every((k) => String(kept[k]).trim() === String(now[k] ?? '').trim()) &&
      Object.keys(now).every((k) => k in kept);
    if (same) {
      if (entry.failed) notSaved(new ApiError(503, 'service_unavailable', ''), Boolean(entry.close));
      return false;
    }
    const restore = h('button', { type: 'button', class: 'primary', id: `${form.id}-restore` }, t('degraded.restore'));
    const discard = h('button', { type: 'button', class: 'secondary', id: `${form.id}-discard` }, t('degraded.discard'));
    const box = say('info', h('p', { id: `${form.id}-restore-question` }, h('strong', null, t('degraded.restore_question'))),
      h('p', { class: 'muted' }, t('degraded.restore_when', { time: formatTime(new Date(entry.at).toISOString()) })),
      h('p', { class: 'actions' }, restore, ' ', discard));
    box.classList.add('record-restore');
    restore.addEventListener('click', () => {
      applyTyped(kept);
      onInput?.();
      if (entry.failed) {
        notSaved(new ApiError(503, 'service_unavailable', ''), Boolean(entry.close));
      } else {
        const done = say('ok', h('p', null, t('degraded.restored')));
        done.id = `${form.id}-restored`;
      }
      persist();
      focusFirst();
    });
    discard.addEventListener('click', () => {
      drafts.remove(draft.userId, draft.key);
      failed = null;
      persist();
      say('info', h('p', { id: `${form.id}-discarded` }, t('degraded.discarded')));
    });
    return true;
  }

  async function save({ close = false } = {}) {
    if (saving) return false;
    clear(message);
    const values = readValues(box, definition);
    const problems = validate(definition, values);
    if (problems.length) {
      const first = showProblems(box, problems);
      say('error', h('p', null, t('records.check_fields', { count: problems.length })));
      first?.focus();
      return false;
    }
    showProblems(box, []);
    clearErrors(box);
    const changes = body(values, close);
    if (!Object.keys(changes).length) {
      say('info', h('p', null, t('records.no_changes')));
      return true;
    }
    changes.version = base.version;
    persist();
    saving = true;
    saveButton.disabled = true;
    closeButton.disabled = true;
    form.setAttribute('aria-busy', 'true');
    let saved;
    try {
      if (!base.id && create) {
        saved = await create(changes, { idempotencyKey: idempotencyKey(), close });
        if (saved && typeof saved === 'object' && saved.id) {
          // Stored. A try whose answer was lost made the record with what was typed then: the
          // key answers that record, and what was typed since goes in as a change of it.
          base = saved;
          const rest = body(values, close);
          if (Object.keys(rest).length) {
            saved = await api('PATCH', `/api/v1/records/${encodeURIComponent(base.id)}`, { body: { ...rest, version: base.version }, signal });
          }
        }
      } else {
        saved = await api('PATCH', `/api/v1/records/${encodeURIComponent(base.id)}`, { body: changes, signal });
      }
    } catch (error) {
      if (stop(signal, error)) return false;
      if (unreachable(error)) {
        notSaved(error, close);
      } else if (error instanceof ApiError && error.status === 409) {
        conflict(error);
      } else if (error instanceof ApiError && error.field && (error.status === 422 || error.status === 400) &&
          box.querySelector(`[data-field="${CSS.escape(error.field)}"]`)) {
        setFieldError(box, error.field, t('records.field_refused', { field: fieldLabel(definition, error.field) }),
          error.message || null);
        say('error', h('p', null, t('err.invalid_field')));
      } else {
        setFormError(message, errorText(error));
      }
      return false;
    } finally {
      saving = false;
      saveButton.disabled = false;
      closeButton.disabled = false;
      form.removeAttribute('aria-busy');
    }
    base = saved && typeof saved === 'object' && saved.id ? saved : { ...base, ...changes, version: (base.version ?? 0) + 1 };
    failed = null;
    if (draft) drafts.remove(draft.userId, draft.key);
    // Drawn again from what was stored; the focus stays on the same field.
    const focused = form.contains(document.activeElement) ? document.activeElement : null;
    const again = focused?.getAttribute('name') ?? (focused?.id === transferInput?.id ? 'transfer_search' : null);
    draw();
    if (again) focusField(again);
    const ok = say('ok', h('p', null, t(close ? 'records.saved_closed' : 'records.saved', { receipt: String(base.receipt_id ?? base.id) })));
    ok.id = `${form.id}-saved`;
    onSaved?.(base, { close });
    return true;
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    save({ close: false });
  });
  closeButton.addEventListener('click', () => save({ close: true }));
  form.addEventListener('input', () => {
    persist();
    onInput?.();
  });
  form.addEventListener('change', () => {
    persist();
    onInput?.();
  });

  function focusField(name) {
    const control = name === 'transfer_search' ? transferInput : controlOf(name);
    if (!control) return false;
    control.focus();
    return true;
  }

  // The first field the user fills in; with `empty`, the first such field still empty
  // (times left out: the call fills them in).
  function focusFirst({ empty = false } = {}) {
    const controls = [...box.querySelectorAll('input, select, textarea')]
      .filter((c) => !c.readOnly && !c.disabled && c.tabIndex !== -1 && c.type !== 'search');
    const target = (empty && controls.find((c) => !c.value && c.type !== 'datetime-local' && c.type !== 'date')) || controls[0];
    target?.focus();
  }

  function keydown(event) {
    if (event.defaultPrevented || event.isComposing) return false;
    const ctrl = event.ctrlKey || event.metaKey;
    if (ctrl && !event.altKey && event.key === 'Enter') {
      event.preventDefault();
      save({ close: event.shiftKey });
      return true;
    }
    if (event.altKey && !ctrl && !event.shiftKey) {
      const action = {
        KeyS: () => save({ close: false }),
        KeyC: () => save({ close: true }),
        KeyI: () => focusField('inquiry'),
        KeyR: () => focusField('response'),
        KeyK: () => focusField('transfer_search'),
      }[event.code];
      if (action) {
        event.preventDefault();
        action();
        return true;
      }
    }
    return false;
  }

  draw();
  return {
    form, save, rebase, focusFirst, focusField, keydown, typed, applyTyped, offerRestore, persist,
    dirty: () => Object.keys(typed()).length > 0,
    get record() {
      return base;
    },
  };
}

// The keyboard shortcuts, as a list the page shows (docs/web.md has the same).
export function shortcutHelp(extra = []) {
  const rows = [
    ['Ctrl + Enter', 'records.key_save'], ['Alt + S', 'records.key_save'],
    ['Ctrl + Shift + Enter', 'records.key_save_close'], ['Alt + C', 'records.key_save_close'],
    ['Alt + I', 'records.key_inquiry'], ['Alt + R', 'records.key_response'], ['Alt + K', 'records.key_transfer'],
    ...extra,
  ];
  return h('details', { class: 'shortcuts' }, h('summary', null, t('records.keys_heading')),
    h('dl', null, rows.map(([keys, key]) => [h('dt', null, h('kbd', null, keys)), h('dd', null, t(key))])));
}

// ---- #/records -------------------------------------------------------------------------

const FILTERS = ['q', 'from', 'to', 'status', 'department_id', 'category', 'operator_id', 'channel'];

function readQuery(query) {
  const out = {};
  for (const name of FILTERS) {
    const value = (query.get(name) ?? '').trim();
    if (value) out[name] = value;
  }
  if (out.from && !/^\d{4}-\d{2}-\d{2}$/.test(out.from)) delete out.from;
  if (out.to && !/^\d{4}-\d{2}-\d{2}$/.test(out.to)) delete out.to;
  if (out.operator_id && !/^[0-9]+$/.test(out.operator_id)) delete out.operator_id;
  const sort = query.get('sort') ?? '';
  if (SORT_FIELDS.includes(sort.replace(/^-/, ''))) out.sort = sort;
  return out;
}

function listHref(filters, changes = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries({ ...filters, ...changes })) {
    if (value !== undefined && value !== null && value !== '') query.set(key, value);
  }
  const text = query.toString();
  return `#/records${text ? `?${text}` : ''}`;
}

function exportHref(filters, encoding) {
  const query = new URLSearchParams();
  for (const name of FILTERS) if (filters[name]) query.set(name, filters[name]);
  query.set('encoding', encoding);
  return `/api/v1/records/export.csv?${query.toString()}`;
}

export function short(text, max = 60) {
  const chars = [...String(text ?? '')];
  return chars.length > max ? `${chars.slice(0, max).join('')}…` : chars.join('');
}

export const list = {
  async mount(ctx) {
    const filters = readQuery(ctx.query);
    const page = Math.max(1, Number.parseInt(ctx.query.get('page') ?? '1', 10) || 1);
    const me = ctx.user;
    const heading = h('h2', { tabindex: '-1' }, t('records.heading'));
    const slot = h('div', { class: 'table-wrap', 'aria-busy': 'true' }, h('p', { role: 'status' }, t('common.loading')));
    clear(ctx.view, heading, ctx.flashSlot, slot);

    let setup;
    try {
      setup = await loadSetup(ctx.signal, { kinds: ['departments', 'categories'] });
    } catch (error) {
      if (stop(ctx.signal, error)) return;
      setup = { definition: { fields: [], statuses: [] }, lists: {} };
    }
    if (ctx.signal.aborted) return;
    const { definition, lists } = setup;

    // The search form (its values live in the address).
    const qField = field({ label: t('records.q'), name: 'q', type: 'search', value: filters.q ?? '', maxlength: 200, hint: t('records.q_hint') });
    const fromField = field({ label: t('records.from'), name: 'from', type: 'date', value: filters.from ?? '' });
    const toField = field({ label: t('records.to'), name: 'to', type: 'date', value: filters.to ?? '' });
    const statusField = field({
      label: fieldLabel(definition, 'status'), name: 'status',
      control: select([['', t('records.all')], ...statusesOf(definition).map((s) => [s.code, labelOf(s)])], filters.status ?? ''),
    });
    const codeOptions = (kind, current) => {
      const entries = (lists[kind] ?? []).map((e) => [e.code, e.text]);
      if (current && !entries.some(([c]) => c === current)) entries.push([current, current]);
      return [['', t('records.all')], ...entries];
    };
    const deptField = field({ label: fieldLabel(definition, 'department_id'), name: 'department_id', control: select(codeOptions('departments', filters.department_id), filters.department_id ?? '') });
    const catField = field({ label: fieldLabel(definition, 'category'), name: 'category', control: select(codeOptions('categories', filters.category), filters.category ?? '') });
    const operatorOptions = [['', t('records.all')], [String(me.id), t('records.operator_me')]];
    if (filters.operator_id && filters.operator_id !== String(me.id)) {
      operatorOptions.push([filters.operator_id, t('records.operator_other', { id: filters.operator_id })]);
    }
    const operatorField = field({ label: t('records.operator'), name: 'operator_id', control: select(operatorOptions, filters.operator_id ?? '') });
    const channelField = field({
      label: fieldLabel(definition, 'channel'), name: 'channel',
      control: select([['', t('records.all')], ...CHANNELS.map((c) => [c, channelText(definition, c)])], filters.channel ?? ''),
    });
    const sortName = (filters.sort ?? '').replace(/^-/, '');
    const sortField = field({
      label: t('records.sort'), name: 'sort_field',
      control: select([['', t('records.sort_default')], ...SORT_FIELDS.map((f) => [f, fieldLabel(definition, f)])], sortName),
    });
    const dirField = field({
      label: t('records.sort_dir'), name: 'sort_dir',
      control: select([['desc', t('records.sort_desc')], ['asc', t('records.sort_asc')]],
        filters.sort && !filters.sort.startsWith('-') ? 'asc' : 'desc'),
    });
    const form = h('form', { id: 'records-search', class: 'search records-search', role: 'search', 'data-draft': true, novalidate: true },
      h('fieldset', null, h('legend', null, t('records.search_legend')),
        h('div', { class: 'row' }, qField, fromField, toField),
        h('div', { class: 'row' }, statusField, deptField, catField, operatorField, channelField),
        h('div', { class: 'row' }, sortField, dirField,
          h('div', { class: 'actions' },
            h('button', { type: 'submit', class: 'primary' }, t('common.search')),
            h('a', { href: '#/records', class: 'button secondary' }, t('common.clear'))))));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const sortBy = sortField.control.value;
      ctx.navigate(listHref({}, {
        q: qField.control.value.trim(), from: fromField.control.value, to: toField.control.value,
        status: statusField.control.value, department_id: deptField.control.value, category: catField.control.value,
        operator_id: operatorField.control.value, channel: channelField.control.value,
        sort: sortBy ? `${dirField.control.value === 'desc' ? '-' : ''}${sortBy}` : '',
      }));
    });

    const imports = hasRole(me, IMPORT_ROLES)
      ? h('a', { href: '#/records/import', class: 'button secondary', id: 'records-import-link' }, t('records.import_link')) : null;
    const exports = hasRole(me, EXPORT_ROLES) || imports ? h('p', { class: 'actions exports' }, imports,
      hasRole(me, EXPORT_ROLES) ? [
        h('a', { href: exportHref(filters, 'utf-8'), download: 'records.csv', class: 'button secondary', id: 'records-export-utf8' }, t('records.export_utf8')),
        h('a', { href: exportHref(filters, 'shift_jis'), download: 'records.csv', class: 'button secondary', id: 'records-export-sjis' }, t('records.export_sjis'))] : null) : null;
    clear(ctx.view, heading, ctx.flashSlot, form, exports, slot);

    let answer;
    try {
      answer = await api('GET', '/api/v1/records', { query: { ...filters, page, per_page: PER_PAGE }, signal: ctx.signal });
    } catch (error) {
      if (stop(ctx.signal, error)) return;
      clear(slot, notice('error', errorText(error)));
      slot.setAttribute('aria-busy', 'false');
      return;
    }
    if (ctx.signal.aborted) return;
    const items = Array.isArray(answer.items) ? answer.items : [];
    const total = Number(answer.total ?? items.length);

    // Column headers sort by their field: a link (the back button works), aria-sort on the
    // sorted one. Without a sort the list is the newest first (by relevance with a keyword).
    const current = filters.sort ?? (filters.q ? '' : '-started_at');
    const header = (name) => {
      const desc = current === `-${name}`;
      const asc = current === name;
      const next = asc ? `-${name}` : desc ? name : (TIME_FIELDS.has(name) ? `-${name}` : name);
      const label = fieldLabel(definition, name);
      return h('th', { scope: 'col', 'aria-sort': asc ? 'ascending' : desc ? 'descending' : null, dataset: { sort: name } },
        h('a', {
          href: listHref(filters, { sort: next, page: '' }), class: 'sort-link',
          'aria-label': t(next.startsWith('-') ? 'records.sort_by_desc' : 'records.sort_by_asc', { field: label }),
        }, label, h('span', { class: 'sort-mark', 'aria-hidden': 'true' }, asc ? ' ▲' : desc ? ' ▼' : ' ↕')));
    };
    const columns = ['receipt_id', 'started_at', 'channel', 'operator_name', 'department_id', 'category', 'inquiry', 'status'];
    const body = h('tbody');
    for (const r of items) {
      const receipt = String(r.receipt_id || r.id);
      body.append(h('tr', { dataset: { recordId: String(r.id), status: String(r.status ?? '') } },
        h('th', { scope: 'row', class: 'nowrap' }, h('a', { href: `#/records/${encodeURIComponent(String(r.id))}` }, receipt)),
        h('td', { class: 'nowrap' }, r.started_at ? formatTime(r.started_at) : t('common.dash')),
        h('td', { class: 'nowrap' }, channelText(definition, r.channel)),
        h('td', null, r.operator_id ? h('a', {
          href: listHref(filters, { operator_id: String(r.operator_id), page: '' }),
          'aria-label': t('records.filter_operator', { name: String(r.operator_name || r.operator_id) }),
        }, String(r.operator_name || r.operator_id)) : String(r.operator_name || t('common.dash'))),
        h('td', null, codeText(lists, 'department_id', r.department_id)),
        h('td', null, codeText(lists, 'category', r.category)),
        h('td', { class: 'detail' }, short(r.inquiry)),
        h('td', { class: 'nowrap' }, statusBadge(definition, r.status))));
    }
    const table = h('table', { id: 'records-table' },
      h('caption', null, t('records.caption')),
      h('thead', null, h('tr', null, columns.map(header))),
      body);
    clear(slot, items.length ? table : h('p', null, t('common.none')),
      pager({
        page, perPage: PER_PAGE, total, t, label: t('records.caption'),
        href: (p) => listHref(filters, { page: p > 1 ? String(p) : '' }),
      }));
    slot.setAttribute('aria-busy', 'false');
  },
};

// ---- #/records/{id} --------------------------------------------------------------------

function info(definition, lists, record) {
  const rows = [
    ['receipt_id', record.receipt_id],
    ['status', statusBadge(definition, record.status)],
    ['channel', channelText(definition, record.channel)],
    ['operator_name', record.operator_name],
    ['started_at', record.started_at ? formatTime(record.started_at) : null],
    ['ended_at', record.ended_at ? formatTime(record.ended_at) : null],
    ['wrapup_ended_at', record.wrapup_ended_at ? formatTime(record.wrapup_ended_at) : null],
    ['caller_number', record.caller_number],
    ['call_id', record.call_id],
    ['updated_at', record.updated_at ? formatTime(record.updated_at) : null],
  ];
  return h('dl', { class: 'record-info', id: 'record-info' }, rows.map(([name, value]) => [
    h('dt', null, fieldLabel(definition, name)),
    h('dd', { dataset: { field: name } }, value === undefined || value === null || value === '' ? t('common.dash') : value),
  ]));
}

// The content of a record for someone who only reads it.
function readOnly(definition, lists, record) {
  const shown = new Set(['receipt_id', 'status', 'channel', 'operator_name', 'started_at', 'ended_at', 'wrapup_ended_at', 'call_id', 'operator_id']);
  const rows = [];
  for (const f of fieldsOf(definition)) {
    if (typeof f.name !== 'string' || f.visible === false || shown.has(f.name)) continue;
    let value = valueOf(record, f.name);
    if (Array.isArray(value)) value = value.join(t('records.list_sep'));
    else if (f.type === 'choice' && f.choices) value = codeText(lists, f.name, value);
    else if (f.type === 'datetime' && value) value = formatTime(value);
    rows.push(h('dt', null, labelOf(f)),
      h('dd', { class: f.type === 'textarea' ? 'multiline' : null, dataset: { field: f.name } },
        value === undefined || value === null || value === '' ? t('common.dash') : String(value)));
  }
  return h('dl', { class: 'record-content', id: 'record-content' }, rows);
}

export const page = {
  async mount(ctx) {
    const id = ctx.params.id;
    const heading = h('h2', { tabindex: '-1' }, t('records.record_heading'));
    // Degraded mode (R20): says when ncc-history (or the gateway) does not answer.
    const alert = degradedBanner({ needs: ['history', 'directory'], signal: ctx.signal, id: 'record-degraded' });
    clear(ctx.view, heading, ctx.flashSlot, alert, h('p', { role: 'status' }, t('common.loading')));
    let record;
    let setup;
    try {
      [record, setup] = await Promise.all([
        api('GET', `/api/v1/records/${encodeURIComponent(id)}`, { signal: ctx.signal }),
        loadSetup(ctx.signal),
      ]);
    } catch (error) {
      if (stop(ctx.signal, error)) return;
      const kept = hasRole(ctx.user, EDIT_ROLES) && drafts.get(ctx.user.id, `record:${id}`)
        ? h('p', { id: 'record-draft-kept' }, t('degraded.kept_until_back')) : null;
      clear(ctx.view, heading, ctx.flashSlot, alert, notice('error', errorText(error)), kept,
        h('p', null, h('a', { href: '#/records' }, t('records.back'))));
      // The record could not be read because a service is down: read again once it is back.
      if (error instanceof ApiError && [0, 502, 503, 504].includes(error.status)) {
        let again = false;
        watchServices(() => {
          if (again || ctx.signal.aborted || isDown('history') || isDown('network') || isDown('directory')) return;
          again = true;
          page.mount(ctx);
        }, ctx.signal);
      }
      return;
    }
    if (ctx.signal.aborted) return;
    const { definition, lists } = setup;
    const receipt = String(record.receipt_id || record.id);
    heading.append(': ', h('span', { class: 'subject' }, receipt));
    const back = h('p', null, h('a', { href: '#/records' }, t('records.back')));
    if (hasRole(ctx.user, EDIT_ROLES))
      back.append(' ', h('a', { href: `#/sms?record_id=${encodeURIComponent(String(record.id))}`, id: 'record-sms' },
        t('records.send_sms')));
    const parts = [heading, ctx.flashSlot, alert, back, h('section', { class: 'card', 'aria-labelledby': 'record-info-heading' },
      h('h3', { id: 'record-info-heading' }, t('records.info_heading')), info(definition, lists, record))];
    if (hasRole(ctx.user, EDIT_ROLES)) {
      const editor = recordEditor({
        definition, lists, record, idPrefix: 'rec', formId: `record-edit-${record.id}`, signal: ctx.signal,
        onSaved: (saved) => {
          const dl = ctx.view.querySelector('#record-info');
          dl?.replaceWith(info(definition, lists, saved));
        },
        draft: { userId: ctx.user.id, key: `record:${record.id}`, meta: () => ({ receipt_id: record.receipt_id ?? null }) },
      });
      editor.offerRestore();
      const onKey = (event) => editor.keydown(event);
      document.addEventListener('keydown', onKey);
      ctx.signal.addEventListener('abort', () => document.removeEventListener('keydown', onKey), { once: true });
      parts.push(h('section', { class: 'card', 'aria-labelledby': 'record-edit-heading' },
        h('h3', { id: 'record-edit-heading' }, t('records.edit_heading')), shortcutHelp(), editor.form));
    } else {
      parts.push(h('section', { class: 'card', 'aria-labelledby': 'record-content-heading' },
        h('h3', { id: 'record-content-heading' }, t('records.content_heading')), readOnly(definition, lists, record)));
    }
    clear(ctx.view, ...parts);
  },
};

// ---- #/records/import (supervisors, administrators) ------------------------------------
// Records typed into the offline CSV template while the system was down (R20; docs/operations.md
// "When a service is down"): POST /api/v1/records/import?preview=1 checks the file and lists
// every problem by line; 取り込む then imports all rows or none.

export const importView = {
  async mount(ctx) {
    const heading = h('h2', { tabindex: '-1' }, t('records.import_heading'));
    const file = field({
      label: t('records.import_file'), name: 'file', type: 'file', accept: '.csv,text/csv', required: true,
      hint: t('records.import_file_hint'),
    });
    const check = h('button', { type: 'submit', class: 'secondary', id: 'records-import-check' }, t('records.import_check'));
    const apply = h('button', { type: 'button', class: 'primary', id: 'records-import-apply', disabled: true }, t('records.import_apply'));
    const result = h('div', { id: 'records-import-result', 'aria-live': 'polite' });
    const form = h('form', { id: 'records-import', novalidate: true }, file, h('div', { class: 'actions' }, check, apply));
    file.control.addEventListener('change', () => {
      apply.disabled = true;
      result.replaceChildren();
    });
    const refused = (error) => {
      const data = error.data ?? {};
      const errors = Array.isArray(data.errors) ? data.errors : [];
      let message = errorText(error);
      if (errors.length) message = t('records.import_refused', { count: String(data.errors_total ?? errors.length) });
      else if (error.code === 'invalid_header') message = t('records.import_bad_header');
      const box = notice('error', h('p', null, message));
      box.id = 'records-import-error';
      if (!errors.length) return [box];
      return [box, h('table', { id: 'records-import-errors' },
        h('caption', null, t('records.import_errors_caption')),
        h('thead', null, h('tr', null, ['records.import_col_line', 'records.import_col_field', 'records.import_col_message']
          .map((key) => h('th', { scope: 'col' }, t(key))))),
        h('tbody', null, errors.map((e) => h('tr', null,
          h('td', { class: 'line num' }, String(e.line ?? '')), h('td', null, String(e.field ?? '')),
          h('td', { class: 'detail' }, String(e.message ?? ''))))))];
    };
    async function send(preview) {
      clearErrors(form);
      const chosen = file.control.files?.[0];
      if (!chosen) {
        setFieldError(form, 'file', t('records.import_file_required'));
        return;
      }
      const data = await chosen.arrayBuffer();
      let answer;
      try {
        answer = await busy(preview ? check : apply, t('records.import_sending'), () => api('POST', '/api/v1/records/import', {
          query: { preview: preview ? '1' : undefined }, raw: { data, type: 'text/csv' }, signal: ctx.signal,
        }));
      } catch (error) {
        if (stop(ctx.signal, error)) return;
        apply.disabled = true;
        clear(result, ...refused(error));
        const box = result.querySelector('.notice');
        box.setAttribute('tabindex', '-1');
        box.focus();
        return;
      }
      const count = String(Number(answer.created ?? 0));
      const box = notice(preview ? 'info' : 'ok', h('p', null,
        t(preview ? 'records.import_preview_done' : 'records.import_done', { count })),
      h('p', { class: 'muted' }, t('records.import_encoding', { encoding: answer.encoding === 'shift_jis' ? 'Shift_JIS' : 'UTF-8' })),
      !preview && Array.isArray(answer.receipt_ids) && answer.receipt_ids.length
        ? h('p', { id: 'records-import-receipts' }, t('records.import_receipts'), ' ', answer.receipt_ids.map(String).join(t('records.list_sep')))
        : null);
      box.id = preview ? 'records-import-preview' : 'records-import-done';
      clear(result, box);
      apply.disabled = !preview;
      if (!preview) file.control.value = '';
    }
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      send(true);
    });
    apply.addEventListener('click', () => send(false));
    clear(ctx.view, heading, ctx.flashSlot,
      h('p', null, h('a', { href: '#/records' }, t('records.back'))),
      h('section', { class: 'card', 'aria-labelledby': 'records-import-title' },
        h('h3', { id: 'records-import-title' }, t('records.import_title')),
        h('p', null, t('records.import_intro')),
        h('p', null, templateLink({ id: 'records-import-template' })),
        h('details', null, h('summary', null, t('records.import_columns')), h('p', null, h('code', null, IMPORT_HEADER))),
        form, result));
  },
};

// Used by the desk for a record's short line in the caller's history.
export function recordLine(definition, lists, r) {
  return [
    h('span', { class: 'rec-receipt' }, String(r.receipt_id || r.id)), ' ',
    h('span', { class: 'rec-time' }, r.started_at ? formatTime(r.started_at) : t('common.dash')), ' ',
    statusBadge(definition, r.status), ' ',
    h('span', { class: 'rec-category' }, codeText(lists, 'category', r.category)),
  ];
}

