// マスタ管理 (administrators): one generic screen for every kind of master in KINDS
// (docs/masters.md): #/masters?kind=departments (list, search, pages, CSV export),
// #/masters/new?kind=.. and #/masters/{id}?kind=.. (create, edit, delete; an optional
// 適用日 schedules the change), #/masters/import?kind=.. (CSV: preview, then 取り込む),
// #/masters/history?kind=.. (変更履歴) and #/masters/scheduled?kind=.. (適用予定の変更).
// Server text is shown with DOM APIs only (h()).

import { api, ApiError, isAbort } from '../api.js';
import { h, clear, notice, pager, confirmDialog } from '../dom.js';
import { t, getLang, formatTime } from '../i18n.js';
import { field, select, clearErrors, setFieldError, setFormError, showError, errorText, busy } from '../forms.js';

const PER_PAGE = 50;

// The kinds: API path under /api/v1/, titles, columns (name = the JSON and CSV name).
// type: text | int | ref (another master's code). The code column is the key.
const CHOICE_COLUMNS = [
  { name: 'code', ja: 'コード', en: 'Code', required: true, max: 32 },
  { name: 'name', ja: '名称', en: 'Name', required: true, max: 100 },
  { name: 'sort_order', ja: '表示順', en: 'Display order', type: 'int' },
];
const SKILLS_HINT = { ja: 'スキルコードを空白で区切って入力（例: tax pension）', en: 'Skill codes separated by spaces (e.g. tax pension)' };
export const KINDS = [
  {
    kind: 'departments', ja: '所管課', en: 'Departments', codeField: 'code',
    columns: [
      { name: 'code', ja: '所管課コード', en: 'Code', required: true, max: 32 },
      { name: 'name', ja: '所管課名', en: 'Name', required: true, max: 100 },
      { name: 'parent_code', ja: '上位組織コード', en: 'Parent code', type: 'ref', max: 32 },
      { name: 'phone', ja: '電話番号', en: 'Phone', max: 32, inputmode: 'tel' },
    ],
  },
  {
    kind: 'directory', ja: '電話帳（転送先）', en: 'Phone book', codeField: 'code',
    columns: [
      { name: 'code', ja: 'コード', en: 'Code', required: true, max: 32 },
      { name: 'department_code', ja: '所管課コード', en: 'Department code', type: 'ref', required: true, max: 32 },
      { name: 'section', ja: '係・担当', en: 'Section', max: 100 },
      { name: 'name', ja: '名称', en: 'Name', required: true, max: 100 },
      { name: 'phone', ja: '電話番号', en: 'Phone', required: true, max: 32, inputmode: 'tel' },
      { name: 'hours', ja: '受付時間', en: 'Hours', max: 100 },
    ],
  },
  { kind: 'categories', ja: 'カテゴリー', en: 'Categories', codeField: 'code', columns: CHOICE_COLUMNS },
  { kind: 'reception-types', ja: '受付区分', en: 'Reception types', codeField: 'code', columns: CHOICE_COLUMNS },
  { kind: 'handling-types', ja: '対応区分', en: 'Handling types', codeField: 'code', columns: CHOICE_COLUMNS },
  {
    kind: 'faq-classes', ja: 'FAQ分類', en: 'FAQ classes', codeField: 'code',
    columns: [
      { name: 'code', ja: 'コード', en: 'Code', required: true, max: 32 },
      { name: 'name', ja: '分類名', en: 'Name', required: true, max: 100 },
      { name: 'parent_code', ja: '上位分類コード', en: 'Parent code', type: 'ref', max: 32 },
      { name: 'department_code', ja: '所管課コード', en: 'Department code', type: 'ref', max: 32 },
      { name: 'sort_order', ja: '表示順', en: 'Display order', type: 'int' },
    ],
  },
  // ACD (R25, docs/routing.md): what the PBX reads at GET /api/v1/pbx/routing.
  { kind: 'skills', ja: 'スキル', en: 'Skills', codeField: 'code', columns: CHOICE_COLUMNS },
  {
    kind: 'queues', ja: 'キュー', en: 'Queues', codeField: 'code',
    columns: [
      { name: 'code', ja: 'キューコード', en: 'Code', required: true, max: 32 },
      { name: 'name', ja: 'キュー名', en: 'Name', required: true, max: 100 },
      { name: 'department_code', ja: '所管課コード', en: 'Department code', type: 'ref', max: 32 },
      { name: 'skills', ja: '必要なスキル', en: 'Skills needed', max: 200, hint: SKILLS_HINT },
      { name: 'priority', ja: '優先度', en: 'Priority', type: 'int', hint: { ja: '大きいほど先に応答します', en: 'Higher is answered first' } },
      { name: 'max_wait_seconds', ja: '最大待ち時間（秒）', en: 'Longest wait (s)', type: 'int', hint: { ja: '超えるとあふれ先へ。0 は無制限', en: 'Then the call moves to the overflow queue; 0: no limit' } },
      { name: 'overflow_code', ja: 'あふれ先キュー', en: 'Overflow queue', type: 'ref', max: 32 },
      { name: 'distribution', ja: '振り分け方法', en: 'Distribution', max: 32, hint: { ja: 'longest_idle（待ち時間が最も長い人から。既定）、round_robin（順番）、fewest_calls（受けた件数の少ない人から）、ring_all（全員を同時に呼び出し）', en: 'longest_idle (default), round_robin, fewest_calls or ring_all' } },
    ],
  },
  {
    kind: 'routing-rules', ja: '着信ルール', en: 'Routing rules', codeField: 'code',
    columns: [
      { name: 'code', ja: 'ルールコード', en: 'Code', required: true, max: 32 },
      { name: 'name', ja: 'ルール名', en: 'Name', required: true, max: 100 },
      { name: 'priority', ja: '評価順', en: 'Order', type: 'int', hint: { ja: '小さいものから順に調べ、最初に合うルールを使います', en: 'Lowest first; the first rule that matches is used' } },
      { name: 'called_number', ja: '着信番号', en: 'Number called', max: 32, inputmode: 'tel', hint: { ja: '空欄はすべての番号', en: 'Empty: any number' } },
      { name: 'ivr_choice', ja: '音声ガイダンスの選択番号', en: 'IVR choice', max: 16, inputmode: 'tel', hint: { ja: '空欄はすべて', en: 'Empty: any' } },
      { name: 'weekdays', ja: '曜日', en: 'Days', max: 40, hint: { ja: '例: 月 火 水 木 金（空欄は毎日）', en: 'e.g. mon tue wed thu fri (empty: every day)' } },
      { name: 'hours', ja: '時間帯', en: 'Hours', max: 11, hint: { ja: '例: 08:30-17:15（空欄は終日）', en: 'e.g. 08:30-17:15 (empty: all day)' } },
      { name: 'queue_code', ja: '振り分け先キュー', en: 'Queue', type: 'ref', required: true, max: 32 },
      { name: 'skills', ja: '追加で必要なスキル', en: 'Extra skills needed', max: 200, hint: SKILLS_HINT },
    ],
  },
  {
    // R23: what the PBX plays; recording-notice is the notice before recording.
    kind: 'announcements', ja: 'アナウンス', en: 'Announcements', codeField: 'code',
    columns: [
      { name: 'code', ja: 'コード', en: 'Code', required: true, max: 32, hint: { ja: 'recording-notice は録音前のお知らせです', en: 'recording-notice is the notice played before recording' } },
      { name: 'name', ja: '名称', en: 'Name', required: true, max: 100 },
      { name: 'text_ja', ja: '読み上げ文（日本語）', en: 'Text (Japanese)', max: 500 },
      { name: 'text_en', ja: '読み上げ文（英語）', en: 'Text (English)', max: 500 },
    ],
  },
];

