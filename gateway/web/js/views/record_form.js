// 記録フォーム設定 (administrators, #/settings/record-form; docs/record-form.md): the
// fields of the interaction record form (order, labels in Japanese and English,
// required, visible, choice list, fields of the ward's own) and the statuses of a record
// (labels, initial, final, where each may go next), with a live preview of the form
// exactly as an operator will see it, drawn from the unsaved draft by recordform.js with
// the real choice lists from the masters. Saving sends the whole definition with the
// version read (PUT /api/v1/settings/record-form): the server's problems are shown next
// to the row they concern; 409 says another administrator saved first and offers to
// reload. The latest changes (who, when, what) are listed below.

import { api, ApiError, isAbort } from '../api.js';
import { h, clear, notice, uid } from '../dom.js';
import { t, formatTime } from '../i18n.js';
import { busy, errorText } from '../forms.js';
import {
  BUILTINS, CUSTOM_NAME, LIST_KINDS, TYPES, labelOf, loadChoiceLists, renderRecordForm, readValues,
  validate, showProblems,
} from '../recordform.js';

const PATH = '/api/v1/settings/record-form';
const HISTORY_SHOWN = 10;

// An unsaved draft kept while the view is mounted again (a language switch): restored
// when the server still holds the version it was made from.
let kept = null;

const copy = (value) => JSON.parse(JSON.stringify(value ?? null));

function stop(ctx, error) {
  return isAbort(error) || ctx.signal.aborted || error?.status === 401;
}

function listName(kind) {
  const entry = LIST_KINDS.find((k) => k.kind === kind);
  return entry ? t(entry.key) : kind;
}

function typeName(type) {
  return TYPES.includes(type) ? t(`form.type_${type}`) : String(type ?? '');
}

// ---- small controls ------------------------------------------------------------------

// A labelled input bound to obj[prop]; path: where the server's problems land.
function textInput({ label, obj, prop, path, max, onChange, type = 'text' }) {
  const id = uid('rf-in');
  const value = obj[prop];
  const input = h('input', {
    type, id, value: value === undefined || value === null ? '' : String(value),
    maxlength: type === 'text' ? max ?? null : null, autocomplete: 'off', dataset: { path },
  });
  input.addEventListener('input', () => {
    const raw = input.value;
    if (type === 'number') {
      if (raw.trim() === '') delete obj[prop];
      else obj[prop] = Number(raw);
    } else {
      obj[prop] = raw;
    }
    onChange();
  });
  return h('div', { class: 'field rf-prop' }, h('label', { htmlFor: id }, label), input);
}

function checkInput({ label, obj, prop, path, onChange, disabled = false, fallback = false, hint }) {
  const id = uid('rf-cb');
  const value = obj[prop] === undefined ? fallback : obj[prop] === true;
  const input = h('input', { type: 'checkbox', id, checked: value, disabled, dataset: { path } });
  input.addEventListener('change', () => {
    obj[prop] = input.checked;
    onChange();
  });
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) input.setAttribute('aria-describedby', hintId);
  return h('div', { class: 'check rf-prop' }, input, h('label', { htmlFor: id }, label),
    hint ? h('span', { class: 'hint', id: hintId }, hint) : null);
}

function selectInput({ label, options, value, path, onChange }) {
  const id = uid('rf-sel');
  const select = h('select', { id, dataset: { path } },
    options.map(([v, text]) => h('option', { value: v }, text)));
  select.value = value;
  select.addEventListener('change', () => onChange(select.value));
  return h('div', { class: 'field rf-prop' }, h('label', { htmlFor: id }, label), select);
}

function readOnly(label, text) {
  return h('div', { class: 'field rf-prop' }, h('span', { class: 'rf-prop-label' }, label),
    h('span', { class: 'rf-fixed' }, text));
}

