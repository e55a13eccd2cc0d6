// FAQ screens (issue 6; docs/faq.md, docs/web.md): an operator searches by words and by FAQ
// number and opens an FAQ (drafts stay hidden); an administrator writes an FAQ with its
// preview, asks for approval, approves it from the queue, edits it and reads the
// differences between versions; a synonym group makes a new word find an FAQ; a search
// without results shows in the zero-hit report and leads to a new FAQ; HTML in an answer is
// shown as text everywhere; CSV import (preview, errors by line) and export links. The tests
// run in order and share what they make; the administrator signs in once.
//
// Every word searched here is made of random rare kanji (see word()), so no FAQ of an
// earlier run, nor any other test's FAQ, shares a word or a character pair with it.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import {
  BASE, signInAdmin, callApi, createUser, launch, newPage, newPassword, ready, screenshot, signIn, uniq,
} from './lib.mjs';

let adminUser; // the administrator this file signs in (signInAdmin)

const XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>"><svg onload="window.__xss=3">';

let browser;
let adminContext;
let adminPage;
let operatorPage;
const run = uniq('e2e').slice(0, 20);
const made = {}; // what earlier tests made: faq, draft, department

// A word of `n` random kanji of CJK Extension A (U+3400..U+4DBF, none in MeCab's
// dictionary nor in common text): no other FAQ holds it or its character pairs.
function word(n = 6) {
  let out = '';
  for (let i = 0; i < n; i++) out += String.fromCodePoint(0x3400 + randomInt(0x4dbf - 0x3400));
  return out;
}

const TOPIC = word(); // in the first FAQ's question
const SYNONYM = word(); // in no FAQ until a synonym group names it with TOPIC
const MISSING = word(); // never in any FAQ: a zero hit

async function go(page, hash) {
  const url = `${BASE}/${hash}`;
  if (page.url() === url) await page.reload();
  else await page.goto(url);
  await ready(page);
}

async function xssUntouched(page) {
  assert.equal(await page.evaluate(() => window.__xss), undefined, 'a script from an answer ran');
  assert.equal(await page.locator('#main img, #main svg, #main script').count(), 0,
    'markup from an answer became elements');
}

async function faqApi(method, path, body) {
  const answer = await callApi(adminContext, method, path, body);
  assert.ok(answer.status >= 200 && answer.status < 300, `${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
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

// Waits for the message a view shows after an action (the view is mounted again).
async function flashed(page, pattern) {
  await page.locator('.flash', { hasText: pattern }).waitFor();
  await ready(page);
}

async function resultNumbers(page) {
  return page.locator('#faq-results > li').evaluateAll((items) => items.map((li) => li.dataset.number));
}

before(async () => {
  browser = await launch();
  ({ context: adminContext, page: adminPage } = await newPage(browser));
  adminUser = await signInAdmin(adminPage);
  made.department = { code: `${run}-fq`, name: `e2e FAQ課 ${run}` };
  const department = await callApi(adminContext, 'POST', '/api/v1/departments', { ...made.department, active: true });
  assert.equal(department.status, 201, JSON.stringify(department.body));
  const operator = { login: uniq(`${run}-op`), name: 'FAQ オペレーター', password: newPassword() };
  await createUser(adminContext, { ...operator, roles: ['operator'] });
  ({ page: operatorPage } = await newPage(browser));
  await signIn(operatorPage, operator);
});

after(async () => {
  await browser?.close();
});

test('an administrator writes an FAQ with a preview, asks for approval and approves it from the queue', async () => {
  const page = adminPage;
  await page.locator('#nav').getByRole('link', { name: 'FAQ', exact: true }).click();
  await ready(page);
  for (const name of ['検索', '新規作成', '承認待ち', '類義語', '該当なしの検索', 'CSV取込・出力']) {
    await page.locator('nav.subnav').getByRole('link', { name, exact: true }).waitFor();
  }
  await page.locator('nav.subnav').getByRole('link', { name: '新規作成', exact: true }).click();
  await ready(page);
  const form = page.locator('#faq-create');
  // Required fields are checked before sending.
  await form.getByRole('button', { name: '下書きとして保存する' }).click();
  await form.locator('[data-field="question"] .field-error').waitFor();

  const question = `${TOPIC}の証明書はどこで取れますか`;
  const answer = `区民課の窓口で取れます。\n本人確認書類をお持ちください。`;
  await form.getByLabel('質問').fill(question);
  await form.getByLabel('回答').fill(answer);
  await form.getByLabel('所管課').selectOption(made.department.code);
  await form.getByLabel('公開範囲').selectOption('public');
  // The preview follows the form, as the public page shows it (line breaks kept).
  const preview = page.locator('#faq-preview');
  assert.equal(await preview.locator('.faq-public-question').innerText(), question);
  assert.equal(await preview.locator('.faq-public-answer').innerText(), answer);
  assert.match(await preview.innerText(), new RegExp(`担当: ${made.department.name}`));
  await screenshot(page, 'faq-editor');
  await form.getByRole('button', { name: '下書きとして保存する' }).click();
  await page.waitForFunction(() => /^#\/faq\/\d+$/.test(location.hash));
  await ready(page);
  const id = Number(/#\/faq\/(\d+)/.exec(page.url())[1]);
  let faq = await faqApi('GET', `/api/v1/faqs/${id}`);
  made.faq = faq;
  assert.equal(faq.status, 'draft');
  assert.equal(faq.department_code, made.department.code);
  assert.match(await page.locator('.flash').innerText(), new RegExp(`No.${faq.number} を下書きとして作成しました`));
  assert.match(await page.locator('#faq-meta').innerText(), /下書き/);

  await page.locator('#faq-to-review').click();
  await flashed(page, /承認を依頼しました/);
  assert.equal((await faqApi('GET', `/api/v1/faqs/${id}`)).status, 'review');

  await go(page, '#/faq/review');
  const row = page.locator(`#faq-queue tbody tr[data-number="${faq.number}"]`);
  assert.equal(await row.count(), 1, 'the FAQ waits in the queue');
  await screenshot(page, 'faq-queue');
  await row.getByRole('button', { name: /^承認して公開する/ }).click();
  await flashed(page, new RegExp(`No.${faq.number} を承認し、公開しました`));
  assert.equal(await page.locator(`#faq-queue tbody tr[data-number="${faq.number}"]`).count(), 0, 'gone from the queue');
  faq = await faqApi('GET', `/api/v1/faqs/${id}`);
  assert.equal(faq.status, 'published');
  assert.equal(faq.approved_by, adminUser.login);
  made.faq = faq;
});

