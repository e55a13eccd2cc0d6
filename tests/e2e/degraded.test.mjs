// Degraded mode in the operator's desk (issue 10, R20; docs/web.md "When a service is down",
// docs/operations.md): while ncc-history does not answer, the desk says so in a banner,
// draws the call's record form without the record, keeps what the operator types through a
// failed save and a reload (offered back), offers the offline CSV template, and once the
// service is back the banner goes by itself and one click saves exactly one record. A record
// typed without a call whose answer was lost (stored, but answered 503) is sent again with the
// same idempotency_key and stored once (with what was typed after the lost try).
//
// The outage is made with page.route (503 for /api/v1/records*, and /api/v1/health saying
// history is down), not by stopping ncc-history: the browser tests share one running system
// (scripts/test.sh; node may run test files side by side), a stopped daemon would fail the
// other files' record requests, and every request to a stopped daemon waits out the bus
// time-out (3 s), which would make this file several times slower. What the client does is the
// same: the gateway answers 503 `service_unavailable` when no copy of a service answers.
// The records the test checks are read with the API (context.request, not routed).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import {
  BASE, callApi, contrastProblems, createUser, launch, newPage, newPassword, ready, screenshot, signIn,
  signInAdmin, uniq,
} from './lib.mjs';

const run = uniq('dg').slice(0, 20);
const token = `dg${randomBytes(4).toString('hex')}`; // the call's record
const manualToken = `dm${randomBytes(4).toString('hex')}`; // the record typed without a call
const importToken = `di${randomBytes(4).toString('hex')}`; // the record typed in Excel
const callId = `${run}-call`;
const caller = `080-${String(Date.now() % 10000).padStart(4, '0')}-${String(randomBytes(2).readUInt16BE() % 10000).padStart(4, '0')}`;
const HEADER = 'receipt_id,call_id,channel,operator_id,operator_name,started_at,ended_at,wrapup_ended_at,'
  + 'reception_type,department_id,handling_type,faq_ids,category,inquiry,response,transfer_to,summary,status,'
  + 'caller_number,created_at,updated_at';

let browser;
let adminContext;
let adminPage;
let operatorContext;
let page;
let operator;

// The outage as the browser sees it.
const outage = { history: false, loseAnswer: false };
const posts = []; // bodies of POST /api/v1/records the page sent

