// ユーザー管理 (administrators): #/users (list, search, role and state filters, pages),
// #/users/new (create; a TOTP secret made here is shown once), #/users/{id} (edit name,
// roles, extension, active; unlock; new password or TOTP secret; retire).
// A stale `version` answers 409: the admin is asked to reload.

import { api, ApiError, isAbort } from '../api.js';
import { h, clear, notice, pager, confirmDialog } from '../dom.js';
import { t, roleName, formatTime } from '../i18n.js';
import {
  field, select, passwordField, clearErrors, setFieldError, setFormError, showError, errorText, busy,
} from '../forms.js';
import { newTotpSecret, otpauthUri, newPassword } from '../secrets.js';

const ROLES = ['operator', 'supervisor', 'admin', 'staff'];
const PER_PAGE = 50;

function rolesText(roles) {
  return (Array.isArray(roles) ? roles : []).map(roleName).join(t('user.roles_sep')) || t('common.dash');
}

function isLocked(user) {
  return Boolean(user.locked_until) && new Date(user.locked_until).getTime() > Date.now();
}

function loadError(ctx, error) {
  if (isAbort(error) || ctx.signal.aborted || error?.status === 401) return;
  clear(ctx.view, h('h2', { tabindex: '-1' }, t('users.heading')), ctx.flashSlot,
    notice('error', errorText(error)));
}

// ---- #/users --------------------------------------------------------------------------

export const list = {
  async mount(ctx) {
    const q = ctx.query.get('q') ?? '';
    const role = ROLES.includes(ctx.query.get('role')) ? ctx.query.get('role') : '';
    const state = ['active', 'retired', 'all'].includes(ctx.query.get('state')) ? ctx.query.get('state') : 'active';
    const page = Math.max(1, Number.parseInt(ctx.query.get('page') ?? '1', 10) || 1);

    const qField = field({ label: t('users.q'), name: 'q', type: 'search', value: q, maxlength: 200 });
    const roleField = field({
      label: t('users.role'), name: 'role',
      control: select([['', t('users.role_all')], ...ROLES.map((r) => [r, roleName(r)])], role),
    });
    const stateField = field({
      label: t('users.state'), name: 'state',
      control: select([['active', t('users.state_active')], ['retired', t('users.state_retired')],
        ['all', t('users.state_all')]], state),
    });
    const form = h('form', { id: 'users-search', class: 'search', role: 'search', 'data-draft': true, novalidate: true },
      h('fieldset', null, h('legend', null, t('users.search_legend')),
        h('div', { class: 'row' }, qField, roleField, stateField,
          h('div', { class: 'actions' },
            h('button', { type: 'submit', class: 'primary' }, t('common.search')),
            h('a', { href: '#/users', class: 'button secondary' }, t('common.clear'))))));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      ctx.navigate(ctx.hrefWith({
        q: qField.control.value.trim(), role: roleField.control.value,
        state: stateField.control.value === 'active' ? '' : stateField.control.value,
      }));
    });

    const tableSlot = h('div', { class: 'table-wrap', 'aria-busy': 'true' }, h('p', { role: 'status' }, t('common.loading')));
    clear(ctx.view,
      h('div', { class: 'title-row' },
        h('h2', { tabindex: '-1' }, t('users.heading')),
        h('a', { href: '#/users/new', class: 'button primary' }, t('users.new'))),
      ctx.flashSlot, form, tableSlot);

    let answer;
    try {
      answer = await api('GET', '/api/v1/users', {
        query: {
          q, role, page, per_page: PER_PAGE,
          active: state === 'active' ? 'true' : state === 'retired' ? 'false' : undefined,
        },
        signal: ctx.signal,
      });
    } catch (error) {
      if (isAbort(error) || ctx.signal.aborted || error?.status === 401) return;
      clear(tableSlot, notice('error', errorText(error)));
      tableSlot.setAttribute('aria-busy', 'false');
      return;
    }
    if (ctx.signal.aborted) return;
    const items = Array.isArray(answer.items) ? answer.items : [];
    const total = Number(answer.total ?? items.length);
    const body = h('tbody');
    for (const user of items) {
      const name = String(user.name ?? '');
      const login = String(user.login ?? '');
      const stateCell = h('td', null, user.active === false ? t('users.retired') : t('users.active'));
      if (isLocked(user)) stateCell.append(' ', h('span', { class: 'badge warn' }, t('users.locked')));
      body.append(h('tr', { class: user.active === false ? 'retired' : null },
        h('td', { class: 'login' }, login),
        h('td', { class: 'name' }, name),
        h('td', null, rolesText(user.roles)),
        h('td', null, user.extension || t('common.dash')),
        stateCell,
        h('td', null, user.totp_enabled ? t('users.totp_on') : t('users.totp_off')),
        h('td', null, h('a', {
          href: `#/users/${encodeURIComponent(String(user.id))}`,
          'aria-label': t('users.edit_label', { name, login }),
        }, t('users.edit')))));
    }
    const table = h('table', { id: 'users-table' },
      h('caption', null, t('users.caption')),
      h('thead', null, h('tr', null,
        ['col_login', 'col_name', 'col_roles', 'col_extension', 'col_state', 'col_totp', 'col_actions']
          .map((key) => h('th', { scope: 'col' }, t(`users.${key}`))))),
      body);
    clear(tableSlot, items.length ? table : h('p', null, t('common.none')),
      pager({
        page, perPage: PER_PAGE, total, t, label: t('users.caption'),
        href: (p) => ctx.hrefWith({ page: p > 1 ? String(p) : '' }, true),
      }));
    tableSlot.setAttribute('aria-busy', 'false');
  },
};

