// Department reviewers (所管課の確認者; docs/faq.md "States", spec 6.2(5)): an administrator
// names a staff user as the reviewer of a department on 所管課の確認者; a supervisor's FAQ of
// that department, sent for approval, can no longer be approved by the supervisor (a page
// loaded before the change shows the refusal in Japanese, a fresh one no button and who
// confirms it); the staff reviewer finds it under 承認待ち and approves it. The tests run in
// order and share what they make (a department and users of this run only).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, signInAdmin, callApi, createUser, launch, newPage, newPassword, ready, screenshot, signIn, uniq,
} from './lib.mjs';

let browser;
let adminContext;
let adminPage;
let supervisorContext;
let supervisorPage;
let reviewerPage;
let otherStaffPage;
const run = uniq('e2e').slice(0, 20);
const made = {}; // department {id, code, name}, reviewer, supervisor, faq

async function go(page, hash) {
  const url = `${BASE}/${hash}`;
  if (page.url() === url) await page.reload();
  else await page.goto(url);
  await ready(page);
}

async function flashed(page, pattern) {
  await page.locator('.flash', { hasText: pattern }).waitFor();
  await ready(page);
}

async function apiOk(context, method, path, body) {
  const answer = await callApi(context, method, path, body);
  assert.ok(answer.status >= 200 && answer.status < 300, `${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

before(async () => {
  browser = await launch();
  ({ context: adminContext, page: adminPage } = await newPage(browser));
  await signInAdmin(adminPage);
  const department = { code: `${run}-rv`, name: `e2e 確認課 ${run}` };
  const created = await apiOk(adminContext, 'POST', '/api/v1/departments', { ...department, active: true });
  made.department = { ...department, id: created.id };
  made.reviewer = { login: uniq(`${run}-rv`), name: '確認 花子', password: newPassword() };
  made.reviewer.id = (await createUser(adminContext, { ...made.reviewer, roles: ['staff'] })).id;
  made.supervisor = { login: uniq(`${run}-sv`), name: '監督 次郎', password: newPassword() };
  await createUser(adminContext, { ...made.supervisor, roles: ['supervisor'] });
  const other = { login: uniq(`${run}-st`), name: '職員 三郎', password: newPassword() };
  await createUser(adminContext, { ...other, roles: ['staff'] });
  ({ context: supervisorContext, page: supervisorPage } = await newPage(browser));
  await signIn(supervisorPage, made.supervisor);
  ({ page: reviewerPage } = await newPage(browser));
  await signIn(reviewerPage, made.reviewer);
  ({ page: otherStaffPage } = await newPage(browser));
  await signIn(otherStaffPage, other);
});

after(async () => {
  await browser?.close();
});

test('a supervisor sends an FAQ of a department without reviewers for approval and may approve it', async () => {
  const page = supervisorPage;
  await go(page, '#/faq/new');
  const form = page.locator('#faq-create');
  await form.getByLabel('質問').fill(`介護の申請 ${run}`);
  await form.getByLabel('回答').fill('所管課の窓口で申請します。');
  await form.getByLabel('所管課').selectOption(made.department.code);
  await form.getByRole('button', { name: '保存して承認を依頼する' }).click();
  await page.waitForFunction(() => /^#\/faq\/\d+$/.test(location.hash));
  await ready(page);
  const id = Number(/#\/faq\/(\d+)/.exec(page.url())[1]);
  made.faq = await apiOk(supervisorContext, 'GET', `/api/v1/faqs/${id}`);
  assert.equal(made.faq.status, 'review');
  assert.equal(made.faq.department_id, made.department.id);
  // No reviewers yet: supervisors approve, and the page says so.
  assert.match(await page.locator('#faq-reviewers-note').innerText(),
    new RegExp(`確認者: ${made.department.name} には確認者がいません`));
  assert.equal(await page.locator('#faq-approve').count(), 1, 'a supervisor may approve it now');
});

test('an administrator names a staff user as the department\'s reviewer on 所管課の確認者', async () => {
  const page = adminPage;
  await page.locator('#nav').getByRole('link', { name: 'FAQ', exact: true }).click();
  await ready(page);
  await page.locator('nav.subnav').getByRole('link', { name: '所管課の確認者', exact: true }).click();
  await ready(page);
  const row = page.locator(`#faq-reviewers tbody tr[data-department="${made.department.code}"]`);
  assert.equal(await row.count(), 1, 'the department has a row');
  const form = row.locator('form');
  // An unknown login is refused next to its field, and nothing changes.
  const logins = form.getByLabel(`${made.department.name}（${made.department.code}） の確認者（ログインID）`);
  await logins.fill(`${made.reviewer.login}, ${run}-nobody`);
  await form.getByRole('button', { name: '保存する' }).click();
  await form.locator('.field-error', { hasText: `ログインID「${run}-nobody」は確認者にできません` }).waitFor();
  let lists = await apiOk(adminContext, 'GET', `/api/v1/faq-reviewers?department_id=${made.department.id}`);
  assert.deepEqual(lists.items[0].users, [], 'a refused list was saved');

  await logins.fill(made.reviewer.login);
  await form.getByRole('button', { name: '保存する' }).click();
  await flashed(page, new RegExp(`${made.department.name}（${made.department.code}） の確認者を保存しました`));
  lists = await apiOk(adminContext, 'GET', `/api/v1/faq-reviewers?department_id=${made.department.id}`);
  assert.deepEqual(lists.items[0].users.map((u) => u.login), [made.reviewer.login]);
  assert.equal(lists.items[0].users[0].user_id, made.reviewer.id);
  assert.equal(await page.locator(`#faq-reviewers tbody tr[data-department="${made.department.code}"] input`).inputValue(),
    made.reviewer.login, 'the saved list is shown');
  await screenshot(page, 'faq-reviewers');
});

