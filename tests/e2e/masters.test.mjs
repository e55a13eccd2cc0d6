// マスタ管理 (issue 4, R4) as the bootstrap administrator: create a department, find it,
// edit it, export CSV, import CSV (preview, then for real), a refused import with its line
// numbers, and an XSS payload in a department name shown as text. The tests run in order
// and share what they create; the administrator signs in once.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, signInAdmin, callApi, launch, newPage, ready, screenshot, uniq } from './lib.mjs';

let adminUser; // the administrator this file signs in (signInAdmin)

const XSS_NAME = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>"><svg onload="window.__xss=3">';

let browser;
let adminContext;
let adminPage;
// Codes unique to this run (letters, digits, '-'; at most 32).
const run = uniq('e2e').slice(0, 20);
const code = `${run}-d1`;

async function go(page, hash) {
  const url = `${BASE}/${hash}`;
  if (page.url() === url) await page.reload();
  else await page.goto(url);
  await ready(page);
}

async function xssUntouched(page) {
  assert.equal(await page.evaluate(() => window.__xss), undefined, 'a script from a name ran');
  assert.equal(await page.locator('#main img, #main svg, #main script').count(), 0,
    'markup from a name became elements');
}

async function departmentByCode(wanted) {
  const answer = await callApi(adminContext, 'GET', `/api/v1/departments?q=${encodeURIComponent(wanted)}&per_page=50`);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return (answer.body.items ?? []).find((d) => d.code === wanted);
}

before(async () => {
  browser = await launch();
  ({ context: adminContext, page: adminPage } = await newPage(browser));
  adminUser = await signInAdmin(adminPage);
});

after(async () => {
  await browser?.close();
});

test('the masters API answers and the admin menu has マスタ管理', async () => {
  const answer = await callApi(adminContext, 'GET', '/api/v1/departments?per_page=1');
  assert.equal(answer.status, 200, `GET /api/v1/departments: ${answer.status} ${JSON.stringify(answer.body)}`);
  await adminPage.locator('#nav').getByRole('link', { name: 'マスタ管理', exact: true }).click();
  await ready(adminPage);
  assert.match(await adminPage.locator('h2').innerText(), /マスタ管理/);
  for (const name of ['所管課', '電話帳（転送先）', 'カテゴリー', '受付区分', '対応区分', 'FAQ分類']) {
    await adminPage.locator('nav.kinds').getByRole('link', { name, exact: true }).waitFor();
  }
});

test('a department is created, found by search and edited', async () => {
  const page = adminPage;
  await go(page, '#/masters/new?kind=departments');
  const form = page.locator('#master-create-departments');
  // Required fields are checked before sending.
  await form.getByRole('button', { name: '保存する' }).click();
  await form.locator('.field-error').first().waitFor();
  await form.getByLabel('所管課コード').fill(code);
  await form.getByLabel('所管課名').fill('e2e 区民課');
  await form.getByLabel('電話番号').fill('03-3228-0000');
  await form.getByRole('button', { name: '保存する' }).click();
  await page.waitForFunction(() => location.hash.startsWith('#/masters?'));
  await ready(page);
  assert.match(await page.locator('.flash').innerText(), new RegExp(`${code} を登録しました`));

  await page.locator('#masters-search').getByLabel('キーワード').fill(code);
  await page.locator('#masters-search').getByRole('button', { name: '検索' }).click();
  await page.waitForFunction(() => location.hash.includes('q='));
  await ready(page);
  const row = page.locator('#masters-table tbody tr', { hasText: code });
  assert.equal(await row.count(), 1);
  assert.match(await row.innerText(), /e2e 区民課/);

  await row.getByRole('link', { name: '編集' }).click();
  await ready(page);
  const edit = page.locator('form[id^="master-edit-departments-"]');
  assert.equal(await edit.getByLabel('所管課名').inputValue(), 'e2e 区民課');
  await edit.getByLabel('所管課名').fill('e2e 区民課（改）');
  await edit.getByRole('button', { name: '保存する' }).click();
  await page.waitForFunction(() => location.hash.startsWith('#/masters?'));
  await ready(page);
  assert.match(await page.locator('.flash').innerText(), /保存しました/);
  const saved = await departmentByCode(code);
  assert.equal(saved?.name, 'e2e 区民課（改）');
  await screenshot(page, 'masters-list');
});

test('CSV export gives the header row, in UTF-8 and Shift_JIS', async () => {
  const page = adminPage;
  await go(page, `#/masters?kind=departments&q=${encodeURIComponent(code)}`);
  const utf8 = await page.locator('#export-utf8').getAttribute('href');
  const sjis = await page.locator('#export-sjis').getAttribute('href');
  assert.match(sjis, /encoding=shift_jis/);
  const response = await adminContext.request.get(`${BASE}${utf8}`);
  assert.equal(response.status(), 200);
  const text = (await response.text()).replace(/^\uFEFF/, '');
  const header = text.split(/\r?\n/)[0];
  assert.match(header, /^code,name/, header);
  assert.ok(text.includes(code), 'the searched department is in the file');
  const sjisResponse = await adminContext.request.get(`${BASE}${sjis}`);
  assert.equal(sjisResponse.status(), 200);
});

