// Signed in: the administrator's screens (users, audit log), an operator's limits, XSS,
// conflicts, the return to login on a 401, and signing out. The tests run in order and
// share the users they create; the bootstrap administrator signs in once (each TOTP time
// step is accepted once per user).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, admin, callApi, contrastProblems, createUser, launch, newPage, newPassword, ready, screenshot,
  signIn, uniq,
} from './lib.mjs';

const XSS_NAMES = [
  '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>',
  '"><svg onload="window.__xss=3">',
];
const XSS_LOGIN = '"><svg onload=window.__xss=4>';

let browser;
let adminContext;
let adminPage;
const made = {}; // users created here: {login, password, name, id?, totpSecret?}
const run = uniq('e2e'); // a prefix common to this run's logins

function extension() {
  return `8${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
}

// Opens a screen by its address; the same address again reloads the page (a hash that
// does not change is no navigation).
async function go(page, hash) {
  const url = `${BASE}/${hash}`;
  if (page.url() === url) await page.reload();
  else await page.goto(url);
  await ready(page);
}

async function userId(login) {
  const answer = await callApi(adminContext, 'GET', `/api/v1/users?q=${encodeURIComponent(login)}&per_page=10`);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  const user = answer.body.items.find((u) => u.login === login);
  assert.ok(user, `${login} is listed`);
  return user.id;
}

// Fills and sends the create form; resolves when it answered (created or an error).
async function createThroughForm(page, { login, name, roles = ['operator'], password, ext, totp = false }) {
  await go(page, '#/users/new');
  const form = page.locator('#user-create');
  await form.waitFor();
  await form.getByLabel('ログインID').fill(login);
  await form.getByLabel('氏名').fill(name);
  for (const [role, label] of [['operator', 'オペレーター'], ['supervisor', 'スーパーバイザー'],
    ['admin', '管理者'], ['staff', '職員（閲覧のみ）']]) {
    await form.getByLabel(label, { exact: true }).setChecked(roles.includes(role));
  }
  if (ext) await form.getByLabel('内線番号').fill(ext);
  await form.getByLabel('初期パスワード').fill(password);
  if (totp) await form.getByLabel('確認コード（二要素認証）を設定する').check();
  await form.getByRole('button', { name: '保存する' }).click();
  await page.locator('#user-created, #user-create .form-error').first().waitFor();
}

async function xssUntouched(page) {
  assert.equal(await page.evaluate(() => window.__xss), undefined, 'a script from a name ran');
  assert.equal(await page.locator('#main img, #main svg, #main script, .topbar img, .topbar svg').count(), 0,
    'markup from a name became elements');
}

before(async () => {
  browser = await launch();
  ({ context: adminContext, page: adminPage } = await newPage(browser));
  await signIn(adminPage, admin());
});

after(async () => {
  await browser?.close();
});

test('the administrator signs in with a one-time code and gets the admin menu', async () => {
  const page = adminPage;
  assert.ok((await page.locator('#user-name').innerText()).trim().length > 0, 'the name shows');
  assert.match(await page.locator('#user-roles').innerText(), /管理者/);
  const nav = page.locator('#nav');
  for (const name of ['ユーザー管理', '監査ログ', 'パスワード変更', 'システムの状態']) {
    await nav.getByRole('link', { name, exact: true }).waitFor();
  }
  for (const name of ['ログアウト', 'すべての端末からログアウト']) {
    await nav.getByRole('button', { name, exact: true }).waitFor();
  }
  assert.match(page.url(), /#\/users$/, 'an administrator starts on the users screen');
  await page.locator('#users-table').waitFor();
  assert.equal(await nav.getByRole('link', { name: 'ユーザー管理' }).getAttribute('aria-current'), 'page');
  assert.deepEqual(await contrastProblems(page), [], 'text contrast (WCAG AA)');
  assert.deepEqual(page.problems, []);
  await screenshot(page, 'users');
});

test('an administrator creates an operator', async () => {
  const page = adminPage;
  const user = { login: uniq(`${run}-op`), name: '中野 花子', password: newPassword(), ext: extension() };
  await createThroughForm(page, user);
  assert.equal(await page.locator('#user-created').innerText(), `ユーザー「${user.login}」を登録しました。`);
  assert.equal(await page.locator('#totp-secret').count(), 0, 'no TOTP secret for this operator');
  made.operator = user;

  await page.getByRole('link', { name: 'ユーザー一覧に戻る' }).click();
  await page.locator('#users-table').waitFor();
  await page.getByLabel('ログインIDまたは氏名').fill(user.login);
  await page.getByRole('button', { name: '検索' }).click();
  await page.waitForURL(/#\/users\?q=/);
  await ready(page);
  assert.equal(await page.locator('#users-table tbody tr').count(), 1);
  const row = page.locator('#users-table tbody tr', { hasText: user.login });
  assert.equal(await row.locator('td.name').innerText(), '中野 花子');
  assert.match(await row.innerText(), /オペレーター/);
  assert.match(await row.innerText(), new RegExp(user.ext));
  assert.match(page.url(), /q=/, 'the search is in the address (back button, reload)');
  made.operator.id = await userId(user.login);
});

test('a new supervisor gets a one-time code secret shown once, and it works', async () => {
  const page = adminPage;
  const user = { login: uniq(`${run}-sv`), name: '監督 次郎', password: newPassword(), roles: ['supervisor'], totp: true };
  await createThroughForm(page, user);
  await page.locator('#user-created').waitFor();
  const secret = (await page.locator('#totp-secret').innerText()).trim();
  const uri = (await page.locator('#totp-uri').innerText()).trim();
  assert.match(secret, /^[A-Z2-7]{32}$/, 'base32 of 20 random bytes');
  assert.ok(uri.startsWith('otpauth://totp/'), uri);
  assert.equal(new URL(uri).searchParams.get('secret'), secret);
  assert.match(await page.locator('.secret .warning').innerText(), /この画面でのみ表示されます/);
  await screenshot(page, 'user-created-totp');

  // Gone once the admin leaves: the secret is nowhere else.
  await page.getByRole('link', { name: 'ユーザー一覧に戻る' }).click();
  await page.locator('#users-table').waitFor();
  user.id = await userId(user.login);
  await go(page, `#/users/${user.id}`);
  await page.locator(`#user-edit-${user.id}`).waitFor();
  assert.equal((await page.locator('body').innerText()).includes(secret), false);
  made.supervisor = { ...user, totpSecret: secret };

  // The supervisor signs in with a code from that secret and sees the audit log, not users.
  const { context, page: svPage } = await newPage(browser);
  try {
    await signIn(svPage, made.supervisor);
    const nav = svPage.locator('#nav');
    await nav.getByRole('link', { name: '監査ログ' }).waitFor();
    assert.equal(await nav.getByRole('link', { name: 'ユーザー管理' }).count(), 0);
    assert.match(svPage.url(), /#\/audit$/);
    await svPage.locator('#audit-table').waitFor();
  } finally {
    await context.close();
  }
});