// ---- shared form parts ----------------------------------------------------------------

function rolesFieldset(selected) {
  const fieldset = h('fieldset', { class: 'roles', dataset: { field: 'roles' } },
    h('legend', null, t('users.field_roles'), h('span', { class: 'req', 'aria-hidden': 'true' }, t('common.required'))));
  for (const role of ROLES) {
    const id = `role-${role}`;
    fieldset.append(h('div', { class: 'check' },
      h('input', { type: 'checkbox', name: 'roles', value: role, id, checked: selected.includes(role) }),
      h('label', { htmlFor: id }, roleName(role))));
  }
  return fieldset;
}

function checkedRoles(form) {
  return [...form.querySelectorAll('input[name="roles"]:checked')].map((el) => el.value);
}

function checkbox(name, label, checked = false) {
  const id = `cb-${name}`;
  const input = h('input', { type: 'checkbox', name, id, value: 'on', checked });
  const wrapper = h('div', { class: 'check', dataset: { field: name } }, input, h('label', { htmlFor: id }, label));
  wrapper.control = input;
  return wrapper;
}

// The once-only display of a new TOTP secret.
function secretPanel(login, secret) {
  const uri = otpauthUri(login, secret);
  return h('section', { class: 'card secret', 'aria-labelledby': 'totp-heading' },
    h('h3', { id: 'totp-heading' }, t('users.totp_heading')),
    h('p', { class: 'warning' }, t('users.totp_once')),
    h('dl', null,
      h('dt', null, t('users.totp_secret')),
      h('dd', null, h('code', { id: 'totp-secret', class: 'secret-text' }, secret)),
      h('dt', null, t('users.totp_uri')),
      h('dd', null, h('code', { id: 'totp-uri', class: 'secret-text' }, uri))));
}

function conflictBox(ctx) {
  const button = h('button', { type: 'button', class: 'primary' }, t('conflict.reload'));
  button.addEventListener('click', () => ctx.reload());
  const box = notice('error', h('p', null, t('conflict.version')), h('p', null, button));
  box.id = 'conflict';
  return box;
}

// ---- #/users/new ----------------------------------------------------------------------