function signedPost(path, payload) {
  const secret = process.env.NCC_PBX_WEBHOOK_SECRET;
  if (!secret) throw new Error('NCC_PBX_WEBHOOK_SECRET must be set (scripts/test.sh exports it)');
  const body = JSON.stringify(payload);
  const ts = Math.floor(Date.now() / 1000);
  const v1 = createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex');
  return new Promise((resolve, reject) => {
    const req = httpsRequest(new URL(path, `${BASE}/`), {
      method: 'POST',
      rejectUnauthorized: false,
      headers: {
        'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body),
        'X-NCC-Signature': `t=${ts},v1=${v1}`,
      },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(body);
  });
}

let eventNo = 0;
async function pbx(type, extra = {}) {
  eventNo += 1;
  const status = await signedPost('/api/v1/pbx/events', {
    event_id: `${callId}-${eventNo}-${type}`, type, call_id: callId, occurred_at: new Date().toISOString(),
    from: caller, to: '03-3228-5500', ...extra,
  });
  assert.equal(status, 200, `${type}: ${status}`);
}

const unavailable = {
  status: 503, contentType: 'application/json',
  body: JSON.stringify({ error: { code: 'service_unavailable', message: 'no copy of history answered' } }),
};

async function kept() {
  return page.evaluate((id) => JSON.parse(sessionStorage.getItem(`ncc.unsaved.${id}`) ?? '{}'), operator.id);
}

before(async () => {
  browser = await launch();
  ({ context: adminContext, page: adminPage } = await newPage(browser));
  await signInAdmin(adminPage);
  const extension = `6${String(Date.now() % 1000000).padStart(6, '0')}`;
  operator = { login: uniq('e2e-dg'), password: newPassword(), name: '縮退 花子', extension };
  operator.id = (await createUser(adminContext, {
    login: operator.login, name: operator.name, roles: ['operator'], password: operator.password, extension,
  })).id;
  ({ context: operatorContext, page } = await newPage(browser));
  await page.route('**/api/v1/records**', async (route) => {
    const request = route.request();
    if (request.method() === 'POST' && new URL(request.url()).pathname === '/api/v1/records') {
      posts.push(request.postDataJSON());
    }
    if (outage.history) return route.fulfill(unavailable);
    if (outage.loseAnswer && request.method() === 'POST') {
      await route.fetch(); // stored by ncc-history; the answer is lost on the way back
      return route.fulfill(unavailable);
    }
    return route.continue();
  });
  await page.route('**/api/v1/health', (route) => (outage.history
    ? route.fulfill({
      status: 503, contentType: 'application/json',
      body: JSON.stringify({ status: 'degraded', services: [{ name: 'history', status: 'down' }] }),
    })
    : route.continue()));
  await signIn(page, operator);
  await ready(page);
  assert.equal(await page.evaluate(() => location.hash), '#/desk');
  await page.locator('#desk-connection[data-state="open"]').waitFor();
});

after(async () => {
  await browser?.close();
});

test('a record typed without a call whose answer was lost is saved again with the same key, once', async () => {
  await page.locator('#desk-manual').click();
  const form = page.locator('#desk-record');
  await form.locator('textarea[name="inquiry"]').fill(`窓口での相談 ${manualToken}`);
  outage.loseAnswer = true;
  await form.locator('button[type="submit"]').click();
  await page.locator('#desk-record-not-saved').waitFor();
  assert.match(await page.locator('#desk-record-not-saved').innerText(), /記録は保存されていません/);
  assert.equal(await form.locator('textarea[name="inquiry"]').inputValue(), `窓口での相談 ${manualToken}`, 'the form stays filled');
  await page.waitForFunction(() => (document.getElementById('desk-degraded')?.dataset.down ?? '').split(',').includes('history'));

  // Typed on meanwhile: the retry's key answers the record made by the lost try, and the
  // addition goes in as a change of it.
  await form.locator('textarea[name="inquiry"]').fill(`窓口での相談 ${manualToken} 追記`);
  outage.loseAnswer = false;
  await page.locator('#desk-record-retry').click();
  await page.locator('#desk-record-saved').waitFor();
  const mine = posts.filter((b) => String(b.inquiry ?? '').includes(manualToken));
  assert.equal(mine.length, 2, 'sent twice');
  assert.match(mine[0].idempotency_key, /^[A-Za-z0-9_-]{8,100}$/);
  assert.equal(mine[1].idempotency_key, mine[0].idempotency_key, 'the retry carries the same idempotency_key');
  const list = await callApi(operatorContext, 'GET', `/api/v1/records?q=${manualToken}`);
  assert.equal(list.status, 200, JSON.stringify(list.body));
  assert.equal(list.body.total, 1, 'stored exactly once');
  assert.equal(list.body.items[0].channel, 'phone');
  assert.equal(list.body.items[0].inquiry, `窓口での相談 ${manualToken} 追記`);
  assert.equal(list.body.items[0].operator_id, operator.id);
  assert.deepEqual(await kept(), {}, 'nothing kept once saved');
  await page.locator('#desk-manual-close').click();
  await page.locator('#desk-waiting').waitFor();
});

test('ncc-history down at the pop: a banner, the form without the record, the input kept through a failed save', async () => {
  outage.history = true;
  await pbx('ringing');
  await pbx('answered', { agent_extension: operator.extension });
  await page.locator('#desk-pop').waitFor({ timeout: 10000 });
  await page.locator('#desk-record-offline').waitFor();
  const alert = page.locator('#desk-degraded');
  await alert.waitFor();
  assert.equal(await alert.getAttribute('role'), 'alert');
  const text = await alert.innerText();
  assert.match(text, /応対履歴（通話記録）サービスに接続できません/);
  assert.match(text, /入力内容はこの端末（このタブ）に保存されています。復旧後に保存してください。/);

  const form = page.locator('#desk-record');
  await form.locator('textarea[name="inquiry"]').fill(`児童手当の申請 ${token}`);
  await form.locator('textarea[name="response"]').fill('必要書類を案内した');
  await form.locator('button[type="submit"]').click();
  const failed = page.locator('#desk-record-not-saved');
  await failed.waitFor();
  assert.match(await failed.innerText(), /記録は保存されていません/);
  assert.equal(await form.locator('textarea[name="inquiry"]').inputValue(), `児童手当の申請 ${token}`);
  const entry = (await kept())[`call:${callId}`];
  assert.ok(entry, 'kept in sessionStorage under the call');
  assert.equal(entry.typed.inquiry, `児童手当の申請 ${token}`);
  assert.equal(entry.failed, true);

  // The offline template: the import's header line, UTF-8 with a BOM.
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#desk-degraded-template').click()]);
  assert.equal(download.suggestedFilename(), 'ncc-records-template.csv');
  assert.equal(readFileSync(await download.path(), 'utf8'), `\ufeff${HEADER}\r\n`);

  await screenshot(page, 'desk-degraded');
  assert.deepEqual(await contrastProblems(page), []);
});

test('a reload offers the input back', async () => {
  await page.reload();
  await ready(page);
  const question = page.locator('#desk-record-restore-question');
  await question.waitFor({ timeout: 15000 });
  assert.match(await question.innerText(), /保存されていない入力があります。復元しますか？/);
  const form = page.locator('#desk-record');
  assert.equal(await form.locator('textarea[name="inquiry"]').inputValue(), '');
  await page.locator('#desk-record-restore').click();
  assert.equal(await form.locator('textarea[name="inquiry"]').inputValue(), `児童手当の申請 ${token}`);
  assert.equal(await form.locator('textarea[name="response"]').inputValue(), '必要書類を案内した');
  await page.locator('#desk-record-not-saved').waitFor(); // it still says it was not saved
  assert.ok(await page.locator('#desk-degraded').isVisible(), 'the banner is still there');
});

test('the service back: the banner goes by itself and one click saves exactly one record', async () => {
  outage.history = false;
  await page.locator('#desk-degraded').waitFor({ state: 'hidden', timeout: 12000 });
  await page.locator('#desk-record-service-state[data-back="true"]').waitFor();
  await page.locator('#desk-record-retry').click();
  await page.locator('#desk-record-saved').waitFor();
  const list = await callApi(operatorContext, 'GET', `/api/v1/records?call_id=${encodeURIComponent(callId)}`);
  assert.equal(list.status, 200, JSON.stringify(list.body));
  assert.equal(list.body.total, 1, 'one record for the call');
  assert.equal(list.body.items[0].inquiry, `児童手当の申請 ${token}`);
  assert.equal(list.body.items[0].response, '必要書類を案内した');
  assert.deepEqual(await kept(), {}, 'nothing kept once saved');
  assert.deepEqual(page.problems, []);
});

test('the record page keeps a change that could not be saved and offers it back after a reload', async () => {
  const record = (await callApi(operatorContext, 'GET', `/api/v1/records?call_id=${encodeURIComponent(callId)}`)).body.items[0];
  await page.goto(`${BASE}/#/records/${record.id}`);
  await ready(page);
  const form = page.locator(`#record-edit-${record.id}`);
  await form.locator('textarea[name="response"]').fill(`後日折り返し ${token}`);
  outage.history = true;
  await form.locator('button[type="submit"]').click();
  await page.locator(`#record-edit-${record.id}-not-saved`).waitFor();
  await page.locator('#record-degraded:not([hidden])').waitFor();
  outage.history = false;
  await page.reload();
  await ready(page);
  await page.locator(`#record-edit-${record.id}-restore`).click();
  assert.equal(await form.locator('textarea[name="response"]').inputValue(), `後日折り返し ${token}`);
  await page.locator(`#record-edit-${record.id}-retry`).click();
  await page.locator(`#record-edit-${record.id}-saved`).waitFor();
  const saved = (await callApi(operatorContext, 'GET', `/api/v1/records/${record.id}`)).body;
  assert.equal(saved.response, `後日折り返し ${token}`);
  assert.equal(saved.version, record.version + 1);
  assert.deepEqual(await kept(), {});
});

test('after the outage a supervisor imports the template typed in Excel: line-numbered errors, all rows or none', async () => {
  const row = (channel) => ['', '', channel, '', '', '2026/12/1 9:05', '', '', '', '', '', '', '',
    `停止中の電話 ${importToken}`, '案内した', '', '', 'open', '', '', ''].join(',');
  const file = (lines) => ({ name: 'offline.csv', mimeType: 'text/csv', buffer: Buffer.from(`\ufeff${[HEADER, ...lines].join('\r\n')}\r\n`) });
  await adminPage.goto(`${BASE}/#/records`);
  await ready(adminPage);
  await adminPage.locator('#records-import-link').click();
  await ready(adminPage);
  await adminPage.locator('#records-import input[type="file"]').setInputFiles(file([row('phone'), row('fax')]));
  await adminPage.locator('#records-import-check').click();
  const errors = adminPage.locator('#records-import-errors tbody tr');
  await errors.first().waitFor();
  assert.equal(await errors.count(), 1);
  assert.equal(await errors.first().locator('td.line').innerText(), '3', 'the bad row by its line (the header is line 1)');
  assert.match(await adminPage.locator('#records-import-error').innerText(), /何も取り込まれていません/);
  assert.ok(await adminPage.locator('#records-import-apply').isDisabled());

  await adminPage.locator('#records-import input[type="file"]').setInputFiles(file([row('phone')]));
  await adminPage.locator('#records-import-check').click();
  await adminPage.locator('#records-import-preview').waitFor();
  assert.match(await adminPage.locator('#records-import-preview').innerText(), /1 件を取り込めます/);
  let list = await callApi(adminContext, 'GET', `/api/v1/records?q=${importToken}`);
  assert.equal(list.body.total, 0, 'the preview and the refused file stored nothing');
  await adminPage.locator('#records-import-apply').click();
  await adminPage.locator('#records-import-done').waitFor();
  list = await callApi(adminContext, 'GET', `/api/v1/records?q=${importToken}`);
  assert.equal(list.body.total, 1);
  assert.equal(list.body.items[0].started_at, '2026-12-01T09:05:00+09:00');
  assert.deepEqual(adminPage.problems, []);
});
