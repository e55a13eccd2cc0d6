// Shared helpers of the browser tests: settings from the environment, TOTP (RFC 6238 with
// node:crypto), headless Chromium through playwright-core, sign-in through the UI, and
// API calls as a signed-in browser context.
//
// Environment (scripts/test.sh sets all of them; scripts/run.sh writes them to
// var/secrets.env):
//   NCC_TEST_GATEWAY_URL              default https://127.0.0.1:8443
//   NCC_BOOTSTRAP_ADMIN_LOGIN         default admin
//   NCC_BOOTSTRAP_ADMIN_PASSWORD      required by the tests that sign in as the admin
//   NCC_BOOTSTRAP_ADMIN_TOTP_SECRET   required by the tests that sign in as the admin
//   NCC_TEST_CHROMIUM                 default /usr/bin/chromium

import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, request as apiRequest } from 'playwright-core';
import { newTotpSecret } from '../../gateway/web/js/secrets.js';

export const BASE = (process.env.NCC_TEST_GATEWAY_URL || 'https://127.0.0.1:8443').replace(/\/+$/, '');
export const HERE = dirname(fileURLToPath(import.meta.url));
export const SCREENSHOTS = join(HERE, 'screenshots');

// The bootstrap administrator; throws (the test fails, it is not skipped) when the
// environment does not name it.
export function admin() {
  const login = process.env.NCC_BOOTSTRAP_ADMIN_LOGIN || 'admin';
  const password = process.env.NCC_BOOTSTRAP_ADMIN_PASSWORD;
  const totpSecret = process.env.NCC_BOOTSTRAP_ADMIN_TOTP_SECRET;
  if (!password || !totpSecret) {
    throw new Error('NCC_BOOTSTRAP_ADMIN_PASSWORD and NCC_BOOTSTRAP_ADMIN_TOTP_SECRET must be set '
      + '(source var/secrets.env after scripts/run.sh, or run scripts/test.sh)');
  }
  return { login, password, totpSecret };
}

