// 通話待ち: the operator desk (#/desk, operators; docs/web.md "The operator desk").
// A status bar (who, extension, the push stream, the call and its timer); on
// `call.answered` (docs/push.md) the screen pop: the caller's number and time, their past
// records, and this call's record (made by ncc-history from the same event, looked up by
// call_id with a few retries) in the record form of the form setting (records.js
// recordEditor, drawn by recordform.js); the live transcript from `transcript.segment`;
// from ncc-summary (docs/summary.md) the running summary (`summary.updated`), the caller's
// emotion with a warning when anger rises (`emotion.updated`) and FAQ suggestions
// (`faq.suggested`), which the operator adds to the record's 利用FAQ (click, or Alt+1..3).
// A saved record's 利用FAQ that the operator's FAQ searches found tell ncc-faq the words
// that led to them (faq.js clicksForFaqNumbers; docs/faq.md "Learning from operators").
// The 回答案 card (for e-mail, letters, the counter: any channel) asks
// POST /api/v1/answers/draft for a draft from published public FAQs with its citations.
//
// The call lives in this module (`store`), not in the view: the operator may open another
// screen (a past record, the list) and come back to the same call with what they typed.
// It is dropped when the stream says the session ended or another user opens the desk.
//
// Degraded mode (R20, offline.js): a banner says which service the desk needs is down and
// what still works. What the operator types into a record is also kept in the browser
// (sessionStorage, per user and call) until it is saved, so a failed save, a reload or a
// service restart loses nothing: the desk offers it back. When ncc-history cannot be read
// at the pop, the call's record form is drawn without the record ("offline") and saving it
// later looks the call's record up and changes it, or creates it (POST with the call_id and
// an idempotency_key kept with the input, so a repeated save never makes two). While the
// pop does not come (ncc-calls or the stream down), 通話なしで記録 opens a record form of
// its own, saved the same way.

import * as push from '../push.js';
import { api, isAbort } from '../api.js';
import { h, clear, notice, confirmDialog } from '../dom.js';
import { t, formatTime } from '../i18n.js';
import { errorText } from '../forms.js';
import { recordEditor, loadSetup, recordLine, shortcutHelp, codeText, fieldLabel } from './records.js';
import { banner as degradedBanner, drafts, isDown, watch as watchServices } from '../offline.js';
import { clicksForFaqNumbers } from './faq.js';

const LOOKUP_TRIES = 8;
const PENDING_CALLS = 5;
const ACTIVE_STATES = new Set(['answered', 'transferred']);
const MAX_FAQS = 3; // 利用FAQ holds up to three FAQ numbers (API.md)
const ANGER_WARN = 0.5; // the caller's anger (0..1) from which the desk warns
const ANGER_RISE = 0.05; // a rise this large from at least ANGER_WARN_LOW warns too
const ANGER_WARN_LOW = 0.3;

// What ncc-summary pushed about a call.
function emptyAi() {
  return { summary: null, final: false, emotion: null, angerBefore: null, faqs: [] };
}

const store = {
  userId: null,
  restoreTried: false, // the active call was looked for after a reload (once per sign-in)
  call: null, // the pop: {call_id, state, from_number, to_number, answered_at, ended_at, transfer_to, records, records_available}
  segments: [], // the transcript, by seq
  record: null, // the call's record as last read or saved
  recordState: 'idle', // idle | loading | ready | missing | error | offline (ncc-history not answering)
  recordError: null,
  typed: {}, // what the operator typed into the record form and has not saved
  done: null, // the receipt id of the record last saved closed (a message while waiting)
  lookup: null, // AbortController of the record look-up
  ai: emptyAi(), // the running summary, emotion and FAQ suggestions of the call
  manual: null, // a record typed without a call: {key, started_at, record}
};
const pending = new Map(); // call_id -> transcript segments that came before the pop
const pendingAi = new Map(); // call_id -> ai pushes that came before the pop
const watchers = new Set(); // the mounted desk's fn(change, detail)
let bound = false;

function notify(change, detail) {
  for (const fn of [...watchers]) fn(change, detail);
}

function reset() {
  store.lookup?.abort();
  Object.assign(store, {
    restoreTried: false, call: null, segments: [], record: null, recordState: 'idle', recordError: null,
    typed: {}, done: null, lookup: null, ai: emptyAi(), manual: null,
  });
  pending.clear();
  pendingAi.clear();
}