export const create = {
  async mount(ctx) {
    const loginField = field({
      label: t('users.field_login'), name: 'login', required: true, hint: t('users.field_login_hint'),
      autocomplete: 'off', autocapitalize: 'none', spellcheck: false, maxlength: 64,
    });
    const nameField = field({ label: t('users.field_name'), name: 'name', required: true, autocomplete: 'off', maxlength: 200 });
    const roles = rolesFieldset(['operator']);
    const extensionField = field({
      label: t('users.field_extension'), name: 'extension', hint: t('users.field_extension_hint'),
      inputmode: 'tel', autocomplete: 'off', maxlength: 32,
    });
    const skillsField = field({
      label: t('users.field_skills'), name: 'skills', hint: t('users.field_skills_hint'),
      autocomplete: 'off', maxlength: 200,
    });
    const passwordBox = passwordField({
      label: t('users.field_password'), name: 'password', required: true, autocomplete: 'new-password',
      hint: t('users.field_password_hint'),
    });
    const generate = h('button', { type: 'button', class: 'secondary' }, t('users.generate_password'));
    generate.addEventListener('click', () => {
      passwordBox.control.value = newPassword();
      passwordBox.control.type = 'text';
      passwordBox.querySelector('.show-toggle').checked = true;
      passwordBox.control.focus();
    });
    passwordBox.append(h('p', null, generate));
    const totp = checkbox('totp_enroll', t('users.totp_enroll'));
    const totpNote = h('p', { class: 'hint', id: 'totp-admin-note' }, t('users.totp_admin_required'));
    totp.append(totpNote);
    const submit = h('button', { type: 'submit', class: 'primary' }, t('common.save'));
    const form = h('form', { id: 'user-create', 'data-draft': true, novalidate: true },
      loginField, nameField, roles, extensionField, skillsField, passwordBox, totp,
      h('div', { class: 'actions' }, submit, h('a', { href: '#/users', class: 'button secondary' }, t('common.cancel'))));

    // Administrators must have a TOTP secret: ticked and fixed while "admin" is.
    function syncTotp() {
      const admin = checkedRoles(form).includes('admin');
      if (admin) totp.control.checked = true;
      totp.control.disabled = admin;
      totpNote.hidden = !admin;
    }
    roles.addEventListener('change', syncTotp);
    syncTotp();

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(form);
      const body = {
        login: loginField.control.value.trim(),
        name: nameField.control.value.trim(),
        roles: checkedRoles(form),
        password: passwordBox.control.value,
        active: true,
      };
      if (!body.login) return void setFieldError(form, 'login', t('field.login'));
      if (!body.name) return void setFieldError(form, 'name', t('field.name'));
      if (!body.roles.length) return void setFieldError(form, 'roles', t('field.roles'));
      if (!body.password) return void setFieldError(form, 'password', t('field.password.required'));
      const extension = extensionField.control.value.trim();
      if (extension) body.extension = extension;
      const skills = skillsField.control.value.trim();
      if (skills) body.skills = skills;
      const secret = totp.control.checked ? newTotpSecret() : null;
      if (secret) body.totp_secret = secret;
      let user;
      try {
        user = await busy(submit, t('common.saving'),
          () => api('POST', '/api/v1/users', { body, signal: ctx.signal }));
      } catch (error) {
        if (isAbort(error) || ctx.signal.aborted || error?.status === 401) return;
        showError(form, error);
        return;
      }
      const login = String(user?.login ?? body.login);
      const again = h('button', { type: 'button', class: 'secondary' }, t('users.create_another'));
      again.addEventListener('click', () => ctx.reload());
      const done = notice('ok', t('users.created', { login }));
      done.id = 'user-created';
      clear(ctx.view,
        h('h2', { tabindex: '-1' }, t('users.create_heading')),
        done,
        secret ? secretPanel(login, secret) : null,
        h('div', { class: 'actions' },
          h('a', { href: '#/users', class: 'button primary' }, t('users.back_to_list')), again));
      ctx.view.querySelector('h2').focus();
    });

    clear(ctx.view, h('h2', { tabindex: '-1' }, t('users.create_heading')), ctx.flashSlot,
      h('section', { class: 'card narrow' }, form));
  },
};

// ---- #/users/{id} ---------------------------------------------------------------------