test('a CSV import is previewed, then applied', async () => {
  const page = adminPage;
  await go(page, '#/masters/import?kind=departments');
  const csv = `code,name,parent_code,phone,active\n${run}-i1,e2e 取込課1,,03-1111-0001,true\n${run}-i2,e2e 取込課2,,03-1111-0002,true\n`;
  const form = page.locator('#master-import-departments');
  await form.locator('input[type="file"]').setInputFiles({ name: 'departments.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await form.getByRole('button', { name: '内容を確認する' }).click();
  await page.locator('#import-preview, #import-error').first().waitFor();
  assert.equal(await page.locator('#import-error').count(), 0, await page.locator('#import-result').innerText());
  assert.equal(await page.locator('#import-counts [data-count="create"]').innerText(), '2');
  assert.equal(await page.locator('#import-rows tbody tr').count(), 2);
  assert.equal(await departmentByCode(`${run}-i1`), undefined, 'a preview changes nothing');
  await screenshot(page, 'masters-import-preview');

  await page.locator('#import-commit').click();
  await page.locator('#import-done').waitFor();
  assert.equal(await page.locator('#import-counts [data-count="create"]').innerText(), '2');
  const made = await departmentByCode(`${run}-i1`);
  assert.equal(made?.name, 'e2e 取込課1');
});

test('an import with a bad row is refused with its line number', async () => {
  const page = adminPage;
  await go(page, '#/masters/import?kind=departments');
  // Line 3 has no name (required).
  const csv = `code,name,parent_code,phone,active\n${run}-b1,e2e 正しい行,,,true\n${run}-b2,,,,true\n`;
  const form = page.locator('#master-import-departments');
  await form.locator('input[type="file"]').setInputFiles({ name: 'bad.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await form.getByRole('button', { name: '内容を確認する' }).click();
  await page.locator('#import-error').waitFor();
  const lines = await page.locator('#import-errors tbody td.line').allInnerTexts();
  assert.ok(lines.includes('3'), `line 3 is named: ${JSON.stringify(lines)}`);
  assert.ok(await page.locator('#import-commit').isDisabled(), 'nothing to import');
  assert.equal(await departmentByCode(`${run}-b1`), undefined, 'nothing was applied');
  await screenshot(page, 'masters-import-errors');
});

test('a department name with markup is shown as text (XSS)', async () => {
  const page = adminPage;
  const xssCode = `${run}-x1`;
  const created = await callApi(adminContext, 'POST', '/api/v1/departments', { code: xssCode, name: XSS_NAME, active: true });
  assert.ok([200, 201].includes(created.status), JSON.stringify(created.body));
  await go(page, `#/masters?kind=departments&q=${encodeURIComponent(xssCode)}`);
  const cell = page.locator('#masters-table tbody tr', { hasText: xssCode }).locator('td.col-name');
  assert.equal(await cell.innerText(), XSS_NAME);
  await xssUntouched(page);
  await go(page, `#/masters/history?kind=departments&code=${encodeURIComponent(xssCode)}`);
  await xssUntouched(page);
  assert.deepEqual(page.problems, []);
});

test('変更履歴 and 適用予定の変更 show for the kind', async () => {
  const page = adminPage;
  await go(page, `#/masters/history?kind=departments&code=${encodeURIComponent(code)}`);
  const rows = page.locator('#masters-history tbody tr');
  assert.ok(await rows.count() >= 2, 'created and updated');
  assert.match(await page.locator('#masters-history').innerText(), /e2e 区民課（改）/);
  await go(page, '#/masters/scheduled?kind=departments');
  await page.locator('#masters-scheduled, .view p').first().waitFor();
  assert.deepEqual(page.problems, []);
});

test('deleting a referenced department is refused with a plain message', async () => {
  const page = adminPage;
  const parent = `${run}-p1`;
  for (const body of [{ code: parent, name: 'e2e 上位部' }, { code: `${run}-c1`, name: 'e2e 下位課', parent_code: parent }]) {
    const answer = await callApi(adminContext, 'POST', '/api/v1/departments', { ...body, active: true });
    assert.ok([200, 201].includes(answer.status), JSON.stringify(answer.body));
  }
  const { id } = await departmentByCode(parent);
  await go(page, `#/masters/${id}?kind=departments`);
  const form = page.locator(`#master-edit-departments-${id}`);
  await form.getByRole('button', { name: '削除する' }).click();
  await page.locator('dialog').getByRole('button', { name: '削除する' }).click();
  await form.locator('.form-error').waitFor();
  assert.match(await form.locator('.form-error').innerText(), /参照されているため削除できません/);
  assert.ok(await departmentByCode(parent), 'still there');
});

test('a change with an effective date is scheduled, listed and cancelled', async () => {
  const page = adminPage;
  const later = `${run}-s1`;
  await go(page, '#/masters/new?kind=departments');
  const form = page.locator('#master-create-departments');
  await form.getByLabel('所管課コード').fill(later);
  await form.getByLabel('所管課名').fill('e2e 来年度の課');
  await form.getByLabel('適用日（任意）').fill('2099-04-01');
  await form.getByRole('button', { name: '保存する' }).click();
  await page.waitForFunction(() => location.hash.startsWith('#/masters?'));
  await ready(page);
  assert.match(await page.locator('.flash').innerText(), /適用する予定として登録しました/);
  assert.equal(await departmentByCode(later), undefined, 'not made yet');

  await go(page, '#/masters/scheduled?kind=departments');
  const row = page.locator('#masters-scheduled tbody tr', { hasText: later });
  assert.equal(await row.count(), 1);
  await row.getByRole('button', { name: '取り消す' }).click();
  await page.locator('dialog').getByRole('button', { name: '取り消す' }).click();
  await page.locator('.flash', { hasText: '取り消しました' }).waitFor();
  await ready(page);
  assert.equal(await page.locator('#masters-scheduled tbody tr', { hasText: later }).count(), 0);
  assert.deepEqual(page.problems, []);
});

// ACD (R25): skills, queues and routing rules are kinds of the same screen; the values an
// administrator types loosely (月 火, 9:00-17:00, "a, b") are stored canonical, and a queue
// that names no existing skill is refused on its field.
test('skills, queues and routing rules are edited as masters (R25)', async () => {
  const page = adminPage;
  await go(page, '#/masters?kind=skills');
  for (const name of ['スキル', 'キュー', '着信ルール']) {
    await page.locator('nav.kinds').getByRole('link', { name, exact: true }).waitFor();
  }
  const skill = `${run}-sk`;
  await go(page, '#/masters/new?kind=skills');
  let form = page.locator('#master-create-skills');
  await form.getByLabel('コード', { exact: true }).fill(skill);
  await form.getByLabel('名称', { exact: true }).fill('e2e 税');
  await form.getByRole('button', { name: '保存する' }).click();
  await page.waitForFunction(() => location.hash.startsWith('#/masters?'));
  await ready(page);

  const queue = `${run}-q`;
  await go(page, '#/masters/new?kind=queues');
  form = page.locator('#master-create-queues');
  assert.match(await form.innerText(), /スキルコードを空白で区切って入力/);
  await form.getByLabel('キューコード').fill(queue);
  await form.getByLabel('キュー名').fill('e2e 税の窓口');
  await form.getByLabel('必要なスキル').fill(`${skill}, no-such-skill`);
  await form.getByRole('button', { name: '保存する' }).click();
  await form.locator('.field-error, .form-error').first().waitFor();
  assert.match(await form.innerText(), /no-such-skill/);
  await form.getByLabel('必要なスキル').fill(`${skill}, ${skill}`);
  await form.getByRole('button', { name: '保存する' }).click();
  await page.waitForFunction(() => location.hash.startsWith('#/masters?'));
  await ready(page);

  const rule = `${run}-r`;
  await go(page, '#/masters/new?kind=routing-rules');
  form = page.locator('#master-create-routing-rules');
  await form.getByLabel('ルールコード').fill(rule);
  await form.getByLabel('ルール名').fill('e2e 平日');
  await form.getByLabel('曜日').fill('金 月');
  await form.getByLabel('時間帯').fill('9:00-17:00');
  await form.getByLabel('振り分け先キュー').fill(queue);
  await form.getByRole('button', { name: '保存する' }).click();
  await page.waitForFunction(() => location.hash.startsWith('#/masters?'));
  await ready(page);

  const queues = await callApi(adminContext, 'GET', `/api/v1/queues?q=${encodeURIComponent(queue)}`);
  assert.equal(queues.body.items.find((q) => q.code === queue)?.skills, skill);
  const rules = await callApi(adminContext, 'GET', `/api/v1/routing-rules?q=${encodeURIComponent(rule)}`);
  const saved = rules.body.items.find((r) => r.code === rule);
  assert.equal(saved?.weekdays, 'mon fri');
  assert.equal(saved?.hours, '09:00-17:00');
  const routing = await callApi(adminContext, 'GET', '/api/v1/routing');
  assert.equal(routing.status, 200);
  assert.ok(routing.body.rules.some((r) => r.code === rule && r.queue_code === queue));
  assert.deepEqual(page.problems, []);
});
