// Learning from operators (docs/faq.md "Learning from operators"): an operator who opens
// an FAQ from the results of a search sends the words searched; one who puts an FAQ that a
// search found into a record's 利用FAQ at the desk sends them too; an administrator sees
// the words on the FAQ (「この FAQ が選ばれた検索語」, with the users and the time), which
// an operator does not, and deletes one after a confirmation. The tests run in order.
//
// The FAQs' words are random rare kanji (as in faq.test.mjs), so no other FAQ is found.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BASE, callApi, createUser, launch, newPage, newPassword, ready, screenshot, signIn, signInAdmin, uniq,
} from './lib.mjs';

let browser;
let adminContext;
let adminPage;
let operatorPage;
const made = {}; // the FAQs: opened (found and opened), used (found and put into a record)

// A word of `n` random kanji of CJK Extension A: no other FAQ holds it.
function word(n = 5) {
  let out = '';
  for (let i = 0; i < n; i++) out += String.fromCodePoint(0x3400 + randomInt(0x4dbf - 0x3400));
  return out;
}

const OPENED = word();
const USED = word();
const OPENED_Q = `${OPENED}を捨てたい`; // normalised as typed (kanji and hiragana)
const USED_Q = `${USED}について`;

async function go(page, hash) {
  const url = `${BASE}/${hash}`;
  if (page.url() === url) await page.reload();
  else await page.goto(url);
  await ready(page);
}

async function adminApi(method, path, body) {
  const answer = await callApi(adminContext, method, path, body);
  assert.ok(answer.status >= 200 && answer.status < 300, `${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

// A published internal FAQ.
async function publishedFaq(question) {
  const faq = await adminApi('POST', '/api/v1/faqs', { question, answer: '受付センターへ申し込んでください。', visibility: 'internal' });
  return adminApi('POST', `/api/v1/faqs/${faq.id}/approve`, { version: faq.version });
}

// Waits until the FAQ's learned words (as the administrator reads them) hold `q`.
async function learned(id, q, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const list = await adminApi('GET', `/api/v1/faqs/${id}/clicks`);
    const item = (list.items ?? []).find((c) => c.q === q);
    if (item) return item;
    if (Date.now() > deadline) assert.fail(`the words ${q} were not learned for FAQ ${id}: ${JSON.stringify(list)}`);
    await sleep(200);
  }
}

// Searches as `page` through the search form; resolves once the results are shown.
async function searchFor(page, q) {
  await go(page, '#/faq');
  const form = page.locator('#faq-search');
  await form.getByLabel('キーワードまたはFAQ番号').fill(q);
  await form.getByRole('button', { name: '検索', exact: true }).click();
  await page.waitForFunction((text) => new URLSearchParams(location.hash.split('?')[1] ?? '').get('q') === text, q);
  await ready(page);
  await page.locator('#faq-result-count').waitFor();
}

before(async () => {
  browser = await launch();
  ({ context: adminContext, page: adminPage } = await newPage(browser));
  await signInAdmin(adminPage);
  made.opened = await publishedFaq(`${OPENED}の出し方`);
  made.used = await publishedFaq(`${USED}の手続き`);
  const operator = { login: uniq('e2e-click'), name: 'クリック 花子', password: newPassword() };
  await createUser(adminContext, { ...operator, roles: ['operator'], extension: `7${String(Date.now() % 1000000).padStart(6, '0')}` });
  ({ page: operatorPage } = await newPage(browser));
  await signIn(operatorPage, operator);
  await ready(operatorPage);
});

after(async () => {
  await browser?.close();
});

test('opening an FAQ from the results sends the words searched; an operator sees no learned words', async () => {
  const page = operatorPage;
  await searchFor(page, OPENED_Q);
  const result = page.locator(`#faq-results > li[data-number="${made.opened.number}"] a`);
  await result.click();
  await page.waitForFunction((id) => location.hash === `#/faq/${id}`, made.opened.id);
  await ready(page);
  const item = await learned(made.opened.id, OPENED_Q);
  assert.equal(item.users, 1);
  assert.ok(item.last_at, 'the time of the click');
  assert.equal(await page.locator('#faq-clicks-card').count(), 0, 'an operator does not see the learned words');
  // the same words again by the same user count once
  await searchFor(page, OPENED_Q);
  await result.click();
  await ready(page);
  await sleep(500);
  assert.equal((await learned(made.opened.id, OPENED_Q)).users, 1);
  // an operator may not read the list through the API either
  const refused = await callApi(page.context(), 'GET', `/api/v1/faqs/${made.opened.id}/clicks`);
  assert.equal(refused.status, 403);
});

test('an FAQ found by a search and put into a record\'s 利用FAQ at the desk sends the words', async () => {
  const page = operatorPage;
  await searchFor(page, USED_Q);
  assert.ok(await page.locator(`#faq-results > li[data-number="${made.used.number}"]`).count(), 'the search finds the FAQ');
  // not opened: nothing learned yet
  assert.equal((await adminApi('GET', `/api/v1/faqs/${made.used.id}/clicks`)).total, 0);
  await go(page, '#/desk');
  await page.locator('#desk-manual').click();
  const form = page.locator('#desk-record');
  await form.locator('textarea[name="inquiry"]').fill(`${USED}の手続きの相談`);
  await form.locator('[name="faq_ids"]').fill(String(made.used.number));
  await form.locator('button[type="submit"]').click();
  await page.locator('#desk-record-saved').waitFor();
  const item = await learned(made.used.id, USED_Q);
  assert.equal(item.users, 1);
  await page.locator('#desk-manual-close').click();
});

test('an administrator sees the words that led to an FAQ and deletes one after a confirmation', async () => {
  const page = adminPage;
  await go(page, `#/faq/${made.opened.id}`);
  const card = page.locator('#faq-clicks-card');
  await card.getByRole('heading', { name: 'この FAQ が選ばれた検索語' }).waitFor();
  const row = card.locator('tr.faq-click', { hasText: OPENED_Q });
  await row.waitFor();
  assert.equal(await row.locator('.faq-click-users').innerText(), '1');
  assert.match(await row.innerText(), /\d{4}\/\d{2}\/\d{2}/, 'the time it was last chosen');
  await screenshot(page, 'faq-clicks');
  // cancelled: nothing removed
  await row.getByRole('button', { name: `検索語「${OPENED_Q}」を削除` }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'キャンセル' }).click();
  assert.equal((await adminApi('GET', `/api/v1/faqs/${made.opened.id}/clicks`)).total, 1);
  // confirmed: gone, here and for the search
  await row.getByRole('button', { name: `検索語「${OPENED_Q}」を削除` }).click();
  const dialog = page.getByRole('dialog');
  assert.match(await dialog.innerText(), new RegExp(`${OPENED_Q}.*1 人分`));
  await dialog.getByRole('button', { name: '削除', exact: true }).click();
  await card.locator('.notice', { hasText: `検索語「${OPENED_Q}」を削除しました。` }).waitFor();
  await card.locator('#faq-clicks-empty').waitFor();
  assert.equal((await adminApi('GET', `/api/v1/faqs/${made.opened.id}/clicks`)).total, 0);
  assert.deepEqual(page.problems, []);
  assert.deepEqual(operatorPage.problems, []);
});
