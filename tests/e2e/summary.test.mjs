// The desk's AI panels and the supervisors' alert (issue 7: R36, R37, R49; docs/summary.md,
// docs/web.md): the administrator publishes a public FAQ; an operator's call is popped by
// signed PBX webhooks and its transcript segments are posted as the STT service posts them;
// the desk shows the running summary (masked: the caller's name never appears), the
// emotion bars with a warning once the caller gets angry, and the suggested FAQs; a click on
// 利用FAQに追加 (and Alt+2 for the same FAQ: refused as already there) fills the record's
// 利用FAQ; a supervisor signed in elsewhere gets the anger alert (banner, then モニタリング);
// the 回答案 card drafts an answer from the published FAQ, with its citation, and refuses a
// question no public FAQ answers. Needs NCC_PBX_WEBHOOK_SECRET and the bootstrap
// administrator, as scripts/test.sh exports them.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BASE, signInAdmin, callApi, contrastProblems, createUser, launch, newPage, newPassword, ready, screenshot, signIn, uniq,
} from './lib.mjs';

let adminUser; // the administrator this file signs in (signInAdmin)

const run = uniq('e2s').slice(0, 20);
const callId = `${run}-call`;
const TOPIC = 'ハクビシン'; // a rare topic: no other test's FAQ is about it
const CALLER_NAME = '森川早苗'; // an invented person

let browser;
let adminContext;
let operatorContext;
let operatorPage;
let supervisorContext;
let supervisorPage;
let operator;
let supervisor;
let faq; // the published public FAQ {id, number}

function secret() {
  const value = process.env.NCC_PBX_WEBHOOK_SECRET;
  if (!value) throw new Error('NCC_PBX_WEBHOOK_SECRET must be set (scripts/test.sh exports it; or var/secrets.env)');
  return value;
}

// A signed request from node, as the PBX and the STT service send it (docs/pbx-integration.md).
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
      res.on('end', () => resolve({ status: res.statusCode, text }));
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
    from: '090-5555-0123', to: '03-3228-5500', ...extra,
  });
  assert.equal(answer.status, 200, `${type}: ${answer.status} ${answer.text}`);
}

let seq = 0;
let at = 0;
async function say(speaker, text) {
  const segment = { seq, speaker, start_ms: at, end_ms: at + 3000, text };
  seq += 1;
  at += 3100;
  const answer = await signedPost(`/api/v1/calls/${encodeURIComponent(callId)}/transcript`, { segments: [segment] });
  assert.equal(answer.status, 200, `transcript: ${answer.status} ${answer.text}`);
}

before(async () => {
  browser = await launch();
  let adminPage;
  ({ context: adminContext, page: adminPage } = await newPage(browser));
  adminUser = await signInAdmin(adminPage);
  // The FAQ of an earlier run against the same system is archived: this run's is the one.
  const earlier = await callApi(adminContext, 'GET', `/api/v1/faqs?q=${encodeURIComponent(TOPIC)}&status=published&per_page=100`);
  assert.equal(earlier.status, 200, JSON.stringify(earlier.body));
  for (const old of earlier.body.items.filter((f) => f.question.startsWith(TOPIC))) {
    const archived = await callApi(adminContext, 'PATCH', `/api/v1/faqs/${old.id}`, { version: old.version, status: 'archived' });
    assert.equal(archived.status, 200, JSON.stringify(archived.body));
  }
  const made = await callApi(adminContext, 'POST', '/api/v1/faqs', {
    question: `${TOPIC}の駆除について相談したい`,
    answer: `${TOPIC}などの害獣の相談は、生活衛生課で受け付けています。捕獲には区の許可が必要です。`
      + 'わなの貸し出しは行っていません。',
    keywords: `${TOPIC} 害獣 駆除 屋根裏`, visibility: 'public',
  });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const approved = await callApi(adminContext, 'POST', `/api/v1/faqs/${made.body.id}/approve`, { version: made.body.version });
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  faq = { id: made.body.id, number: made.body.number };
  const extension = `8${String(Date.now() % 1000000).padStart(6, '0')}`;
  operator = { login: uniq('e2s-op'), password: newPassword(), name: '要約 花子', extension };
  await createUser(adminContext, { login: operator.login, name: operator.name, roles: ['operator'], password: operator.password, extension });
  supervisor = { login: uniq('e2s-sv'), password: newPassword(), name: '監督 四郎' };
  await createUser(adminContext, { login: supervisor.login, name: supervisor.name, roles: ['supervisor'], password: supervisor.password });
});