function label(item) {
  return getLang() === 'en' ? item.en : item.ja;
}

function kindOf(ctx) {
  const name = ctx.query.get('kind');
  return KINDS.find((k) => k.kind === name) ?? KINDS[0];
}

function base(kind) {
  return `/api/v1/${kind.kind}`;
}

function href(path, kind, extra = {}) {
  const query = new URLSearchParams({ kind: kind.kind });
  for (const [key, value] of Object.entries(extra)) if (value !== undefined && value !== '') query.set(key, value);
  return `#/masters${path}?${query.toString()}`;
}

function stop(ctx, error) {
  return isAbort(error) || ctx.signal.aborted || error?.status === 401;
}

// The heading, the kind switch and the sub-menu of one kind.
function header(ctx, kind, page, titleText) {
  const kinds = h('nav', { class: 'kinds', 'aria-label': t('masters.kinds_label') },
    h('ul', { class: 'tabs' }, KINDS.map((k) => h('li', null, h('a', {
      href: href('', k), 'aria-current': k === kind ? 'page' : null,
    }, label(k))))));
  const pages = [['', 'masters.tab_list'], ['/new', 'masters.tab_new'], ['/import', 'masters.tab_import'],
    ['/history', 'masters.tab_history'], ['/scheduled', 'masters.tab_scheduled']];
  const sub = h('nav', { class: 'subnav', 'aria-label': t('masters.sub_label') },
    h('ul', { class: 'tabs' }, pages.map(([path, key]) => h('li', null, h('a', {
      href: href(path, kind), 'aria-current': path === page ? 'page' : null,
    }, t(key))))));
  return [h('h2', { tabindex: '-1' }, t('masters.heading'), ': ', h('span', { class: 'subject' }, label(kind)),
    titleText ? ` - ${titleText}` : null), kinds, sub, ctx.flashSlot];
}

