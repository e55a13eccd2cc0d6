// FAQ screens of supervisors and administrators (docs/faq.md, docs/web.md):
//   #/faq/new, #/faq/{id}/edit   the editor beside a preview of the residents' page
//   #/faq/{id}/history           every version, and the differences between two of them
//   #/faq/review                 the approval queue (review -> approve, or back to draft);
//                                staff: the FAQs of the departments they review
//   #/faq/reviewers              department reviewers (所管課の確認者): admins edit, others read
//   #/faq/synonyms               synonym groups (GET|PUT /api/v1/faq-synonyms)
//   #/faq/zero-hits              searches that found nothing (staff too)
//   #/faq/import                 CSV import (preview, errors by line) and export links
// Server text is shown with DOM APIs only (h()).

import { api, ApiError } from '../api.js';
import { h, clear, notice, pager } from '../dom.js';
import { t, formatTime } from '../i18n.js';
import { field, select, clearErrors, setFieldError, setFormError, showError, errorText, busy } from '../forms.js';
import {
  header, isEditor, loadChoices, categoryField, publicLook, statusText, statusBadge, visibilityText, stop, text,
  loadReviewers, mayApprove, approveRefusedText,
} from './faq.js';

const QUESTION_MAX = 500;
const ANSWER_MAX = 20000;
const KEYWORDS_MAX = 1000;
const WORD_MAX = 50;
const GROUP_WORDS_MAX = 20;

// Field errors of the FAQ API, in words an editor understands.
const FIELD_KEYS = {
  question: 'faq.err_question', answer: 'faq.err_answer', keywords: 'faq.err_keywords', category: 'faq.err_category',
  department_code: 'faq.err_department', visibility: 'faq.err_generic', status: 'faq.err_generic', number: 'faq.err_number',
};

function idOf(ctx) {
  return encodeURIComponent(String(ctx.params.id));
}

// ---- the editor ------------------------------------------------------------------------

function departmentOptions(departments, current) {
  const options = [['', t('faq.no_department')], ...departments.map((d) => [String(d.code ?? ''), `${d.name ?? ''}（${d.code ?? ''}）`])];
  if (current && !departments.some((d) => d.code === current)) options.push([current, current]);
  return options;
}

