// The interaction record form (応対履歴) drawn from its settings (docs/record-form.md):
// GET /api/v1/settings/record-form gives the definition (fields in order, labels,
// required, visible, choice lists, statuses); this module turns a definition and the
// choice lists into the form an operator fills, reads the values back, and checks them
// the way ncc-history will. The record form settings screen (views/record_form.js) shows
// its preview with it; the operator desk uses the same functions, so both look alike.
// Everything is built with DOM APIs (h()): labels and list entries are text, never HTML.

import { api } from './api.js';
import { h, clear, uid } from './dom.js';
import { t, getLang } from './i18n.js';

// The masters a choice field may take its values from (docs/masters.md), with the
// message key of their names.
export const LIST_KINDS = [
  { kind: 'reception-types', key: 'form.list_reception_types' },
  { kind: 'handling-types', key: 'form.list_handling_types' },
  { kind: 'categories', key: 'form.list_categories' },
  { kind: 'departments', key: 'form.list_departments' },
  { kind: 'directory', key: 'form.list_directory' },
  { kind: 'faq-classes', key: 'form.list_faq_classes' },
];

export const TYPES = ['text', 'textarea', 'choice', 'number', 'date', 'datetime', 'faq_ids'];

// The record fields of API.md a form may show (services/directory/record_form.c has the
// same table): type ('text' also allows textarea), the master of a choice, `system`
// (filled in by the system, shown read-only, never required) and `kept` (every record
// needs it: on the form, visible and required).
export const BUILTINS = {
  receipt_id: { type: 'text', system: true },
  call_id: { type: 'text', system: true },
  channel: { type: 'choice' },
  operator_id: { type: 'text', system: true },
  operator_name: { type: 'text', system: true },
  started_at: { type: 'datetime', kept: true },
  ended_at: { type: 'datetime' },
  wrapup_ended_at: { type: 'datetime' },
  reception_type: { type: 'choice', choices: 'reception-types' },
  department_id: { type: 'choice', choices: 'departments' },
  handling_type: { type: 'choice', choices: 'handling-types' },
  faq_ids: { type: 'faq_ids' },
  category: { type: 'choice', choices: 'categories' },
  inquiry: { type: 'textarea', kept: true },
  response: { type: 'textarea' },
  transfer_to: { type: 'choice', choices: 'directory' },
  summary: { type: 'textarea', system: true },
};

export const CUSTOM_NAME = /^x_[a-z0-9_]{1,30}$/;
export const MAX_FAQS = 3;

// A label in the current language (English falls back to Japanese).
export function labelOf(item, lang = getLang()) {
  if (!item) return '';
  const en = typeof item.label_en === 'string' ? item.label_en.trim() : '';
  return lang === 'en' && en ? en : String(item.label_ja ?? item.name ?? item.code ?? '');
}

export function isSystem(field) {
  return Boolean(BUILTINS[field?.name]?.system);
}

function fieldsOf(definition) {
  return Array.isArray(definition?.fields) ? definition.fields : [];
}

function statusesOf(definition) {
  return Array.isArray(definition?.statuses) ? definition.statuses : [];
}

function visible(field) {
  return field.visible !== false;
}

// ---- choice lists ---------------------------------------------------------------------

const SORTED = new Set(['reception-types', 'handling-types', 'categories', 'faq-classes']);

// The active entries of the masters `kinds` (default: those the definition's visible
// choice fields use) as {kind: [{code, text}]}; a list that cannot be read is [] and its
// kind is named in the `failed` array of the answer.
export async function loadChoiceLists(definition, { kinds, signal } = {}) {
  const wanted = kinds ?? [...new Set(fieldsOf(definition)
    .filter((f) => f.type === 'choice' && f.choices && visible(f)).map((f) => f.choices))];
  const lists = {};
  const failed = [];
  await Promise.all(wanted.map(async (kind) => {
    try {
      const answer = await api('GET', `/api/v1/${kind}`, {
        query: { active: 'true', per_page: 500, sort: SORTED.has(kind) ? 'sort_order' : 'code' }, signal,
      });
      const items = Array.isArray(answer.items) ? answer.items : [];
      lists[kind] = items.map((item) => ({ code: String(item.code ?? ''), text: entryText(kind, item) }));
    } catch (error) {
      if (error?.name === 'AbortError') throw error;
      lists[kind] = [];
      failed.push(kind);
    }
  }));
  Object.defineProperty(lists, 'failed', { value: failed, enumerable: false });
  return lists;
}