function showLoadError(ctx, kind, page, error) {
  if (stop(ctx, error)) return;
  clear(ctx.view, ...header(ctx, kind, page), notice('error', errorText(error)));
}

function text(value) {
  if (value === undefined || value === null || value === '') return t('common.dash');
  if (typeof value === 'boolean') return value ? t('masters.yes') : t('masters.no');
  return String(value);
}

// MasterValues (history, previews) as a list of "label: value".
function valuesList(kind, values) {
  if (!values || typeof values !== 'object') return t('common.dash');
  const items = [];
  for (const column of kind.columns) {
    if (values[column.name] !== undefined) items.push(h('li', null, `${label(column)}: `, text(values[column.name])));
  }
  if (values.active !== undefined) {
    items.push(h('li', null, `${t('masters.col_active')}: `, values.active === false ? t('masters.retired') : t('masters.active')));
  }
  return items.length ? h('ul', { class: 'values' }, items) : t('common.dash');
}

function isScheduled(answer) {
  return answer && typeof answer === 'object' && typeof answer.status === 'string' &&
    typeof answer.op === 'string' && 'effective_at' in answer;
}

// The message of a 409 from the masters API.
function conflictText(error) {
  if (error.field === 'version') return t('conflict.version');
  if (/referenc/i.test(error.code ?? '') || /referenc/i.test(error.message ?? '')) return t('masters.referenced');
  if (error.field === 'code') return t('masters.code_taken');
  return errorText(error);
}

// ---- #/masters?kind=.. ---------------------------------------------------------------