test('field errors appear next to their field', async () => {
  const page = adminPage;
  await createThroughForm(page, {
    login: made.operator.login, name: '重複 太郎', password: 'short1A', ext: extension(),
  });
  const passwordError = page.locator('#user-create [data-field="password"] .field-error');
  await passwordError.waitFor();
  assert.equal(await passwordError.innerText(), 'パスワードは12文字以上にしてください。');
  assert.equal(await page.locator('#user-create').getByLabel('初期パスワード').getAttribute('aria-invalid'), 'true');
  assert.match(await page.locator('#user-create .form-error').innerText(), /入力内容に誤りがあります/);

  await page.locator('#user-create').getByLabel('初期パスワード').fill(newPassword());
  await page.locator('#user-create').getByRole('button', { name: '保存する' }).click();
  const loginError = page.locator('#user-create [data-field="login"] .field-error');
  await loginError.waitFor();
  assert.equal(await loginError.innerText(), 'このログインIDは既に使われています。');
  assert.equal(await page.locator('#user-create [data-field="password"] .field-error').count(), 0, 'the old error is gone');
  assert.equal(await page.evaluate(() => document.activeElement?.name), 'login', 'the field at fault has the focus');
});

test('the operator does not see the admin menu and gets 403 from the users API', async () => {
  const { context, page } = await newPage(browser);
  try {
    await signIn(page, made.operator);
    const nav = page.locator('#nav');
    await nav.getByRole('link', { name: '通話待ち' }).waitFor();
    assert.equal(await nav.getByRole('link', { name: 'ユーザー管理' }).count(), 0);
    assert.equal(await nav.getByRole('link', { name: '監査ログ' }).count(), 0);
    await nav.getByRole('link', { name: 'パスワード変更' }).waitFor();
    await nav.getByRole('button', { name: 'ログアウト', exact: true }).waitFor();
    await nav.getByRole('button', { name: 'すべての端末からログアウト' }).waitFor();
    assert.equal(await page.locator('#user-name').innerText(), '中野 花子');
    assert.equal(await page.locator('#user-roles').innerText(), 'オペレーター');
    assert.equal(await page.locator('main h2').innerText(), '通話待ち');

    assert.equal((await callApi(context, 'GET', '/api/v1/users')).status, 403);
    assert.equal((await callApi(context, 'GET', `/api/v1/users/${made.operator.id === 1 ? 2 : 1}`)).status, 403);
    assert.equal((await callApi(context, 'GET', '/api/v1/audit')).status, 403);
    const create = await callApi(context, 'POST', '/api/v1/users', {
      login: uniq(`${run}-evil`), name: 'x', roles: ['admin'], password: newPassword(),
    });
    assert.equal(create.status, 403, JSON.stringify(create.body));

    // Typing the address of an admin screen shows a refusal, not the screen.
    await go(page, '#/users');
    await page.locator('main h2', { hasText: '権限がありません' }).waitFor();
    assert.equal(await page.locator('#users-table').count(), 0);
  } finally {
    await context.close();
  }
});