function editorForm(ctx, { item, departments, classes }) {
  const isNew = !item;
  const prefill = isNew ? (ctx.query.get('question') ?? '') : '';
  const fields = {};
  if (isNew) {
    fields.number = field({ label: t('faq.f_number'), name: 'number', inputmode: 'numeric', autocomplete: 'off', maxlength: 12, hint: t('faq.number_hint') });
  }
  fields.question = field({ label: t('faq.f_question'), name: 'question', required: true, maxlength: QUESTION_MAX, autocomplete: 'off', value: item?.question ?? prefill });
  const answerCount = h('p', { class: 'hint faq-count', 'aria-live': 'polite' });
  fields.answer = field({
    label: t('faq.f_answer'), name: 'answer', required: true, hint: t('faq.answer_hint'),
    control: h('textarea', { rows: 14, maxlength: ANSWER_MAX, class: 'faq-answer-input' }),
  });
  fields.answer.control.value = item?.answer ?? '';
  fields.answer.append(answerCount);
  fields.department_code = field({
    label: t('faq.f_department'), name: 'department_code',
    control: select(departmentOptions(departments, item?.department_code), item?.department_code ?? ''),
  });
  fields.category = categoryField(classes, item?.category ?? '', 'faq-edit-category');
  fields.visibility = field({
    label: t('faq.f_visibility'), name: 'visibility', hint: t('faq.visibility_hint'),
    control: select([['internal', visibilityText('internal')], ['public', visibilityText('public')]], item?.visibility ?? 'internal'),
  });
  fields.keywords = field({ label: t('faq.f_keywords'), name: 'keywords', maxlength: KEYWORDS_MAX, autocomplete: 'off', value: item?.keywords ?? '', hint: t('faq.keywords_hint') });

  const preview = h('div', { id: 'faq-preview', class: 'faq-preview-body' });
  const previewNote = h('p', { class: 'hint', id: 'faq-preview-note' });
  // The preview is drawn again only when what it shows changed: the 'change' that a field
  // fires when it loses focus (on the mousedown of a click on 保存) used to replace the
  // preview's nodes, and Chromium's scroll anchoring could then move the page between the
  // mousedown and the mouseup, so the click on the button was lost.
  let shown = null;
  const update = () => {
    const code = fields.department_code.control.value;
    const dep = departments.find((d) => d.code === code);
    const look = {
      number: fields.number ? fields.number.control.value.trim() || null : item?.number,
      question: fields.question.control.value,
      answer: fields.answer.control.value,
      department_name: dep ? dep.name : code,
    };
    const key = JSON.stringify(look);
    if (key !== shown) {
      shown = key;
      clear(preview, publicLook(look, 'h4'));
    }
    const count = t('faq.char_count', { count: String(fields.answer.control.value.length), max: String(ANSWER_MAX) });
    if (answerCount.textContent !== count) answerCount.textContent = count;
    const note = fields.visibility.control.value === 'public' ? t('faq.preview_public') : t('faq.preview_internal');
    if (previewNote.textContent !== note) previewNote.textContent = note;
  };

  const save = h('button', { type: 'submit', class: 'primary', value: 'save', id: 'faq-save' }, isNew ? t('faq.save_draft') : t('common.save'));
  const saveReview = h('button', { type: 'submit', class: 'secondary', value: 'review', id: 'faq-save-review' }, t('faq.save_review'));
  const cancel = h('a', { href: isNew ? '#/faq' : `#/faq/${idOf(ctx)}`, class: 'button secondary' }, t('common.cancel'));
  const status = h('div', { class: 'faq-editor-status' });
  const form = h('form', { id: isNew ? 'faq-create' : `faq-edit-${item.id}`, class: 'faq-editor', 'data-draft': true, novalidate: true },
    item?.status === 'published' ? notice('info', t('faq.edit_published_note')) : null,
    Object.values(fields),
    h('div', { class: 'actions' }, save, saveReview, cancel));
  form.addEventListener('input', update);
  form.addEventListener('change', update);
  update();

  const fail = (error) => {
    if (error instanceof ApiError && error.status === 409 && error.field === 'version') {
      const button = h('button', { type: 'button', class: 'primary' }, t('conflict.reload'));
      button.addEventListener('click', () => ctx.reload());
      const box = notice('error', h('p', null, t('faq.version_conflict')), h('p', null, button));
      box.id = 'conflict';
      clear(status, box);
      button.focus();
      return;
    }
    if (error instanceof ApiError && error.status === 409 && error.field === 'number') {
      setFieldError(form, 'number', t('faq.number_taken'));
      return;
    }
    if (error instanceof ApiError && error.status === 422 && FIELD_KEYS[error.field]) {
      setFormError(form, t('err.invalid_field'), { focus: false });
      setFieldError(form, error.field, t(FIELD_KEYS[error.field]));
      return;
    }
    showError(form, error);
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    status.replaceChildren();
    const review = event.submitter?.value === 'review';
    const value = (name) => fields[name].control.value;
    if (!value('question').trim()) {
      setFieldError(form, 'question', t('faq.err_question'));
      return;
    }
    if (!value('answer').trim()) {
      setFieldError(form, 'answer', t('faq.err_answer'));
      return;
    }
    const body = {};
    if (isNew) {
      const number = value('number').trim();
      if (number && !/^[0-9]{1,12}$/.test(number)) {
        setFieldError(form, 'number', t('faq.err_number'));
        return;
      }
      if (number) body.number = Number.parseInt(number, 10);
      for (const name of ['question', 'answer', 'department_code', 'category', 'visibility', 'keywords']) {
        const v = name === 'answer' ? value(name) : value(name).trim();
        if (v !== '') body[name] = v;
      }
      body.status = review ? 'review' : 'draft';
    } else {
      // Only what changed is sent: an unchanged text does not send a published FAQ back to review.
      for (const name of ['question', 'answer', 'department_code', 'category', 'visibility', 'keywords']) {
        const v = name === 'answer' ? value(name) : value(name).trim();
        if (v !== String(item[name] ?? '')) body[name] = v;
      }
      if (review && item.status !== 'review') body.status = 'review';
      if (!Object.keys(body).length) {
        clear(status, notice('info', t('faq.nothing_changed')));
        return;
      }
      body.version = item.version;
    }
    let answer;
    try {
      answer = await busy(event.submitter ?? save, t('common.saving'), () => (isNew
        ? api('POST', '/api/v1/faqs', { body, signal: ctx.signal })
        : api('PATCH', `/api/v1/faqs/${idOf(ctx)}`, { body, signal: ctx.signal })));
    } catch (error) {
      if (stop(ctx, error)) return;
      fail(error);
      return;
    }
    const number = String(answer.number ?? item?.number ?? '');
    if (isNew) ctx.flash('ok', review ? 'faq.created_review' : 'faq.created', { number });
    else ctx.flash('ok', answer.status === 'review' ? 'faq.saved_review' : 'faq.saved', { number });
    ctx.navigate(`#/faq/${encodeURIComponent(String(answer.id ?? item?.id))}`);
  });

  return h('div', { class: 'faq-edit-layout' },
    h('section', { class: 'card', 'aria-labelledby': 'faq-form-title' }, h('h3', { id: 'faq-form-title' }, t('faq.form_title')), status, form),
    h('section', { class: 'card faq-preview', 'aria-labelledby': 'faq-preview-title' },
      h('h3', { id: 'faq-preview-title' }, t('faq.preview_title')), previewNote, preview));
}

export const create = {
  async mount(ctx) {
    clear(ctx.view, ...header(ctx, '/new', t('faq.new_heading')), h('p', { role: 'status' }, t('common.loading')));
    const choices = await loadChoices(ctx);
    if (ctx.signal.aborted) return;
    clear(ctx.view, ...header(ctx, '/new', t('faq.new_heading')), editorForm(ctx, { item: null, ...choices }));
    ctx.focus = ctx.view.querySelector('input[name="question"]');
  },
};