export const list = {
  async mount(ctx) {
    const kind = kindOf(ctx);
    const q = ctx.query.get('q') ?? '';
    const state = ['active', 'retired', 'all'].includes(ctx.query.get('state')) ? ctx.query.get('state') : 'all';
    const page = Math.max(1, Number.parseInt(ctx.query.get('page') ?? '1', 10) || 1);
    const qField = field({ label: t('masters.q'), name: 'q', type: 'search', value: q, maxlength: 200 });
    const stateField = field({
      label: t('masters.state'), name: 'state',
      control: select([['all', t('masters.state_all')], ['active', t('masters.state_active')],
        ['retired', t('masters.state_retired')]], state),
    });
    const form = h('form', { id: 'masters-search', class: 'search', role: 'search', 'data-draft': true, novalidate: true },
      h('fieldset', null, h('legend', null, t('masters.search_legend')),
        h('div', { class: 'row' }, qField, stateField,
          h('div', { class: 'actions' },
            h('button', { type: 'submit', class: 'primary' }, t('common.search')),
            h('a', { href: href('', kind), class: 'button secondary' }, t('common.clear'))))));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      ctx.navigate(href('', kind, { q: qField.control.value.trim(), state: stateField.control.value === 'all' ? '' : stateField.control.value }));
    });
    const active = state === 'active' ? 'true' : state === 'retired' ? 'false' : undefined;
    const exportQuery = (encoding) => {
      const query = new URLSearchParams();
      if (q) query.set('q', q);
      if (active) query.set('active', active);
      if (encoding) query.set('encoding', encoding);
      const s = query.toString();
      return `${base(kind)}/export.csv${s ? `?${s}` : ''}`;
    };
    const exports = h('p', { class: 'actions exports' },
      h('a', { href: exportQuery(''), download: `${kind.kind}.csv`, class: 'button secondary', id: 'export-utf8' }, t('masters.export_utf8')),
      h('a', { href: exportQuery('shift_jis'), download: `${kind.kind}.csv`, class: 'button secondary', id: 'export-sjis' }, t('masters.export_sjis')));
    const tableSlot = h('div', { class: 'table-wrap', 'aria-busy': 'true' }, h('p', { role: 'status' }, t('common.loading')));
    clear(ctx.view, ...header(ctx, kind, ''), form, exports, tableSlot);

    let answer;
    try {
      answer = await api('GET', base(kind), { query: { q, page, per_page: PER_PAGE, active }, signal: ctx.signal });
    } catch (error) {
      if (stop(ctx, error)) return;
      clear(tableSlot, notice('error', errorText(error)));
      tableSlot.setAttribute('aria-busy', 'false');
      return;
    }
    if (ctx.signal.aborted) return;
    const items = Array.isArray(answer.items) ? answer.items : [];
    const total = Number(answer.total ?? items.length);
    const body = h('tbody');
    for (const item of items) {
      const code = String(item[kind.codeField] ?? '');
      body.append(h('tr', { class: item.active === false ? 'retired' : null },
        kind.columns.map((c) => h('td', { class: `col-${c.name}` }, text(item[c.name]))),
        h('td', null, item.active === false ? t('masters.retired') : t('masters.active')),
        h('td', null, h('a', {
          href: href(`/${encodeURIComponent(String(item.id))}`, kind),
          'aria-label': t('masters.edit_label', { code }),
        }, t('masters.edit')))));
    }
    const table = h('table', { id: 'masters-table' },
      h('caption', null, t('masters.caption', { kind: label(kind) })),
      h('thead', null, h('tr', null, kind.columns.map((c) => h('th', { scope: 'col' }, label(c))),
        h('th', { scope: 'col' }, t('masters.col_active')), h('th', { scope: 'col' }, t('masters.col_actions')))),
      body);
    clear(tableSlot, items.length ? table : h('p', null, t('common.none')),
      pager({
        page, perPage: PER_PAGE, total, t, label: t('masters.caption', { kind: label(kind) }),
        href: (p) => ctx.hrefWith({ page: p > 1 ? String(p) : '' }, true),
      }));
    tableSlot.setAttribute('aria-busy', 'false');
  },
};

// ---- the form ------------------------------------------------------------------------

function checkbox(name, text, checked) {
  const id = `cb-${name}`;
  const input = h('input', { type: 'checkbox', name, id, value: 'on', checked });
  const wrapper = h('div', { class: 'check', dataset: { field: name } }, input, h('label', { htmlFor: id }, text));
  wrapper.control = input;
  return wrapper;
}

function effectiveField() {
  return field({ label: t('masters.effective_at'), name: 'effective_at', type: 'date', hint: t('masters.effective_at_hint') });
}

// The body from the form; null (with a field error shown) when something required is empty.
function readForm(form, kind, fields, { update }) {
  const body = {};
  for (const column of kind.columns) {
    const value = fields[column.name].control.value.trim();
    if (column.required && !value) {
      setFieldError(form, column.name, t('masters.required', { field: label(column) }));
      return null;
    }
    if (column.type === 'int') {
      if (value === '') continue;
      if (!/^-?[0-9]+$/.test(value)) {
        setFieldError(form, column.name, t('masters.not_number'));
        return null;
      }
      body[column.name] = Number.parseInt(value, 10);
    } else if (value !== '' || update) {
      body[column.name] = value;
    }
  }
  return body;
}