after(async () => {
  await browser?.close();
});

test('the desk shows the masked running summary, the emotion and the suggested FAQs of a call', async () => {
  ({ context: operatorContext, page: operatorPage } = await newPage(browser));
  ({ context: supervisorContext, page: supervisorPage } = await newPage(browser));
  const page = operatorPage;
  await signIn(page, operator);
  await ready(page);
  await page.locator('#desk-connection[data-state="open"]').waitFor();
  await signIn(supervisorPage, supervisor);
  await ready(supervisorPage);

  await pbx('ringing');
  await pbx('answered', { agent_extension: operator.extension });
  await page.locator('#desk-pop').waitFor({ timeout: 10000 });
  assert.equal(await page.locator('#desk-ai-summary-empty').count(), 1, 'no summary before anyone speaks');

  await say('operator', 'お電話ありがとうございます。中野区役所です。');
  await say('caller', `${CALLER_NAME}と申します。${TOPIC}が屋根裏に住みついてしまって、駆除の相談をしたいんですが、どうすればいいですか。`);
  await say('operator', `${TOPIC}の相談は生活衛生課で受け付けています。`);

  // the running summary (debounced: a couple of seconds), without the caller's name
  const summary = page.locator('#desk-ai-summary');
  await summary.waitFor({ timeout: 20000 });
  let text = '';
  for (let i = 0; i < 40 && !text.includes(TOPIC); i++) {
    text = await summary.innerText();
    if (!text.includes(TOPIC)) await sleep(500);
  }
  assert.ok(text.includes(TOPIC), `the summary: ${text}`);
  assert.match(text, /用件: /);
  assert.equal(text.includes(CALLER_NAME), false, `the summary holds the caller's name: ${text}`);
  assert.match(await page.locator('#desk-ai-summary-state').innerText(), /通話中の要約/);

  // emotion bars, calm so far
  await page.locator('#desk-emotion-card .emotion-row').first().waitFor();
  assert.equal(await page.locator('#desk-emotion-card .emotion-row').count(), 3);
  assert.equal(await page.locator('#desk-anger-warning').count(), 0, 'no warning while calm');

  // the suggested FAQs: number and question
  const item = page.locator(`#desk-faq-suggestions li[data-number="${faq.number}"]`);
  await item.waitFor({ timeout: 20000 });
  assert.match(await item.innerText(), new RegExp(`FAQ ${faq.number}[\\s\\S]*${TOPIC}の駆除について相談したい`));
  assert.deepEqual(page.problems, []);
});

test('a suggested FAQ goes into the record\'s 利用FAQ by a click, once, and the keyboard knows it', async () => {
  const page = operatorPage;
  const field = page.locator('#desk-record [name="faq_ids"]');
  await field.waitFor({ timeout: 15000 });
  assert.equal(await field.inputValue(), '');
  await page.locator(`#desk-faq-suggestions li[data-number="${faq.number}"] button.desk-faq-add`).click();
  assert.equal((await field.inputValue()).trim(), String(faq.number));
  assert.match(await page.locator('#desk-faq-note').innerText(), new RegExp(`FAQ ${faq.number} を利用FAQに追加しました`));
  // the same FAQ by its shortcut: not added twice
  const index = await page.locator('#desk-faq-suggestions li').evaluateAll(
    (items, number) => items.findIndex((li) => li.dataset.number === String(number)), faq.number);
  await page.locator('main h2').first().focus();
  await page.keyboard.press(`Alt+Digit${index + 1}`);
  assert.equal((await field.inputValue()).trim(), String(faq.number));
  assert.match(await page.locator('#desk-faq-note').innerText(), /すでに利用FAQにあります/);
  assert.deepEqual(page.problems, []);
});