export const edit = {
  async mount(ctx) {
    clear(ctx.view, ...header(ctx, null, t('faq.edit_heading')), h('p', { role: 'status' }, t('common.loading')));
    let item;
    let choices;
    try {
      [item, choices] = await Promise.all([
        api('GET', `/api/v1/faqs/${idOf(ctx)}`, { signal: ctx.signal }), loadChoices(ctx)]);
    } catch (error) {
      if (stop(ctx, error)) return;
      clear(ctx.view, ...header(ctx, null, t('faq.edit_heading')), notice('error', errorText(error)));
      return;
    }
    if (ctx.signal.aborted) return;
    clear(ctx.view, ...header(ctx, null, t('faq.edit_heading_number', { number: String(item.number) })),
      h('p', null, h('a', { href: `#/faq/${idOf(ctx)}` }, t('faq.back_to_faq')), ' ', statusBadge(item.status)),
      editorForm(ctx, { item, ...choices }));
  },
};

// ---- differences ---------------------------------------------------------------------

// The edit script between two arrays (longest common subsequence after the common
// prefix and suffix are set aside): [{op: 'eq'|'del'|'ins', items: [...]}].
// null when the middle part is too large to compare cell by cell.
export function diffSeq(a, b, limit = 4000000) {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const n = endA - start;
  const m = endB - start;
  const out = [];
  const push = (op, item) => {
    const last = out[out.length - 1];
    if (last && last.op === op) last.items.push(item);
    else out.push({ op, items: [item] });
  };
  for (let i = 0; i < start; i++) push('eq', a[i]);
  if (n * m > limit) return null;
  // lcs[i][j]: the common length of a[start+i..endA) and b[start+j..endB)
  const width = m + 1;
  const lcs = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * width + j] = a[start + i] === b[start + j]
        ? lcs[(i + 1) * width + j + 1] + 1
        : Math.max(lcs[(i + 1) * width + j], lcs[i * width + j + 1]);
    }
  }
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[start + i] === b[start + j]) {
      push('eq', a[start + i]);
      i++;
      j++;
    } else if (i < n && (j === m || lcs[(i + 1) * width + j] >= lcs[i * width + j + 1])) {
      push('del', a[start + i]); // what was removed comes before what replaced it
      i++;
    } else {
      push('ins', b[start + j]);
      j++;
    }
  }
  for (let k = endA; k < a.length; k++) push('eq', a[k]);
  return out;
}

function marked(op, value) {
  if (op === 'eq') return value;
  return h(op, null, h('span', { class: 'visually-hidden' }, op === 'del' ? t('faq.diff_del') : t('faq.diff_ins')), value);
}

// Old and new text as one block: characters compared (lines first, when the text is long).
export function diffText(before, after) {
  const a = String(before ?? '');
  const b = String(after ?? '');
  const block = h('div', { class: 'faq-diff multiline' });
  const chars = diffSeq([...a], [...b], 1500000);
  if (chars) {
    for (const part of chars) block.append(marked(part.op, part.items.join('')));
    return block;
  }
  const lines = diffSeq(a.split('\n'), b.split('\n'), 4000000) ?? [{ op: 'del', items: a.split('\n') }, { op: 'ins', items: b.split('\n') }];
  for (const part of lines) block.append(marked(part.op, `${part.items.join('\n')}\n`));
  return block;
}

const DIFF_FIELDS = [
  ['number', 'faq.f_number'], ['question', 'faq.f_question'], ['answer', 'faq.f_answer'],
  ['department_code', 'faq.f_department_code'], ['category', 'faq.f_category'], ['visibility', 'faq.f_visibility'],
  ['keywords', 'faq.f_keywords'], ['status', 'faq.f_status'],
];

const TEXT_FIELDS = ['question', 'answer', 'keywords'];

function shown(name, value) {
  if (name === 'status') return statusText(value);
  if (name === 'visibility') return visibilityText(value);
  return String(value ?? '');
}

function versionDiff(older, newer) {
  const rows = [];
  for (const [name, key] of DIFF_FIELDS) {
    const a = shown(name, older[name]);
    const b = shown(name, newer[name]);
    if (a === b) continue;
    // Texts are compared character by character; a short value is replaced whole.
    const change = TEXT_FIELDS.includes(name) ? diffText(a, b)
      : h('div', { class: 'faq-diff' }, a ? marked('del', a) : null, a && b ? ' → ' : null, b ? marked('ins', b) : null);
    rows.push(h('tr', { dataset: { field: name } }, h('th', { scope: 'row' }, t(key)), h('td', null, change)));
  }
  if (!rows.length) return h('p', { id: 'faq-diff-none' }, t('faq.diff_none'));
  return h('table', { id: 'faq-diff', class: 'faq-diff-table' },
    h('caption', null, t('faq.diff_caption', { from: String(older.version), to: String(newer.version) })),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, t('faq.col_field')), h('th', { scope: 'col' }, t('faq.col_change')))),
    h('tbody', null, rows));
}

const OPS = {
  created: 'faq.op_created', updated: 'faq.op_updated', approved: 'faq.op_approved', imported: 'faq.op_imported', deleted: 'faq.op_deleted',
};

