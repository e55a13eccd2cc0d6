// 記録フォーム設定 (issue 4, R3 and R38) as the bootstrap administrator: the screen with its
// live preview drawn from the real choice lists, a label and a required flag changed (the
// preview follows before saving), saved and still there after a reload; an invalid change
// (no initial status) refused with the error next to the statuses and nothing saved; a
// change saved meanwhile by someone else answered with 409 and a reload. The tests run in
// order and share the page; the form is put back as it was at the end.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, signInAdmin, callApi, contrastProblems, launch, newPage, ready, screenshot, uniq } from './lib.mjs';

let adminUser; // the administrator this file signs in (signInAdmin)

const PATH = '/api/v1/settings/record-form';
let browser;
let context;
let page;
let original; // the form as found: put back at the end
const category = { code: uniq('e2e-c').slice(0, 30), name: `e2e 分類 ${Date.now() % 100000}` };

async function go(hash) {
  const url = `${BASE}/${hash}`;
  if (page.url() === url) await page.reload();
  else await page.goto(url);
  await ready(page);
}

async function form() {
  const answer = await callApi(context, 'GET', PATH);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

const fieldOf = (f, name) => f.definition.fields.find((x) => x.name === name);
const row = (name) => page.locator(`#record-form-fields fieldset[data-name="${name}"]`);
const preview = (name) => page.locator(`#record-form-preview [data-field="${name}"]`);

before(async () => {
  browser = await launch();
  ({ context, page } = await newPage(browser));
  adminUser = await signInAdmin(page);
  original = await form();
  const made = await callApi(context, 'POST', '/api/v1/categories', { ...category, active: true });
  assert.ok([200, 201].includes(made.status), JSON.stringify(made.body));
});

after(async () => {
  if (context && original) {
    const now = await callApi(context, 'GET', PATH);
    if (now.status === 200 && now.body.version !== original.version) {
      await callApi(context, 'PUT', PATH, { version: now.body.version, definition: original.definition });
    }
  }
  await browser?.close();
});

test('記録フォーム設定 is in the admin menu and previews the form with the real choice lists', async () => {
  await go('#/masters');
  await page.locator('#nav').getByRole('link', { name: '記録フォーム設定', exact: true }).click();
  await ready(page);
  assert.match(await page.locator('h2').innerText(), /記録フォーム設定/);
  assert.equal(await page.evaluate(() => location.hash), '#/settings/record-form');
  // The preview is the operator's form: labels, required marks, the status.
  assert.equal(await preview('inquiry').locator('label').innerText(), original.definition.fields.find((f) => f.name === 'inquiry').label_ja);
  assert.equal(await preview('inquiry').locator('.req').count(), 1);
  assert.equal(await preview('inquiry').locator('textarea').count(), 1);
  const categoryOptions = await preview('category').locator('select option').allInnerTexts();
  assert.ok(categoryOptions.includes(category.name), `the new category is offered: ${JSON.stringify(categoryOptions)}`);
  const statuses = await preview('status').locator('select option').allInnerTexts();
  assert.deepEqual(statuses, ['未対応'], 'a new record can only start in the initial status');
  // Hidden fields are not on the form.
  assert.equal(await preview('call_id').count(), 0);
  await screenshot(page, 'record-form');
  assert.deepEqual(await contrastProblems(page), []);
  // In English the preview shows the English labels (an unsaved draft survives the switch).
  await row('response').getByLabel('表示名（日本語）').fill('対応の内容（下書き）');
  await page.locator('#lang').click();
  await ready(page);
  assert.equal(await preview('inquiry').locator('label').innerText(), 'Inquiry');
  assert.equal(await row('response').getByLabel('Label (Japanese)').inputValue(), '対応の内容（下書き）');
  await page.locator('#lang').click();
  await ready(page);
  await page.locator('#record-form-discard').click();
  assert.equal(await preview('response').locator('label').innerText(), fieldOf(original, 'response').label_ja);
  assert.deepEqual(page.problems, []);
});

test('a label and a required flag change the preview before saving, and stay after a reload', async () => {
  await go('#/settings/record-form');
  const before = await form();
  const label = `お問い合わせの内容 ${Date.now() % 1000}`;
  await row('inquiry').getByLabel('表示名（日本語）').fill(label);
  assert.equal(await preview('inquiry').locator('label').innerText(), label, 'the preview follows the label');
  assert.equal(await preview('response').locator('.req').count(), 0);
  await row('response').getByLabel('必須', { exact: true }).check();
  assert.equal(await preview('response').locator('.req').count(), 1, 'the preview marks it required');
  assert.ok(await page.locator('#record-form-dirty').isVisible());
  // The preview's own check (recordform.js validate) names the required fields left empty.
  await page.locator('#record-form-try').click();
  assert.ok(await preview('response').locator('.rf-problem').isVisible());
  assert.ok(await preview('inquiry').locator('.rf-problem').isVisible());
  // Nothing is saved yet.
  const unsaved = await form();
  assert.equal(unsaved.version, before.version);
  assert.notEqual(fieldOf(unsaved, 'inquiry').label_ja, label);

  await page.locator('#record-form-save').click();
  await page.locator('#record-form-saved').waitFor();
  const saved = await form();
  assert.equal(saved.version, before.version + 1);
  assert.equal(fieldOf(saved, 'inquiry').label_ja, label);
  assert.equal(fieldOf(saved, 'response').required, true);
  assert.equal(saved.updated_by, adminUser.login);

  await page.reload();
  await ready(page);
  assert.equal(await row('inquiry').getByLabel('表示名（日本語）').inputValue(), label);
  assert.ok(await row('response').getByLabel('必須', { exact: true }).isChecked());
  assert.equal(await preview('inquiry').locator('label').innerText(), label);
  const history = page.locator('#record-form-history-table tbody tr').first();
  assert.match(await history.innerText(), new RegExp(`${saved.version}[\\s\\S]*${adminUser.login}`));
  assert.deepEqual(page.problems, []);
});

test('moving a field and adding one of our own show in the preview in order', async () => {
  await go('#/settings/record-form');
  const add = page.locator('#record-form-add-field');
  await add.getByLabel('項目名').fill('e2e_area');
  await add.getByLabel('表示名（日本語）').fill('地域');
  await add.getByLabel('入力の種類').selectOption('choice');
  await add.getByRole('button', { name: '項目を追加' }).click();
  const custom = row('x_e2e_area');
  await custom.getByLabel('選択肢', { exact: true }).fill('north,北部,North\nsouth,南部');
  assert.deepEqual(await preview('x_e2e_area').locator('select option').allInnerTexts(), ['選択してください', '北部', '南部']);
  // Added last, behind the hidden call_id and operator_id: three times up puts it before
  // summary, in the editor and in the preview.
  const shown = async () => page.locator('#record-form-preview [data-field]').evaluateAll((els) => els.map((e) => e.dataset.field));
  const rows = async () => page.locator('#record-form-fields > fieldset').evaluateAll((els) => els.map((e) => e.dataset.name));
  const beforeMove = await shown();
  assert.equal(beforeMove.indexOf('x_e2e_area'), beforeMove.indexOf('summary') + 1, JSON.stringify(beforeMove));
  for (let i = 0; i < 3; i++) await row('x_e2e_area').locator('button.rf-up').click();
  const order = await rows();
  assert.equal(order.indexOf('x_e2e_area'), order.indexOf('summary') - 1, JSON.stringify(order));
  const afterMove = await shown();
  assert.equal(afterMove.indexOf('x_e2e_area'), afterMove.indexOf('summary') - 1, JSON.stringify(afterMove));
  // The button keeps the focus, so moving on with the keyboard works.
  assert.equal(await page.evaluate(() => document.activeElement?.closest('fieldset')?.dataset.name), 'x_e2e_area');
  await page.locator('#record-form-save').click();
  await page.locator('#record-form-saved').waitFor();
  const saved = await form();
  assert.deepEqual(fieldOf(saved, 'x_e2e_area').options.map((o) => o.code), ['north', 'south']);
  // A record keeps a value of the ward's own field: chosen on the record's page, saved,
  // stored by ncc-history (the record's `extra`), shown again after a reload.
  const made = await callApi(context, 'POST', '/api/v1/records', { channel: 'visit', inquiry: '地域の欄の確認', response: '地域を伺いました' });
  assert.ok([200, 201].includes(made.status), JSON.stringify(made.body));
  await go(`#/records/${made.body.id}`);
  const editor = page.locator(`#record-edit-${made.body.id}`);
  await editor.locator('select[name="x_e2e_area"]').selectOption('south');
  await editor.locator('button[type="submit"]').click();
  await page.locator(`#record-edit-${made.body.id}-saved`).waitFor();
  const stored = await callApi(context, 'GET', `/api/v1/records/${made.body.id}`);
  assert.deepEqual(stored.body.extra, [{ name: 'x_e2e_area', value: 'south' }], JSON.stringify(stored.body));
  await page.reload();
  await ready(page);
  assert.equal(await page.locator(`#record-edit-${made.body.id} select[name="x_e2e_area"]`).inputValue(), 'south');
  await go('#/settings/record-form');
  // Removed again, and saved.
  await row('x_e2e_area').getByRole('button', { name: 'この項目を削除' }).click();
  assert.equal(await preview('x_e2e_area').count(), 0);
  await page.locator('#record-form-save').click();
  await page.locator('#record-form-saved').waitFor();
  assert.equal(fieldOf(await form(), 'x_e2e_area'), undefined);
});

test('removing the only initial status is refused next to the statuses and nothing is saved', async () => {
  await go('#/settings/record-form');
  const before = await form();
  const open = page.locator('#record-form-statuses fieldset[data-code="open"]');
  await open.getByLabel('最初の状態').uncheck();
  assert.equal(await preview('status').locator('select option').count(), 0, 'the preview has no status to start in');
  await page.locator('#record-form-save').click();
  await page.locator('#record-form-refused').waitFor();
  const error = page.locator('section[data-path="definition.statuses"] > .rf-server-error');
  await error.waitFor();
  assert.match(await error.innerText(), /最初の状態.*ちょうど1つ/);
  const after = await form();
  assert.equal(after.version, before.version, 'nothing was saved');
  assert.equal(after.definition.statuses.find((s) => s.code === 'open').initial, true);
  await screenshot(page, 'record-form-refused');
  // A label too long is shown next to its own input.
  await open.getByLabel('最初の状態').check();
  await row('response').getByLabel('表示名（日本語）').evaluate((el) => { el.removeAttribute('maxlength'); });
  await row('response').getByLabel('表示名（日本語）').fill('長'.repeat(61));
  await page.locator('#record-form-save').click();
  await row('response').locator('.rf-server-error').waitFor();
  assert.match(await row('response').locator('.rf-server-error').innerText(), /60文字以内/);
  assert.equal((await form()).version, before.version);
  await page.locator('#record-form-discard').click();
  assert.equal(await page.locator('.rf-server-error').count(), 0);
});

test('a change saved meanwhile by another administrator is a conflict, and reload shows it', async () => {
  await go('#/settings/record-form');
  const current = await form();
  const other = structuredClone(current.definition);
  other.fields.find((f) => f.name === 'handling_type').label_ja = '対応区分（他の管理者）';
  const put = await callApi(context, 'PUT', PATH, { version: current.version, definition: other });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  await row('category').getByLabel('表示名（日本語）').fill('分類（私の変更）');
  await page.locator('#record-form-save').click();
  await page.locator('#record-form-conflict').waitFor();
  assert.equal(fieldOf(await form(), 'category').label_ja, fieldOf(current, 'category').label_ja, 'mine was not saved');
  await page.locator('#record-form-reload').click();
  await ready(page);
  assert.equal(await row('handling_type').getByLabel('表示名（日本語）').inputValue(), '対応区分（他の管理者）');
  assert.deepEqual(page.problems, []);
});
