// 通話待ち and 応対履歴 (issue 5: R1, R28, R29, R31, R32, R33): the administrator makes an
// operator with an extension and the masters the record form chooses from; the operator
// signs in and opens the desk; this test sends signed PBX webhooks from node (HMAC-SHA256,
// docs/pbx-integration.md) for ringing and answered; the pop shows the caller's number, a
// past record and this call's record; a transcript segment appears live; the operator fills
// the record with the keyboard only and saves it (Ctrl+Enter), meets a stale version (409)
// without losing what they typed, ends the call and saves the record closed
// (Ctrl+Shift+Enter); the record is found in the list by keyword, sorted, and exported as
// CSV (UTF-8 and Shift_JIS); staff read it without an edit form.
// The tests run in order and share what they make. Needs NCC_PBX_WEBHOOK_SECRET (and the
// bootstrap administrator) as scripts/test.sh exports them.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BASE, signInAdmin, callApi, contrastProblems, createUser, focusVisible, launch, newPage, newPassword, ready,
  screenshot, signIn, uniq,
} from './lib.mjs';

let adminUser; // the administrator this file signs in (signInAdmin)

const run = uniq('e2e').slice(0, 20); // codes unique to this run (at most 32 characters)
const token = `kw${randomBytes(4).toString('hex')}`; // a keyword only this run's call record holds
const pastToken = `pk${randomBytes(4).toString('hex')}`; // the caller's earlier record
const caller = `090-${String(Date.now() % 10000).padStart(4, '0')}-${String(randomBytes(2).readUInt16BE() % 10000).padStart(4, '0')}`;
const callId = `${run}-call`;
const names = {
  // ASCII names first, so a closed <select> picks them by typing (type-ahead).
  reception: `zr${run} 電話`,
  department: `zd${run} 区民課`,
  category: `zc${run} 住民票`,
  handling: `zh${run} 回答`,
  directory: `zp${run} 戸籍係`,
};
const codes = {
  reception: `${run}-rt`, department: `${run}-d`, category: `${run}-c`, handling: `${run}-ht`, directory: `${run}-p`,
};

let browser;
let adminContext;
let adminPage;
let operatorContext;
let operatorPage;
let operator; // {id, login, password, extension, name}
let pastRecord; // a record of the same caller made before the call
let record; // the call's record as the API last gave it

function secret() {
  const value = process.env.NCC_PBX_WEBHOOK_SECRET;
  if (!value) throw new Error('NCC_PBX_WEBHOOK_SECRET must be set (scripts/test.sh exports it; or var/secrets.env)');
  return value;
}