test('names are shown as text and never run (XSS)', async () => {
  const page = adminPage;
  const users = XSS_NAMES.map((name, i) => ({
    login: uniq(`${run}-xss${i}`), name, password: newPassword(), ext: extension(),
  }));
  for (const user of users) {
    await createThroughForm(page, user);
    if (await page.locator('#user-created').count() !== 1) {
      assert.fail(`not created: ${await page.locator('#user-create').innerText()}`);
    }
  }
  await xssUntouched(page);

  // A sign-in attempt with markup as the login puts it in the audit log.
  {
    const { context, page: anon } = await newPage(browser);
    try {
      await anon.goto(`${BASE}/#/login`);
      await anon.getByLabel('ログインID').fill(XSS_LOGIN);
      await anon.getByLabel('パスワード', { exact: true }).fill('Wrong-password-123');
      await anon.getByRole('button', { name: 'ログイン', exact: true }).click();
      await anon.locator('#login-form [role="alert"]').waitFor();
      await xssUntouched(anon);
    } finally {
      await context.close();
    }
  }

  // The users list.
  await go(page, `#/users?q=${encodeURIComponent(`${run}-xss`)}`);
  await page.locator('#users-table tbody tr').nth(1).waitFor();
  const names = await page.locator('#users-table td.name').allTextContents();
  for (const name of XSS_NAMES) assert.ok(names.includes(name), `"${name}" shown literally: ${JSON.stringify(names)}`);
  await xssUntouched(page);
  await screenshot(page, 'users-xss');

  // The edit screen: heading and field.
  const id = await userId(users[0].login);
  await go(page, `#/users/${id}`);
  await page.locator(`#user-edit-${id}`).waitFor();
  assert.equal(await page.locator('main h2 .subject').innerText(), XSS_NAMES[0]);
  assert.equal(await page.locator(`#user-edit-${id}`).getByLabel('氏名').inputValue(), XSS_NAMES[0]);
  await xssUntouched(page);

  // The audit log: the markup typed as a login.
  await go(page, `#/audit?actor=${encodeURIComponent(XSS_LOGIN)}`);
  const actors = await page.locator('#audit-table td.actor').allTextContents();
  assert.ok(actors.some((a) => a.startsWith(XSS_LOGIN)), `audit shows the login literally: ${JSON.stringify(actors)}`);
  await xssUntouched(page);
  await go(page, '#/audit?action=user.created');
  await page.locator('#audit-table').waitFor();
  await xssUntouched(page);

  // The top bar of the user with markup as a name.
  const { context, page: xssPage } = await newPage(browser);
  try {
    await signIn(xssPage, users[0]);
    assert.equal(await xssPage.locator('#user-name').innerText(), XSS_NAMES[0]);
    await xssUntouched(xssPage);
    assert.match(await xssPage.title(), /通話待ち/);
  } finally {
    await context.close();
  }
});

