// The signed-out client: the Japanese login screen, a wrong password, the language switch,
// the status view, and the page refusing to be framed.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, contrastProblems, focusVisible, launch, newPage, screenshot, uniq } from './lib.mjs';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

test('the login screen is Japanese first', async () => {
  const { context, page } = await newPage(browser);
  try {
    await page.goto(`${BASE}/`);
    const form = page.locator('#login-form');
    await form.waitFor();
    assert.equal(await page.getAttribute('html', 'lang'), 'ja');
    assert.equal(await page.locator('#login-heading').innerText(), 'ログイン');
    assert.match(await page.title(), /ログイン - 中野区コンタクトセンター/);
    // Labels are tied to their fields (getByLabel finds the input through <label for>).
    await page.getByLabel('ログインID').waitFor();
    await page.getByLabel('パスワード', { exact: true }).waitFor();
    assert.equal(await page.getByLabel('確認コード（6桁）').isVisible(), false, 'the code field waits until asked for');
    assert.equal(await page.locator('#lang').innerText(), 'English');
    assert.match(page.url(), /#\/login$/);
    // The first field has the focus: typing works at once.
    assert.equal(await page.evaluate(() => document.activeElement?.name), 'login');
    await screenshot(page, 'login');
    assert.deepEqual(await contrastProblems(page), [], 'text contrast (WCAG AA)');
    assert.deepEqual(page.problems, [], 'no script error or CSP violation');
  } finally {
    await context.close();
  }
});

test('a wrong password gets a plain Japanese message and no session', async () => {
  const { context, page } = await newPage(browser);
  try {
    await page.goto(`${BASE}/#/login`);
    await page.getByLabel('ログインID').fill(uniq('nobody'));
    await page.getByLabel('パスワード', { exact: true }).fill('Wrong-password-123');
    await page.getByRole('button', { name: 'ログイン', exact: true }).click();
    const alert = page.locator('#login-form [role="alert"]');
    await alert.waitFor();
    const text = await alert.innerText();
    assert.ok(text.includes('ログインIDまたはパスワードが正しくありません。')
      || text.includes('試行回数が多すぎます'), text);
    assert.equal(await page.getByLabel('パスワード', { exact: true }).inputValue(), '', 'the password is cleared');
    assert.equal(await page.locator('#nav').isVisible(), false);
    const me = await context.request.get(`${BASE}/api/v1/me`);
    assert.equal(me.status(), 401);
    await screenshot(page, 'login-wrong-password');
    assert.deepEqual(await contrastProblems(page), [], 'text contrast (WCAG AA) with the error shown');
  } finally {
    await context.close();
  }
});

test('the language switch changes the labels and is remembered', async () => {
  const { context, page } = await newPage(browser);
  try {
    await page.goto(`${BASE}/#/login`);
    await page.getByLabel('ログインID').fill('typed-before-switch');
    await page.locator('#lang').click();
    await page.locator('#login-heading', { hasText: 'Sign in' }).waitFor();
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    await page.getByLabel('Login ID').waitFor();
    assert.equal(await page.getByLabel('Login ID').inputValue(), 'typed-before-switch', 'typed text survives the switch');
    assert.equal(await page.locator('#lang').innerText(), '日本語');
    assert.equal(await page.locator('.topbar h1').innerText(), 'Nakano Contact Center');
    assert.match(await page.title(), /Sign in - Nakano Contact Center/);

    await page.reload();
    await page.locator('#login-heading', { hasText: 'Sign in' }).waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem('ncc.lang')), 'en');

    await page.locator('#lang').click();
    await page.locator('#login-heading', { hasText: 'ログイン' }).waitFor();
    assert.equal(await page.getAttribute('html', 'lang'), 'ja');
    await page.getByLabel('ログインID').waitFor();
  } finally {
    await context.close();
  }
});

test('the status view stays reachable without signing in', async () => {
  const { context, page } = await newPage(browser);
  try {
    await page.goto(`${BASE}/#/login`);
    await page.getByRole('link', { name: 'システムの状態を見る' }).click();
    await page.locator('#services tbody tr').first().waitFor();
    assert.equal(await page.locator('h2').innerText(), 'システムの状態');
    assert.ok(await page.locator('#services tbody tr').count() >= 1);
    await page.getByRole('link', { name: 'ログイン画面に戻る' }).click();
    await page.locator('#login-form').waitFor();
  } finally {
    await context.close();
  }
});

test('the page cannot be framed', async () => {
  const { context, page } = await newPage(browser);
  try {
    for (const path of ['/', '/index.html', '/js/app.js']) {
      const response = await context.request.get(`${BASE}${path}`);
      assert.equal(response.status(), 200, path);
      const headers = response.headers();
      assert.equal(headers['x-frame-options'], 'DENY', `${path} X-Frame-Options`);
      assert.match(headers['content-security-policy'] ?? '', /frame-ancestors 'none'/, `${path} CSP`);
      assert.match(headers['content-security-policy'] ?? '', /default-src 'self'/, `${path} CSP`);
      assert.equal(headers['x-content-type-options'], 'nosniff', `${path} nosniff`);
    }
    // And Chromium obeys: a page of another origin framing the client gets nothing.
    await page.setContent(`<iframe id="f" src="${BASE}/" width="600" height="400"></iframe>`);
    await page.waitForTimeout(1500);
    const frame = page.frames().find((f) => f !== page.mainFrame());
    assert.ok(frame, 'the iframe exists');
    const loaded = await frame.evaluate(() => Boolean(document.querySelector('#main'))).catch(() => false);
    assert.equal(loaded, false, 'the client rendered inside a frame');
  } finally {
    await context.close();
  }
});

test('the login screen works from the keyboard with a visible focus', async () => {
  const { context, page } = await newPage(browser);
  try {
    await page.goto(`${BASE}/#/login`);
    await page.locator('#login-form').waitFor();
    // The skip link comes first and leads to the content.
    await page.evaluate(() => { // start from the top of the page, as after a page load
      document.body.tabIndex = -1;
      document.body.focus();
      document.body.removeAttribute('tabindex');
    });
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.className), 'skip-link');
    assert.ok(await focusVisible(page), 'the skip link shows its focus');
    assert.ok((await page.locator('.skip-link').boundingBox()).y >= 0, 'the skip link comes into view');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');

    await page.getByLabel('ログインID').focus();
    await page.keyboard.type('keyboard-user');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.name), 'password');
    assert.ok(await focusVisible(page), 'the password field shows its focus');
    await page.keyboard.type('Some-password-1');
    await page.keyboard.press('Tab'); // "show password"
    await page.keyboard.press('Tab'); // "enter a one-time code"
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), '確認コードを入力する');
    assert.ok(await focusVisible(page), 'the button shows its focus');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement?.name), 'totp', 'the code field opens with the focus');
    await page.keyboard.type('12345');
    await page.keyboard.press('Enter'); // submits the form; a 5-digit code is refused here
    const error = page.locator('#login-form [data-field="totp"] .field-error');
    await error.waitFor();
    assert.equal(await error.innerText(), '確認コードは6桁の数字で入力してください。');
    assert.equal(await page.getByLabel('確認コード（6桁）').getAttribute('aria-invalid'), 'true');
  } finally {
    await context.close();
  }
});