export const history = {
  async mount(ctx) {
    clear(ctx.view, ...header(ctx, null, t('faq.history_heading')), h('p', { role: 'status' }, t('common.loading')));
    let answer;
    try {
      answer = await api('GET', `/api/v1/faqs/${idOf(ctx)}/versions`, { query: { per_page: 500 }, signal: ctx.signal });
    } catch (error) {
      if (stop(ctx, error)) return;
      clear(ctx.view, ...header(ctx, null, t('faq.history_heading')), notice('error', errorText(error)));
      return;
    }
    if (ctx.signal.aborted) return;
    const items = Array.isArray(answer.items) ? answer.items : []; // newest first
    const number = items[0]?.number ?? '';
    // Rows are told apart by their place in the list (a deletion repeats a version number).
    const at = (key, fallback) => {
      const index = Number.parseInt(ctx.query.get(key) ?? '', 10);
      return Number.isInteger(index) && index >= 0 && index < items.length ? index : fallback;
    };
    const toIndex = at('to', 0);
    const fromIndex = at('from', Math.min(toIndex + 1, items.length - 1));
    const label = (v) => t('faq.version_option', { version: String(v.version), time: formatTime(v.at), op: OPS[v.op] ? t(OPS[v.op]) : text(v.op) });
    const fromField = field({ label: t('faq.diff_from'), name: 'from', control: select(items.map((v, i) => [String(i), label(v)]), String(fromIndex)) });
    const toField = field({ label: t('faq.diff_to'), name: 'to', control: select(items.map((v, i) => [String(i), label(v)]), String(toIndex)) });
    const form = h('form', { id: 'faq-diff-form', class: 'search', novalidate: true },
      h('fieldset', null, h('legend', null, t('faq.diff_legend')),
        h('div', { class: 'row' }, fromField, toField, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('faq.compare'))))));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      ctx.navigate(ctx.hrefWith({ from: fromField.control.value, to: toField.control.value }));
    });
    const table = h('table', { id: 'faq-versions' },
      h('caption', null, t('faq.versions_caption', { number: String(number) })),
      h('thead', null, h('tr', null, ['faq.col_version', 'faq.col_at', 'faq.col_actor', 'faq.col_op', 'faq.f_status', 'faq.f_question', 'faq.col_diff']
        .map((key) => h('th', { scope: 'col' }, t(key))))),
      h('tbody', null, items.map((v, i) => h('tr', { class: i === toIndex || i === fromIndex ? 'faq-selected' : null },
        h('td', { class: 'num' }, text(v.version)), h('td', { class: 'nowrap' }, formatTime(v.at)), h('td', null, text(v.actor_login || v.actor_id)),
        h('td', null, OPS[v.op] ? t(OPS[v.op]) : text(v.op)), h('td', null, statusText(v.status)), h('td', { class: 'detail' }, text(v.question)),
        h('td', null, i + 1 < items.length
          ? h('a', { href: ctx.hrefWith({ from: String(i + 1), to: String(i) }), 'aria-label': t('faq.diff_prev_label', { version: String(v.version) }) }, t('faq.diff_prev'))
          : t('faq.first_version'))))));
    const older = items[fromIndex];
    const newer = items[toIndex];
    clear(ctx.view, ...header(ctx, null, t('faq.history_heading_number', { number: String(number) })),
      h('p', null, h('a', { href: `#/faq/${idOf(ctx)}` }, t('faq.back_to_faq'))),
      items.length > 1 ? form : null,
      items.length > 1 && older && newer ? h('section', { class: 'card', 'aria-labelledby': 'faq-diff-title' },
        h('h3', { id: 'faq-diff-title' }, t('faq.diff_title')), versionDiff(older, newer)) : null,
      h('div', { class: 'table-wrap' }, table));
  },
};

// ---- #/faq/review ----------------------------------------------------------------------