test('a stale edit answers 409 and the administrator is asked to reload', async () => {
  const page = adminPage;
  const id = made.operator.id;
  await go(page, `#/users/${id}`);
  const form = page.locator(`#user-edit-${id}`);
  await form.waitFor();
  await form.getByLabel('氏名').fill('画面で変更した名前');

  // Another administrator changes the user meanwhile.
  const current = await callApi(adminContext, 'GET', `/api/v1/users/${id}`);
  const changed = await callApi(adminContext, 'PATCH', `/api/v1/users/${id}`, {
    version: current.body.version, name: '別の管理者が変更',
  });
  assert.equal(changed.status, 200, JSON.stringify(changed.body));

  await form.getByRole('button', { name: '保存する' }).click();
  const conflict = page.locator('#conflict');
  await conflict.waitFor();
  assert.match(await conflict.innerText(), /ほかの管理者によって変更されました/);
  await conflict.getByRole('button', { name: '最新の内容を読み込む' }).click();
  await page.locator(`#user-edit-${id}`).getByLabel('氏名').waitFor();
  assert.equal(await page.locator(`#user-edit-${id}`).getByLabel('氏名').inputValue(), '別の管理者が変更');

  // With the fresh version the change goes through.
  await page.locator(`#user-edit-${id}`).getByLabel('氏名').fill('中野 花子');
  await page.locator(`#user-edit-${id}`).getByRole('button', { name: '保存する' }).click();
  await page.locator('#users-table').waitFor();
  assert.match(await page.locator('.flash').innerText(), new RegExp(`「${made.operator.login}」の変更を保存しました`));
  assert.equal((await callApi(adminContext, 'GET', `/api/v1/users/${id}`)).body.name, '中野 花子');
});