test('the supervisor who is not a reviewer is refused, in Japanese, and no longer offered the button', async () => {
  const page = supervisorPage;
  // The page was loaded before the reviewer was named: it still offers 承認して公開する.
  await page.locator('#faq-approve').click();
  await page.getByRole('dialog').getByRole('button', { name: '承認して公開する' }).click();
  const refused = page.locator('#faq-approve-refused');
  await refused.waitFor();
  assert.match(await refused.innerText(), new RegExp(`この FAQ は ${made.department.name} の確認者（.*）が承認します`));
  assert.equal((await apiOk(supervisorContext, 'GET', `/api/v1/faqs/${made.faq.id}`)).status, 'review', 'it stays in review');

  await go(page, `#/faq/${made.faq.id}`);
  assert.equal(await page.locator('#faq-reviewers-note').innerText(),
    `確認者: ${made.department.name} (${made.reviewer.login})`);
  assert.equal(await page.locator('#faq-approve').count(), 0, 'no approve button for a non-reviewer');
  assert.equal(await page.locator('#faq-edit').count(), 1, 'the supervisor still edits it');
  await go(page, '#/faq/review');
  const row = page.locator(`#faq-queue tbody tr[data-number="${made.faq.number}"]`);
  assert.equal(await row.count(), 1, 'supervisors see every FAQ in review');
  assert.equal(await row.getByRole('button', { name: /^承認して公開する/ }).count(), 0);
  assert.equal(await row.locator('.faq-queue-reviewers').innerText(), made.reviewer.login);
});

test('other staff see neither the FAQ nor a button; the staff reviewer approves it from 承認待ち', async () => {
  await go(otherStaffPage, '#/faq/review');
  assert.equal(await otherStaffPage.locator(`#faq-queue tbody tr[data-number="${made.faq.number}"]`).count(), 0);
  await otherStaffPage.locator('#faq-queue-empty').waitFor();

  const page = reviewerPage;
  await page.locator('#nav').getByRole('link', { name: 'FAQ', exact: true }).click();
  await ready(page);
  // Staff have no editing tabs, but the queue and the reviewers (read only).
  assert.equal(await page.locator('nav.subnav').getByRole('link', { name: '新規作成', exact: true }).count(), 0);
  await page.locator('nav.subnav').getByRole('link', { name: '所管課の確認者', exact: true }).click();
  await ready(page);
  const mine = page.locator(`#faq-reviewers tbody tr[data-department="${made.department.code}"]`);
  assert.equal(await mine.locator('td').innerText(), made.reviewer.login);
  assert.equal(await page.locator('#faq-reviewers input').count(), 0, 'read only for staff');

  await page.locator('nav.subnav').getByRole('link', { name: '承認待ち', exact: true }).click();
  await ready(page);
  const rows = page.locator('#faq-queue tbody tr');
  assert.equal(await rows.count(), 1, 'only the FAQs of the departments the reviewer reviews');
  const row = page.locator(`#faq-queue tbody tr[data-number="${made.faq.number}"]`);
  assert.equal(await row.count(), 1, 'the FAQ waits in the reviewer\'s queue');
  await screenshot(page, 'faq-review-staff');
  await row.getByRole('button', { name: /^承認して公開する/ }).click();
  await flashed(page, new RegExp(`No.${made.faq.number} を承認し、公開しました`));
  assert.equal(await page.locator(`#faq-queue tbody tr[data-number="${made.faq.number}"]`).count(), 0, 'gone from the queue');
  const faq = await apiOk(supervisorContext, 'GET', `/api/v1/faqs/${made.faq.id}`);
  assert.equal(faq.status, 'published');
  assert.equal(faq.approved_by, made.reviewer.login);
  for (const p of [adminPage, supervisorPage, reviewerPage, otherStaffPage]) {
    assert.deepEqual(p.problems, [], 'no page error nor CSP violation');
  }
});