// Options as lines "code,ラベル,Label" in a textarea, bound to field.options.
function optionsInput(field, path, onChange) {
  const id = uid('rf-opt');
  const hintId = `${id}-hint`;
  const lines = (Array.isArray(field.options) ? field.options : [])
    .map((o) => [o.code ?? '', o.label_ja ?? '', o.label_en ?? ''].join(',').replace(/,+$/, ''));
  const area = h('textarea', {
    id, rows: Math.max(3, Math.min(8, lines.length + 1)), value: lines.join('\n'),
    dataset: { path: `${path}.options` }, 'aria-describedby': hintId,
  });
  area.addEventListener('input', () => {
    field.options = area.value.split('\n').map((line) => line.trim()).filter(Boolean).map((line) => {
      const [code = '', ja = '', en = ''] = line.split(/\s*[,，]\s*/);
      const option = { code: code.trim(), label_ja: ja.trim() };
      if (en.trim()) option.label_en = en.trim();
      return option;
    });
    onChange();
  });
  return h('div', { class: 'field rf-prop rf-wide' }, h('label', { htmlFor: id }, t('form.options')), area,
    h('p', { class: 'hint', id: hintId }, t('form.options_hint')));
}

// Enter in one of `inputs` presses `button` (instead of saving the whole form).
function enterAdds(inputs, button) {
  for (const input of inputs) {
    input.addEventListener('keydown', (event) => {
      if (event.key !== 'Enter') return;
      event.preventDefault();
      button.click();
    });
  }
}

// ---- what changed (history) -----------------------------------------------------------

const FIELD_PROPS = ['label_ja', 'label_en', 'type', 'required', 'visible', 'max_length', 'choices', 'options'];

function diffLines(before, after) {
  const lines = [];
  const b = Array.isArray(before?.fields) ? before.fields : [];
  const a = Array.isArray(after?.fields) ? after.fields : [];
  const byName = (list) => new Map(list.map((f) => [f.name, f]));
  const bm = byName(b);
  const am = byName(a);
  for (const f of a) if (!bm.has(f.name)) lines.push(t('form.diff_added', { field: labelOf(f) }));
  for (const f of b) if (!am.has(f.name)) lines.push(t('form.diff_removed', { field: labelOf(f) }));
  for (const f of a) {
    const old = bm.get(f.name);
    if (!old) continue;
    const props = FIELD_PROPS.filter((p) => JSON.stringify(old[p] ?? null) !== JSON.stringify(f[p] ?? null));
    if (props.length) lines.push(t('form.diff_changed', { field: labelOf(f), what: props.join(', ') }));
  }
  const order = (list) => list.map((f) => f.name).filter((n) => am.has(n) && bm.has(n)).join();
  if (order(b) !== order(a)) lines.push(t('form.diff_order'));
  if (JSON.stringify(before?.statuses ?? []) !== JSON.stringify(after?.statuses ?? [])) lines.push(t('form.diff_statuses'));
  return lines.length ? lines : [t('form.diff_none')];
}

// ---- the server's problems ------------------------------------------------------------

// The message for one problem {field, message} of a refused save.
function problemText(problem) {
  const field = String(problem.field ?? '');
  const message = String(problem.message ?? '');
  let key = 'form.p_generic';
  if (/\.label_(ja|en)$/.test(field)) key = /required/.test(message) ? 'form.p_label_required' : 'form.p_label_long';
  else if (/\.name$/.test(field)) key = 'form.p_name';
  else if (/\.type$/.test(field)) key = 'form.p_type';
  else if (/\.choices$/.test(field)) key = 'form.p_choices';
  else if (/\.options/.test(field)) key = 'form.p_options';
  else if (/\.max_length$/.test(field)) key = 'form.p_max_length';
  else if (/\.visible$/.test(field)) key = 'form.p_visible';
  else if (/\.required$/.test(field)) key = 'form.p_required';
  else if (/initial/.test(message)) key = 'form.p_initial';
  else if (/final/.test(message)) key = 'form.p_final';
  else if (/\.next/.test(field)) key = 'form.p_next';
  else if (/\.code$/.test(field)) key = 'form.p_code';
  else if (/^definition\.statuses\[\d+\]$/.test(field)) key = 'form.p_unreachable';
  else if (/must be on the form/.test(message)) key = 'form.p_missing';
  else if (/at most/.test(message)) key = 'form.p_too_many';
  return [t(key), message ? t('common.server_detail', { message }) : null];
}