export const queue = {
  async mount(ctx) {
    const editor = isEditor(ctx.user);
    const slot = h('div', { class: 'table-wrap' }, h('p', { role: 'status' }, t('common.loading')));
    const status = h('div', { id: 'faq-queue-status' });
    clear(ctx.view, ...header(ctx, '/review', t('faq.review_heading')),
      h('p', null, editor ? t('faq.review_intro') : t('faq.review_intro_staff')), status, slot);
    // Supervisors and administrators get every FAQ in review; staff those of the departments
    // they review (the server's filter). The reviewers say who may approve each.
    let answer;
    let reviewers;
    try {
      [answer, reviewers] = await Promise.all([
        api('GET', '/api/v1/faqs', { query: { status: 'review', per_page: 500 }, signal: ctx.signal }),
        loadReviewers(ctx)]);
    } catch (error) {
      if (stop(ctx, error)) return;
      clear(slot, notice('error', errorText(error)));
      return;
    }
    if (ctx.signal.aborted) return;
    const items = Array.isArray(answer.items) ? answer.items : [];
    const act = (item, label, buttonClass, request, flashKey) => {
      const button = h('button', { type: 'button', class: buttonClass, 'aria-label': `${label}: ${t('faq.number_label', { number: String(item.number) })}` }, label);
      button.addEventListener('click', async () => {
        status.replaceChildren();
        try {
          await busy(button, null, request);
        } catch (error) {
          if (stop(ctx, error)) return;
          let message = errorText(error);
          if (error instanceof ApiError && error.status === 409) message = t('faq.queue_conflict');
          else if (error instanceof ApiError && error.status === 403) message = approveRefusedText(error, item, reviewers);
          const box = notice('error', message);
          box.setAttribute('tabindex', '-1');
          clear(status, box);
          box.focus();
          return;
        }
        ctx.flash('ok', flashKey, { number: String(item.number) });
        ctx.reload();
      });
      return button;
    };
    const body = h('tbody', null, items.map((item) => {
      const id = encodeURIComponent(String(item.id));
      const names = (reviewers.get(Number(item.department_id ?? 0)) ?? []).map((r) => String(r.login ?? ''));
      return h('tr', { dataset: { number: String(item.number) } },
        h('td', { class: 'num' }, text(item.number)),
        h('td', { class: 'detail' }, h('a', { href: `#/faq/${id}` }, text(item.question))),
        h('td', null, text(item.department_name || item.department_code)),
        h('td', { class: 'faq-queue-reviewers' }, names.length ? names.join(', ') : t('faq.reviewers_editors')),
        h('td', null, visibilityText(item.visibility)),
        h('td', null, t('faq.at_by', { time: formatTime(item.updated_at), who: text(item.updated_by) })),
        h('td', null, h('div', { class: 'row-actions' },
          editor ? h('a', { href: `#/faq/${id}/history`, class: 'button secondary' }, t('faq.diff_prev')) : null,
          mayApprove(ctx.user, item, reviewers)
            ? act(item, t('faq.approve'), 'primary', () => api('POST', `/api/v1/faqs/${id}/approve`, { body: { version: item.version }, signal: ctx.signal }), 'faq.approved')
            : null,
          editor ? act(item, t('faq.to_draft'), 'secondary', () => api('PATCH', `/api/v1/faqs/${id}`, { body: { version: item.version, status: 'draft' }, signal: ctx.signal }), 'faq.sent_to_draft') : null)));
    }));
    const table = h('table', { id: 'faq-queue' },
      h('caption', null, t('faq.review_caption', { count: String(items.length) })),
      h('thead', null, h('tr', null, ['faq.f_number', 'faq.f_question', 'faq.f_department', 'faq.col_reviewers', 'faq.f_visibility', 'faq.f_updated', 'faq.col_actions']
        .map((key) => h('th', { scope: 'col' }, t(key))))),
      body);
    clear(slot, items.length ? table : h('p', { id: 'faq-queue-empty' }, editor ? t('faq.review_empty') : t('faq.review_empty_staff')));
  },
};

// ---- #/faq/reviewers: department reviewers (所管課の確認者) ---------------------------------

// Logins typed by an administrator: separated by commas (",", "、", "，") or spaces.
export function parseLogins(value) {
  return String(value ?? '').split(/[\s,、，]+/).map((w) => w.trim()).filter(Boolean);
}

export const reviewers = {
  async mount(ctx) {
    const admin = Array.isArray(ctx.user?.roles) && ctx.user.roles.includes('admin');
    const heading = () => header(ctx, '/reviewers', t('faq.reviewers_heading'));
    clear(ctx.view, ...heading(), h('p', { role: 'status' }, t('common.loading')));
    let choices;
    let lists;
    try {
      [choices, lists] = await Promise.all([loadChoices(ctx), (async () => {
        const answer = await api('GET', '/api/v1/faq-reviewers', { signal: ctx.signal });
        return new Map((Array.isArray(answer.items) ? answer.items : []).map((d) => [Number(d.department_id), Array.isArray(d.users) ? d.users : []]));
      })()]);
    } catch (error) {
      if (stop(ctx, error)) return;
      clear(ctx.view, ...heading(), notice('error', errorText(error)));
      return;
    }
    if (ctx.signal.aborted) return;
    // Every active department, and any other department that still has reviewers.
    const departments = choices.departments.map((d) => ({ id: Number(d.id), code: String(d.code ?? ''), name: String(d.name ?? '') }));
    for (const id of lists.keys()) {
      if (!departments.some((d) => d.id === id)) departments.push({ id, code: '', name: `#${id}` });
    }
    const row = (d) => {
      const users = lists.get(d.id) ?? [];
      const logins = users.map((u) => String(u.login ?? ''));
      const label = d.code ? `${d.name}（${d.code}）` : d.name;
      let cell;
      if (admin) {
        const input = field({
          label: t('faq.reviewers_logins_label', { department: label }), name: 'users', value: logins.join(', '),
          autocomplete: 'off', hint: t('faq.reviewers_logins_hint'),
        });
        const save = h('button', { type: 'submit', class: 'primary small' }, t('common.save'));
        const form = h('form', { class: 'faq-reviewers-form', novalidate: true, dataset: { department: d.code || String(d.id) } }, input, save);
        form.addEventListener('submit', async (event) => {
          event.preventDefault();
          clearErrors(form);
          const typed = parseLogins(input.control.value);
          const path = `/api/v1/faq-reviewers/${encodeURIComponent(String(d.id))}`;
          try {
            await busy(save, t('common.saving'), () => (typed.length
              ? api('PUT', path, { body: { users: typed }, signal: ctx.signal })
              : api('DELETE', path, { signal: ctx.signal })));
          } catch (error) {
            if (stop(ctx, error)) return;
            const m = /^users\[(\d+)\]$/.exec(error?.field ?? '');
            if (error instanceof ApiError && error.status === 422 && m && typed[Number(m[1])] !== undefined) {
              setFieldError(form, 'users', t('faq.reviewers_bad_login', { login: typed[Number(m[1])] }), error.message);
            } else if (error instanceof ApiError && error.status === 422 && error.field === 'department_id') {
              setFieldError(form, 'users', t('faq.reviewers_bad_department'), error.message);
            } else {
              showError(form, error);
            }
            return;
          }
          ctx.flash('ok', typed.length ? 'faq.reviewers_saved' : 'faq.reviewers_cleared', { department: label });
          ctx.reload();
        });
        cell = form;
      } else {
        cell = logins.length ? logins.join(', ') : t('faq.reviewers_editors');
      }
      return h('tr', { dataset: { department: d.code || String(d.id) } },
        h('th', { scope: 'row' }, label),
        h('td', { class: 'faq-reviewers-logins' }, cell));
    };
    const table = h('table', { id: 'faq-reviewers' },
      h('caption', null, t('faq.reviewers_caption')),
      h('thead', null, h('tr', null, ['faq.f_department', 'faq.col_reviewers'].map((key) => h('th', { scope: 'col' }, t(key))))),
      h('tbody', null, departments.map(row)));
    clear(ctx.view, ...heading(),
      h('p', null, t('faq.reviewers_intro')),
      admin ? null : h('p', { class: 'hint' }, t('faq.reviewers_read_only')),
      departments.length ? h('div', { class: 'table-wrap' }, table) : h('p', { id: 'faq-reviewers-empty' }, t('faq.reviewers_no_departments')));
  },
};