export const edit = {
  async mount(ctx) {
    const id = ctx.params.id;
    clear(ctx.view, h('h2', { tabindex: '-1' }, t('users.edit_heading')), ctx.flashSlot,
      h('p', { role: 'status' }, t('common.loading')));
    let user;
    try {
      user = await api('GET', `/api/v1/users/${encodeURIComponent(id)}`, { signal: ctx.signal });
    } catch (error) {
      loadError(ctx, error);
      return;
    }
    if (ctx.signal.aborted) return;
    const login = String(user.login ?? '');
    const name = String(user.name ?? '');

    const nameField = field({ label: t('users.field_name'), name: 'name', required: true, value: name, autocomplete: 'off', maxlength: 200 });
    const roles = rolesFieldset(Array.isArray(user.roles) ? user.roles : []);
    const extensionField = field({
      label: t('users.field_extension'), name: 'extension', value: user.extension ?? '',
      hint: t('users.field_extension_hint'), inputmode: 'tel', autocomplete: 'off', maxlength: 32,
    });
    const skillsField = field({
      label: t('users.field_skills'), name: 'skills', value: user.skills ?? '',
      hint: t('users.field_skills_hint'), autocomplete: 'off', maxlength: 200,
    });
    const active = checkbox('active', t('users.active_label'), user.active !== false);
    const locked = isLocked(user);
    const unlock = locked ? checkbox('unlock', t('users.unlock')) : null;
    const passwordBox = passwordField({
      label: t('users.new_password'), name: 'password', autocomplete: 'new-password',
      hint: t('users.field_password_hint'),
    });
    const totpReset = checkbox('totp_reset', t('users.totp_reset'));
    const submit = h('button', { type: 'submit', class: 'primary' }, t('common.save'));
    const retire = h('button', { type: 'button', class: 'danger' }, t('users.retire'));
    const status = h('div');
    const form = h('form', { id: `user-edit-${id}`, 'data-draft': true, novalidate: true },
      h('dl', { class: 'fixed' }, h('dt', null, t('users.login_fixed')), h('dd', { class: 'login' }, login)),
      nameField, roles, extensionField, skillsField, active,
      locked ? h('div', { class: 'locked' },
        notice('info', t('users.locked_until', { time: formatTime(user.locked_until) })), unlock) : null,
      passwordBox, totpReset,
      h('div', { class: 'actions' }, submit,
        h('a', { href: '#/users', class: 'button secondary' }, t('common.cancel')),
        user.active !== false ? retire : null));

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(form);
      status.replaceChildren();
      const body = {
        version: user.version,
        name: nameField.control.value.trim(),
        roles: checkedRoles(form),
        extension: extensionField.control.value.trim(),
        skills: skillsField.control.value.trim(),
        active: active.control.checked,
      };
      if (!body.name) return void setFieldError(form, 'name', t('field.name'));
      if (!body.roles.length) return void setFieldError(form, 'roles', t('field.roles'));
      if (unlock?.control.checked) body.unlock = true;
      if (passwordBox.control.value) body.password = passwordBox.control.value;
      const secret = totpReset.control.checked ? newTotpSecret() : null;
      if (secret) body.totp_secret = secret;
      let saved;
      try {
        saved = await busy(submit, t('common.saving'), () => api('PATCH',
          `/api/v1/users/${encodeURIComponent(id)}`, { body, signal: ctx.signal }));
      } catch (error) {
        if (isAbort(error) || ctx.signal.aborted || error?.status === 401) return;
        if (error instanceof ApiError && error.status === 409 && error.field === 'version') {
          status.append(conflictBox(ctx));
          status.querySelector('button').focus();
          return;
        }
        showError(form, error);
        return;
      }
      ctx.userChanged(saved);
      if (secret) {
        clear(ctx.view, h('h2', { tabindex: '-1' }, t('users.edit_heading')),
          notice('ok', t('users.saved', { login: String(saved?.login ?? login) })),
          secretPanel(String(saved?.login ?? login), secret),
          h('div', { class: 'actions' }, h('a', { href: '#/users', class: 'button primary' }, t('users.back_to_list'))));
        ctx.view.querySelector('h2').focus();
        return;
      }
      ctx.flash('ok', 'users.saved', { login: String(saved?.login ?? login) });
      ctx.navigate('#/users');
    });

    retire.addEventListener('click', async () => {
      clearErrors(form);
      status.replaceChildren();
      const ok = await confirmDialog({
        title: t('users.retire_title'), text: t('users.retire_confirm', { name, login }),
        ok: t('users.retire_ok'), cancel: t('common.cancel'), danger: true,
      });
      if (!ok || ctx.signal.aborted) return;
      try {
        await busy(retire, null, () => api('DELETE', `/api/v1/users/${encodeURIComponent(id)}`, {
          query: { version: user.version }, signal: ctx.signal,
        }));
      } catch (error) {
        if (isAbort(error) || ctx.signal.aborted || error?.status === 401) return;
        if (error instanceof ApiError && error.status === 409 && error.field === 'version') {
          status.append(conflictBox(ctx));
          status.querySelector('button').focus();
          return;
        }
        if (error instanceof ApiError && error.status === 409) {
          setFormError(form, t('conflict.last_admin'));
          return;
        }
        setFormError(form, errorText(error));
        return;
      }
      ctx.flash('ok', 'users.retired_done', { login });
      ctx.navigate('#/users');
    });

    clear(ctx.view,
      h('h2', { tabindex: '-1' }, t('users.edit_heading'), ': ', h('span', { class: 'subject' }, name)),
      ctx.flashSlot, status,
      user.active === false ? notice('info', t('users.is_retired')) : null,
      h('section', { class: 'card narrow' }, form));
  },
};
