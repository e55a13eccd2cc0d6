// Form helpers: labelled fields, error messages a ward operator understands (from the
// API's error codes, never the raw English text alone), field errors next to their
// field, and drafts (what was typed, kept over a re-login or a language switch).

import { ApiError } from './api.js';
import { h, uid, notice } from './dom.js';
import { t, has, formatTime } from './i18n.js';

// ---- messages ---------------------------------------------------------------------

const STATUS_KEYS = {
  400: 'err.bad_request', 401: 'err.unauthorized', 403: 'err.forbidden', 404: 'err.not_found',
  409: 'err.conflict', 413: 'err.too_large', 422: 'err.invalid_field', 423: 'err.account_locked',
  429: 'err.too_many_attempts', 503: 'err.service_unavailable',
};

const RFC3339 = /\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})/;

// The message for an error, in the current language.
export function errorText(error) {
  if (!(error instanceof ApiError)) return t('err.unknown', { status: String(error?.message ?? error) });
  if (/csrf/i.test(error.code)) return t('err.csrf');
  let text;
  if (error.code !== 'invalid_field' && has(`err.${error.code}`)) text = t(`err.${error.code}`);
  else if (STATUS_KEYS[error.status]) text = t(STATUS_KEYS[error.status]);
  else if (error.status >= 500) text = t('err.internal');
  else text = t('err.unknown', { status: error.status });
  if (error.status === 423) {
    const until = RFC3339.exec(error.message ?? '');
    if (until) text += ` ${t('login.locked_until', { time: formatTime(until[0]) })}`;
  }
  return text;
}

const PASSWORD_REASONS = [
  [/required/i, 'required'],
  [/at least \d+ characters|too short/i, 'too_short'],
  [/kinds of characters/i, 'classes'],
  [/contain the login/i, 'contains_login'],
  [/common/i, 'common'],
  [/repeated/i, 'repeated'],
  [/too long/i, 'too_long'],
  [/control characters|UTF-8/i, 'invalid_char'],
];

// The message for a field error; `known` false when only a generic text fits (the
// server's own words are then shown as a detail).
export function fieldErrorText(error) {
  const field = error.field;
  if (error.status === 409) {
    if (field === 'login') return { text: t('conflict.login'), known: true };
    if (field === 'extension') return { text: t('conflict.extension'), known: true };
    if (field === 'roles' || field === 'active' || field === 'id') {
      return { text: t('conflict.last_admin'), known: true };
    }
  }
  if (field === 'password' || field === 'new_password') {
    for (const [pattern, reason] of PASSWORD_REASONS) {
      if (pattern.test(error.message ?? '')) return { text: t(`field.password.${reason}`), known: true };
    }
    return { text: t('field.password.other'), known: false };
  }
  if (has(`field.${field}`)) return { text: t(`field.${field}`), known: true };
  return { text: t('field.generic'), known: false };
}

// ---- fields -----------------------------------------------------------------------

// A labelled input: field({label, name, type, required, hint, value, autocomplete, ...}).
// Returns the wrapper; the control is wrapper.control.
export function field({ label, name, type = 'text', hint, required = false, secret = false,
  control: given, ...attrs }) {
  const id = attrs.id ?? uid(`f-${name}`);
  const control = given ?? h('input', { type, name, id, required, ...attrs });
  if (given) {
    control.id = id;
    control.name = name;
    if (required) control.required = true;
  }
  if (secret) control.dataset.secret = '';
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) control.setAttribute('aria-describedby', hintId);
  const wrapper = h('div', { class: 'field', dataset: { field: name } },
    h('div', { class: 'label-row' }, h('label', { htmlFor: id }, label),
      required ? h('span', { class: 'req', 'aria-hidden': 'true' }, t('common.required')) : null),
    control,
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null);
  wrapper.control = control;
  return wrapper;
}

// A <select> with [value, text] options.
export function select(options, value) {
  const el = h('select', null, options.map(([v, text]) => h('option', { value: v }, text)));
  if (value !== undefined && value !== null) el.value = value;
  return el;
}

// A password input with a "show" checkbox next to it.
export function passwordField(opts) {
  const wrapper = field({ ...opts, type: 'password', secret: true });
  const box = h('input', { type: 'checkbox', id: `${wrapper.control.id}-show`, class: 'show-toggle' });
  box.addEventListener('change', () => {
    wrapper.control.type = box.checked ? 'text' : 'password';
  });
  wrapper.append(h('div', { class: 'check inline' }, box,
    h('label', { htmlFor: box.id }, t('common.show_password'))));
  return wrapper;
}

// ---- errors on a form -------------------------------------------------------------