// No answer from the service (or 502/503/504): it is down, asking again now will not help.
function unreachable(error) {
  return [0, 502, 503, 504].includes(error?.status);
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

// The call's record, made by ncc-history from the same answered event: asked for by
// call_id a few times (about 7 s in all) before the desk says it is missing.
async function lookupRecord() {
  const call = store.call;
  if (!call) return;
  store.lookup?.abort();
  const controller = new AbortController();
  store.lookup = controller;
  store.recordState = 'loading';
  store.recordError = null;
  notify('record');
  let lastError = null;
  for (let attempt = 0; attempt < LOOKUP_TRIES; attempt++) {
    try {
      const answer = await api('GET', '/api/v1/records', {
        query: { call_id: call.call_id, per_page: 1 }, signal: controller.signal,
      });
      const found = Array.isArray(answer.items) ? answer.items.find((r) => r.call_id === call.call_id) ?? answer.items[0] : null;
      if (controller.signal.aborted || store.call !== call) return;
      if (found) {
        store.record = found;
        store.recordState = 'ready';
        notify('record');
        return;
      }
      lastError = null;
    } catch (error) {
      if (isAbort(error) || controller.signal.aborted || error?.status === 401) return;
      lastError = error;
      // A refusal (403, 400...) will not change by asking again; a service that is down is
      // asked again when it is back (the desk's service watch), the form drawn meanwhile.
      if (error?.status >= 400 && error.status < 500 && error.status !== 404 && error.status !== 429) break;
      if (unreachable(error)) break;
    }
    await sleep(Math.min(250 * (attempt + 1), 1500), controller.signal);
    if (controller.signal.aborted || store.call !== call) return;
  }
  store.recordState = lastError ? (unreachable(lastError) ? 'offline' : 'error') : 'missing';
  store.recordError = lastError;
  notify('record');
}

function mergeSegments(list, more) {
  const bySeq = new Map(list.map((s) => [s.seq, s]));
  const added = [];
  for (const s of Array.isArray(more) ? more : []) {
    if (!s || typeof s !== 'object' || !Number.isInteger(s.seq) || bySeq.has(s.seq)) continue;
    bySeq.set(s.seq, s);
    added.push(s);
  }
  return { all: [...bySeq.values()].sort((a, b) => a.seq - b.seq), added };
}

function onAnswered(data) {
  if (!data || typeof data.call_id !== 'string' || !data.call_id) return;
  if (store.call?.call_id === data.call_id) {
    Object.assign(store.call, data);
    notify('call-update');
    return;
  }
  notify('leaving'); // the mounted desk saves unsaved typing of the previous call
  store.lookup?.abort();
  store.call = { ...data };
  store.segments = mergeSegments([], pending.get(data.call_id)).all;
  pending.delete(data.call_id);
  store.ai = pendingAi.get(data.call_id) ?? emptyAi();
  pendingAi.delete(data.call_id);
  store.record = null;
  store.typed = {};
  store.done = null;
  store.manual = null; // a record typed without a call stays kept (offered back later)
  notify('call', { fresh: true });
  lookupRecord();
}

function onState(data) {
  if (!data || store.call?.call_id !== data.call_id) return;
  const ended = data.ended_at || data.state === 'ended' || data.state === 'abandoned';
  Object.assign(store.call, data);
  if (ended && !['ended', 'abandoned'].includes(store.call.state)) store.call.state = 'ended';
  notify('call-update', { ended: Boolean(ended), transferred: Boolean(data.transfer_to) });
  if (ended && store.record) refreshRecord(store.call);
}

// ncc-history writes the end time into the record at hang-up (docs/history.md: without a
// new version, so the open form still saves): the desk shows it, keeping what the operator
// typed, and takes a newer version if there is one. Asked a few times (0.5 to 4 s after
// the end) until the end time is there.
async function refreshRecord(call) {
  for (const delay of [500, 1000, 2000, 4000]) {
    await sleep(delay);
    if (store.call !== call || !store.record) return;
    try {
      const latest = await api('GET', `/api/v1/records/${encodeURIComponent(store.record.id)}`);
      if (store.call !== call || !latest || latest.id !== store.record.id) return;
      const was = store.record;
      if ((latest.version ?? 0) > (was.version ?? 0) ||
          ((latest.version ?? 0) === (was.version ?? 0) &&
           (latest.ended_at !== was.ended_at || latest.transfer_to !== was.transfer_to))) {
        store.record = latest;
        notify('rebase', latest);
      }
      if (latest.ended_at) return;
    } catch (error) {
      if (error?.status === 401) return;
      // otherwise asked again; the next save tells the operator if the version moved on
    }
  }
}

function onSegments(data) {
  if (!data || typeof data.call_id !== 'string') return;
  if (store.call?.call_id === data.call_id) {
    const { all, added } = mergeSegments(store.segments, data.segments);
    store.segments = all;
    if (added.length) notify('segments', added);
    return;
  }
  // Segments of a call whose pop has not come (yet): kept for a few calls.
  pending.set(data.call_id, mergeSegments(pending.get(data.call_id) ?? [], data.segments).all);
  while (pending.size > PENDING_CALLS) pending.delete(pending.keys().next().value);
}

// The ai state of a call: the current call's, or one kept for a pop still to come.
function aiOf(callId) {
  if (typeof callId !== 'string' || !callId) return null;
  if (store.call?.call_id === callId) return store.ai;
  if (!pendingAi.has(callId)) {
    pendingAi.set(callId, emptyAi());
    while (pendingAi.size > PENDING_CALLS) pendingAi.delete(pendingAi.keys().next().value);
  }
  return pendingAi.get(callId);
}

function score(value) {
  const n = Number(value);
  return Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 0;
}

function setEmotion(ai, call) {
  if (!call || typeof call !== 'object') return;
  ai.angerBefore = ai.emotion ? ai.emotion.anger : null;
  ai.emotion = {
    anger: score(call.anger), confusion: score(call.confusion), satisfaction: score(call.satisfaction),
    label: typeof call.label === 'string' ? call.label : 'neutral',
  };
}

function onSummary(data) {
  const ai = aiOf(data?.call_id);
  if (!ai || typeof data.summary !== 'string') return;
  ai.summary = data.summary;
  ai.final = data.final === true;
  if (data.sentiment) setEmotion(ai, data.sentiment);
  if (ai === store.ai) notify('ai', { summary: true });
}

function onEmotion(data) {
  const ai = aiOf(data?.call_id);
  if (!ai) return;
  setEmotion(ai, data.call);
  if (ai === store.ai) notify('ai', { emotion: true });
}

function onFaqs(data) {
  const ai = aiOf(data?.call_id);
  if (!ai || !Array.isArray(data.faqs)) return;
  ai.faqs = data.faqs.filter((f) => f && Number.isInteger(f.number)).slice(0, MAX_FAQS);
  if (ai === store.ai) notify('ai', { faqs: true });
}

function bind() {
  if (bound) return;
  bound = true;
  push.on('call.answered', onAnswered);
  push.on('call.transferred', onState);
  push.on('call.ended', onState);
  push.on('transcript.segment', onSegments);
  push.on('summary.updated', onSummary);
  push.on('emotion.updated', onEmotion);
  push.on('faq.suggested', onFaqs);
  push.on('session.ended', () => {
    reset();
    notify('call');
  });
  push.on('status', (state) => notify('status', state));
}

// After a reload the pop is not sent again (docs/push.md): the operator's call in progress
// is found in GET /api/v1/calls?state=active, with its transcript, once per sign-in.
async function restoreActive(user, signal) {
  if (store.restoreTried || store.call) return;
  store.restoreTried = true;
  let answer;
  try {
    answer = await api('GET', '/api/v1/calls', { query: { state: 'active', per_page: 100 }, signal });
  } catch {
    return;
  }
  const mine = (Array.isArray(answer.items) ? answer.items : [])
    .filter((c) => c.operator_id === user.id && ACTIVE_STATES.has(c.state))
    .sort((a, b) => String(b.answered_at ?? '').localeCompare(String(a.answered_at ?? '')))[0];
  if (!mine || store.call) return;
  store.call = { ...mine, records: null, records_available: false, restored: true };
  store.segments = [];
  notify('call', { fresh: false });
  lookupRecord();
  try {
    const full = await api('GET', `/api/v1/calls/${encodeURIComponent(mine.call_id)}`, { signal });
    if (store.call?.call_id === mine.call_id) {
      const { all, added } = mergeSegments(store.segments, full.transcript);
      store.segments = all;
      if (added.length) notify('segments', added);
    }
  } catch {
    // the transcript so far is not shown; new segments still are
  }
  try {
    const summary = await api('GET', `/api/v1/calls/${encodeURIComponent(mine.call_id)}/summary`, { signal });
    if (store.call?.call_id === mine.call_id) {
      if (typeof summary.summary === 'string' && summary.summary) {
        store.ai.summary = summary.summary;
        store.ai.final = summary.final === true;
      }
      if (summary.sentiment) setEmotion(store.ai, summary.sentiment);
      if (Array.isArray(summary.faqs)) store.ai.faqs = summary.faqs.slice(0, MAX_FAQS);
      notify('ai', {});
    }
  } catch {
    // no summary yet (404): the pushes bring it
  }
}

// ---- saving a record that could not be read (degraded mode) ------------------------------

async function recordOfCall(callId) {
  const answer = await api('GET', '/api/v1/records', { query: { call_id: callId, per_page: 1 } });
  return (Array.isArray(answer.items) ? answer.items : []).find((r) => r.call_id === callId) ?? null;
}

// The POST body of a new record from the editor's changes: the PATCH-only fields and empty
// values left out, `defaults` for what the form did not change, and the idempotency key.
function createBody(changes, defaults, idempotencyKey) {
  const body = {};
  for (const [name, value] of Object.entries(changes)) {
    if (name === 'version' || name === 'clear_faq_ids' || value === '' || value === null) continue;
    if (name === 'extra') {
      const extra = (Array.isArray(value) ? value : []).filter((e) => e && e.value !== '');
      if (extra.length) body.extra = extra;
      continue;
    }
    body[name] = value;
  }
  for (const [name, value] of Object.entries(defaults)) {
    if (body[name] === undefined && value !== undefined && value !== null && value !== '') body[name] = value;
  }
  body.idempotency_key = idempotencyKey;
  return body;
}

function patchOnto(record, changes) {
  return api('PATCH', `/api/v1/records/${encodeURIComponent(record.id)}`, { body: { ...changes, version: record.version } });
}

// The call's record typed while ncc-history could not be read: the one ncc-history made
// from the call meanwhile is changed; else it is created with the call_id (409: it was made
// in between, so it is changed after all).
async function saveForCall(call, changes, { idempotencyKey }) {
  const found = await recordOfCall(call.call_id);
  if (found) return patchOnto(found, changes);
  const body = createBody(changes, {
    call_id: call.call_id, channel: 'phone', started_at: call.answered_at, ended_at: call.ended_at,
  }, idempotencyKey);
  try {
    return await api('POST', '/api/v1/records', { body });
  } catch (error) {
    if (error?.status !== 409) throw error;
    const made = await recordOfCall(call.call_id);
    if (!made) throw error;
    return patchOnto(made, changes);
  }
}

// ---- the view ------------------------------------------------------------------------------

function mmss(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h2 = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n) => String(n).padStart(2, '0');
  return h2 ? `${h2}:${pad(m)}:${pad(s)}` : `${pad(m)}:${pad(s)}`;
}