// ---- #/faq/synonyms --------------------------------------------------------------------

// One group per line, words separated by commas (",", "、", "，").
export function parseGroups(textValue) {
  const groups = [];
  const lines = textValue.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const words = lines[i].split(/[,、，]/).map((w) => w.trim()).filter(Boolean);
    if (words.length) groups.push({ line: i + 1, words });
  }
  return groups;
}

export const synonyms = {
  async mount(ctx) {
    clear(ctx.view, ...header(ctx, '/synonyms', t('faq.synonyms_heading')), h('p', { role: 'status' }, t('common.loading')));
    let answer;
    try {
      answer = await api('GET', '/api/v1/faq-synonyms', { signal: ctx.signal });
    } catch (error) {
      if (stop(ctx, error)) return;
      clear(ctx.view, ...header(ctx, '/synonyms', t('faq.synonyms_heading')), notice('error', errorText(error)));
      return;
    }
    if (ctx.signal.aborted) return;
    const groups = Array.isArray(answer.groups) ? answer.groups : [];
    const area = field({
      label: t('faq.synonyms_label'), name: 'groups', hint: t('faq.synonyms_hint'),
      control: h('textarea', { rows: Math.min(30, Math.max(8, groups.length + 3)), class: 'faq-synonyms-input', spellcheck: false }),
    });
    area.control.value = groups.map((g) => (Array.isArray(g.words) ? g.words.join(', ') : '')).join('\n');
    const submit = h('button', { type: 'submit', class: 'primary' }, t('common.save'));
    const form = h('form', { id: 'faq-synonyms', 'data-draft': true, novalidate: true }, area, h('div', { class: 'actions' }, submit));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(form);
      const parsed = parseGroups(area.control.value);
      for (const g of parsed) {
        if (g.words.length < 2 || g.words.length > GROUP_WORDS_MAX) {
          setFieldError(form, 'groups', t('faq.synonyms_group_size', { line: String(g.line), max: String(GROUP_WORDS_MAX) }));
          return;
        }
        const long = g.words.find((w) => [...w].length > WORD_MAX);
        if (long) {
          setFieldError(form, 'groups', t('faq.synonyms_word_long', { line: String(g.line), max: String(WORD_MAX) }));
          return;
        }
      }
      try {
        await busy(submit, t('common.saving'), () => api('PUT', '/api/v1/faq-synonyms', {
          body: { groups: parsed.map((g) => ({ words: g.words })) }, signal: ctx.signal,
        }));
      } catch (error) {
        if (stop(ctx, error)) return;
        const m = /^groups\[(\d+)\]/.exec(error.field ?? '');
        if (error instanceof ApiError && error.status === 422 && m && parsed[Number(m[1])]) {
          setFieldError(form, 'groups', t('faq.synonyms_line_error', { line: String(parsed[Number(m[1])].line) }), error.message);
        } else {
          showError(form, error);
        }
        return;
      }
      ctx.flash('ok', 'faq.synonyms_saved', { count: String(parsed.length) });
      ctx.reload();
    });
    clear(ctx.view, ...header(ctx, '/synonyms', t('faq.synonyms_heading')),
      h('p', null, t('faq.synonyms_intro')),
      answer.updated_at ? h('p', { class: 'hint', id: 'faq-synonyms-updated' }, t('faq.synonyms_updated', { time: formatTime(answer.updated_at), who: text(answer.updated_by) })) : null,
      h('section', { class: 'card narrow' }, form));
  },
};

