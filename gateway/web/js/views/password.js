// パスワード変更: POST /api/v1/me/password {current_password, new_password}.

import { api } from '../api.js';
import { h, clear, notice } from '../dom.js';
import { t } from '../i18n.js';
import { passwordField, clearErrors, setFieldError, showError, busy } from '../forms.js';

export async function mount(ctx) {
  const current = passwordField({
    label: t('password.current'), name: 'current_password', required: true, autocomplete: 'current-password',
  });
  const next = passwordField({
    label: t('password.new'), name: 'new_password', required: true, autocomplete: 'new-password',
    hint: t('password.new_hint'),
  });
  const again = passwordField({
    label: t('password.confirm'), name: 'confirm_password', required: true, autocomplete: 'new-password',
  });
  const submit = h('button', { type: 'submit', class: 'primary' }, t('password.submit'));
  const result = h('div');
  const form = h('form', { id: 'password-form', novalidate: true },
    current, next, again, h('div', { class: 'actions' }, submit));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    result.replaceChildren();
    if (!current.control.value) {
      setFieldError(form, 'current_password', t('field.current_password'));
      return;
    }
    if (!next.control.value) {
      setFieldError(form, 'new_password', t('field.password.required'));
      return;
    }
    if (next.control.value !== again.control.value) {
      setFieldError(form, 'confirm_password', t('password.mismatch'));
      return;
    }
    try {
      await busy(submit, t('common.saving'), () => api('POST', '/api/v1/me/password', {
        body: { current_password: current.control.value, new_password: next.control.value },
        signal: ctx.signal,
      }));
      form.reset();
      result.append(notice('ok', t('password.done')));
      result.firstChild.setAttribute('tabindex', '-1');
      result.firstChild.focus();
    } catch (error) {
      if (ctx.signal.aborted || error.status === 401) return;
      showError(form, error);
    }
  });

  clear(ctx.view, h('h2', { tabindex: '-1' }, t('password.heading')), ctx.flashSlot, result,
    h('section', { class: 'card narrow' }, form));
}