test('an administrator retires a user, who can no longer sign in', async () => {
  const page = adminPage;
  const user = { login: uniq(`${run}-ret`), name: '退職 予定', password: newPassword() };
  const created = await createUser(adminContext, { ...user, roles: ['operator'] });
  await go(page, `#/users/${created.id}`);
  const form = page.locator(`#user-edit-${created.id}`);
  await form.getByRole('button', { name: '利用を停止する（退職）' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  assert.match(await dialog.innerText(), new RegExp(`「退職 予定」（${user.login}）の利用を停止します`));
  await dialog.getByRole('button', { name: 'キャンセル' }).click();
  await dialog.waitFor({ state: 'detached' });
  assert.equal((await callApi(adminContext, 'GET', `/api/v1/users/${created.id}`)).body.active, true, 'cancel changes nothing');

  await form.getByRole('button', { name: '利用を停止する（退職）' }).click();
  await page.getByRole('dialog').getByRole('button', { name: '利用を停止する', exact: true }).click();
  await page.waitForURL(/#\/users$/);
  await ready(page);
  assert.match(await page.locator('.flash').innerText(), new RegExp(`「${user.login}」の利用を停止しました`));
  assert.equal((await callApi(adminContext, 'GET', `/api/v1/users/${created.id}`)).body.active, false);

  // Listed under 利用停止のみ, not under the default 有効のみ.
  await go(page, `#/users?q=${encodeURIComponent(user.login)}`);
  assert.equal(await page.locator('#users-table').count(), 0);
  await page.getByLabel('状態').selectOption({ label: '利用停止のみ' });
  await page.getByRole('button', { name: '検索' }).click();
  await page.waitForURL(/state=retired/);
  await ready(page);
  assert.match(await page.locator('#users-table tbody tr').innerText(), /利用停止/);

  const { context, page: retired } = await newPage(browser);
  try {
    await retired.goto(`${BASE}/#/login`);
    await retired.getByLabel('ログインID').fill(user.login);
    await retired.getByLabel('パスワード', { exact: true }).fill(user.password);
    await retired.getByRole('button', { name: 'ログイン', exact: true }).click();
    await retired.locator('#login-form [role="alert"]').waitFor();
    assert.match(await retired.locator('#login-form [role="alert"]').innerText(), /ログインIDまたはパスワードが正しくありません/);
  } finally {
    await context.close();
  }
});

test('the audit log: search by action, pages and the tamper check', async () => {
  const page = adminPage;
  await go(page, '#/audit');
  await page.locator('#audit-table tbody tr').first().waitFor();
  await page.getByLabel('操作', { exact: true }).fill('user.created');
  await page.getByRole('button', { name: '検索' }).click();
  await page.waitForURL(/action=user\.created/);
  await ready(page);
  const rows = await page.locator('#audit-table tbody tr').allInnerTexts();
  assert.ok(rows.length >= 4, `at least the users made here: ${rows.length}`);
  for (const row of rows) assert.match(row, /user\.created/);
  assert.match(await page.locator('.pager .page-info').innerText(), /^全 \d+ 件中 1〜\d+ 件目$/);

  // A period (Tokyo time) around now finds today's entries; one in the future finds none.
  const tokyo = (ms) => new Date(ms + 9 * 3600e3).toISOString().slice(0, 16);
  await page.getByLabel('期間の開始').fill(tokyo(Date.now() - 3600e3));
  await page.getByLabel('期間の終了').fill(tokyo(Date.now() + 3600e3));
  await page.getByRole('button', { name: '検索' }).click();
  await page.waitForURL(/from=.*to=/);
  await ready(page);
  assert.ok(await page.locator('#audit-table tbody tr').count() >= 1, 'entries within the hour');
  await page.getByLabel('期間の開始').fill(tokyo(Date.now() + 24 * 3600e3));
  await page.getByLabel('期間の終了').fill(tokyo(Date.now() + 48 * 3600e3));
  await page.getByRole('button', { name: '検索' }).click();
  await page.waitForFunction(() => document.getElementById('main').dataset.hash !== undefined
    && !document.querySelector('#audit-table') && /該当するデータはありません/.test(document.getElementById('main').innerText));
  assert.equal(await page.locator('.pager .page-info').innerText(), '全 0 件');

  await page.getByRole('button', { name: '改ざん検査' }).click();
  const result = page.locator('#verify-result .notice');
  await result.waitFor();
  assert.match(await result.innerText(), /改ざんは見つかりませんでした。\d+ 件の記録をすべて検査しました。/);
  assert.deepEqual(await contrastProblems(page), [], 'text contrast (WCAG AA)');
  await screenshot(page, 'audit');
});

test('a 401 returns to the login screen and what was typed comes back', async () => {
  const user = { login: uniq(`${run}-sv2`), name: '監督 三郎', password: newPassword() };
  await createUser(adminContext, { ...user, roles: ['supervisor'] });
  const { context, page } = await newPage(browser);
  try {
    await signIn(page, user);
    await page.locator('#audit-search').waitFor();
    await page.getByLabel('操作者', { exact: true }).fill('typed-before-expiry');
    await page.getByLabel('操作', { exact: true }).fill('user.*');

    await context.clearCookies(); // the session ends under the user's feet
    await page.getByRole('button', { name: '改ざん検査' }).click();
    await page.locator('#login-form').waitFor();
    const message = await page.locator('.flash').innerText();
    assert.match(message, /セッションの有効期限が切れました/);
    assert.match(message, /復元されます/);
    assert.equal(await page.locator('#nav').isVisible(), false);
    const kept = await page.evaluate(() => sessionStorage.getItem('ncc.draft'));
    assert.ok(kept && kept.includes('typed-before-expiry'), kept);
    assert.equal(kept.includes(user.password), false, 'no password in storage');

    await signIn(page, user);
    await page.locator('#draft-restored').waitFor();
    assert.match(page.url(), /#\/audit/);
    assert.equal(await page.getByLabel('操作者', { exact: true }).inputValue(), 'typed-before-expiry');
    assert.equal(await page.getByLabel('操作', { exact: true }).inputValue(), 'user.*');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('ncc.draft')), null, 'used once');
  } finally {
    await context.close();
  }
});

test('signing out everywhere ends the other sessions too', async () => {
  const first = await newPage(browser);
  const second = await newPage(browser);
  try {
    await signIn(first.page, made.operator);
    await signIn(second.page, made.operator);
    await first.page.getByRole('button', { name: 'すべての端末からログアウト' }).click();
    const dialog = first.page.getByRole('dialog');
    await dialog.waitFor();
    assert.match(await dialog.innerText(), /ほかのパソコンやブラウザでのログインもすべて終了します/);
    await dialog.getByRole('button', { name: 'すべてログアウトする' }).click();
    await first.page.locator('#login-form').waitFor();
    assert.match(await first.page.locator('.flash').innerText(), /すべての端末からログアウトしました/);

    assert.equal((await callApi(second.context, 'GET', '/api/v1/me')).status, 401, 'the other session ended');
    // The other browser finds out at its next request.
    await second.page.getByRole('link', { name: 'パスワード変更' }).click();
    await second.page.getByLabel('現在のパスワード').fill(made.operator.password);
    const next = newPassword();
    await second.page.getByLabel('新しいパスワード', { exact: true }).fill(next);
    await second.page.getByLabel('新しいパスワード（確認のためもう一度）').fill(next);
    await second.page.getByRole('button', { name: 'パスワードを変更する' }).click();
    await second.page.locator('#login-form').waitFor();
    assert.match(await second.page.locator('.flash').innerText(), /セッションの有効期限が切れました/);
  } finally {
    await first.context.close();
    await second.context.close();
  }
});

test('signing out returns to login and the back button shows no data', async () => {
  const page = adminPage;
  await go(page, `#/users?q=${encodeURIComponent(made.operator.login)}`);
  await page.locator('#users-table tbody tr', { hasText: made.operator.login }).waitFor();
  await page.locator('#nav').getByRole('button', { name: 'ログアウト', exact: true }).click();
  await page.locator('#login-form').waitFor();
  assert.match(await page.locator('.flash').innerText(), /ログアウトしました/);
  assert.equal((await callApi(adminContext, 'GET', '/api/v1/me')).status, 401, 'the session is gone');

  await page.goBack();
  await page.waitForTimeout(500);
  await page.locator('#login-form').waitFor();
  assert.equal(await page.locator('#users-table').count(), 0);
  assert.equal((await page.locator('body').innerText()).includes(made.operator.login), false,
    'no user data after going back');
  assert.equal(await page.locator('#nav').isVisible(), false);
});