function formFields(kind, item) {
  const fields = {};
  for (const column of kind.columns) {
    const value = item?.[column.name];
    fields[column.name] = field({
      label: label(column), name: column.name, required: Boolean(column.required),
      type: column.type === 'int' ? 'number' : 'text', inputmode: column.inputmode,
      hint: column.hint ? label(column.hint) : undefined,
      value: value === undefined || value === null ? '' : String(value), maxlength: column.max, autocomplete: 'off',
    });
  }
  return fields;
}

function savedFlash(ctx, kind, answer, code, key) {
  if (isScheduled(answer)) ctx.flash('ok', 'masters.scheduled_done', { code, time: formatTime(answer.effective_at) });
  else ctx.flash('ok', key, { code });
  ctx.navigate(href('', kind));
}

export const create = {
  async mount(ctx) {
    const kind = kindOf(ctx);
    const fields = formFields(kind, null);
    const effective = effectiveField();
    const submit = h('button', { type: 'submit', class: 'primary' }, t('common.save'));
    const form = h('form', { id: `master-create-${kind.kind}`, 'data-draft': true, novalidate: true },
      Object.values(fields), effective,
      h('div', { class: 'actions' }, submit, h('a', { href: href('', kind), class: 'button secondary' }, t('common.cancel'))));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(form);
      const body = readForm(form, kind, fields, { update: false });
      if (!body) return;
      body.active = true;
      if (effective.control.value) body.effective_at = effective.control.value;
      let answer;
      try {
        answer = await busy(submit, t('common.saving'), () => api('POST', base(kind), { body, signal: ctx.signal }));
      } catch (error) {
        if (stop(ctx, error)) return;
        if (error instanceof ApiError && error.status === 409 && error.field === 'code') setFieldError(form, 'code', t('masters.code_taken'));
        else if (error instanceof ApiError && error.status === 409 && error.field !== 'code') setFormError(form, conflictText(error));
        else showError(form, error);
        return;
      }
      savedFlash(ctx, kind, answer, String(body[kind.codeField] ?? ''), 'masters.created');
    });
    clear(ctx.view, ...header(ctx, kind, '/new', t('masters.create_heading')), h('section', { class: 'card narrow' }, form));
  },
};

export const edit = {
  async mount(ctx) {
    const kind = kindOf(ctx);
    const id = ctx.params.id;
    clear(ctx.view, ...header(ctx, kind, '/edit'), h('p', { role: 'status' }, t('common.loading')));
    let item;
    try {
      item = await api('GET', `${base(kind)}/${encodeURIComponent(id)}`, { signal: ctx.signal });
    } catch (error) {
      showLoadError(ctx, kind, '/edit', error);
      return;
    }
    if (ctx.signal.aborted) return;
    const code = String(item[kind.codeField] ?? '');
    const fields = formFields(kind, item);
    const active = checkbox('active', t('masters.active_label'), item.active !== false);
    const effective = effectiveField();
    const submit = h('button', { type: 'submit', class: 'primary' }, t('common.save'));
    const remove = h('button', { type: 'button', class: 'danger' }, t('masters.delete'));
    const status = h('div');
    const form = h('form', { id: `master-edit-${kind.kind}-${id}`, 'data-draft': true, novalidate: true },
      Object.values(fields), active, effective,
      h('div', { class: 'actions' }, submit, h('a', { href: href('', kind), class: 'button secondary' }, t('common.cancel')), remove));

    const conflict = (error) => {
      if (error.field === 'version') {
        const button = h('button', { type: 'button', class: 'primary' }, t('conflict.reload'));
        button.addEventListener('click', () => ctx.reload());
        const box = notice('error', h('p', null, t('conflict.version')), h('p', null, button));
        box.id = 'conflict';
        status.append(box);
        button.focus();
      } else {
        setFormError(form, conflictText(error));
      }
    };

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(form);
      status.replaceChildren();
      const body = readForm(form, kind, fields, { update: true });
      if (!body) return;
      body.version = item.version;
      body.active = active.control.checked;
      if (effective.control.value) body.effective_at = effective.control.value;
      let answer;
      try {
        answer = await busy(submit, t('common.saving'), () => api('PATCH', `${base(kind)}/${encodeURIComponent(id)}`, { body, signal: ctx.signal }));
      } catch (error) {
        if (stop(ctx, error)) return;
        if (error instanceof ApiError && error.status === 409 && error.field === 'code') setFieldError(form, 'code', t('masters.code_taken'));
        else if (error instanceof ApiError && error.status === 409) conflict(error);
        else showError(form, error);
        return;
      }
      savedFlash(ctx, kind, answer, String(body[kind.codeField] ?? code), 'masters.saved');
    });

    remove.addEventListener('click', async () => {
      clearErrors(form);
      status.replaceChildren();
      const ok = await confirmDialog({
        title: t('masters.delete_title'), text: t('masters.delete_confirm', { code }),
        ok: t('masters.delete'), cancel: t('common.cancel'), danger: true,
      });
      if (!ok || ctx.signal.aborted) return;
      let answer;
      try {
        answer = await busy(remove, null, () => api('DELETE', `${base(kind)}/${encodeURIComponent(id)}`, {
          query: { version: item.version, effective_at: effective.control.value }, signal: ctx.signal,
        }));
      } catch (error) {
        if (stop(ctx, error)) return;
        if (error instanceof ApiError && error.status === 409) conflict(error);
        else setFormError(form, errorText(error));
        return;
      }
      savedFlash(ctx, kind, answer, code, 'masters.deleted');
    });

    clear(ctx.view, ...header(ctx, kind, '/edit', t('masters.edit_heading')), status,
      item.active === false ? notice('info', t('masters.is_retired')) : null,
      h('section', { class: 'card narrow' }, form));
  },
};