// ---- #/faq/zero-hits?from=&to=&page= -------------------------------------------------------

const ZERO_PER_PAGE = 50;

function nextDay(date) {
  const d = new Date(`${date}T00:00:00Z`);
  if (Number.isNaN(d.getTime())) return null;
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

export const zeroHits = {
  async mount(ctx) {
    const editor = isEditor(ctx.user);
    const dateOk = (v) => /^\d{4}-\d{2}-\d{2}$/.test(v);
    const from = dateOk(ctx.query.get('from') ?? '') ? ctx.query.get('from') : '';
    const to = dateOk(ctx.query.get('to') ?? '') ? ctx.query.get('to') : '';
    const page = Math.max(1, Number.parseInt(ctx.query.get('page') ?? '1', 10) || 1);
    const fromField = field({ label: t('faq.zero_from'), name: 'from', type: 'date', value: from });
    const toField = field({ label: t('faq.zero_to'), name: 'to', type: 'date', value: to });
    const form = h('form', { id: 'faq-zero-search', class: 'search', novalidate: true },
      h('fieldset', null, h('legend', null, t('faq.zero_legend')),
        h('div', { class: 'row' }, fromField, toField, h('div', { class: 'actions' },
          h('button', { type: 'submit', class: 'primary' }, t('common.search')),
          h('a', { href: '#/faq/zero-hits', class: 'button secondary' }, t('common.clear'))))));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      ctx.navigate(ctx.hrefWith({ from: fromField.control.value, to: toField.control.value }));
    });
    const slot = h('div', { class: 'table-wrap' }, h('p', { role: 'status' }, t('common.loading')));
    clear(ctx.view, ...header(ctx, '/zero-hits', t('faq.zero_heading')), h('p', null, t('faq.zero_intro')), form, slot);
    let answer;
    try {
      answer = await api('GET', '/api/v1/faqs/zero-hits', {
        query: {
          from: from ? `${from}T00:00:00+09:00` : '',
          to: to && nextDay(to) ? `${nextDay(to)}T00:00:00+09:00` : '',
          page, per_page: ZERO_PER_PAGE,
        },
        signal: ctx.signal,
      });
    } catch (error) {
      if (stop(ctx, error)) return;
      clear(slot, notice('error', errorText(error)));
      return;
    }
    if (ctx.signal.aborted) return;
    const items = Array.isArray(answer.items) ? answer.items : [];
    const total = Number(answer.total ?? items.length);
    const table = h('table', { id: 'faq-zero-hits' },
      h('caption', null, t('faq.zero_caption')),
      h('thead', null, h('tr', null, ['faq.zero_col_q', 'faq.zero_col_count', 'faq.zero_col_public', 'faq.zero_col_last', 'faq.col_actions']
        .map((key) => h('th', { scope: 'col' }, t(key))))),
      h('tbody', null, items.map((z) => h('tr', null,
        h('td', { class: 'detail faq-zero-q' }, text(z.q)),
        h('td', { class: 'num' }, String(Number(z.count ?? 0))),
        h('td', { class: 'num' }, String(Number(z.public_count ?? 0))),
        h('td', { class: 'nowrap' }, formatTime(z.last_at)),
        h('td', null, h('div', { class: 'row-actions' },
          h('a', { href: `#/faq?${new URLSearchParams({ q: String(z.q ?? '') })}`, 'aria-label': t('faq.zero_search_label', { q: String(z.q ?? '') }) }, t('faq.zero_search')),
          editor ? h('a', { href: `#/faq/new?${new URLSearchParams({ question: String(z.q ?? '') })}`, 'aria-label': t('faq.zero_create_label', { q: String(z.q ?? '') }) }, t('faq.zero_create')) : null))))));
    clear(slot, items.length ? table : h('p', { id: 'faq-zero-empty' }, t('faq.zero_empty')),
      total > ZERO_PER_PAGE ? pager({
        page, perPage: ZERO_PER_PAGE, total, t, label: t('faq.zero_caption'),
        href: (p) => ctx.hrefWith({ page: p > 1 ? String(p) : '' }, true),
      }) : null);
  },
};

// ---- #/faq/import ------------------------------------------------------------------------

const CSV_HEADER = 'number,question,answer,department_code,category,visibility,keywords,status';

function importResult(result, preview) {
  const n = (v) => String(Number(v ?? 0));
  const box = notice(preview ? 'info' : 'ok', h('p', null, preview ? t('faq.import_preview_done') : t('faq.import_done')));
  box.id = preview ? 'import-preview' : 'import-done';
  return [box, h('dl', { class: 'counts', id: 'import-counts' },
    h('dt', null, t('faq.count_rows')), h('dd', { dataset: { count: 'rows' } }, n(result.rows)),
    h('dt', null, t('faq.count_create')), h('dd', { dataset: { count: 'create' } }, n(result.create)),
    h('dt', null, t('faq.count_update')), h('dd', { dataset: { count: 'update' } }, n(result.update)),
    h('dt', null, t('faq.count_unchanged')), h('dd', { dataset: { count: 'unchanged' } }, n(result.unchanged)),
    h('dt', null, t('faq.count_encoding')), h('dd', null, result.encoding === 'shift_jis' ? 'Shift_JIS' : 'UTF-8'))];
}