// The element a path points at in the editor, or the nearest one above it.
function target(root, path) {
  let p = path;
  while (p) {
    const el = root.querySelector(`[data-path="${CSS.escape(p)}"]`);
    if (el) return el;
    const cut = p.match(/^(.*)(\.[a-z_]+|\[\d+\])$/);
    p = cut ? cut[1] : '';
  }
  return null;
}

function clearProblems(root) {
  for (const el of root.querySelectorAll('.rf-server-error')) el.remove();
  for (const el of root.querySelectorAll('[aria-invalid="true"]')) el.removeAttribute('aria-invalid');
}

// Puts each problem next to what it concerns; returns the first element to focus.
function showServerProblems(root, problems) {
  clearProblems(root);
  let first = null;
  for (const problem of problems) {
    const el = target(root, String(problem.field ?? '')) ?? root;
    const box = h('p', { class: 'field-error rf-server-error', role: 'alert', dataset: { for: String(problem.field ?? '') } },
      ...problemText(problem));
    if (el.matches('input, select, textarea')) {
      el.setAttribute('aria-invalid', 'true');
      const wrapper = el.closest('.rf-prop');
      if (wrapper) wrapper.append(box);
      else el.after(box);
      first ??= el;
    } else {
      const legend = el.querySelector(':scope > legend, :scope > h3');
      if (legend) legend.after(box);
      else el.prepend(box);
      first ??= box;
    }
  }
  return first;
}

// ---- the view -------------------------------------------------------------------------