// ---- #/masters/import?kind=.. --------------------------------------------------------

const ACTIONS = { create: 'masters.action_create', update: 'masters.action_update', retire: 'masters.action_retire' };

function importResult(kind, result, preview) {
  const n = (v) => String(Number(v ?? 0));
  const counts = h('dl', { class: 'counts', id: 'import-counts' },
    h('dt', null, t('masters.count_create')), h('dd', { dataset: { count: 'create' } }, n(result.create)),
    h('dt', null, t('masters.count_update')), h('dd', { dataset: { count: 'update' } }, n(result.update)),
    h('dt', null, t('masters.count_unchanged')), h('dd', { dataset: { count: 'unchanged' } }, n(result.unchanged)),
    Number(result.retire ?? 0) ? [h('dt', null, t('masters.count_retire')), h('dd', { dataset: { count: 'retire' } }, n(result.retire))] : null);
  const rows = Array.isArray(result.rows) ? result.rows : [];
  const table = rows.length ? h('table', { id: 'import-rows' },
    h('caption', null, t('masters.rows_caption')),
    h('thead', null, h('tr', null, ['col_line', 'col_code', 'col_change', 'col_before', 'col_after']
      .map((key) => h('th', { scope: 'col' }, t(`masters.${key}`))))),
    h('tbody', null, rows.map((row) => h('tr', null,
      h('td', null, text(row.line)), h('td', null, text(row.code)),
      h('td', null, ACTIONS[row.action] ? t(ACTIONS[row.action]) : text(row.action)),
      h('td', null, valuesList(kind, row.before)), h('td', null, valuesList(kind, row.after)))))) : null;
  let summary;
  if (preview) summary = t('masters.preview_done');
  else if (result.scheduled) summary = t('masters.import_scheduled', { time: formatTime(result.scheduled.effective_at) });
  else summary = t('masters.import_done');
  const box = notice(preview ? 'info' : 'ok', h('p', null, summary));
  box.id = preview ? 'import-preview' : 'import-done';
  return [box, counts, table];
}

function importErrors(error) {
  const data = error.data ?? {};
  const errors = Array.isArray(data.errors) ? data.errors : [];
  const box = notice('error', h('p', null, errors.length ? t('masters.import_refused', { count: String(data.errors_total ?? errors.length) }) : errorText(error)));
  box.id = 'import-error';
  if (!errors.length) {
    if (error.message && error.status !== 0) box.append(h('p', null, t('common.server_detail', { message: error.message })));
    return [box];
  }
  const table = h('table', { id: 'import-errors' },
    h('caption', null, t('masters.errors_caption')),
    h('thead', null, h('tr', null, ['col_line', 'col_field', 'col_message'].map((key) => h('th', { scope: 'col' }, t(`masters.${key}`))))),
    h('tbody', null, errors.map((e) => h('tr', null, h('td', { class: 'line' }, text(e.line)), h('td', null, text(e.field)), h('td', null, text(e.message))))));
  return [box, table];
}

