// SMS (issue 8, R44) in the browser, as the bootstrap administrator: a template added on
// SMSテンプレート with its live count, then an SMS sent from SMS送信 with the variables the
// template names and the live preview (characters and parts), a landline refused with a
// message, the accepted SMS listed as 送信待ち (the test system sends nothing:
// NCC_SMS_PROVIDER=none), the record page's link to SMS送信 with the caller's mobile number filled
// in, and the resident's survey page /s/<token> (public, no script).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, signInAdmin, callApi, launch, newPage, ready, screenshot, uniq } from './lib.mjs';

let adminUser; // the administrator this file signs in (signInAdmin)

let browser;
let context;
let page;
const name = uniq('e2e-sms').slice(0, 40);

async function go(hash) {
  const url = `${BASE}/${hash}`;
  if (page.url() === url) await page.reload();
  else await page.goto(url);
  await ready(page);
}

before(async () => {
  browser = await launch();
  ({ context, page } = await newPage(browser));
  adminUser = await signInAdmin(page);
});

after(async () => {
  await browser?.close();
});

test('an administrator adds a template and sees its count while typing', async () => {
  await go('#/sms/templates');
  assert.match(await page.locator('h2').innerText(), /SMSテンプレート/);
  await page.locator('#tpl-form input[name="name"]').fill(name);
  await page.locator('#tpl-form textarea').fill('{name}様 手続きのご案内です: {url} 中野区');
  await page.locator('#tpl-count').filter({ hasText: '通' }).waitFor();
  assert.match(await page.locator('#tpl-count').innerText(), /UCS-2/);
  await page.locator('#tpl-save').click();
  await ready(page);
  await page.locator('#sms-templates').getByRole('link', { name, exact: true }).waitFor();
  const row = page.locator('#sms-templates tr', { hasText: name });
  assert.match(await row.innerText(), /name, url/);
});

test('an SMS is previewed, a landline refused, and a mobile number accepted', async () => {
  await go('#/sms?record_id=4242');
  assert.match(await page.locator('h2').innerText(), /SMS送信/);
  const option = page.locator('#sms-form select option', { hasText: name });
  await page.locator('#sms-form select').selectOption(await option.getAttribute('value'));
  await page.locator('input[data-var="name"]').fill('中野太郎');
  await page.locator('input[data-var="url"]').fill('https://city.example/t/1');
  await page.locator('#sms-send-text').filter({ hasText: '中野太郎様' }).waitFor();
  assert.equal(await page.locator('#sms-send-text').innerText(),
    '中野太郎様 手続きのご案内です: https://city.example/t/1 中野区');
  assert.match(await page.locator('#sms-send-count').innerText(), /1通/);
  // Too long: the preview says so before anything is sent.
  await page.locator('input[data-var="name"]').fill('区'.repeat(300));
  await page.locator('#sms-send-warn').filter({ hasText: '長すぎる' }).waitFor();
  await page.locator('input[data-var="name"]').fill('中野太郎');

  await page.locator('#sms-form input[name="to"]').fill('03-3228-1111');
  await page.locator('#sms-submit').click();
  await page.locator('#sms-result .notice-error').waitFor();
  assert.match(await page.locator('#sms-result').innerText(), /landline/);

  await page.locator('#sms-form input[name="to"]').fill('090-1234-5678');
  await page.locator('#sms-submit').click();
  await page.locator('#sms-result .notice-ok').waitFor();
  assert.match(await page.locator('#sms-result').innerText(), /送信を受け付けました/);
  const row = page.locator('#sms-table tbody tr').first();
  await row.waitFor();
  assert.match(await row.innerText(), /\+819012345678/);
  assert.match(await row.innerText(), /送信待ち|送信済み|到達/);
  await screenshot(page, 'sms-send');

  const answer = await callApi(context, 'GET', '/api/v1/sms?record_id=4242');
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.equal(answer.body.total, 1, JSON.stringify(answer.body));
});

test('a record page links to SMS送信 with its caller\'s mobile number filled in, never a landline', async () => {
  const mobile = await callApi(context, 'POST', '/api/v1/records', {
    channel: 'phone', caller_number: '080-2468-1357', inquiry: '手続きのURLをSMSで欲しい',
  });
  assert.ok([200, 201].includes(mobile.status), JSON.stringify(mobile.body));
  await go(`#/records/${mobile.body.id}`);
  await page.locator('#record-sms').click();
  await ready(page);
  assert.equal(await page.evaluate(() => location.hash), `#/sms?record_id=${mobile.body.id}`);
  await page.locator('#sms-form input[name="to"]').waitFor();
  assert.equal(await page.locator('#sms-form input[name="to"]').inputValue(), '080-2468-1357');
  assert.equal(await page.locator('#sms-form input[name="record_id"]').inputValue(), String(mobile.body.id));
  assert.match(await page.locator('.notice-info', { hasText: '発信者番号' }).innerText(),
    new RegExp(String(mobile.body.receipt_id)));
  // The number is not in the address (it would stay in the browser's history).
  assert.doesNotMatch(page.url(), /2468/);

  const landline = await callApi(context, 'POST', '/api/v1/records', {
    channel: 'phone', caller_number: '03-3228-1111', inquiry: '固定電話からの問い合わせ',
  });
  assert.ok([200, 201].includes(landline.status), JSON.stringify(landline.body));
  await go(`#/sms?record_id=${landline.body.id}`);
  await page.locator('#sms-form input[name="to"]').waitFor();
  assert.equal(await page.locator('#sms-form input[name="to"]').inputValue(), '');
  assert.match(await page.locator('.notice-info', { hasText: '携帯電話の番号ではない' }).innerText(),
    new RegExp(String(landline.body.receipt_id)));
});

test('the survey page is public, has no script and refuses an unknown token', async () => {
  const resident = await browser.newContext({ ignoreHTTPSErrors: true });
  const response = await resident.request.get(`${BASE}/s/${'0'.repeat(64)}`);
  assert.equal(response.status(), 404);
  const html = await response.text();
  assert.match(html, /見つかりませんでした/);
  assert.doesNotMatch(html, /<script/i);
  assert.equal((await resident.request.get(`${BASE}/s/not-a-token`)).status(), 404);
  await resident.close();
});