function importErrors(error) {
  const data = error.data ?? {};
  const errors = Array.isArray(data.errors) ? data.errors : [];
  let message = errorText(error);
  if (errors.length) message = t('faq.import_refused', { count: String(data.errors_total ?? errors.length) });
  else if (error.code === 'invalid_header') message = t('faq.import_bad_header', { header: CSV_HEADER });
  const box = notice('error', h('p', null, message));
  box.id = 'import-error';
  if (!errors.length) return [box];
  const table = h('table', { id: 'import-errors' },
    h('caption', null, t('faq.import_errors_caption')),
    h('thead', null, h('tr', null, ['faq.col_line', 'faq.col_field', 'faq.col_message'].map((key) => h('th', { scope: 'col' }, t(key))))),
    h('tbody', null, errors.map((e) => h('tr', null, h('td', { class: 'line num' }, text(e.line)), h('td', null, text(e.field)), h('td', { class: 'detail' }, text(e.message))))));
  return [box, table];
}

export const importView = {
  async mount(ctx) {
    const file = field({ label: t('faq.import_file'), name: 'file', type: 'file', accept: '.csv,text/csv', required: true, hint: t('faq.import_file_hint', { header: CSV_HEADER }) });
    const previewButton = h('button', { type: 'submit', class: 'secondary' }, t('faq.import_check'));
    const commitButton = h('button', { type: 'button', class: 'primary', id: 'import-commit', disabled: true }, t('faq.import_apply'));
    const result = h('div', { id: 'import-result', 'aria-live': 'polite' });
    const form = h('form', { id: 'faq-import', novalidate: true }, file, h('div', { class: 'actions' }, previewButton, commitButton));
    file.control.addEventListener('change', () => {
      commitButton.disabled = true;
      result.replaceChildren();
    });
    async function send(preview) {
      clearErrors(form);
      const chosen = file.control.files?.[0];
      if (!chosen) {
        setFieldError(form, 'file', t('faq.import_file_required'));
        return;
      }
      const data = await chosen.arrayBuffer();
      let answer;
      try {
        answer = await busy(preview ? previewButton : commitButton, t('faq.sending'), () => api('POST', '/api/v1/faqs/import', {
          query: { preview: preview ? '1' : undefined }, raw: { data, type: 'text/csv' }, signal: ctx.signal,
        }));
      } catch (error) {
        if (stop(ctx, error)) return;
        commitButton.disabled = true;
        clear(result, ...importErrors(error));
        const box = result.querySelector('.notice');
        box.setAttribute('tabindex', '-1');
        box.focus();
        return;
      }
      clear(result, ...importResult(answer, preview));
      commitButton.disabled = !preview;
      if (!preview) file.control.value = '';
    }
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      send(true);
    });
    commitButton.addEventListener('click', () => send(false));

    // Export: the whole FAQ, or one state / visibility.
    const statusField = field({
      label: t('faq.f_status'), name: 'export_status',
      control: select([['', t('faq.all_statuses')], ...['draft', 'review', 'published', 'archived'].map((s) => [s, statusText(s)])], ''),
    });
    const visField = field({
      label: t('faq.f_visibility'), name: 'export_visibility',
      control: select([['', t('faq.all_visibilities')], ['public', visibilityText('public')], ['internal', visibilityText('internal')]], ''),
    });
    const utf8 = h('a', { class: 'button secondary', id: 'export-utf8', download: 'faq.csv' }, t('faq.export_utf8'));
    const sjis = h('a', { class: 'button secondary', id: 'export-sjis', download: 'faq.csv' }, t('faq.export_sjis'));
    const links = () => {
      const query = (encoding) => {
        const q = new URLSearchParams();
        if (statusField.control.value) q.set('status', statusField.control.value);
        if (visField.control.value) q.set('visibility', visField.control.value);
        if (encoding) q.set('encoding', encoding);
        const s = q.toString();
        return `/api/v1/faqs/export.csv${s ? `?${s}` : ''}`;
      };
      utf8.href = query('');
      sjis.href = query('shift_jis');
    };
    statusField.control.addEventListener('change', links);
    visField.control.addEventListener('change', links);
    links();

    clear(ctx.view, ...header(ctx, '/import', t('faq.import_heading')),
      h('section', { class: 'card', 'aria-labelledby': 'faq-import-title' },
        h('h3', { id: 'faq-import-title' }, t('faq.import_title')), h('p', null, t('faq.import_intro')), form, result),
      h('section', { class: 'card', 'aria-labelledby': 'faq-export-title' },
        h('h3', { id: 'faq-export-title' }, t('faq.export_title')), h('p', null, t('faq.export_intro')),
        h('div', { class: 'search' }, h('div', { class: 'row' }, statusField, visField)),
        h('p', { class: 'actions exports' }, utf8, sjis)));
  },
};