test('an edit shows in the preview, and the history shows what changed between versions', async () => {
  const page = adminPage;
  const { id } = made.faq;
  await go(page, `#/faq/${id}/edit`);
  const form = page.locator(`#faq-edit-${id}`);
  await form.locator('.notice-info').waitFor(); // editing a published FAQ sends it back to review
  const answer = '区民課の窓口か、郵送で取れます。\n本人確認書類をお持ちください。';
  await form.getByLabel('回答').fill(answer);
  assert.equal(await page.locator('#faq-preview .faq-public-answer').innerText(), answer);
  await form.getByRole('button', { name: '保存する', exact: true }).click();
  await page.waitForFunction((want) => location.hash === want, `#/faq/${id}`);
  await ready(page);
  const saved = await faqApi('GET', `/api/v1/faqs/${id}`);
  assert.equal(saved.answer, answer);
  assert.equal(saved.status, 'review', 'a changed published FAQ needs a new approval');

  await page.locator('#faq-history').click();
  await ready(page);
  const versions = page.locator('#faq-versions tbody tr');
  assert.ok(await versions.count() >= 4, 'created, review, approved, updated');
  // By default the newest version is compared with the one before it.
  const diff = page.locator('#faq-diff tr[data-field="answer"]');
  await diff.waitFor();
  assert.deepEqual(await diff.locator('ins').allTextContents(), ['［追加］か、郵送']);
  const state = page.locator('#faq-diff tr[data-field="status"]');
  assert.deepEqual([await state.locator('del').textContent(), await state.locator('ins').textContent()],
    ['［削除］公開中', '［追加］承認待ち'], 'the state changed too');
  assert.equal(await page.locator('#faq-diff tr[data-field="question"]').count(), 0, 'the question did not');
  await screenshot(page, 'faq-history');

  // Approve again (from the FAQ page, with its confirmation) for the searches that follow.
  await go(page, `#/faq/${id}`);
  await page.locator('#faq-approve').click();
  await page.getByRole('dialog').getByRole('button', { name: '承認して公開する' }).click();
  await flashed(page, /を承認し、公開しました/);
  made.faq = await faqApi('GET', `/api/v1/faqs/${id}`);
  assert.equal(made.faq.status, 'published');
});