export const view = {
  async mount(ctx) {
    clear(ctx.view, h('h2', { tabindex: '-1' }, t('form.heading')), ctx.flashSlot,
      h('p', { role: 'status' }, t('common.loading')));
    let form;
    let lists;
    try {
      [form, lists] = await Promise.all([
        api('GET', PATH, { signal: ctx.signal }),
        loadChoiceLists(null, { kinds: LIST_KINDS.map((k) => k.kind), signal: ctx.signal }),
      ]);
    } catch (error) {
      if (stop(ctx, error)) return;
      clear(ctx.view, h('h2', { tabindex: '-1' }, t('form.heading')), ctx.flashSlot, notice('error', errorText(error)));
      return;
    }
    if (ctx.signal.aborted) return;

    const state = {
      version: form.version,
      saved: copy(form.definition ?? {}),
      draft: copy(form.definition ?? {}),
      updatedAt: form.updated_at,
      updatedBy: form.updated_by,
    };
    let restored = false;
    if (kept && kept.version === state.version) {
      state.draft = copy(kept.draft);
      restored = true;
    }
    kept = null;
    state.draft.fields = Array.isArray(state.draft.fields) ? state.draft.fields : [];
    state.draft.statuses = Array.isArray(state.draft.statuses) ? state.draft.statuses : [];

    const status = h('div', { id: 'record-form-status', 'aria-live': 'polite' });
    const meta = h('p', { class: 'note', id: 'record-form-version' });
    const fieldList = h('div', { class: 'rf-rows', id: 'record-form-fields' });
    const statusList = h('div', { class: 'rf-rows', id: 'record-form-statuses' });
    const previewForm = h('form', { class: 'rf-form', id: 'record-form-preview-form', novalidate: true });
    const previewProblems = h('div', { 'aria-live': 'polite' });
    const dirtyNote = h('p', { class: 'note rf-dirty', id: 'record-form-dirty', hidden: true }, t('form.unsaved'));
    const historySlot = h('div', { id: 'record-form-history' });

    const dirty = () => JSON.stringify(state.draft) !== JSON.stringify(state.saved);
    const showMeta = () => {
      meta.textContent = t('form.version_info', {
        version: state.version, time: formatTime(state.updatedAt), who: state.updatedBy || t('form.initial_setting'),
      });
    };

    const renderPreview = () => {
      renderRecordForm(previewForm, state.draft, lists, { idPrefix: 'pv' });
      previewProblems.replaceChildren();
    };
    // Any change of the draft: the preview follows at once.
    const changed = () => {
      kept = { version: state.version, draft: copy(state.draft) };
      dirtyNote.hidden = !dirty();
      renderPreview();
    };
    // A change of structure (order, added, removed): the rows are drawn again.
    const restructure = (focus) => {
      renderFields();
      renderStatuses();
      changed();
      if (focus) document.querySelector(focus)?.focus();
    };

    // -- fields --
    const fieldRow = (field, i, count) => {
      const path = `definition.fields[${i}]`;
      const builtin = BUILTINS[field.name];
      const custom = !builtin;
      const legendText = h('span', null, labelOf(field));
      const props = [];
      const onLabel = () => {
        legendText.textContent = labelOf(field);
        changed();
      };
      props.push(textInput({ label: t('form.label_ja'), obj: field, prop: 'label_ja', path: `${path}.label_ja`, max: 60, onChange: onLabel }));
      props.push(textInput({ label: t('form.label_en'), obj: field, prop: 'label_en', path: `${path}.label_en`, max: 60, onChange: onLabel }));
      const textual = field.type === 'text' || field.type === 'textarea';
      if (custom || builtin.type === 'text' || builtin.type === 'textarea') {
        const types = custom ? TYPES : ['text', 'textarea'];
        props.push(selectInput({
          label: t('form.type'), options: types.map((ty) => [ty, typeName(ty)]), value: field.type, path: `${path}.type`,
          onChange: (value) => {
            field.type = value;
            if (value !== 'choice') {
              delete field.choices;
              delete field.options;
            }
            if (value !== 'text' && value !== 'textarea') delete field.max_length;
            restructure(`fieldset[data-name="${CSS.escape(field.name)}"] select[data-path$=".type"]`);
          },
        }));
      } else {
        props.push(readOnly(t('form.type'), typeName(field.type)));
      }
      const mustStay = Boolean(builtin?.kept);
      const system = Boolean(builtin?.system);
      props.push(checkInput({
        label: t('form.required'), obj: field, prop: 'required', path: `${path}.required`, onChange: changed,
        disabled: mustStay || system, hint: mustStay ? t('form.kept_hint') : system ? t('form.system_hint') : null,
      }));
      props.push(checkInput({
        label: t('form.visible'), obj: field, prop: 'visible', path: `${path}.visible`, onChange: changed,
        disabled: mustStay, fallback: true,
      }));
      if (textual) {
        props.push(textInput({ label: t('form.max_length'), obj: field, prop: 'max_length', path: `${path}.max_length`, type: 'number', onChange: changed }));
      }
      if (field.type === 'choice') {
        if (builtin?.choices) {
          props.push(readOnly(t('form.list'), listName(builtin.choices)));
        } else if (builtin) {
          props.push(optionsInput(field, path, changed));
        } else {
          const own = !field.choices;
          props.push(selectInput({
            label: t('form.list'),
            options: [...LIST_KINDS.map((k) => [k.kind, t(k.key)]), ['', t('form.list_own')]],
            value: field.choices ?? '', path: `${path}.choices`,
            onChange: (value) => {
              if (value) {
                field.choices = value;
                delete field.options;
              } else {
                delete field.choices;
                field.options = Array.isArray(field.options) ? field.options : [];
              }
              restructure(`fieldset[data-name="${CSS.escape(field.name)}"] select[data-path$=".choices"]`);
            },
          }));
          if (own) props.push(optionsInput(field, path, changed));
        }
      }
      const move = (delta, cls) => {
        const j = i + delta;
        const list = state.draft.fields;
        [list[i], list[j]] = [list[j], list[i]];
        restructure(`fieldset[data-name="${CSS.escape(field.name)}"] button.${cls}`);
      };
      const up = h('button', { type: 'button', class: 'secondary rf-up', disabled: i === 0, 'aria-label': t('form.move_up', { field: labelOf(field) }) }, '↑');
      up.addEventListener('click', () => move(-1, 'rf-up'));
      const down = h('button', { type: 'button', class: 'secondary rf-down', disabled: i === count - 1, 'aria-label': t('form.move_down', { field: labelOf(field) }) }, '↓');
      down.addEventListener('click', () => move(1, 'rf-down'));
      let remove = null;
      if (custom) {
        remove = h('button', { type: 'button', class: 'danger rf-remove' }, t('form.remove_field'));
        remove.addEventListener('click', () => {
          state.draft.fields.splice(i, 1);
          restructure('#record-form-add-field input');
        });
      }
      return h('fieldset', {
        class: `rf-row${field.visible === false ? ' rf-hidden' : ''}`, dataset: { path, name: String(field.name ?? '') },
      },
      h('legend', null, `${i + 1}. `, legendText, ' ', h('code', { class: 'rf-name' }, String(field.name ?? '')),
        custom ? h('span', { class: 'badge rf-custom' }, t('form.custom')) : null),
      h('div', { class: 'rf-grid' }, props),
      h('div', { class: 'rf-row-actions' }, up, down, remove));
    };
    const renderFields = () => {
      const rows = state.draft.fields.map((f, i) => fieldRow(f, i, state.draft.fields.length));
      clear(fieldList, rows);
    };

    // -- statuses --
    const statusRow = (st, j) => {
      const path = `definition.statuses[${j}]`;
      const others = state.draft.statuses.filter((o) => o !== st);
      const legendText = h('span', null, labelOf(st));
      const onLabel = () => {
        legendText.textContent = labelOf(st);
        changed();
      };
      const nextBoxes = others.map((o) => {
        const id = uid('rf-next');
        const current = () => (Array.isArray(st.next) ? st.next : []);
        const box = h('input', { type: 'checkbox', id, value: o.code, checked: current().includes(o.code) });
        box.addEventListener('change', () => {
          const rest = current().filter((c) => c !== o.code);
          st.next = box.checked ? [...rest, o.code] : rest;
          changed();
        });
        return h('span', { class: 'check inline rf-next' }, box, h('label', { htmlFor: id }, labelOf(o)));
      });
      const remove = h('button', { type: 'button', class: 'danger rf-remove' }, t('form.remove_status'));
      remove.addEventListener('click', () => {
        state.draft.statuses.splice(j, 1);
        for (const o of state.draft.statuses) {
          if (Array.isArray(o.next)) o.next = o.next.filter((c) => c !== st.code);
        }
        restructure('#record-form-add-status input');
      });
      return h('fieldset', { class: 'rf-row rf-status-row', dataset: { path, code: String(st.code ?? '') } },
        h('legend', null, legendText, ' ', h('code', { class: 'rf-name' }, String(st.code ?? ''))),
        h('div', { class: 'rf-grid' },
          textInput({ label: t('form.label_ja'), obj: st, prop: 'label_ja', path: `${path}.label_ja`, max: 60, onChange: onLabel }),
          textInput({ label: t('form.label_en'), obj: st, prop: 'label_en', path: `${path}.label_en`, max: 60, onChange: onLabel }),
          checkInput({ label: t('form.initial'), obj: st, prop: 'initial', path: `${path}.initial`, onChange: changed }),
          checkInput({ label: t('form.final'), obj: st, prop: 'final', path: `${path}.final`, onChange: changed }),
          h('fieldset', { class: 'rf-prop rf-wide rf-next-set', dataset: { path: `${path}.next` } },
            h('legend', null, t('form.next')), nextBoxes.length ? nextBoxes : h('span', { class: 'note' }, t('common.dash')))),
        h('div', { class: 'rf-row-actions' }, remove));
    };
    const renderStatuses = () => {
      clear(statusList, state.draft.statuses.map((st, j) => statusRow(st, j)));
    };

    // -- adding --
    const addFieldForm = () => {
      const nameId = uid('rf-new');
      const name = h('input', { type: 'text', id: nameId, maxlength: 30, autocomplete: 'off', 'aria-describedby': `${nameId}-hint` });
      const ja = h('input', { type: 'text', id: uid('rf-new'), maxlength: 60, autocomplete: 'off' });
      const en = h('input', { type: 'text', id: uid('rf-new'), maxlength: 60, autocomplete: 'off' });
      const type = h('select', { id: uid('rf-new') }, TYPES.map((ty) => h('option', { value: ty }, typeName(ty))));
      const error = h('p', { class: 'field-error', hidden: true });
      const add = h('button', { type: 'button', class: 'secondary' }, t('form.add_field'));
      add.addEventListener('click', () => {
        const full = `x_${name.value.trim()}`;
        let problem = null;
        if (!CUSTOM_NAME.test(full)) problem = t('form.new_name_bad');
        else if (state.draft.fields.some((f) => f.name === full)) problem = t('form.new_name_taken');
        else if (!ja.value.trim()) problem = t('form.new_label_missing');
        error.hidden = !problem;
        error.textContent = problem ?? '';
        if (problem) {
          (problem === t('form.new_label_missing') ? ja : name).focus();
          return;
        }
        const field = { name: full, label_ja: ja.value.trim(), type: type.value, required: false, visible: true };
        if (en.value.trim()) field.label_en = en.value.trim();
        if (type.value === 'choice') field.options = [];
        state.draft.fields.push(field);
        name.value = '';
        ja.value = '';
        en.value = '';
        restructure(`fieldset[data-name="${CSS.escape(full)}"] input`);
      });
      enterAdds([name, ja, en], add);
      return h('fieldset', { class: 'rf-add', id: 'record-form-add-field' },
        h('legend', null, t('form.add_field_legend')),
        h('div', { class: 'rf-grid' },
          h('div', { class: 'field rf-prop' }, h('label', { htmlFor: nameId }, t('form.new_name')),
            h('div', { class: 'rf-prefixed' }, h('span', { 'aria-hidden': 'true' }, 'x_'), name),
            h('p', { class: 'hint', id: `${nameId}-hint` }, t('form.new_name_hint'))),
          h('div', { class: 'field rf-prop' }, h('label', { htmlFor: ja.id }, t('form.label_ja')), ja),
          h('div', { class: 'field rf-prop' }, h('label', { htmlFor: en.id }, t('form.label_en')), en),
          h('div', { class: 'field rf-prop' }, h('label', { htmlFor: type.id }, t('form.type')), type)),
        error, h('div', { class: 'actions' }, add));
    };
    const addStatusForm = () => {
      const code = h('input', { type: 'text', id: uid('rf-st'), maxlength: 32, autocomplete: 'off' });
      const ja = h('input', { type: 'text', id: uid('rf-st'), maxlength: 60, autocomplete: 'off' });
      const en = h('input', { type: 'text', id: uid('rf-st'), maxlength: 60, autocomplete: 'off' });
      const error = h('p', { class: 'field-error', hidden: true });
      const add = h('button', { type: 'button', class: 'secondary' }, t('form.add_status'));
      add.addEventListener('click', () => {
        const c = code.value.trim();
        let problem = null;
        if (!/^[a-z][a-z0-9_]{0,31}$/.test(c)) problem = t('form.new_code_bad');
        else if (state.draft.statuses.some((s) => s.code === c)) problem = t('form.new_code_taken');
        else if (!ja.value.trim()) problem = t('form.new_label_missing');
        error.hidden = !problem;
        error.textContent = problem ?? '';
        if (problem) return;
        const st = { code: c, label_ja: ja.value.trim(), initial: false, final: false, next: [] };
        if (en.value.trim()) st.label_en = en.value.trim();
        state.draft.statuses.push(st);
        code.value = '';
        ja.value = '';
        en.value = '';
        restructure(`fieldset[data-code="${CSS.escape(c)}"] input`);
      });
      enterAdds([code, ja, en], add);
      return h('fieldset', { class: 'rf-add', id: 'record-form-add-status' },
        h('legend', null, t('form.add_status_legend')),
        h('div', { class: 'rf-grid' },
          h('div', { class: 'field rf-prop' }, h('label', { htmlFor: code.id }, t('form.status_code')), code),
          h('div', { class: 'field rf-prop' }, h('label', { htmlFor: ja.id }, t('form.label_ja')), ja),
          h('div', { class: 'field rf-prop' }, h('label', { htmlFor: en.id }, t('form.label_en')), en)),
        error, h('div', { class: 'actions' }, add));
    };

    // -- saving --
    const save = h('button', { type: 'submit', class: 'primary', id: 'record-form-save' }, t('common.save'));
    const discard = h('button', { type: 'button', class: 'secondary', id: 'record-form-discard' }, t('form.discard'));
    const editor = h('form', { id: 'record-form-editor', novalidate: true });

    // The definition as sent: no empty English labels, lists only where they belong.
    const outgoing = () => {
      const def = copy(state.draft);
      for (const f of def.fields) {
        if (typeof f.label_en === 'string' && !f.label_en.trim()) delete f.label_en;
        if (f.type !== 'choice') {
          delete f.choices;
          delete f.options;
        } else if (f.choices) {
          delete f.options;
        }
        if (f.max_length === undefined || f.max_length === null || Number.isNaN(f.max_length)) delete f.max_length;
      }
      for (const s of def.statuses) if (typeof s.label_en === 'string' && !s.label_en.trim()) delete s.label_en;
      return def;
    };

    const conflict = () => {
      const reload = h('button', { type: 'button', class: 'primary', id: 'record-form-reload' }, t('form.reload'));
      reload.addEventListener('click', () => {
        kept = null;
        ctx.reload();
      });
      const box = notice('error', h('p', null, t('form.conflict')), h('p', null, reload));
      box.id = 'record-form-conflict';
      status.replaceChildren(box);
      reload.focus();
    };

    editor.addEventListener('submit', async (event) => {
      event.preventDefault();
      status.replaceChildren();
      clearProblems(editor);
      let answer;
      try {
        answer = await busy(save, t('common.saving'), () => api('PUT', PATH, {
          body: { version: state.version, definition: outgoing() }, signal: ctx.signal,
        }));
      } catch (error) {
        if (stop(ctx, error)) return;
        if (error instanceof ApiError && error.status === 409) {
          conflict();
          return;
        }
        if (error instanceof ApiError && (error.status === 422 || error.status === 400) && error.field) {
          const list = Array.isArray(error.data?.errors) && error.data.errors.length
            ? error.data.errors : [{ field: error.field, message: error.message }];
          const box = notice('error', h('p', null, t('form.save_refused', { count: list.length })));
          box.id = 'record-form-refused';
          status.replaceChildren(box);
          const first = showServerProblems(editor, list);
          if (first) {
            if (!first.matches('input, select, textarea')) first.setAttribute('tabindex', '-1');
            first.focus();
          }
          return;
        }
        const box = notice('error', errorText(error));
        box.id = 'record-form-refused';
        status.replaceChildren(box);
        return;
      }
      state.version = answer.version;
      state.saved = copy(answer.definition ?? {});
      state.draft = copy(answer.definition ?? {});
      state.draft.fields = Array.isArray(state.draft.fields) ? state.draft.fields : [];
      state.draft.statuses = Array.isArray(state.draft.statuses) ? state.draft.statuses : [];
      state.updatedAt = answer.updated_at;
      state.updatedBy = answer.updated_by;
      kept = null;
      showMeta();
      restructure();
      const box = notice('ok', t('form.saved', { version: state.version }));
      box.id = 'record-form-saved';
      status.replaceChildren(box);
      loadHistory();
    });
    discard.addEventListener('click', () => {
      state.draft = copy(state.saved);
      kept = null;
      status.replaceChildren();
      clearProblems(editor);
      restructure();
    });

    // -- the preview's own check (recordform.js validate, as the desk will use it) --
    const check = h('button', { type: 'button', class: 'secondary', id: 'record-form-try' }, t('form.try_check'));
    check.addEventListener('click', () => {
      const problems = validate(state.draft, readValues(previewForm, state.draft));
      const first = showProblems(previewForm, problems);
      previewProblems.replaceChildren(problems.length
        ? notice('error', t('form.try_problems', { count: problems.length }))
        : notice('ok', t('form.try_ok')));
      first?.focus();
    });

    // -- history --
    const loadHistory = async () => {
      let answer;
      try {
        answer = await api('GET', `${PATH}/history`, { query: { per_page: HISTORY_SHOWN }, signal: ctx.signal });
      } catch (error) {
        if (stop(ctx, error)) return;
        clear(historySlot, notice('error', errorText(error)));
        return;
      }
      const items = Array.isArray(answer.items) ? answer.items : [];
      if (!items.length) {
        clear(historySlot, h('p', null, t('form.history_none')));
        return;
      }
      clear(historySlot, h('table', { id: 'record-form-history-table' },
        h('caption', null, t('form.history_caption', { count: HISTORY_SHOWN })),
        h('thead', null, h('tr', null, ['form.col_version', 'form.col_at', 'form.col_by', 'form.col_what']
          .map((key) => h('th', { scope: 'col' }, t(key))))),
        h('tbody', null, items.map((item) => h('tr', null,
          h('td', { class: 'num' }, String(item.version ?? '')),
          h('td', { class: 'nowrap' }, formatTime(item.at)),
          h('td', null, String(item.actor_login ?? item.actor_id ?? t('common.dash'))),
          h('td', null, h('ul', { class: 'values' }, diffLines(item.before, item.after).map((line) => h('li', null, line)))))))));
    };

    showMeta();
    renderFields();
    renderStatuses();
    renderPreview();
    dirtyNote.hidden = !dirty();
    const failed = lists.failed ?? [];
    editor.append(
      h('section', { class: 'rf-section', dataset: { path: 'definition.fields' } },
        h('h3', null, t('form.fields_heading')), h('p', { class: 'note' }, t('form.fields_intro')), fieldList, addFieldForm()),
      h('section', { class: 'rf-section', dataset: { path: 'definition.statuses' } },
        h('h3', null, t('form.statuses_heading')), h('p', { class: 'note' }, t('form.statuses_intro')), statusList, addStatusForm()),
      h('div', { class: 'actions rf-save' }, save, discard, dirtyNote));
    clear(ctx.view,
      h('h2', { tabindex: '-1' }, t('form.heading')), ctx.flashSlot,
      h('p', null, t('form.intro')), meta, status,
      restored ? notice('info', t('form.draft_restored')) : null,
      h('div', { class: 'rf-layout' },
        h('div', { class: 'rf-editor' }, editor),
        h('aside', { class: 'rf-preview card', id: 'record-form-preview', 'aria-labelledby': 'record-form-preview-title' },
          h('h3', { id: 'record-form-preview-title' }, t('form.preview_heading')),
          h('p', { class: 'note' }, t('form.preview_intro')),
          failed.length ? notice('info', t('form.lists_failed', { lists: failed.map(listName).join('、') })) : null,
          previewForm, h('div', { class: 'actions' }, check), previewProblems)),
      h('section', { class: 'rf-history' }, h('h3', null, t('form.history_heading')), historySlot));
    loadHistory();
  },
};