// How an entry of a master reads in a select: the phone book shows its section and
// number too (an operator picks a transfer target by them).
function entryText(kind, item) {
  const name = String(item.name ?? item.code ?? '');
  if (kind === 'directory') {
    const section = item.section ? ` ${item.section}` : '';
    const phone = item.phone ? `（${item.phone}）` : '';
    return `${name}${section}${phone}`;
  }
  return name;
}

// The [code, text] choices of a field: its master's entries or its own options.
export function choicesOf(field, lists, lang = getLang()) {
  if (field.choices) return (lists?.[field.choices] ?? []).map((e) => [e.code, e.text]);
  const options = Array.isArray(field.options) ? field.options : [];
  return options.map((o) => [String(o.code ?? ''), labelOf(o, lang)]);
}

// ---- drawing ----------------------------------------------------------------------------

function controlFor(field, id, value, lists, lang) {
  const name = field.name;
  const text = value === undefined || value === null ? '' : value;
  if (isSystem(field)) {
    return h('input', {
      type: 'text', id, name, readonly: true, value: String(text), placeholder: t('form.auto'),
      class: 'rf-system',
    });
  }
  switch (field.type) {
    case 'textarea':
      return h('textarea', { id, name, rows: 4, maxlength: field.max_length ?? null, value: String(text) });
    case 'choice': {
      const select = h('select', { id, name },
        h('option', { value: '' }, t('form.choose')),
        choicesOf(field, lists, lang).map(([code, label]) => h('option', { value: code }, label)));
      select.value = String(text);
      return select;
    }
    case 'number':
      return h('input', { type: 'number', id, name, inputmode: 'decimal', value: String(text) });
    case 'date':
      return h('input', { type: 'date', id, name, value: String(text) });
    case 'datetime':
      return h('input', { type: 'datetime-local', id, name, step: 60, value: String(text) });
    case 'faq_ids':
      return h('input', {
        type: 'text', id, name, inputmode: 'numeric', autocomplete: 'off',
        value: Array.isArray(text) ? text.join(' ') : String(text),
      });
    default:
      return h('input', { type: 'text', id, name, maxlength: field.max_length ?? null, value: String(text) });
  }
}

// The statuses a record in `current` may be given: a new record (current empty) only
// the initial one; otherwise the current one and its `next`.
export function statusChoices(definition, current) {
  const statuses = statusesOf(definition);
  if (!current) return statuses.filter((s) => s.initial === true);
  const here = statuses.find((s) => s.code === current);
  if (!here) return statuses.filter((s) => s.code === current || s.initial === true);
  const next = Array.isArray(here.next) ? here.next : [];
  return statuses.filter((s) => s === here || next.includes(s.code));
}

// Draws the record form of `definition` into `target` (a <form> or any element; its
// content is replaced): each visible field in order, labelled in the current language,
// with its required mark, then the status. lists: from loadChoiceLists. values: a record
// (field name -> value; `status` the current status). Each field's wrapper has
// data-field=<name> (forms.js setFieldError works on it). Returns {read, controls}.
export function renderRecordForm(target, definition, lists = {}, { values = {}, lang = getLang(), idPrefix = 'rf' } = {}) {
  const controls = {};
  const nodes = [];
  for (const field of fieldsOf(definition)) {
    if (!visible(field) || typeof field.name !== 'string') continue;
    const id = `${idPrefix}-${field.name}`;
    const control = controlFor(field, id, values[field.name], lists, lang);
    controls[field.name] = control;
    const required = field.required === true && !isSystem(field);
    if (required) control.required = true;
    let hint = null;
    if (field.type === 'faq_ids' && !isSystem(field)) hint = t('form.faq_hint', { count: MAX_FAQS });
    else if (field.choices && !(lists?.[field.choices]?.length)) hint = t('form.list_empty');
    const hintId = hint ? `${id}-hint` : null;
    if (hintId) control.setAttribute('aria-describedby', hintId);
    nodes.push(h('div', { class: `field rf-field rf-type-${field.type}`, dataset: { field: field.name } },
      h('div', { class: 'label-row' }, h('label', { htmlFor: id }, labelOf(field, lang)),
        required ? h('span', { class: 'req', 'aria-hidden': 'true' }, t('common.required')) : null),
      control,
      hint ? h('p', { class: 'hint', id: hintId }, hint) : null));
  }
  const statusId = `${idPrefix}-status`;
  const choices = statusChoices(definition, values.status);
  const status = h('select', { id: statusId, name: 'status' },
    choices.map((s) => h('option', { value: s.code }, labelOf(s, lang))));
  if (values.status) status.value = values.status;
  controls.status = status;
  nodes.push(h('div', { class: 'field rf-field rf-status', dataset: { field: 'status' } },
    h('div', { class: 'label-row' }, h('label', { htmlFor: statusId }, t('form.status'))), status));
  clear(target, nodes);
  return { controls, read: () => readValues(target, definition) };
}