test('an operator finds the FAQ by words and by number, opens it, and never sees a draft', async () => {
  made.draft = await faqApi('POST', '/api/v1/faqs', {
    question: `${TOPIC}の下書き`, answer: 'まだ公開していない回答', visibility: 'internal',
  });
  const page = operatorPage;
  await page.locator('#nav').getByRole('link', { name: 'FAQ', exact: true }).click();
  await ready(page);
  assert.equal(await page.locator('nav.subnav').count(), 0, 'an operator has no editing tabs');

  // The published FAQ first (words of the best FAQs may find looser matches after it), and
  // never the draft that holds the same word.
  await searchFor(page, TOPIC);
  const numbers = await resultNumbers(page);
  assert.equal(numbers[0], String(made.faq.number), `the published FAQ first: ${numbers}`);
  assert.ok(!numbers.includes(String(made.draft.number)), `no draft: ${numbers}`);
  assert.match(await page.locator('#faq-result-count').innerText(), /検索結果: \d+ 件/);

  // Full-width digits find the FAQ by its number.
  const wide = String(made.faq.number).replace(/[0-9]/g, (d) => String.fromCharCode(0xff10 + Number(d)));
  await searchFor(page, wide);
  assert.equal((await resultNumbers(page))[0], String(made.faq.number), 'the numbered FAQ comes first');

  // The draft's number finds nothing for an operator.
  await searchFor(page, String(made.draft.number));
  assert.ok(!(await resultNumbers(page)).includes(String(made.draft.number)), 'a draft is never shown to operators');

  // Filtered by its department, then opened.
  await go(page, '#/faq');
  const form = page.locator('#faq-search');
  await form.getByLabel('キーワードまたはFAQ番号').fill(TOPIC);
  await form.getByLabel('所管課').selectOption({ label: `${made.department.name}（${made.department.code}）` });
  await form.getByRole('button', { name: '検索', exact: true }).click();
  await page.waitForFunction(() => location.hash.includes('department_id='));
  await ready(page);
  assert.deepEqual(await resultNumbers(page), [String(made.faq.number)], 'the only FAQ of its department');
  await page.locator('#faq-results').getByRole('link', { name: made.faq.question }).click();
  await ready(page);
  assert.equal(await page.locator('.faq-public-question').innerText(), made.faq.question);
  assert.equal(await page.locator('.faq-public-answer').innerText(), made.faq.answer);
  assert.equal(await page.locator('#faq-edit').count(), 0, 'an operator cannot edit');
  await screenshot(page, 'faq-operator-page');

  // The editor screens are refused to an operator.
  await go(page, '#/faq/new');
  assert.match(await page.locator('h2').innerText(), /権限がありません/);
  assert.deepEqual(page.problems, []);
});

test('a synonym group makes a new word find the FAQ', async () => {
  await searchFor(operatorPage, SYNONYM);
  assert.deepEqual(await resultNumbers(operatorPage), [], 'no FAQ holds the word yet');

  const page = adminPage;
  await go(page, '#/faq/synonyms');
  const form = page.locator('#faq-synonyms');
  const area = form.getByLabel('類義語グループ');
  const before = await area.inputValue();
  // A group of one word is refused with its line.
  await area.fill(`${before}${before ? '\n' : ''}${SYNONYM}`);
  await form.getByRole('button', { name: '保存する' }).click();
  const error = form.locator('.field-error');
  await error.waitFor();
  assert.match(await error.innerText(), /行目: 1つのグループには2〜20語/);

  await area.fill(`${before}${before ? '\n' : ''}${TOPIC}、${SYNONYM}`);
  await form.getByRole('button', { name: '保存する' }).click();
  await flashed(page, /類義語を保存しました/);
  const groups = (await faqApi('GET', '/api/v1/faq-synonyms')).groups ?? [];
  assert.ok(groups.some((g) => g.words.includes(TOPIC) && g.words.includes(SYNONYM)), JSON.stringify(groups));

  await searchFor(operatorPage, SYNONYM);
  assert.equal((await resultNumbers(operatorPage))[0], String(made.faq.number), 'the synonym finds the FAQ first');
});