function callStateKey(call) {
  if (!call) return 'desk.state_waiting';
  if (call.state === 'ended' || call.state === 'abandoned') return 'desk.state_wrapup';
  if (call.state === 'transferred') return 'desk.state_transferred';
  return 'desk.state_talking';
}

function speakerText(speaker) {
  if (speaker === 'caller') return t('desk.speaker_caller');
  if (speaker === 'operator') return t('desk.speaker_operator');
  return String(speaker ?? '');
}

function segmentItem(s) {
  const speaker = s.speaker === 'caller' || s.speaker === 'operator' ? s.speaker : 'other';
  return h('li', { class: `segment segment-${speaker}`, dataset: { seq: String(s.seq) } },
    h('span', { class: 'segment-speaker' }, speakerText(s.speaker)),
    h('span', { class: 'segment-time' }, mmss(Number(s.start_ms) || 0)),
    h('span', { class: 'segment-text' }, String(s.text ?? '')));
}

export async function mount(ctx) {
  const user = ctx.user;
  if (store.userId !== user.id) {
    reset();
    store.userId = user.id;
  }
  bind();
  push.start(user.id);

  const signal = ctx.signal;
  const heading = h('h2', { tabindex: '-1' }, t('nav.desk'));
  const alert = degradedBanner({
    needs: ['history', 'calls', 'push', 'directory', 'summary', 'faq'], signal, id: 'desk-degraded',
  });
  const announce = h('p', { class: 'visually-hidden', role: 'status', id: 'desk-announce' });
  const say = (text) => {
    announce.textContent = '';
    setTimeout(() => {
      announce.textContent = text;
    }, 50);
  };

  // The status bar.
  const conn = h('span', { id: 'desk-connection' });
  const callState = h('span', { id: 'desk-call-state' });
  const timer = h('span', { id: 'desk-timer', class: 'desk-timer' });
  const bar = h('section', { class: 'desk-status', 'aria-label': t('desk.status_label') },
    h('dl', null,
      h('div', null, h('dt', null, t('desk.operator')), h('dd', { id: 'desk-operator' },
        String(user.name || user.login || ''), user.login ? h('span', { class: 'muted' }, ` (${user.login})`) : null)),
      h('div', null, h('dt', null, t('desk.extension')), h('dd', { id: 'desk-extension' },
        user.extension ? String(user.extension) : t('desk.no_extension'))),
      h('div', null, h('dt', null, t('desk.connection')), h('dd', null, conn)),
      h('div', null, h('dt', null, t('desk.call')), h('dd', null, callState, ' ', timer))));

  function drawConnection() {
    const state = push.status();
    conn.className = `desk-conn desk-conn-${state}`;
    conn.dataset.state = state;
    conn.textContent = t(state === 'open' ? 'desk.conn_open' : state === 'connecting' ? 'desk.conn_connecting' : 'desk.conn_off');
  }

  function tick() {
    const call = store.call;
    if (!call) {
      timer.textContent = '';
      return;
    }
    const ended = call.state === 'ended' || call.state === 'abandoned';
    const from = Date.parse(ended && call.ended_at ? call.ended_at : call.answered_at ?? '');
    if (Number.isNaN(from)) {
      timer.textContent = '';
      return;
    }
    timer.textContent = t(ended ? 'desk.timer_wrapup' : 'desk.timer_talk', { time: mmss(Date.now() - from) });
  }

  function drawCallState() {
    const key = callStateKey(store.call);
    callState.textContent = t(key);
    callState.className = `desk-call-state ${key.replace('desk.state_', 'desk-state-')}`;
    callState.dataset.state = store.call?.state ?? 'waiting';
    tick();
  }

  // The form setting and choice lists (read again at every visit: they may change).
  let setup = null;
  let setupError = null;
  try {
    setup = await loadSetup(signal);
  } catch (error) {
    if (isAbort(error) || signal.aborted || error?.status === 401) return;
    setupError = error;
  }
  if (signal.aborted) return;
  await restoreActive(user, signal);
  if (signal.aborted) return;

  const body = h('div', { class: 'desk-body' });
  let editor = null;
  let recordSlot = null;
  let transcriptList = null;
  let historyList = null;

  function waiting() {
    const done = store.done ? notice('ok', h('p', null, t('desk.done', { receipt: store.done }))) : null;
    if (done) done.id = 'desk-done';
    const manual = setup ? h('button', { type: 'button', class: 'secondary', id: 'desk-manual' }, t('desk.manual_open')) : null;
    manual?.addEventListener('click', () => openManual());
    clear(body, done, unsavedCard(), h('section', { class: 'card desk-waiting', id: 'desk-waiting' },
      h('p', { class: 'big' }, t('desk.waiting')),
      manual ? [h('p', { class: 'muted' }, t('desk.manual_hint')), h('p', { class: 'actions' }, manual)] : null));
    editor = null;
    recordSlot = null;
    transcriptList = null;
    historyList = null;
  }

  // Input kept in the browser and not saved (a reload, a failed save, a call that ended
  // meanwhile): offered back while the desk waits.
  function unsavedCard() {
    const entries = drafts.list(user.id).filter(([key, e]) =>
      (key.startsWith('call:') && e.meta?.call?.call_id) || (key.startsWith('manual:') && e.meta?.started_at));
    if (!entries.length) return null;
    return h('section', { class: 'card desk-unsaved', id: 'desk-unsaved', 'aria-labelledby': 'desk-unsaved-heading' },
      h('h3', { id: 'desk-unsaved-heading' }, t('degraded.restore_question')),
      h('ul', { class: 'desk-unsaved-list' }, entries.map(([key, e]) => {
        const what = key.startsWith('call:')
          ? t('desk.unsaved_call', {
            number: e.meta.call.from_number || t('desk.withheld'),
            time: e.meta.call.answered_at ? formatTime(e.meta.call.answered_at) : t('common.dash'),
          })
          : t('desk.unsaved_manual', { time: formatTime(e.meta.started_at) });
        const restore = h('button', { type: 'button', class: 'primary desk-unsaved-restore', dataset: { key } }, t('degraded.restore'));
        const discard = h('button', { type: 'button', class: 'secondary desk-unsaved-discard', dataset: { key } }, t('degraded.discard'));
        restore.addEventListener('click', () => restoreDraft(key, e));
        discard.addEventListener('click', async () => {
          const ok = await confirmDialog({
            title: t('desk.unsaved_discard_title'), text: t('desk.unsaved_discard_confirm'), ok: t('degraded.discard'),
            cancel: t('common.cancel'), danger: true,
          });
          if (!ok || signal.aborted) return;
          drafts.remove(user.id, key);
          if (!store.call && !store.manual) draw();
        });
        return h('li', { dataset: { key } }, h('span', { class: 'desk-unsaved-what' }, what),
          e.failed ? h('span', { class: 'desk-unsaved-failed' }, ` ${t('desk.unsaved_failed')}`) : null,
          ' ', restore, ' ', discard);
      })));
  }

  function restoreDraft(key, entry) {
    store.typed = entry.typed && typeof entry.typed === 'object' ? { ...entry.typed } : {};
    store.done = null;
    if (key.startsWith('manual:')) {
      store.manual = { key, started_at: entry.meta.started_at, record: null };
      draw();
      editor?.offerRestore(); // a failed save: says so, with もう一度保存
      editor?.focusFirst();
      return;
    }
    store.lookup?.abort();
    store.call = { ...entry.meta.call, records: null, records_available: false, restored: true };
    store.segments = [];
    store.ai = emptyAi();
    store.record = null;
    const call = store.call;
    notify('call', { fresh: false });
    lookupRecord();
    // The call as it is now (it may have ended since the input was kept).
    api('GET', `/api/v1/calls/${encodeURIComponent(call.call_id)}`, { signal }).then((now) => {
      if (store.call !== call || !now || now.call_id !== call.call_id) return;
      for (const k of ['state', 'ended_at', 'transfer_to']) if (now[k] !== undefined) call[k] = now[k];
      notify('call-update');
    }, () => {
      // ncc-calls down: shown as it was kept
    });
  }

  // 通話なしで記録: a record typed while the pop does not come (or a visit at the counter).
  function openManual() {
    store.done = null;
    store.typed = {};
    const started = new Date().toISOString();
    store.manual = { key: `manual:${Date.now().toString(36)}`, started_at: started, record: null };
    draw();
    editor?.focusFirst();
  }

  function drawManual() {
    recordSlot = h('section', { class: 'card desk-record', id: 'desk-record-card', 'aria-labelledby': 'desk-record-heading' });
    const close = h('button', { type: 'button', class: 'secondary', id: 'desk-manual-close' }, t('desk.manual_close'));
    close.addEventListener('click', async () => {
      if (editor?.dirty()) {
        const ok = await confirmDialog({
          title: t('desk.manual_close'), text: t('desk.manual_close_confirm'), ok: t('desk.manual_close_ok'),
          cancel: t('common.cancel'),
        });
        if (!ok || signal.aborted) return;
      }
      store.manual = null;
      store.typed = {};
      draw();
      heading.focus();
    });
    clear(body, h('div', { class: 'desk-grid' }, h('div', { class: 'desk-main' }, recordSlot)));
    const m = store.manual;
    const base = m.record ?? offlineBase(null, m.started_at);
    editor = recordEditor({
      definition: setup.definition, lists: setup.lists, record: base, idPrefix: 'desk', formId: 'desk-record', signal,
      onInput: () => {
        if (store.manual === m) store.typed = editor?.typed() ?? {};
      },
      onSaved: (saved, { close: closed }) => {
        clicksForFaqNumbers(user.id, saved.faq_ids); // 利用FAQ found by a search (docs/faq.md)
        if (store.manual !== m) return;
        m.record = saved;
        store.typed = {};
        if (closed) {
          store.done = String(saved.receipt_id || saved.id);
          store.manual = null;
          draw();
          heading.focus();
          return;
        }
        say(t('records.saved', { receipt: String(saved.receipt_id || saved.id) }));
      },
      draft: { userId: user.id, key: m.key, meta: () => ({ kind: 'manual', started_at: m.started_at }) },
      create: (changes, { idempotencyKey }) => api('POST', '/api/v1/records', {
        body: createBody(changes, { channel: base.channel, started_at: m.started_at }, idempotencyKey),
      }),
    });
    editor.applyTyped(store.typed);
    clear(recordSlot, h('h3', { id: 'desk-record-heading' }, t('desk.manual_heading')),
      h('p', { class: 'muted', id: 'desk-manual-note' }, t('desk.manual_note')),
      editor.form, h('p', { class: 'actions' }, close));
  }

  // A record form's starting point when the record cannot be read: the call's (or now's)
  // time, the form's initial status, the signed-in operator.
  function offlineBase(call, startedAt) {
    const statuses = Array.isArray(setup?.definition?.statuses) ? setup.definition.statuses : [];
    return {
      id: null, receipt_id: '', call_id: call?.call_id ?? '', channel: 'phone',
      started_at: call?.answered_at ?? startedAt ?? new Date().toISOString(), ended_at: call?.ended_at ?? null,
      operator_id: user.id, operator_name: String(user.name || user.login || ''),
      status: (statuses.find((x) => x.initial === true) ?? statuses[0])?.code ?? 'open', version: 0,
    };
  }

  function callCard() {
    const call = store.call;
    const number = call.from_number ? String(call.from_number) : t('desk.withheld');
    const ended = call.state === 'ended' || call.state === 'abandoned';
    const dismiss = ended ? h('button', { type: 'button', class: 'secondary', id: 'desk-dismiss' }, t('desk.dismiss')) : null;
    dismiss?.addEventListener('click', async () => {
      if (editor?.dirty()) {
        const ok = await confirmDialog({
          title: t('desk.dismiss_title'), text: t('desk.dismiss_confirm'), ok: t('desk.dismiss_ok'),
          cancel: t('common.cancel'), danger: true,
        });
        if (!ok || signal.aborted) return;
      }
      drafts.remove(user.id, `call:${call.call_id}`); // discarded on purpose
      store.lookup?.abort();
      store.call = null;
      store.record = null;
      store.segments = [];
      store.typed = {};
      store.ai = emptyAi();
      notify('call');
    });
    return h('section', { class: 'card desk-pop', id: 'desk-pop', 'aria-labelledby': 'desk-caller' },
      h('h3', { id: 'desk-caller', tabindex: '-1' }, t('desk.caller'), ' ',
        h('span', { class: 'desk-number', id: 'desk-number' }, number)),
      h('dl', { class: 'desk-call-info' },
        h('div', null, h('dt', null, t('desk.answered_at')), h('dd', null, call.answered_at ? formatTime(call.answered_at) : t('common.dash'))),
        call.to_number ? h('div', null, h('dt', null, t('desk.to_number')), h('dd', null, String(call.to_number))) : null,
        call.transfer_to ? h('div', null, h('dt', null, t('desk.transferred_to')),
          h('dd', { id: 'desk-transfer' }, setup ? codeText(setup.lists, 'transfer_to', call.transfer_to) : String(call.transfer_to))) : null,
        ended && call.ended_at ? h('div', null, h('dt', null, t('desk.ended_at')), h('dd', null, formatTime(call.ended_at))) : null),
      dismiss ? h('p', { class: 'actions' }, dismiss) : null);
  }

  function historyCard() {
    const call = store.call;
    const records = (Array.isArray(call.records) ? call.records : []).filter((r) => r && r.call_id !== call.call_id);
    let content;
    if (call.restored) content = h('p', { class: 'muted' }, t('desk.history_after_reload'));
    else if (call.records_available === false) content = notice('info', t('desk.history_unavailable'));
    else if (!call.from_number) content = h('p', { class: 'muted' }, t('desk.history_withheld'));
    else if (!records.length) content = h('p', { class: 'muted', id: 'desk-history-none' }, t('desk.history_none'));
    else {
      historyList = h('ul', { class: 'desk-history', id: 'desk-history' });
      for (const r of records) {
        const detailId = `desk-history-${r.id}`;
        const toggle = h('button', {
          type: 'button', class: 'history-toggle', 'aria-expanded': 'false', 'aria-controls': detailId,
          dataset: { recordId: String(r.id) },
        }, recordLine(setup?.definition, setup?.lists, r));
        const detail = h('div', { class: 'history-detail', id: detailId, hidden: true },
          h('dl', null,
            h('dt', null, fieldLabel(setup?.definition, 'inquiry')), h('dd', { class: 'multiline' }, String(r.inquiry || t('common.dash'))),
            h('dt', null, fieldLabel(setup?.definition, 'response')), h('dd', { class: 'multiline' }, String(r.response || t('common.dash'))),
            h('dt', null, fieldLabel(setup?.definition, 'operator_name')), h('dd', null, String(r.operator_name || t('common.dash')))),
          h('p', null, h('a', { href: `#/records/${encodeURIComponent(String(r.id))}` }, t('desk.open_record'))));
        toggle.addEventListener('click', () => {
          const open = toggle.getAttribute('aria-expanded') !== 'true';
          toggle.setAttribute('aria-expanded', String(open));
          detail.hidden = !open;
        });
        historyList.append(h('li', null, toggle, detail));
      }
      content = historyList;
    }
    return h('section', { class: 'card desk-history-card', 'aria-labelledby': 'desk-history-heading' },
      h('h3', { id: 'desk-history-heading' }, t('desk.history_heading'),
        records.length ? ` (${t('desk.history_count', { count: records.length })})` : null),
      content);
  }

  function transcriptCard() {
    transcriptList = h('ol', {
      class: 'desk-transcript', id: 'desk-transcript', role: 'log', 'aria-live': 'polite',
      'aria-labelledby': 'desk-transcript-heading', tabindex: '0',
    }, store.segments.map(segmentItem));
    const empty = h('p', { class: 'muted', id: 'desk-transcript-empty', hidden: store.segments.length > 0 }, t('desk.transcript_empty'));
    return h('section', { class: 'card desk-transcript-card', 'aria-labelledby': 'desk-transcript-heading' },
      h('h3', { id: 'desk-transcript-heading' }, t('desk.transcript_heading')), empty, transcriptList);
  }

  // ---- from ncc-summary: the running summary, emotion, FAQ suggestions ----

  function summaryCard() {
    const ai = store.ai;
    const state = ai.summary
      ? h('p', { class: `desk-ai-state${ai.final ? ' desk-ai-final' : ''}`, id: 'desk-ai-summary-state' },
        t(ai.final ? 'desk.summary_final' : 'desk.summary_running'))
      : null;
    const text = ai.summary
      ? h('p', { class: 'multiline desk-summary', id: 'desk-ai-summary' }, ai.summary)
      : h('p', { class: 'muted', id: 'desk-ai-summary-empty' }, t('desk.summary_empty'));
    return h('section', { class: 'card desk-summary-card', id: 'desk-ai-summary-card', 'aria-labelledby': 'desk-ai-summary-heading' },
      h('h3', { id: 'desk-ai-summary-heading' }, t('desk.summary_heading')), state, text,
      h('p', { class: 'muted small' }, t('desk.summary_masked')));
  }

  function angerRising(e, before) {
    if (!e) return false;
    return e.anger >= ANGER_WARN || (e.anger >= ANGER_WARN_LOW && before !== null && e.anger - before >= ANGER_RISE);
  }

  function emotionCard() {
    const e = store.ai.emotion;
    const rows = ['anger', 'confusion', 'satisfaction'].map((name) => {
      const value = e ? Math.round(e[name] * 100) : 0;
      const fill = h('span', { class: 'emotion-fill' });
      fill.style.width = `${value}%`; // CSSOM, which the page's CSP allows
      return h('div', { class: `emotion-row emotion-${name}`, dataset: { emotion: name } },
        h('span', { class: 'emotion-name', id: `desk-emotion-${name}-label` }, t(`desk.emotion_${name}`)),
        h('span', { class: 'emotion-bar', role: 'meter', 'aria-valuemin': '0', 'aria-valuemax': '100',
          'aria-valuenow': String(value), 'aria-labelledby': `desk-emotion-${name}-label` }, fill),
        h('span', { class: 'emotion-value', id: `desk-emotion-${name}` }, `${value}%`));
    });
    const rising = angerRising(e, store.ai.angerBefore);
    const warning = rising
      ? notice('error', h('p', { id: 'desk-anger-warning' }, t('desk.anger_warning')))
      : null;
    const label = e ? h('p', { class: 'desk-emotion-label', id: 'desk-emotion-label', dataset: { label: e.label } },
      t('desk.emotion_label'), ' ', t(`desk.emotion_is_${['anger', 'confusion', 'satisfaction'].includes(e.label) ? e.label : 'neutral'}`))
      : h('p', { class: 'muted', id: 'desk-emotion-empty' }, t('desk.emotion_empty'));
    return h('section', {
      class: `card desk-emotion-card${rising ? ' desk-anger' : ''}`, id: 'desk-emotion-card',
      'aria-labelledby': 'desk-emotion-heading', dataset: { rising: String(rising) },
    }, h('h3', { id: 'desk-emotion-heading' }, t('desk.emotion_heading')), warning, label,
    h('div', { class: 'emotion-rows' }, rows));
  }

  // Adds an FAQ number to the record's 利用FAQ (at most three), as typing would.
  function addFaq(number) {
    const control = editor?.form.querySelector('[name="faq_ids"]');
    if (!editor || !control) {
      say(t(editor ? 'desk.faq_no_field' : 'desk.faq_no_record'));
      showFaqNote(t(editor ? 'desk.faq_no_field' : 'desk.faq_no_record'));
      return;
    }
    const now = String(control.value ?? '').split(/[\s,、，]+/).filter(Boolean);
    let text;
    if (now.includes(String(number))) text = t('desk.faq_already', { number });
    else if (now.length >= MAX_FAQS) text = t('desk.faq_full', { count: MAX_FAQS });
    else {
      editor.applyTyped({ faq_ids: [...now, String(number)].join(' ') });
      store.typed = editor.typed();
      text = t('desk.faq_added', { number });
    }
    say(text);
    showFaqNote(text);
  }

  function showFaqNote(text) {
    const note = ctx.view.querySelector('#desk-faq-note');
    if (note) note.textContent = text;
  }

  function suggestionsCard() {
    const faqs = store.ai.faqs;
    let content;
    if (!faqs.length) content = h('p', { class: 'muted', id: 'desk-faq-empty' }, t('desk.faq_empty'));
    else {
      content = h('ol', { class: 'desk-faq-list', id: 'desk-faq-suggestions' }, faqs.map((f, i) => {
        const add = h('button', {
          type: 'button', class: 'secondary desk-faq-add', 'aria-keyshortcuts': `Alt+${i + 1}`,
          dataset: { number: String(f.number) },
          'aria-label': t('desk.faq_add_label', { number: f.number, question: String(f.question ?? '') }),
        }, t('desk.faq_add'), h('span', { class: 'key-hint' }, ` Alt+${i + 1}`));
        add.addEventListener('click', () => addFaq(f.number));
        return h('li', { class: 'desk-faq', dataset: { number: String(f.number) } },
          h('span', { class: 'desk-faq-number' }, t('desk.faq_number', { number: f.number })), ' ',
          f.id ? h('a', { href: `#/faq/${encodeURIComponent(String(f.id))}`, class: 'desk-faq-question' }, String(f.question ?? ''))
            : h('span', { class: 'desk-faq-question' }, String(f.question ?? '')),
          ' ', add);
      }));
    }
    return h('section', { class: 'card desk-faq-card', id: 'desk-faq-card', 'aria-labelledby': 'desk-faq-heading' },
      h('h3', { id: 'desk-faq-heading' }, t('desk.faq_heading')), content,
      h('p', { class: 'desk-faq-note', id: 'desk-faq-note', role: 'status' }));
  }

  function drawAi(detail) {
    if (!store.call) return;
    const before = ctx.view.querySelector('#desk-emotion-card')?.dataset.rising === 'true';
    ctx.view.querySelector('#desk-ai-summary-card')?.replaceWith(summaryCard());
    ctx.view.querySelector('#desk-emotion-card')?.replaceWith(emotionCard());
    if (detail?.faqs || !detail) {
      const note = ctx.view.querySelector('#desk-faq-note')?.textContent ?? '';
      ctx.view.querySelector('#desk-faq-card')?.replaceWith(suggestionsCard());
      showFaqNote(note);
      if (detail?.faqs && store.ai.faqs.length) say(t('desk.faq_suggested', { count: store.ai.faqs.length }));
    }
    if (!before && angerRising(store.ai.emotion, store.ai.angerBefore)) say(t('desk.anger_warning'));
  }

  // ---- 回答案: a draft answer from published public FAQs (any channel) ----

  function draftCard() {
    const question = h('textarea', { id: 'desk-draft-question', name: 'question', rows: 3, maxlength: 4000 });
    const make = h('button', { type: 'submit', class: 'primary', id: 'desk-draft-make' }, t('desk.draft_make'));
    const result = h('div', { id: 'desk-draft-result', 'aria-live': 'polite' });
    const form = h('form', { class: 'desk-draft-form', id: 'desk-draft-form', novalidate: true },
      h('div', { class: 'field' }, h('label', { htmlFor: 'desk-draft-question' }, t('desk.draft_question')), question),
      h('p', { class: 'actions' }, make));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const text = question.value.trim();
      if (!text) {
        clear(result, notice('error', h('p', null, t('desk.draft_need_question'))));
        question.focus();
        return;
      }
      make.disabled = true;
      clear(result, h('p', { role: 'status' }, t('desk.draft_working')));
      try {
        const answer = await api('POST', '/api/v1/answers/draft', { body: { question: text }, signal });
        if (signal.aborted) return;
        clear(result, draftResult(answer));
      } catch (error) {
        if (isAbort(error) || signal.aborted) return;
        clear(result, notice('error', h('p', null, errorText(error))));
      } finally {
        make.disabled = false;
      }
    });
    return h('section', { class: 'card desk-draft-card', id: 'desk-draft', 'aria-labelledby': 'desk-draft-heading' },
      h('h3', { id: 'desk-draft-heading' }, t('desk.draft_heading')),
      h('p', { class: 'muted' }, t('desk.draft_hint')), form, result);
  }

  function draftResult(answer) {
    if (answer.refused) {
      return notice('info', h('p', { id: 'desk-draft-refused' }, t('desk.draft_refused')),
        answer.message ? h('p', null, String(answer.message)) : null);
    }
    const text = h('p', { class: 'multiline desk-draft-text', id: 'desk-draft-text' }, String(answer.draft ?? ''));
    const copy = h('button', { type: 'button', class: 'secondary', id: 'desk-draft-copy' }, t('desk.draft_copy'));
    const copied = h('span', { role: 'status', class: 'muted', id: 'desk-draft-copied' });
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(String(answer.draft ?? ''));
        copied.textContent = t('desk.draft_copied');
      } catch {
        // no clipboard permission: the text is selected for Ctrl+C
        const range = document.createRange();
        range.selectNodeContents(text);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        copied.textContent = t('desk.draft_selected');
      }
    });
    const faqs = Array.isArray(answer.faqs) ? answer.faqs : [];
    return h('div', { class: 'desk-draft-answer' },
      text,
      h('p', { class: 'muted small' }, t(answer.summarizer === 'openai' ? 'desk.draft_by_llm' : 'desk.draft_by_faq'),
        answer.fallback ? ` ${t('desk.draft_fallback')}` : null),
      h('h4', null, t('desk.draft_citations')),
      h('ul', { class: 'desk-draft-citations', id: 'desk-draft-citations' }, faqs.map((f) =>
        h('li', { dataset: { number: String(f.number) } },
          h('a', { href: `#/faq/${encodeURIComponent(String(f.id))}` }, t('desk.faq_number', { number: f.number }), ' ', String(f.question ?? ''))))),
      h('p', { class: 'actions' }, copy, ' ', copied));
  }

  function drawRecord() {
    if (!recordSlot) return;
    editor = null;
    const heading3 = h('h3', { id: 'desk-record-heading' }, t('desk.record_heading'));
    if (setupError) {
      clear(recordSlot, heading3, notice('error', t('desk.form_unavailable'), ' ', errorText(setupError)));
      return;
    }
    if (store.recordState === 'loading' || store.recordState === 'idle') {
      clear(recordSlot, heading3, h('p', { role: 'status', id: 'desk-record-loading' }, t('desk.record_loading')));
      return;
    }
    const offline = store.recordState === 'offline' && !store.record;
    if (!offline && (store.recordState !== 'ready' || !store.record)) {
      const retry = h('button', { type: 'button', class: 'primary', id: 'desk-record-retry' }, t('desk.record_retry'));
      retry.addEventListener('click', () => lookupRecord());
      const text = store.recordState === 'error' ? errorText(store.recordError) : t('desk.record_missing');
      clear(recordSlot, heading3, notice('error', h('p', { id: 'desk-record-missing' }, text), h('p', null, retry)));
      return;
    }
    const call = store.call;
    const record = offline ? offlineBase(call) : store.record;
    editor = recordEditor({
      definition: setup.definition, lists: setup.lists, record, idPrefix: 'desk', formId: 'desk-record',
      signal,
      onInput: () => {
        if (store.call === call) store.typed = editor?.typed() ?? {};
      },
      draft: { userId: user.id, key: `call:${call.call_id}`, meta: () => ({ kind: 'call', call: callMeta(call) }) },
      create: (changes, options) => saveForCall(call, changes, options),
      onSaved: (saved, { close }) => {
        clicksForFaqNumbers(user.id, saved.faq_ids); // 利用FAQ found by a search (docs/faq.md)
        if (store.call !== call) return; // the save of a call the desk has left
        store.record = saved;
        store.recordState = 'ready';
        store.typed = {};
        ctx.view.querySelector('#desk-record-offline')?.closest('.notice')?.remove();
        if (close && call && (call.state === 'ended' || call.state === 'abandoned')) {
          store.done = String(saved.receipt_id || saved.id);
          store.lookup?.abort();
          store.call = null;
          store.record = null;
          store.segments = [];
          store.ai = emptyAi();
          notify('call');
          heading.focus();
          return;
        }
        say(t(close ? 'records.saved_closed' : 'records.saved', { receipt: String(saved.receipt_id || saved.id) }));
      },
    });
    editor.applyTyped(store.typed);
    if (offline) {
      clear(recordSlot, heading3,
        notice('info', h('p', { id: 'desk-record-offline' }, t('desk.record_offline'))),
        editor.form);
      editor.offerRestore();
      return;
    }
    // "I'll text you the link": SMS送信 with this record (its caller's number filled in there).
    const sms = h('a', { href: `#/sms?record_id=${encodeURIComponent(String(record.id))}`, id: 'desk-sms' },
      t('desk.send_sms'));
    clear(recordSlot, heading3,
      h('p', { class: 'desk-receipt' }, t('desk.receipt', { receipt: String(record.receipt_id || record.id) }),
        ' ', sms),
      editor.form);
    editor.offerRestore();
  }

  // What a kept entry needs to show the call again after a reload (the caller's number
  // included: it goes with the entry once saved).
  function callMeta(call) {
    const keep = ['call_id', 'state', 'from_number', 'to_number', 'answered_at', 'ended_at', 'transfer_to'];
    return Object.fromEntries(keep.filter((k) => call[k] !== undefined && call[k] !== null).map((k) => [k, call[k]]));
  }

  function drawCall() {
    recordSlot = h('section', { class: 'card desk-record', id: 'desk-record-card', 'aria-labelledby': 'desk-record-heading' });
    clear(body, h('div', { class: 'desk-grid' },
      h('div', { class: 'desk-main' }, callCard(), recordSlot),
      h('div', { class: 'desk-side' }, summaryCard(), emotionCard(), suggestionsCard(), historyCard(), transcriptCard())));
    drawRecord();
  }

  function draw() {
    if (store.call) drawCall();
    else if (store.manual && setup) drawManual();
    else waiting();
    drawCallState();
  }

  // Focus: a new pop takes the focus only from nothing in particular (the page, the
  // heading, the waiting card), never from a field the operator is typing in.
  function idleFocus() {
    const active = document.activeElement;
    return !active || active === document.body || active === heading || active === ctx.view ||
      active.id === 'main' || !ctx.view.contains(active) || active.id === 'desk-caller';
  }

  const watcher = async (change, detail) => {
    if (signal.aborted) return;
    if (change === 'status') {
      drawConnection();
      if (detail !== 'open') say(t(detail === 'connecting' ? 'desk.conn_connecting' : 'desk.conn_off'));
    } else if (change === 'leaving') {
      // A new call while this one's record has unsaved typing: saved as it is (not closed).
      if (editor?.dirty()) editor.save({ close: false });
    } else if (change === 'call') {
      const focusIt = idleFocus();
      draw();
      if (store.call && detail?.fresh) {
        say(t('desk.popped', { number: store.call.from_number || t('desk.withheld') }));
        if (focusIt) ctx.view.querySelector('#desk-caller')?.focus();
      } else if (!store.call && focusIt) {
        heading.focus();
      }
    } else if (change === 'call-update') {
      if (!store.call) return;
      const pop = ctx.view.querySelector('#desk-pop');
      pop?.replaceWith(callCard());
      drawCallState();
      if (detail?.ended) say(t('desk.ended'));
      else if (detail?.transferred) {
        say(t('desk.transferred', { target: String(store.call.transfer_to ?? '') }));
        // The PBX says where the call went: the 転送先 is filled in when still empty.
        const choice = editor?.form.querySelector('select[name="transfer_to"]');
        const code = String(store.call.transfer_to ?? '');
        if (choice && !choice.value && [...choice.options].some((o) => o.value === code)) {
          editor.applyTyped({ transfer_to: code });
          store.typed = editor.typed();
        }
      }
    } else if (change === 'record') {
      const focusIt = idleFocus();
      drawRecord();
      if (editor && focusIt) editor.focusFirst({ empty: true });
    } else if (change === 'rebase') {
      if (editor && detail) {
        editor.rebase(detail);
        store.typed = editor.typed();
      } else {
        drawRecord();
      }
    } else if (change === 'ai') {
      drawAi(detail);
    } else if (change === 'segments') {
      if (!transcriptList) return;
      const nearBottom = transcriptList.scrollHeight - transcriptList.scrollTop - transcriptList.clientHeight < 40;
      transcriptList.replaceChildren(...store.segments.map(segmentItem));
      ctx.view.querySelector('#desk-transcript-empty')?.setAttribute('hidden', '');
      if (nearBottom) transcriptList.scrollTop = transcriptList.scrollHeight;
    }
  };
  watchers.add(watcher);

  // ncc-history back while the call's record form is drawn without its record: read it,
  // unless the operator has typed (saving then finds it, or creates it).
  watchServices(() => {
    if (signal.aborted || !store.call || store.recordState !== 'offline' || isDown('history') || isDown('network')) return;
    if (editor?.dirty()) return;
    lookupRecord();
  }, signal);

  const onKey = (event) => {
    if (editor?.keydown(event)) return;
    if (event.defaultPrevented || event.isComposing || !event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    if (event.code === 'KeyH') {
      const first = ctx.view.querySelector('#desk-history .history-toggle');
      if (first) {
        event.preventDefault();
        first.focus();
      }
    } else if (event.code === 'KeyT') {
      if (transcriptList) {
        event.preventDefault();
        transcriptList.focus();
      }
    } else if (/^Digit[1-3]$/.test(event.code)) {
      const f = store.call ? store.ai.faqs[Number(event.code.slice(5)) - 1] : null;
      if (f) {
        event.preventDefault();
        addFaq(f.number);
      }
    } else if (event.code === 'KeyD') {
      event.preventDefault();
      ctx.view.querySelector('#desk-draft-question')?.focus();
    } else if (event.code === 'KeyP') {
      const caller = ctx.view.querySelector('#desk-caller');
      if (caller) {
        event.preventDefault();
        caller.focus();
      }
    }
  };
  document.addEventListener('keydown', onKey);
  const clock = setInterval(tick, 1000);
  signal.addEventListener('abort', () => {
    watchers.delete(watcher);
    document.removeEventListener('keydown', onKey);
    clearInterval(clock);
  }, { once: true });

  drawConnection();
  draw();
  clear(ctx.view, heading, ctx.flashSlot, alert, announce, bar,
    shortcutHelp([['Alt + P', 'desk.key_caller'], ['Alt + H', 'desk.key_history'], ['Alt + T', 'desk.key_transcript'],
      ['Alt + 1..3', 'desk.key_faq'], ['Alt + D', 'desk.key_draft']]),
    body, draftCard());
}