export const importView = {
  async mount(ctx) {
    const kind = kindOf(ctx);
    const file = field({ label: t('masters.file'), name: 'file', type: 'file', accept: '.csv,text/csv', required: true, hint: t('masters.file_hint', { columns: [...kind.columns.map((c) => c.name), 'active'].join(',') }) });
    const replace = checkbox('replace', t('masters.replace'), false);
    const effective = effectiveField();
    const previewButton = h('button', { type: 'submit', class: 'secondary' }, t('masters.preview'));
    const commitButton = h('button', { type: 'button', class: 'primary', id: 'import-commit', disabled: true }, t('masters.import'));
    const result = h('div', { id: 'import-result', 'aria-live': 'polite' });
    const form = h('form', { id: `master-import-${kind.kind}`, novalidate: true }, file, replace, effective,
      h('div', { class: 'actions' }, previewButton, commitButton));
    let data = null;
    file.control.addEventListener('change', () => {
      commitButton.disabled = true;
      result.replaceChildren();
    });

    async function send(preview) {
      clearErrors(form);
      const chosen = file.control.files?.[0];
      if (!chosen) {
        setFieldError(form, 'file', t('masters.file_required'));
        return;
      }
      data = await chosen.arrayBuffer();
      const query = { preview: preview ? '1' : undefined, replace: replace.control.checked ? '1' : undefined, effective_at: effective.control.value };
      let answer;
      try {
        answer = await busy(preview ? previewButton : commitButton, t('masters.sending'), () => api('POST', `${base(kind)}/import`, {
          query, raw: { data, type: 'text/csv' }, signal: ctx.signal,
        }));
      } catch (error) {
        if (stop(ctx, error)) return;
        commitButton.disabled = true;
        clear(result, ...importErrors(error));
        result.querySelector('.notice').setAttribute('tabindex', '-1');
        result.querySelector('.notice').focus();
        return;
      }
      clear(result, ...importResult(kind, answer, preview));
      commitButton.disabled = !preview;
      if (!preview) file.control.value = '';
    }
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      send(true);
    });
    commitButton.addEventListener('click', () => send(false));
    clear(ctx.view, ...header(ctx, kind, '/import', t('masters.import_heading')),
      h('p', null, t('masters.import_intro')), h('section', { class: 'card' }, form), result);
  },
};

// ---- #/masters/history?kind=.. -------------------------------------------------------

const OPS = { created: 'masters.op_created', updated: 'masters.op_updated', deleted: 'masters.op_deleted', retired: 'masters.op_retired' };
const SOURCES = { api: 'masters.source_api', import: 'masters.source_import', scheduled: 'masters.source_scheduled' };