test('a search without results shows in the zero-hit report and leads to a new FAQ', async () => {
  await searchFor(operatorPage, MISSING);
  assert.match(await operatorPage.locator('#faq-result-count').innerText(), new RegExp(`「${MISSING}」に該当するFAQはありません`));
  await searchFor(operatorPage, MISSING);

  const page = adminPage;
  await go(page, '#/faq/zero-hits');
  const row = page.locator('#faq-zero-hits tbody tr', { has: page.locator('td.faq-zero-q', { hasText: MISSING }) });
  assert.equal(await row.count(), 1, 'the word is listed once');
  assert.equal(await row.locator('td').nth(1).innerText(), '2', 'searched twice');
  // A period that ends before today leaves it out.
  await page.getByLabel('終了日').fill('2020-01-01');
  await page.locator('#faq-zero-search').getByRole('button', { name: '検索', exact: true }).click();
  await page.waitForFunction(() => location.hash.includes('to=2020-01-01'));
  await ready(page);
  assert.equal(await page.locator('#faq-zero-hits tbody tr', { hasText: MISSING }).count(), 0);

  await go(page, '#/faq/zero-hits');
  await page.locator('#faq-zero-hits tbody tr', { hasText: MISSING }).getByRole('link', { name: 'FAQを作成' }).click();
  await ready(page);
  assert.equal(await page.locator('#faq-create').getByLabel('質問').inputValue(), MISSING);
  await screenshot(page, 'faq-zero-hits-new');
});

test('HTML in an answer and a question is shown as text', async () => {
  const xss = await faqApi('POST', '/api/v1/faqs', {
    question: `${TOPIC} ${XSS}`, answer: `回答 ${XSS}\n2行目`, visibility: 'public', department_code: made.department.code,
  });
  await faqApi('POST', `/api/v1/faqs/${xss.id}/approve`, { version: xss.version });
  const page = adminPage;
  await go(page, `#/faq/${xss.id}`);
  assert.equal(await page.locator('.faq-public-answer').innerText(), `回答 ${XSS}\n2行目`);
  await xssUntouched(page);
  await go(page, `#/faq?q=${encodeURIComponent(TOPIC)}`);
  assert.ok((await page.locator('#faq-results').innerText()).includes(XSS), 'the question is listed as text');
  await xssUntouched(page);
  await go(page, `#/faq/${xss.id}/edit`);
  assert.equal(await page.locator('#faq-preview .faq-public-answer').innerText(), `回答 ${XSS}\n2行目`);
  await xssUntouched(page);
  await go(page, `#/faq/${xss.id}/history`);
  await xssUntouched(page);
  assert.deepEqual(page.problems, []);
});

test('CSV import is checked first, refuses a bad row by its line, and the export links work', async () => {
  const page = adminPage;
  await go(page, '#/faq/import');
  const header = 'number,question,answer,department_code,category,visibility,keywords,status';
  const good = `${header}\n,${word()}の手続き,窓口へ,${made.department.code},,public,,draft\n`;
  const form = page.locator('#faq-import');
  await form.locator('input[type="file"]').setInputFiles({ name: 'faq.csv', mimeType: 'text/csv', buffer: Buffer.from(good) });
  await form.getByRole('button', { name: '内容を確認する' }).click();
  await page.locator('#import-preview, #import-error').first().waitFor();
  assert.equal(await page.locator('#import-error').count(), 0, await page.locator('#import-result').innerText());
  assert.equal(await page.locator('#import-counts [data-count="create"]').innerText(), '1');
  await page.locator('#import-commit').click();
  await page.locator('#import-done').waitFor();

  // Line 3 has an unknown visibility: nothing is applied.
  const bad = `${header}\n,${word()},回答,,,public,,draft\n,${word()},回答,,,everyone,,draft\n`;
  await form.locator('input[type="file"]').setInputFiles({ name: 'bad.csv', mimeType: 'text/csv', buffer: Buffer.from(bad) });
  await form.getByRole('button', { name: '内容を確認する' }).click();
  await page.locator('#import-error').waitFor();
  const lines = await page.locator('#import-errors tbody td.line').allInnerTexts();
  assert.ok(lines.includes('3'), `line 3 is named: ${JSON.stringify(lines)}`);
  assert.ok(await page.locator('#import-commit').isDisabled(), 'nothing to import');

  await page.getByLabel('状態').selectOption('published');
  const utf8 = await page.locator('#export-utf8').getAttribute('href');
  assert.match(await page.locator('#export-sjis').getAttribute('href'), /encoding=shift_jis/);
  assert.match(utf8, /status=published/);
  const response = await adminContext.request.get(`${BASE}${utf8}`);
  assert.equal(response.status(), 200);
  const text = (await response.text()).replace(/^\uFEFF/, '');
  assert.equal(text.split(/\r?\n/)[0], header);
  assert.ok(text.includes(made.faq.question), 'the published FAQ is exported');
  assert.ok(!text.includes(made.draft.question), 'a draft is not, with status=published');
  await screenshot(page, 'faq-import');
});