// A login unique to this run: prefix-<time><random> (letters, digits, '-').
export function uniq(prefix) {
  return `${prefix}-${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

// ---- TOTP (RFC 6238: HMAC-SHA1, 30 s steps, 6 digits) ---------------------------------

export function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const clean = text.toUpperCase().replace(/[\s=-]/g, '');
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of clean) {
    const index = alphabet.indexOf(c);
    if (index < 0) throw new Error(`not base32: ${c}`);
    value = ((value << 5) | index) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

export function totpAtStep(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const code = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(code % 1000000).padStart(6, '0');
}

// The server accepts each time step of a user once. This hands out each step once across
// the test files (a file per step in the temporary directory, created exclusively), waits
// for the next step when this one is taken, and keeps clear of a step's last 3 seconds.
export async function reserveTotp(secret) {
  const dir = join(tmpdir(), 'ncc-e2e-totp');
  mkdirSync(dir, { recursive: true });
  const id = createHash('sha256').update(secret).digest('hex').slice(0, 16);
  for (const name of readdirSync(dir)) {
    try {
      if (Date.now() - statSync(join(dir, name)).mtimeMs > 600000) unlinkSync(join(dir, name));
    } catch {
      // another process removed it
    }
  }
  for (;;) {
    const now = Date.now() / 1000;
    const step = Math.floor(now / 30);
    const left = (step + 1) * 30 - now;
    if (left >= 3) {
      try {
        writeFileSync(join(dir, `${id}-${step}`), '', { flag: 'wx' });
        return totpAtStep(secret, step);
      } catch (error) {
        if (error.code !== 'EEXIST') throw error;
      }
    }
    await sleep(Math.ceil((left + 0.3) * 1000));
  }
}

// ---- the browser ------------------------------------------------------------------

// Headless Chromium (Debian's /usr/bin/chromium). Playwright gives every launch a fresh
// temporary --user-data-dir of its own; each test user gets its own context (cookies,
// storage) on top.
export async function launch() {
  return chromium.launch({
    executablePath: process.env.NCC_TEST_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      // The gateway's certificate is self-signed: the contexts' ignoreHTTPSErrors covers
      // pages and fetches, but a download on a new connection was refused ("certificate
      // unknown" in the gateway's log, the file named after its URL): the whole browser
      // accepts it.
      '--ignore-certificate-errors',
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

// A new context (its own cookies and storage) and page, Japanese and Tokyo time like a
// ward computer. page.problems collects uncaught errors and CSP violations.
export async function newPage(browser, { lang = 'ja-JP' } = {}) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    locale: lang,
    timezoneId: 'Asia/Tokyo',
    viewport: { width: 1280, height: 860 },
  });
  context.setDefaultTimeout(30000); // generous: ASan builds on a shared 2-core machine
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (error) => page.problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy|Refused to/i.test(message.text())) {
      page.problems.push(`console: ${message.text()}`);
    }
  });
  return { context, page };
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

// Signs in through the login screen. user: {login, password, totpSecret?}. Resolves once
// the menu shows. A one-time code refused because its step was already used elsewhere,
// or a 503 from a busy machine, is retried (at most twice).
export async function signIn(page, user) {
  if (!page.url().startsWith(BASE)) await page.goto(`${BASE}/#/login`);
  else await page.evaluate(() => { location.hash = '#/login'; });
  const form = page.locator('#login-form');
  await form.waitFor();
  for (let attempt = 0; ; attempt++) {
    await form.locator('input[name="login"]').fill(user.login);
    await form.locator('input[name="password"]').fill(user.password);
    if (user.totpSecret) {
      const code = form.locator('input[name="totp"]');
      if (!(await code.isVisible())) await form.locator('.totp-toggle button').click();
      await code.fill(await reserveTotp(user.totpSecret));
    }
    await form.locator('button[type="submit"]').click();
    const outcome = await Promise.race([
      page.locator('#nav').waitFor({ state: 'visible' }).then(() => 'ok'),
      form.locator('.form-error').waitFor({ state: 'visible' }).then(() => 'error'),
    ]);
    if (outcome === 'ok') return;
    const message = await form.locator('.form-error').innerText();
    // A busy machine can make the sign-in outlast the gateway's bus timeout (503); a code
    // can be refused when its step was used elsewhere. Both are retried, a little.
    const busy = /一時的に利用できません|temporarily unavailable/.test(message);
    const codeRefused = Boolean(user.totpSecret) && /確認コード|one-time code/.test(message);
    if (attempt >= 2 || !(busy || codeRefused)) {
      throw new Error(`sign-in of ${user.login} failed: ${message}`);
    }
    if (busy) await sleep(2000);
  }
}

// ---- administrators -----------------------------------------------------------------

// The bootstrap administrator's API session, one per run, shared by the test files through a
// file in the temporary directory. Every sign-in of an administrator takes a 30-s TOTP step
// of its own (the server accepts each step once), so eight files signing in the bootstrap
// administrator spent about four minutes of the run waiting for steps.
async function bootstrapApi() {
  const dir = join(tmpdir(), 'ncc-e2e-totp');
  mkdirSync(dir, { recursive: true });
  const key = createHash('sha256').update(`${BASE} ${admin().totpSecret}`).digest('hex').slice(0, 16);
  const state = join(dir, `session-${key}.json`);
  if (existsSync(state)) {
    const saved = await apiRequest.newContext({ ignoreHTTPSErrors: true, storageState: state });
    if ((await saved.get(`${BASE}/api/v1/me`)).ok()) return saved;
    await saved.dispose();
  }
  const context = await apiRequest.newContext({ ignoreHTTPSErrors: true });
  const { login, password, totpSecret } = admin();
  for (let attempt = 0; ; attempt++) {
    const answer = await context.post(`${BASE}/api/v1/session`, {
      data: { login, password, totp: await reserveTotp(totpSecret) },
    });
    if (answer.ok()) break;
    if (attempt >= 2) throw new Error(`API sign-in of ${login} failed: ${answer.status()} ${await answer.text()}`);
    await sleep(2000);
  }
  await context.storageState({ path: `${state}.${process.pid}` });
  renameSync(`${state}.${process.pid}`, state);
  return context;
}