test('rising anger warns the operator and alerts the supervisor', async () => {
  const page = operatorPage;
  await say('caller', '何度も電話しているのに、本当にいい加減にしてください！話にならない！');
  await say('caller', 'もういい、責任者を出して！たらい回しはもうたくさんだ！');
  await say('caller', '本当にふざけるな！いい加減にしろ！話にならない！');
  await say('caller', 'いい加減にしてください！何度同じことを言わせるんだ！');
  await page.locator('#desk-anger-warning').waitFor({ timeout: 15000 });
  assert.match(await page.locator('#desk-anger-warning').innerText(), /怒りが高まっています/);
  const anger = Number((await page.locator('#desk-emotion-anger').innerText()).replace('%', ''));
  assert.ok(anger >= 50, `anger ${anger}%`);
  assert.equal(await page.locator('#desk-emotion-card').getAttribute('data-rising'), 'true');
  await screenshot(page, 'desk-summary');

  // the supervisor, on another page, gets a banner; モニタリング lists the call
  const banner = supervisorPage.locator('#monitor-banner');
  await banner.waitFor({ timeout: 15000 });
  assert.match(await banner.innerText(), new RegExp(callId));
  await banner.getByRole('link', { name: 'モニタリングを開く' }).click();
  await ready(supervisorPage);
  const row = supervisorPage.locator(`#monitor-table tr[data-call-id="${callId}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /\d+%/);
  await supervisorPage.waitForFunction((name) => document.getElementById('monitor-table')?.textContent.includes(name), operator.name, { timeout: 10000 });
  assert.deepEqual(await contrastProblems(supervisorPage), [], 'text contrast (WCAG AA)');
  assert.deepEqual(supervisorPage.problems, []);
  await screenshot(supervisorPage, 'monitor');
});

test('the draft answer button drafts from the published FAQ with its citation, and refuses otherwise', async () => {
  const page = operatorPage;
  await page.locator('#desk-draft-question').fill(`${TOPIC}が屋根裏にいて困っています。駆除はどうすればいいですか。`);
  await page.locator('#desk-draft-make').click();
  const draft = page.locator('#desk-draft-text');
  await draft.waitFor({ timeout: 15000 });
  const text = await draft.innerText();
  const cited = [...text.matchAll(/（FAQ (\d+)）/g)].map((m) => Number(m[1]));
  assert.ok(cited.length >= 1, `no citation: ${text}`);
  assert.ok(cited.includes(faq.number), `FAQ ${faq.number} not cited: ${text}`);
  assert.match(text, /生活衛生課で受け付けています/);
  const citation = page.locator(`#desk-draft-citations li[data-number="${faq.number}"]`);
  assert.match(await citation.innerText(), new RegExp(`FAQ ${faq.number} ${TOPIC}の駆除について相談したい`));
  await page.locator('#desk-draft-copy').click();
  // the copy is asynchronous (the clipboard API): wait for its message
  await page.locator('#desk-draft-copied').filter({ hasText: /コピーしました|選択しました/ }).waitFor();

  // nothing public answers it: a refusal, not an error
  await page.locator('#desk-draft-question').fill('宇宙旅行の補助金はありますか。');
  await page.locator('#desk-draft-make').click();
  await page.locator('#desk-draft-refused').waitFor({ timeout: 15000 });
  assert.equal(await page.locator('#desk-draft-text').count(), 0);
  assert.deepEqual(await contrastProblems(page), [], 'text contrast (WCAG AA)');
  assert.deepEqual(page.problems, []);
  await screenshot(page, 'desk-draft');
  await operatorContext.close();
  await supervisorContext.close();
});