// A signed PBX request from node, as a cloud PBX sends it (docs/pbx-integration.md):
// X-NCC-Signature: t=<seconds>,v1=hex(HMAC-SHA256(secret, "<t>." + body)).
function signedPost(path, payload) {
  const body = JSON.stringify(payload);
  const ts = Math.floor(Date.now() / 1000);
  const v1 = createHmac('sha256', secret()).update(`${ts}.${body}`).digest('hex');
  return new Promise((resolve, reject) => {
    const req = httpsRequest(new URL(path, `${BASE}/`), {
      method: 'POST',
      rejectUnauthorized: false, // the test system's self-signed certificate
      headers: {
        'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body),
        'X-NCC-Signature': `t=${ts},v1=${v1}`,
      },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        text += chunk;
      });
      res.on('end', () => {
        let json = null;
        try {
          json = JSON.parse(text);
        } catch {
          json = null;
        }
        resolve({ status: res.statusCode, body: json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

let eventNo = 0;
async function pbx(type, extra = {}) {
  eventNo += 1;
  const answer = await signedPost('/api/v1/pbx/events', {
    event_id: `${callId}-${eventNo}-${type}`, type, call_id: callId, occurred_at: new Date().toISOString(),
    from: caller, to: '03-3228-5500', ...extra,
  });
  assert.equal(answer.status, 200, `${type}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

async function go(page, hash) {
  const url = `${BASE}/${hash}`;
  if (page.url() === url) await page.reload();
  else await page.goto(url);
  await ready(page);
}

async function make(path, body) {
  const answer = await callApi(adminContext, 'POST', path, { active: true, ...body });
  assert.ok([200, 201].includes(answer.status), `${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

async function recordOfCall(context) {
  const answer = await callApi(context, 'GET', `/api/v1/records?call_id=${encodeURIComponent(callId)}`);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body.items?.[0];
}

const active = (page) => page.evaluate(() => ({
  name: document.activeElement?.getAttribute('name') ?? '', id: document.activeElement?.id ?? '',
  inForm: Boolean(document.activeElement?.closest('#desk-record')),
}));

// Keyboard only: Tab until the field named `name` has the focus (from the side column the
// way round the page passes the menu and the date fields: up to about 50 stops).
async function tabTo(page, name, { max = 70 } = {}) {
  for (let i = 0; i < max; i++) {
    if ((await active(page)).name === name) return;
    await page.keyboard.press('Tab');
  }
  assert.fail(`Tab never reached the field ${name}`);
}

before(async () => {
  browser = await launch();
  ({ context: adminContext, page: adminPage } = await newPage(browser));
  adminUser = await signInAdmin(adminPage);
  await make('/api/v1/reception-types', { code: codes.reception, name: names.reception });
  await make('/api/v1/departments', { code: codes.department, name: names.department, phone: '03-3228-0001' });
  await make('/api/v1/categories', { code: codes.category, name: names.category });
  await make('/api/v1/handling-types', { code: codes.handling, name: names.handling });
  await make('/api/v1/directory', {
    code: codes.directory, department_code: codes.department, section: '戸籍係', name: names.directory, phone: '03-3228-5501',
  });
  const extension = `7${String(Date.now() % 1000000).padStart(6, '0')}`;
  operator = { login: uniq('e2e-op'), password: newPassword(), name: '通話 太郎', extension };
  const made = await createUser(adminContext, { login: operator.login, name: operator.name, roles: ['operator'], password: operator.password, extension });
  operator.id = made.id;
});

after(async () => {
  await browser?.close();
});

test('the history API answers (ncc-history is running)', async () => {
  const answer = await callApi(adminContext, 'GET', '/api/v1/records?per_page=1');
  assert.equal(answer.status, 200, `GET /api/v1/records: ${answer.status} ${JSON.stringify(answer.body)}`);
  // A record of this caller from before: the pop is to show it.
  const made = await callApi(adminContext, 'POST', '/api/v1/records', {
    channel: 'phone', caller_number: caller, inquiry: `以前の問い合わせ ${pastToken}`, response: '案内済み',
    category: codes.category, status: 'closed',
  });
  assert.ok([200, 201].includes(made.status), `POST /api/v1/records: ${made.status} ${JSON.stringify(made.body)}`);
  pastRecord = made.body;
});

test('the operator signs in, the desk shows who they are and that the stream is connected', async () => {
  ({ context: operatorContext, page: operatorPage } = await newPage(browser));
  const page = operatorPage;
  await signIn(page, operator);
  await ready(page);
  assert.equal(await page.evaluate(() => location.hash), '#/desk');
  assert.equal(await page.locator('main h2').innerText(), '通話待ち');
  await page.locator('#nav').getByRole('link', { name: '応対履歴', exact: true }).waitFor();
  assert.match(await page.locator('#desk-operator').innerText(), /通話 太郎/);
  assert.equal(await page.locator('#desk-extension').innerText(), operator.extension);
  await page.locator('#desk-connection[data-state="open"]').waitFor();
  assert.equal(await page.locator('#desk-connection').innerText(), '接続中');
  assert.equal(await page.locator('#desk-call-state').innerText(), '待機中');
  await page.locator('#desk-waiting').waitFor();
  assert.deepEqual(page.problems, []);
});

test('a signed ringing and answered pop the call with the caller, past records and this call\'s record', async () => {
  const page = operatorPage;
  assert.equal((await pbx('ringing')).state, 'ringing');
  assert.equal(await page.locator('#desk-pop').count(), 0, 'ringing alone does not pop');
  const answered = await pbx('answered', { agent_extension: operator.extension });
  assert.equal(answered.state, 'answered');

  await page.locator('#desk-pop').waitFor({ timeout: 10000 });
  assert.equal(await page.locator('#desk-number').innerText(), caller);
  await page.locator('#desk-call-state[data-state="answered"]').waitFor();
  assert.equal(await page.locator('#desk-call-state').innerText(), '通話中');
  await page.waitForFunction(() => /通話時間 \d\d:\d\d/.test(document.getElementById('desk-timer')?.textContent ?? ''));

  // The caller's past record, opened from the keyboard (Alt+H, Enter).
  const past = page.locator(`#desk-history .history-toggle[data-record-id="${pastRecord.id}"]`);
  await past.waitFor();
  assert.match(await past.innerText(), new RegExp(String(pastRecord.receipt_id)));
  // This call's record, found by call_id, in the form; the focus on its first empty field.
  await page.locator('#desk-record').waitFor({ timeout: 15000 });
  record = await recordOfCall(operatorContext);
  assert.ok(record, 'ncc-history made the record of the answered call');
  assert.match(await page.locator('.desk-receipt').innerText(), new RegExp(String(record.receipt_id)));
  // "I'll text you the link": one click to SMS送信 with this record (the number is filled in there).
  assert.equal(await page.locator('#desk-sms').getAttribute('href'), `#/sms?record_id=${record.id}`);
  await page.waitForFunction(() => Boolean(document.activeElement?.closest('#desk-record')));
  const focused = await active(page);
  assert.ok(focused.inForm && focused.name, `focus in the form: ${JSON.stringify(focused)}`);

  await page.keyboard.press('Alt+KeyH');
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.recordId), String(pastRecord.id));
  await page.keyboard.press('Enter');
  const detail = page.locator(`#desk-history-${pastRecord.id}`);
  await detail.waitFor();
  assert.match(await detail.innerText(), new RegExp(pastToken));
  assert.equal(await past.getAttribute('aria-expanded'), 'true');
  await screenshot(page, 'desk-pop');
  assert.deepEqual(await contrastProblems(page), []);
});

test('a transcript segment appears live', async () => {
  const page = operatorPage;
  const answer = await signedPost(`/api/v1/calls/${encodeURIComponent(callId)}/transcript`, {
    segments: [
      { seq: 0, speaker: 'caller', start_ms: 0, end_ms: 2500, text: `住民票の写しを取りたいのですが ${token}` },
      { seq: 1, speaker: 'operator', start_ms: 2600, end_ms: 5000, text: '本人確認書類をお持ちください' },
    ],
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  const first = page.locator('#desk-transcript li[data-seq="0"]');
  await first.waitFor({ timeout: 10000 });
  assert.match(await first.innerText(), /お客様/);
  assert.match(await first.innerText(), new RegExp(token));
  await page.locator('#desk-transcript li[data-seq="1"]').waitFor();
  assert.match(await page.locator('#desk-transcript li[data-seq="1"]').innerText(), /本人確認書類/);
  // The same seq again is taken once and shown once.
  await signedPost(`/api/v1/calls/${encodeURIComponent(callId)}/transcript`, {
    segments: [{ seq: 1, speaker: 'operator', start_ms: 2600, end_ms: 5000, text: '本人確認書類をお持ちください' }],
  });
  await sleep(500);
  assert.equal(await page.locator('#desk-transcript li').count(), 2);
});

test('the operator fills the record with the keyboard and saves it with Ctrl+Enter', async () => {
  const page = operatorPage;
  // Choices by type-ahead in each closed list, moving with Tab.
  await tabTo(page, 'reception_type');
  await page.keyboard.type(`zr${run}`);
  await tabTo(page, 'department_id');
  await page.keyboard.type(`zd${run}`);
  assert.equal(await focusVisible(page), true, 'the focused list shows its focus ring');
  await tabTo(page, 'category');
  await page.keyboard.type(`zc${run}`);
  await tabTo(page, 'handling_type');
  await page.keyboard.type(`zh${run}`);
  // Alt+I jumps to 受付内容; Tab goes on to 対応内容, then 利用FAQ.
  await page.keyboard.press('Alt+KeyI');
  assert.equal((await active(page)).name, 'inquiry');
  await page.keyboard.type(`印鑑登録の手続きについて ${token}`);
  await page.keyboard.press('Tab');
  assert.equal((await active(page)).name, 'response');
  await page.keyboard.type('必要書類と窓口を案内した');
  await tabTo(page, 'faq_ids');
  await page.keyboard.type('12 34');
  // Alt+K: the phone-book search; Enter takes the first match.
  await page.keyboard.press('Alt+KeyK');
  assert.equal((await active(page)).id, 'desk-transfer-q');
  await page.keyboard.type(`zp${run}`);
  await page.keyboard.press('Enter');
  assert.equal(await page.locator('#desk-record select[name="transfer_to"]').inputValue(), codes.directory);
  assert.match(await page.locator('#desk-transfer-q-count').innerText(), new RegExp(`zp${run}`));

  const form = page.locator('#desk-record');
  assert.equal(await form.locator('select[name="reception_type"]').inputValue(), codes.reception);
  assert.equal(await form.locator('select[name="department_id"]').inputValue(), codes.department);
  assert.equal(await form.locator('select[name="category"]').inputValue(), codes.category);
  assert.equal(await form.locator('select[name="handling_type"]').inputValue(), codes.handling);

  await page.keyboard.press('Control+Enter');
  await page.locator('#desk-record-saved').waitFor();
  assert.match(await page.locator('#desk-record-saved').innerText(), new RegExp(`${record.receipt_id} を保存しました`));
  const saved = await recordOfCall(operatorContext);
  assert.equal(saved.inquiry, `印鑑登録の手続きについて ${token}`);
  assert.equal(saved.response, '必要書類と窓口を案内した');
  assert.equal(saved.reception_type, codes.reception);
  assert.equal(saved.department_id, codes.department);
  assert.equal(saved.category, codes.category);
  assert.equal(saved.handling_type, codes.handling);
  assert.equal(saved.transfer_to, codes.directory);
  assert.deepEqual(saved.faq_ids.map(Number), [12, 34]);
  assert.ok(saved.version > record.version, 'a new version');
  record = saved;
  assert.deepEqual(operatorPage.problems, []);
});

test('a record changed meanwhile answers 409: the operator reloads it without losing what they typed', async () => {
  const page = operatorPage;
  // Someone (here: the API) changes the response after the desk read the record.
  const other = await callApi(operatorContext, 'PATCH', `/api/v1/records/${record.id}`, {
    version: record.version, response: `ほかの画面での変更 ${token}`,
  });
  assert.equal(other.status, 200, JSON.stringify(other.body));
  await page.keyboard.press('Alt+KeyI');
  await page.keyboard.press('End');
  await page.keyboard.type('（追記）');
  await page.keyboard.press('Alt+KeyS');
  const conflict = page.locator('#desk-record .record-conflict');
  await conflict.waitFor();
  assert.match(await conflict.innerText(), /入力した内容は残っています/);
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'desk-record-reload', 'the reload button has the focus');
  await page.keyboard.press('Enter');
  await page.locator('#desk-record-merged').waitFor();
  const form = page.locator('#desk-record');
  assert.equal(await form.locator('textarea[name="inquiry"]').inputValue(), `印鑑登録の手続きについて ${token}（追記）`, 'the typing is kept');
  assert.equal(await form.locator('textarea[name="response"]').inputValue(), `ほかの画面での変更 ${token}`, 'the other change is in');
  await page.keyboard.press('Control+Enter');
  await page.locator('#desk-record-saved').waitFor();
  const saved = await recordOfCall(operatorContext);
  assert.equal(saved.inquiry, `印鑑登録の手続きについて ${token}（追記）`);
  assert.equal(saved.response, `ほかの画面での変更 ${token}`);
  record = saved;
});

test('the call ends; Ctrl+Shift+Enter saves the record closed and the desk waits again', async () => {
  const page = operatorPage;
  assert.equal((await pbx('ended')).state, 'ended');
  await page.locator('#desk-call-state[data-state="ended"]').waitFor({ timeout: 10000 });
  assert.equal(await page.locator('#desk-call-state').innerText(), '通話終了・後処理中');
  await page.waitForFunction(() => /後処理 \d\d:\d\d/.test(document.getElementById('desk-timer')?.textContent ?? ''));
  // ncc-history writes the end time into the record; the desk shows it in the form (a
  // field the operator did not touch), keeping what they typed.
  await page.waitForFunction(() => Boolean(document.querySelector('#desk-record input[name="ended_at"]')?.value),
    null, { timeout: 15000 });
  assert.equal(await page.locator('#desk-record textarea[name="inquiry"]').inputValue(), `印鑑登録の手続きについて ${token}（追記）`);
  await page.keyboard.press('Alt+KeyR');
  assert.equal((await active(page)).name, 'response');
  await page.keyboard.press('Control+Shift+Enter');
  await page.locator('#desk-done').waitFor();
  assert.match(await page.locator('#desk-done').innerText(), new RegExp(`${record.receipt_id} を完了として保存しました`));
  await page.locator('#desk-waiting').waitFor();
  assert.equal(await page.locator('#desk-call-state').innerText(), '待機中');
  const saved = await recordOfCall(operatorContext);
  assert.equal(saved.status, 'closed');
  assert.ok(saved.ended_at, 'the end time came from the call');
  assert.ok(saved.wrapup_ended_at, 'saved closed: the wrap-up end is set');
  record = saved;
  assert.deepEqual(await contrastProblems(page), []);
});

test('the operator finds the record in 応対履歴 by keyword, sorts the list and opens the record', async () => {
  const page = operatorPage;
  await page.locator('#nav').getByRole('link', { name: '応対履歴', exact: true }).click();
  await ready(page);
  assert.equal(await page.locator('main h2').innerText(), '応対履歴');
  const form = page.locator('#records-search');
  await form.getByLabel('キーワード').fill(token);
  await form.getByLabel('キーワード').press('Enter');
  await page.waitForFunction((kw) => location.hash.includes(`q=${kw}`), token);
  await ready(page);
  // Searchable within a second of the commit (R32): asked again briefly if not yet.
  const row = page.locator(`#records-table tbody tr[data-record-id="${record.id}"]`);
  for (let i = 0; i < 10 && !(await row.count()); i++) {
    await sleep(500);
    await go(page, `#/records?q=${token}`);
  }
  assert.equal(await row.count(), 1, 'the record is found by its keyword');
  assert.equal(await page.locator('#records-table tbody tr').count(), 1, 'only this record holds the keyword');
  assert.match(await row.innerText(), new RegExp(String(record.receipt_id)));
  assert.match(await row.innerText(), new RegExp(names.category));
  const status = row.locator('.rec-status');
  assert.equal(await status.innerText(), '完了');
  assert.match(await status.getAttribute('class'), /rec-status-final/);
  assert.deepEqual(await contrastProblems(page), []);
  // The operator has no CSV download (ExportRecords: supervisors, administrators, staff).
  assert.equal(await page.locator('#records-export-utf8').count(), 0);

  // Sort by a column header: aria-sort follows, the address keeps it.
  await page.locator('#records-table thead th[data-sort="receipt_id"] a').click();
  await page.waitForFunction(() => location.hash.includes('sort=receipt_id'));
  await ready(page);
  assert.equal(await page.locator('#records-table thead th[data-sort="receipt_id"]').getAttribute('aria-sort'), 'ascending');
  assert.equal(await page.locator('#records-table thead th[aria-sort]').count(), 1);
  await page.locator('#records-table thead th[data-sort="receipt_id"] a').click();
  await page.waitForFunction(() => location.hash.includes('sort=-receipt_id'));
  await ready(page);
  assert.equal(await page.locator('#records-table thead th[data-sort="receipt_id"]').getAttribute('aria-sort'), 'descending');

  // Filters: a status the record does not have finds nothing.
  await go(page, `#/records?q=${token}&status=open`);
  assert.equal(await page.locator(`#records-table tbody tr[data-record-id="${record.id}"]`).count(), 0);
  await go(page, `#/records?q=${token}&status=closed&category=${encodeURIComponent(codes.category)}&operator_id=${operator.id}&channel=phone`);
  assert.equal(await page.locator(`#records-table tbody tr[data-record-id="${record.id}"]`).count(), 1);

  await page.locator(`#records-table tbody tr[data-record-id="${record.id}"] th a`).click();
  await ready(page);
  assert.match(await page.locator('main h2').innerText(), new RegExp(String(record.receipt_id)));
  assert.equal(await page.locator(`#record-edit-${record.id}`).count(), 1, 'operators edit records');
  assert.equal(await page.locator(`#record-edit-${record.id} textarea[name="inquiry"]`).inputValue(), `印鑑登録の手続きについて ${token}（追記）`);
  await screenshot(page, 'records-page');
});

test('the CSV download (UTF-8 and Shift_JIS) carries the search and holds the record', async () => {
  const page = adminPage;
  await go(page, `#/records?q=${token}`);
  const utf8 = await page.locator('#records-export-utf8').getAttribute('href');
  const sjis = await page.locator('#records-export-sjis').getAttribute('href');
  assert.match(utf8, /^\/api\/v1\/records\/export\.csv\?/);
  assert.match(utf8, new RegExp(`q=${token}`));
  assert.match(utf8, /encoding=utf-8/);
  assert.match(sjis, /encoding=shift_jis/);
  const response = await adminContext.request.get(`${BASE}${utf8}`);
  assert.equal(response.status(), 200);
  assert.match(response.headers()['content-type'] ?? '', /text\/csv/);
  const bytes = await response.body();
  assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'UTF-8 with a BOM');
  const text = bytes.toString('utf8').replace(/^\uFEFF/, '');
  const lines = text.split('\r\n').filter(Boolean);
  const header = lines[0].split(',');
  for (const column of ['receipt_id', 'started_at', 'inquiry', 'response', 'status']) {
    assert.ok(header.includes(column), `header has ${column}: ${lines[0]}`);
  }
  const rows = lines.slice(1).filter((l) => l.includes(String(record.receipt_id)));
  assert.equal(rows.length, 1, `one row of the record: ${text.slice(0, 500)}`);
  assert.ok(rows[0].includes(token), 'the row holds the inquiry');
  assert.ok(!text.includes(pastToken), 'the search applies to the file');

  const sjisResponse = await adminContext.request.get(`${BASE}${sjis}`);
  assert.equal(sjisResponse.status(), 200);
  const sjisText = new TextDecoder('shift_jis').decode(await sjisResponse.body());
  assert.ok(sjisText.split('\r\n')[0].includes('receipt_id'));
  assert.ok(sjisText.includes('印鑑登録の手続きについて'), 'Japanese text in Shift_JIS');
});

test('staff read a record without an edit form', async () => {
  const staff = { login: uniq('e2e-staff'), password: newPassword() };
  await createUser(adminContext, { login: staff.login, name: '閲覧 職員', roles: ['staff'], password: staff.password });
  const { context, page } = await newPage(browser);
  try {
    await signIn(page, staff);
    await ready(page);
    assert.equal(await page.evaluate(() => location.hash), '#/records', 'staff start at 応対履歴');
    await go(page, `#/records/${record.id}`);
    assert.equal(await page.locator(`#record-edit-${record.id}`).count(), 0);
    assert.match(await page.locator('#record-content').innerText(), new RegExp(token));
    assert.equal(await page.locator('#desk-record').count(), 0);
    assert.equal((await callApi(context, 'PATCH', `/api/v1/records/${record.id}`, { version: record.version, response: 'x' })).status, 403);
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
  }
});