// Signs the page in as a new administrator of its own (made with the bootstrap
// administrator's shared API session, with a TOTP secret of its own, so its first code is
// free at once). Returns {login, password, totpSecret, name}.
export async function signInAdmin(page, name = '管理 一郎') {
  const api = await bootstrapApi();
  const user = {
    login: uniq('e2e-admin'), password: newPassword(), totpSecret: newTotpSecret(), name,
  };
  try {
    const me = await api.get(`${BASE}/api/v1/me`);
    const answer = await api.post(`${BASE}/api/v1/users`, {
      headers: { 'X-CSRF-Token': (await me.json()).csrf_token },
      data: {
        login: user.login, name, roles: ['admin'], password: user.password, totp_secret: user.totpSecret, active: true,
      },
    });
    if (!answer.ok()) throw new Error(`create ${user.login}: ${answer.status()} ${await answer.text()}`);
  } finally {
    await api.dispose();
  }
  await signIn(page, user);
  return user;
}

// ---- the API as a signed-in context ------------------------------------------------

// {status, body} of one API call with the context's cookies; a state-changing call
// carries the CSRF token from GET /api/v1/me.
export async function callApi(context, method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') {
    const me = await context.request.get(`${BASE}/api/v1/me`);
    if (me.ok()) headers['X-CSRF-Token'] = (await me.json()).csrf_token;
  }
  const response = await context.request.fetch(`${BASE}${path}`, {
    method, headers, data: body === undefined ? undefined : body,
  });
  let json = null;
  try {
    json = await response.json();
  } catch {
    json = null;
  }
  return { status: response.status(), body: json, headers: response.headers() };
}

// Creates a user through the API as the (admin) context; returns the created user.
export async function createUser(context, user) {
  const answer = await callApi(context, 'POST', '/api/v1/users', { active: true, ...user });
  if (answer.status !== 201 && answer.status !== 200) {
    throw new Error(`create ${user.login}: ${answer.status} ${JSON.stringify(answer.body)}`);
  }
  return answer.body;
}

// A password that passes the policy (12+ characters, several kinds, not common).
export function newPassword() {
  return `Kx7-${randomBytes(9).toString('base64url')}-Qa`;
}

// Waits until the client has shown the current address with its data (the app sets
// main[aria-busy="false"] and main[data-hash] once a view is mounted).
export async function ready(page) {
  await page.waitForFunction(() => {
    const main = document.getElementById('main');
    return main && main.getAttribute('aria-busy') === 'false' && main.dataset.hash === location.hash;
  });
}

// Text whose colour contrasts less than `minimum` (WCAG 2 ratio) with the background it is
// drawn on, for every visible, enabled element with text of its own.
export async function contrastProblems(page, minimum = 4.5) {
  return page.evaluate((min) => {
    const parse = (text) => {
      const m = /rgba?\(([^)]+)\)/.exec(text);
      if (!m) return null;
      const p = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
      return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
    };
    const over = (top, under) => ({
      r: top.r * top.a + under.r * (1 - top.a),
      g: top.g * top.a + under.g * (1 - top.a),
      b: top.b * top.a + under.b * (1 - top.a),
      a: 1,
    });
    const luminance = ({ r, g, b }) => {
      const f = (v) => {
        const c = v / 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (el) => {
      const layers = [];
      for (let e = el; e; e = e.parentElement) {
        const c = parse(getComputedStyle(e).backgroundColor);
        if (c && c.a > 0) {
          layers.push(c);
          if (c.a >= 1) break;
        }
      }
      let colour = { r: 255, g: 255, b: 255, a: 1 };
      for (const layer of layers.reverse()) colour = over(layer, colour);
      return colour;
    };
    const problems = [];
    const seen = new Set();
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const node = walker.currentNode;
      const el = node.parentElement;
      if (!node.textContent.trim() || !el || seen.has(el)) continue;
      seen.add(el);
      if (!el.checkVisibility({ opacityProperty: true, visibilityProperty: true })) continue;
      if (el.closest('[disabled], [aria-disabled="true"], noscript')) continue;
      const bg = background(el);
      const fg = over(parse(getComputedStyle(el).color), bg);
      const [hi, lo] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
      const ratio = (hi + 0.05) / (lo + 0.05);
      if (ratio < min) problems.push(`${ratio.toFixed(2)}:1 <${el.tagName.toLowerCase()}> "${node.textContent.trim().slice(0, 40)}"`);
    }
    return problems;
  }, minimum);
}

// The focused element shows a focus ring (an outline at least 2px wide, not "none").
export async function focusVisible(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return false;
    const style = getComputedStyle(el);
    return style.outlineStyle !== 'none' && Number.parseFloat(style.outlineWidth) >= 2;
  });
}