export const history = {
  async mount(ctx) {
    const kind = kindOf(ctx);
    const code = ctx.query.get('code') ?? '';
    const page = Math.max(1, Number.parseInt(ctx.query.get('page') ?? '1', 10) || 1);
    const codeField = field({ label: t('masters.history_code'), name: 'code', type: 'search', value: code, maxlength: 32 });
    const form = h('form', { id: 'masters-history-search', class: 'search', role: 'search', novalidate: true },
      h('div', { class: 'row' }, codeField, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('common.search')))));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      ctx.navigate(href('/history', kind, { code: codeField.control.value.trim() }));
    });
    const slot = h('div', { class: 'table-wrap' }, h('p', { role: 'status' }, t('common.loading')));
    clear(ctx.view, ...header(ctx, kind, '/history', t('masters.history_heading')), form, slot);
    let answer;
    try {
      answer = await api('GET', `/api/v1/masters/${encodeURIComponent(kind.kind)}/history`, { query: { code, page, per_page: PER_PAGE }, signal: ctx.signal });
    } catch (error) {
      if (stop(ctx, error)) return;
      clear(slot, notice('error', errorText(error)));
      return;
    }
    if (ctx.signal.aborted) return;
    const items = Array.isArray(answer.items) ? answer.items : [];
    const total = Number(answer.total ?? items.length);
    const table = h('table', { id: 'masters-history' },
      h('caption', null, t('masters.history_caption', { kind: label(kind) })),
      h('thead', null, h('tr', null, ['col_at', 'col_actor', 'col_code', 'col_change', 'col_before', 'col_after', 'col_source']
        .map((key) => h('th', { scope: 'col' }, t(`masters.${key}`))))),
      h('tbody', null, items.map((e) => h('tr', null,
        h('td', null, e.at ? formatTime(e.at) : t('common.dash')), h('td', null, text(e.actor_login ?? e.actor_id)),
        h('td', null, text(e.code)), h('td', null, OPS[e.op] ? t(OPS[e.op]) : text(e.op)),
        h('td', null, valuesList(kind, e.before)), h('td', null, valuesList(kind, e.after)),
        h('td', null, SOURCES[e.source] ? t(SOURCES[e.source]) : text(e.source))))));
    clear(slot, items.length ? table : h('p', null, t('common.none')),
      pager({ page, perPage: PER_PAGE, total, t, label: t('masters.history_caption', { kind: label(kind) }),
        href: (p) => ctx.hrefWith({ page: p > 1 ? String(p) : '' }, true) }));
  },
};

// ---- #/masters/scheduled?kind=.. -----------------------------------------------------

const SOPS = { create: 'masters.action_create', update: 'masters.action_update', delete: 'masters.action_delete', import: 'masters.action_import' };

export const scheduled = {
  async mount(ctx) {
    const kind = kindOf(ctx);
    const slot = h('div', { class: 'table-wrap' }, h('p', { role: 'status' }, t('common.loading')));
    const status = h('div');
    clear(ctx.view, ...header(ctx, kind, '/scheduled', t('masters.scheduled_heading')), status, slot);
    let answer;
    try {
      answer = await api('GET', '/api/v1/masters/scheduled', { query: { kind: kind.kind, status: 'pending', per_page: 200 }, signal: ctx.signal });
    } catch (error) {
      if (stop(ctx, error)) return;
      clear(slot, notice('error', errorText(error)));
      return;
    }
    if (ctx.signal.aborted) return;
    const items = Array.isArray(answer.items) ? answer.items : [];
    const body = h('tbody');
    for (const s of items) {
      const cancel = h('button', { type: 'button', class: 'danger' }, t('masters.cancel_change'));
      cancel.addEventListener('click', async () => {
        status.replaceChildren();
        const ok = await confirmDialog({
          title: t('masters.cancel_title'), text: t('masters.cancel_confirm', { time: formatTime(s.effective_at) }),
          ok: t('masters.cancel_change'), cancel: t('common.cancel'), danger: true,
        });
        if (!ok || ctx.signal.aborted) return;
        try {
          await busy(cancel, null, () => api('DELETE', `/api/v1/masters/scheduled/${encodeURIComponent(String(s.id))}`, { signal: ctx.signal }));
        } catch (error) {
          if (stop(ctx, error)) return;
          status.append(notice('error', errorText(error)));
          return;
        }
        ctx.flash('ok', 'masters.cancelled');
        ctx.reload();
      });
      body.append(h('tr', null,
        h('td', null, s.effective_at ? formatTime(s.effective_at) : t('common.dash')),
        h('td', null, SOPS[s.op] ? t(SOPS[s.op]) : text(s.op)),
        h('td', null, s.op === 'import' ? t('masters.rows', { count: String(s.rows ?? 0) }) : text(s.code)),
        h('td', null, valuesList(kind, s.changes)),
        h('td', null, text(s.created_by)),
        h('td', null, cancel)));
    }
    const table = h('table', { id: 'masters-scheduled' },
      h('caption', null, t('masters.scheduled_caption', { kind: label(kind) })),
      h('thead', null, h('tr', null, ['col_effective', 'col_change', 'col_code', 'col_after', 'col_actor', 'col_actions']
        .map((key) => h('th', { scope: 'col' }, t(`masters.${key}`))))),
      body);
    clear(slot, items.length ? table : h('p', null, t('masters.no_scheduled')));
  },
};