export function clearErrors(form) {
  for (const el of form.querySelectorAll('.field-error, .form-error')) el.remove();
  for (const el of form.querySelectorAll('[aria-invalid]')) {
    el.removeAttribute('aria-invalid');
    const ids = (el.getAttribute('aria-describedby') ?? '').split(' ')
      .filter((x) => x && !x.endsWith('-error'));
    if (ids.length) el.setAttribute('aria-describedby', ids.join(' '));
    else el.removeAttribute('aria-describedby');
  }
}

// Marks one field invalid with a message next to it; focuses it. False when the form
// has no such field.
export function setFieldError(form, name, text, detail) {
  const wrapper = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
  if (!wrapper) return false;
  const controls = wrapper.matches('input, select, textarea')
    ? [wrapper] : [...wrapper.querySelectorAll('input, select, textarea')].filter((c) => !c.classList.contains('show-toggle'));
  if (!controls.length) return false;
  const errorId = `${controls[0].id || uid('field')}-error`;
  const message = h('p', { class: 'field-error', id: errorId },
    text, detail ? t('common.server_detail', { message: detail }) : null);
  wrapper.append(message);
  for (const control of controls) {
    control.setAttribute('aria-invalid', 'true');
    const ids = (control.getAttribute('aria-describedby') ?? '').split(' ').filter(Boolean);
    ids.push(errorId);
    control.setAttribute('aria-describedby', ids.join(' '));
  }
  controls[0].focus();
  return true;
}

// A message for the whole form, at its top (role=alert); focused unless told not to.
export function setFormError(form, text, { focus = true } = {}) {
  const box = notice('error', text);
  box.classList.add('form-error');
  form.prepend(box);
  if (focus) {
    box.setAttribute('tabindex', '-1');
    box.focus();
  }
  return box;
}

// Shows an API error on a form: next to its field when the form has it, else on top.
export function showError(form, error) {
  clearErrors(form);
  if (error instanceof ApiError && error.field && (error.status === 400 || error.status === 422 || error.status === 409)) {
    const { text, known } = fieldErrorText(error);
    if (setFieldError(form, error.field, text, known ? null : error.message)) {
      setFormError(form, error.status === 409 ? text : t('err.invalid_field'), { focus: false });
      return;
    }
  }
  setFormError(form, errorText(error));
}

// ---- drafts -----------------------------------------------------------------------
// Forms with data-draft and an id take part. Password fields and [data-secret] are left
// out unless `secrets` (an in-memory capture, e.g. over a language switch).

function skipped(el, secrets) {
  if (!el.name || el.disabled) return true;
  if (['submit', 'button', 'reset', 'file', 'hidden'].includes(el.type)) return true;
  if (el.classList.contains('show-toggle')) return true;
  return !secrets && (el.type === 'password' || 'secret' in el.dataset);
}

export function captureForms(root, { secrets = false } = {}) {
  const out = {};
  for (const form of root.querySelectorAll('form[data-draft][id]')) {
    const entries = [];
    for (const el of form.elements) {
      if (skipped(el, secrets)) continue;
      if (el.type === 'checkbox' || el.type === 'radio') entries.push({ name: el.name, value: el.value, checked: el.checked });
      else entries.push({ name: el.name, value: el.value });
    }
    out[form.id] = entries;
  }
  return out;
}

// True when a capture holds something typed (a non-empty text).
export function hasTyped(capture) {
  return Object.values(capture).some((entries) =>
    entries.some((e) => !('checked' in e) && e.value.trim() !== ''));
}

export function restoreForms(root, capture) {
  let restored = false;
  for (const [id, entries] of Object.entries(capture ?? {})) {
    const form = root.querySelector(`form#${CSS.escape(id)}`);
    if (!form || !Array.isArray(entries)) continue;
    for (const entry of entries) {
      const candidates = [...form.elements].filter((el) => el.name === entry.name);
      for (const el of candidates) {
        if ('checked' in entry) {
          if ((el.type === 'checkbox' || el.type === 'radio') && el.value === entry.value) {
            if (el.checked !== entry.checked) {
              el.checked = entry.checked;
              el.dispatchEvent(new Event('change', { bubbles: true }));
            }
            restored = true;
          }
        } else if (el.type !== 'checkbox' && el.type !== 'radio' && typeof entry.value === 'string') {
          if (el.value !== entry.value) {
            el.value = entry.value;
            el.dispatchEvent(new Event('input', { bubbles: true }));
            el.dispatchEvent(new Event('change', { bubbles: true }));
          }
          restored = true;
        }
      }
    }
  }
  return restored;
}

// A button that shows it is busy while fn runs (and cannot be pressed twice).
export async function busy(button, busyText, fn) {
  const text = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  if (busyText) button.textContent = busyText;
  try {
    return await fn();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = text;
  }
}
