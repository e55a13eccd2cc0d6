// The login screen: login ID and password; the one-time code (TOTP) field appears when
// the server asks for it (totp_required / invalid_totp), when this browser has seen that
// login need one before, or on request.

import { api, ApiError } from '../api.js';
import { h, clear } from '../dom.js';
import { t } from '../i18n.js';
import { field, passwordField, clearErrors, setFormError, setFieldError, errorText, busy } from '../forms.js';

// Logins that needed a code in this browser, as SHA-256 hex (the names themselves are
// not kept on a shared ward computer).
const TOTP_KEY = 'ncc.totpLogins';

async function loginDigest(login) {
  if (!globalThis.crypto?.subtle) return null;
  const bytes = new TextEncoder().encode(login.trim().toLowerCase());
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function rememberedDigests() {
  try {
    const list = JSON.parse(localStorage.getItem(TOTP_KEY) ?? '[]');
    return Array.isArray(list) ? list.filter((x) => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

async function rememberNeedsTotp(login) {
  const digest = await loginDigest(login);
  if (!digest) return;
  const list = rememberedDigests().filter((x) => x !== digest);
  list.unshift(digest);
  try {
    localStorage.setItem(TOTP_KEY, JSON.stringify(list.slice(0, 20)));
  } catch {
    // not remembered
  }
}

async function needsTotp(login) {
  const digest = await loginDigest(login);
  return digest !== null && rememberedDigests().includes(digest);
}

export async function mount(ctx) {
  const loginField = field({
    label: t('login.login'), name: 'login', required: true, autocomplete: 'username',
    autocapitalize: 'none', spellcheck: false, maxlength: 64,
  });
  const passwordBox = passwordField({
    label: t('login.password'), name: 'password', required: true, autocomplete: 'current-password',
  });
  const totpField = field({
    label: t('login.totp'), name: 'totp', hint: t('login.totp_hint'), autocomplete: 'one-time-code',
    inputmode: 'numeric', pattern: '[0-9]{6}', maxlength: 6, secret: true,
  });
  totpField.hidden = true;
  const showTotp = h('button', { type: 'button', class: 'link', 'aria-controls': totpField.control.id },
    t('login.totp_show'));
  const submit = h('button', { type: 'submit', class: 'primary' }, t('login.submit'));
  const form = h('form', { id: 'login-form', 'data-draft': true, novalidate: true, 'aria-labelledby': 'login-heading' },
    loginField, passwordBox, totpField,
    h('p', { class: 'totp-toggle' }, showTotp),
    h('div', { class: 'actions' }, submit));

  function revealTotp(focus) {
    totpField.hidden = false;
    showTotp.hidden = true;
    if (focus) totpField.control.focus();
  }
  showTotp.addEventListener('click', () => revealTotp(true));
  loginField.control.addEventListener('change', async () => {
    if (await needsTotp(loginField.control.value)) revealTotp(false);
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const login = loginField.control.value.trim();
    const password = passwordBox.control.value;
    const totp = totpField.control.value.replace(/\s+/g, '');
    if (!login || !password) {
      setFieldError(form, login ? 'password' : 'login', t('login.missing'));
      return;
    }
    if (!totpField.hidden && totp && !/^[0-9]{6}$/.test(totp)) {
      setFieldError(form, 'totp', t('login.totp_format'));
      return;
    }
    const body = { login, password };
    if (!totpField.hidden && totp) body.totp = totp;
    try {
      const data = await busy(submit, t('login.submitting'),
        () => api('POST', '/api/v1/session', { body, signIn: true }));
      if (body.totp) rememberNeedsTotp(login);
      passwordBox.control.value = '';
      totpField.control.value = '';
      await ctx.signedIn(data);
    } catch (error) {
      if (ctx.signal.aborted) return;
      if (error instanceof ApiError && (error.code === 'totp_required' || error.code === 'invalid_totp')) {
        rememberNeedsTotp(login);
        revealTotp(false);
        totpField.control.value = '';
        const box = setFormError(form, errorText(error), { focus: false });
        box.id = 'login-error';
        totpField.control.setAttribute('aria-invalid', 'true');
        totpField.control.setAttribute('aria-describedby', `${totpField.control.id}-hint login-error`);
        totpField.control.focus();
        return;
      }
      if (error instanceof ApiError && error.code === 'invalid_credentials') {
        passwordBox.control.value = '';
        setFormError(form, errorText(error), { focus: false });
        passwordBox.control.focus();
        return;
      }
      setFormError(form, errorText(error));
    }
  });

  clear(ctx.view,
    h('section', { class: 'login card', 'aria-labelledby': 'login-heading' },
      h('h2', { id: 'login-heading', tabindex: '-1' }, t('login.heading')),
      ctx.flashSlot,
      h('p', null, t('login.intro')),
      form,
      h('p', { class: 'note' }, h('a', { href: '#/status' }, t('login.status_link')))));
  ctx.focus = loginField.control;
}