// The values of a drawn form as a record: text as typed (trimmed), numbers as numbers,
// FAQ numbers as an array of integers (text that is not a number is kept, so validate()
// can say so); empty fields are left out.
export function readValues(form, definition) {
  const values = {};
  for (const field of [...fieldsOf(definition), { name: 'status', type: 'choice' }]) {
    if (typeof field.name !== 'string') continue;
    const control = form.querySelector(`[name="${CSS.escape(field.name)}"]`);
    if (!control || control.readOnly) continue;
    const raw = String(control.value ?? '').trim();
    if (raw === '') continue;
    if (field.type === 'number') {
      values[field.name] = Number.isFinite(Number(raw)) ? Number(raw) : raw;
    } else if (field.type === 'faq_ids') {
      values[field.name] = raw.split(/[\s,、，]+/).filter(Boolean)
        .map((p) => (/^[0-9]+$/.test(p) ? Number.parseInt(p, 10) : p));
    } else {
      values[field.name] = raw;
    }
  }
  return values;
}

function empty(value) {
  return value === undefined || value === null || (typeof value === 'string' && value.trim() === '') ||
    (Array.isArray(value) && value.length === 0);
}

// Checks a record's values against a definition as ncc-history will: every visible,
// required field that the user fills (not the system's) has a value; text within
// max_length; at most MAX_FAQS FAQ numbers, each a number; a number field holds a
// number; a choice among its own options. Returns [{field, code, message}] (empty when
// all is well); message is in the current language.
export function validate(definition, values = {}) {
  const problems = [];
  for (const field of fieldsOf(definition)) {
    if (typeof field.name !== 'string' || isSystem(field)) continue;
    const value = values[field.name];
    const label = labelOf(field);
    if (empty(value)) {
      if (field.required === true && visible(field)) {
        problems.push({ field: field.name, code: 'required', message: t('form.v_required', { field: label }) });
      }
      continue;
    }
    if ((field.type === 'text' || field.type === 'textarea') && field.max_length &&
        [...String(value)].length > field.max_length) {
      problems.push({ field: field.name, code: 'too_long', message: t('form.v_too_long', { field: label, max: field.max_length }) });
    } else if (field.type === 'number' && typeof value !== 'number') {
      problems.push({ field: field.name, code: 'not_number', message: t('form.v_not_number', { field: label }) });
    } else if (field.type === 'faq_ids') {
      const list = Array.isArray(value) ? value : [value];
      if (list.some((n) => !Number.isInteger(n) || n < 1)) {
        problems.push({ field: field.name, code: 'not_number', message: t('form.v_faq_numbers', { field: label }) });
      } else if (list.length > MAX_FAQS) {
        problems.push({ field: field.name, code: 'too_many', message: t('form.v_too_many_faqs', { field: label, count: MAX_FAQS }) });
      }
    } else if (field.type === 'choice' && !field.choices && Array.isArray(field.options) &&
        !field.options.some((o) => o.code === value)) {
      problems.push({ field: field.name, code: 'not_a_choice', message: t('form.v_not_a_choice', { field: label }) });
    }
  }
  return problems;
}

// Marks validate()'s problems on a drawn form (a message under each field); returns the
// first invalid control (to focus) or null. Earlier marks are removed first.
export function showProblems(form, problems) {
  for (const el of form.querySelectorAll('.rf-problem')) el.remove();
  for (const el of form.querySelectorAll('[aria-invalid="true"]')) el.removeAttribute('aria-invalid');
  let first = null;
  for (const problem of problems) {
    const wrapper = form.querySelector(`[data-field="${CSS.escape(problem.field)}"]`);
    const control = wrapper?.querySelector('input, select, textarea');
    if (!wrapper || !control) continue;
    const id = uid('rf-problem');
    wrapper.append(h('p', { class: 'field-error rf-problem', id }, problem.message));
    control.setAttribute('aria-invalid', 'true');
    const ids = (control.getAttribute('aria-describedby') ?? '').split(' ')
      .filter((x) => x && !x.startsWith('rf-problem'));
    control.setAttribute('aria-describedby', [...ids, id].join(' '));
    first ??= control;
  }
  return first;
}
