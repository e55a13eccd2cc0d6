// Reports and the live floor (issue 9: R29, R33, R39; docs/kpi.md, docs/web.md): a supervisor
// watches モニタリング while calls come in through the signed PBX webhook: the live figures
// follow the `metrics.live` push (a ringing call shows as waiting, today's offered count
// grows); one call is answered by an operator, one is abandoned. レポート then shows today's
// offered / answered / abandoned (the day's total grows by exactly these two calls, the
// operator's row is exactly one answered call), draws the chart, and downloads the CSV (UTF-8
// and Shift_JIS: header and numbers) and the XLSX (a ZIP: "PK"). A reversed period and one
// over the maximum get plain Japanese errors next to the field, from the client and from the
// server. A batch run of ncc-report (when this machine has the binary and the database, as
// scripts/test.sh gives) is listed with its file. Needs NCC_PBX_WEBHOOK_SECRET and the
// bootstrap administrator, as scripts/test.sh exports them.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BASE, signInAdmin, callApi, contrastProblems, createUser, launch, newPage, newPassword, ready, screenshot, signIn, uniq,
} from './lib.mjs';

let adminUser; // the administrator this file signs in (signInAdmin)

const run = uniq('e2r').slice(0, 20);
const answeredCall = `${run}-a`;
const abandonedCall = `${run}-b`;

let browser;
let adminContext;
let supervisorContext;
let page; // the supervisor's
let operator;
let supervisor;
let baseline; // today's total before this test's calls
let today;

function tokyoToday() {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: 'Asia/Tokyo', year: 'numeric', month: '2-digit', day: '2-digit',
  }).formatToParts(new Date());
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get('year')}-${get('month')}-${get('day')}`;
}

function secret() {
  const value = process.env.NCC_PBX_WEBHOOK_SECRET;
  if (!value) throw new Error('NCC_PBX_WEBHOOK_SECRET must be set (scripts/test.sh exports it; or var/secrets.env)');
  return value;
}

// A signed call event, as the PBX sends it (docs/pbx-integration.md).
let eventNo = 0;
function pbx(callId, type, extra = {}) {
  eventNo += 1;
  const body = JSON.stringify({
    event_id: `${callId}-${eventNo}-${type}`, type, call_id: callId, occurred_at: new Date().toISOString(),
    from: '090-5555-0456', to: '03-3228-5500', ...extra,
  });
  const ts = Math.floor(Date.now() / 1000);
  const v1 = createHmac('sha256', secret()).update(`${ts}.${body}`).digest('hex');
  return new Promise((resolve, reject) => {
    const req = httpsRequest(new URL('/api/v1/pbx/events', `${BASE}/`), {
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
      res.on('end', () => {
        if (res.statusCode === 200) resolve();
        else reject(new Error(`${type}: ${res.statusCode} ${text}`));
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function kpiTotal(context, query) {
  const answer = await callApi(context, 'GET', `/api/v1/reports/kpi?${new URLSearchParams(query)}`);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

// The number shown in a live figure (— before the first figures).
async function liveValue(id) {
  const text = (await page.locator(`#${id}`).innerText()).replace(/[,\s]/g, '');
  return /^\d+$/.test(text) ? Number(text) : null;
}

async function waitLive(id, predicate, what, timeout = 10000) {
  const deadline = Date.now() + timeout;
  let value = null;
  while (Date.now() < deadline) {
    value = await liveValue(id);
    if (value !== null && predicate(value)) return value;
    await sleep(100);
  }
  throw new Error(`${what}: #${id} shows ${value}`);
}

before(async () => {
  today = tokyoToday();
  browser = await launch();
  let adminPage;
  ({ context: adminContext, page: adminPage } = await newPage(browser));
  adminUser = await signInAdmin(adminPage);
  const extension = `7${String(Date.now() % 1000000).padStart(6, '0')}`;
  operator = { login: uniq('e2r-op'), password: newPassword(), name: '集計 一郎', extension };
  const made = await createUser(adminContext, { login: operator.login, name: operator.name, roles: ['operator'], password: operator.password, extension });
  operator.id = made.id;
  supervisor = { login: uniq('e2r-sv'), password: newPassword(), name: '監督 五郎' };
  await createUser(adminContext, { login: supervisor.login, name: supervisor.name, roles: ['supervisor'], password: supervisor.password });
});

after(async () => {
  await browser?.close();
});

test('the live floor follows the metrics.live push while calls ring, are answered and abandoned', async () => {
  ({ context: supervisorContext, page } = await newPage(browser));
  await signIn(page, supervisor);
  await page.locator('#nav').getByRole('link', { name: 'モニタリング', exact: true }).click();
  await ready(page);
  await page.locator('#monitor-live').waitFor();
  assert.equal(await page.locator('#monitor-alerts').count(), 1, 'the anger alerts stay on the page');
  const offered0 = await waitLive('monitor-offered', () => true, 'the first figures (GET /api/v1/metrics/live)');
  const waiting0 = await waitLive('monitor-waiting', () => true, 'waiting');

  // Pushed every second: the time of the figures moves on more than once in 3.5 s (the page
  // itself asks only every 5 s, and only when no push came).
  const changes = await page.evaluate(() => new Promise((resolve) => {
    const el = document.getElementById('monitor-live-at');
    let n = 0;
    const observer = new MutationObserver(() => { n += 1; });
    observer.observe(el, { childList: true, characterData: true, subtree: true });
    setTimeout(() => { observer.disconnect(); resolve(n); }, 3500);
  }));
  assert.ok(changes >= 2, `metrics.live pushes seen in 3.5 s: ${changes}`);

  baseline = (await kpiTotal(supervisorContext, { from: today, to: today, group: 'day' })).total;
  await pbx(answeredCall, 'ringing');
  await pbx(abandonedCall, 'ringing');
  const waiting = await waitLive('monitor-waiting', (v) => v >= waiting0 + 2, 'two calls ringing');
  assert.ok(waiting >= 2);
  await waitLive('monitor-offered', (v) => v >= offered0 + 2, 'today\'s offered after two calls');
  await page.locator('#monitor-chart canvas').first().waitFor();
  await screenshot(page, 'monitor-live');

  await pbx(answeredCall, 'answered', { agent_extension: operator.extension });
  await waitLive('monitor-in-progress', (v) => v >= 1, 'a call in progress');
  await waitLive('monitor-talking', (v) => v >= 1, 'an operator talking');
  await pbx(abandonedCall, 'ended');
  await sleep(1100); // a talk time of a second or more
  await pbx(answeredCall, 'ended');
  await waitLive('monitor-abandoned', (v) => v >= Number(baseline.abandoned) + 1, 'today\'s abandoned');
  await waitLive('monitor-answered', (v) => v >= Number(baseline.answered) + 1, 'today\'s answered');
  assert.deepEqual(await contrastProblems(page), [], 'text contrast (WCAG AA)');
  assert.deepEqual(page.problems, []);
});

test('the reports view shows today\'s figures, the chart and the downloads', async () => {
  assert.ok(baseline, 'the first test ran');
  // The figures are made from events: wait until the report has both calls.
  let total;
  for (let i = 0; i < 50; i++) {
    total = (await kpiTotal(supervisorContext, { from: today, to: today, group: 'day' })).total;
    if (total.offered >= baseline.offered + 2 && total.abandoned >= baseline.abandoned + 1 && total.answered >= baseline.answered + 1) break;
    await sleep(200);
  }
  assert.equal(total.offered, baseline.offered + 2, 'offered: this test\'s two calls');
  assert.equal(total.answered, baseline.answered + 1, 'answered: one');
  assert.equal(total.abandoned, baseline.abandoned + 1, 'abandoned: one');

  await page.locator('#nav').getByRole('link', { name: 'レポート', exact: true }).click();
  await ready(page);
  // today only, by day, through the form
  await page.locator('#reports-form input[name="from"]').fill(today);
  await page.locator('#reports-form input[name="to"]').fill(today);
  await page.locator('#reports-form select[name="group"]').selectOption('day');
  await page.locator('#reports-form button[type="submit"]').click();
  await page.waitForFunction((d) => location.hash.includes(`from=${d}`) && location.hash.includes(`to=${d}`), today);
  await ready(page);
  await page.locator('#reports-table').waitFor();
  const cell = (row, name) => page.locator(`${row} td[data-field="${name}"]`).getAttribute('data-value').then(Number);
  assert.equal(await cell('#reports-total', 'offered'), total.offered);
  assert.equal(await cell('#reports-total', 'answered'), total.answered);
  assert.equal(await cell('#reports-total', 'abandoned'), total.abandoned);
  assert.equal(await cell(`#reports-table tbody tr[data-key="${today}"]`, 'offered'), total.offered);
  assert.match(await page.locator('#reports-total').innerText(), new RegExp(`合計\\s+${total.offered}\\s+${total.answered}\\s+${total.abandoned}`));
  // the definitions as tooltips
  assert.match(await page.locator('#reports-table thead th[data-field="service_level"]').getAttribute('title'), /設定の秒数以内に応答した電話 ÷ 電話の入電数/);

  // the chart: a canvas with something drawn on it
  await page.locator('#reports-chart canvas').first().waitFor();
  const drawn = await page.locator('#reports-chart canvas').first().evaluate((canvas) => {
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted += 1;
    return painted;
  });
  assert.ok(drawn > 500, `painted pixels: ${drawn}`);
  assert.equal(await page.locator('#reports-chart').getAttribute('data-points'), '1');

  // by operator: this test's operator answered exactly one call
  await page.locator('#reports-form select[name="group"]').selectOption('operator');
  await page.locator('#reports-form button[type="submit"]').click();
  await page.waitForFunction(() => location.hash.includes('group=operator'));
  await ready(page);
  const mine = `#reports-table tbody tr[data-key="${operator.id}"]`;
  await page.locator(mine).waitFor();
  assert.match(await page.locator(`${mine} th`).innerText(), new RegExp(operator.name));
  assert.equal(await cell(mine, 'offered'), 1);
  assert.equal(await cell(mine, 'answered'), 1);
  assert.equal(await cell(mine, 'abandoned'), 0);
  await screenshot(page, 'reports');

  // back to days; the CSV in UTF-8: header and the total
  await page.goto(`${BASE}/#/reports?from=${today}&to=${today}&group=day`);
  await ready(page);
  const csvDownload = page.waitForEvent('download');
  await page.locator('#reports-csv').click();
  const csv = readFileSync(await (await csvDownload).path(), 'utf8');
  assert.ok(csv.startsWith('\ufeff日付,名称,入電数,うち電話,応答数,放棄呼数,'), csv.slice(0, 80));
  const lines = csv.split('\r\n');
  const dayLine = lines.find((l) => l.startsWith(`${today},`));
  assert.ok(dayLine, csv);
  assert.deepEqual(dayLine.split(',').slice(2, 6).map(Number), [total.offered, total.calls_offered, total.answered, total.abandoned]);
  const totalLine = lines.find((l) => l.startsWith(',合計,'));
  assert.ok(totalLine, csv);
  assert.deepEqual(totalLine.split(',').slice(2, 6).map(Number), [total.offered, total.calls_offered, total.answered, total.abandoned]);

  // Shift_JIS for Excel
  const sjisDownload = page.waitForEvent('download');
  await page.locator('#reports-csv-sjis').click();
  const sjis = new TextDecoder('shift_jis').decode(readFileSync(await (await sjisDownload).path()));
  assert.ok(sjis.startsWith('日付,名称,入電数'), sjis.slice(0, 40));
  assert.ok(sjis.includes(`,合計,${total.offered},`));

  // XLSX: a ZIP
  const xlsxDownload = page.waitForEvent('download');
  await page.locator('#reports-xlsx').click();
  const xlsx = await xlsxDownload;
  assert.match(xlsx.suggestedFilename(), /^kpi_.*\.xlsx$/);
  const bytes = readFileSync(await xlsx.path());
  assert.equal(bytes.subarray(0, 2).toString('latin1'), 'PK');
  assert.ok(bytes.length > 2000, `xlsx of ${bytes.length} bytes`);
  assert.deepEqual(await contrastProblems(page), [], 'text contrast (WCAG AA)');
  assert.deepEqual(page.problems, []);
});

test('a bad period gets a plain Japanese error next to its field', async () => {
  // the client's own check: the end before the start
  await page.locator('#reports-form input[name="from"]').fill('2027-03-10');
  await page.locator('#reports-form input[name="to"]').fill('2027-03-01');
  await page.locator('#reports-form button[type="submit"]').click();
  const toError = page.locator('#reports-form [data-field="to"] .field-error');
  await toError.waitFor();
  assert.match(await toError.innerText(), /終了日は開始日と同じ日か、それより後の日付にしてください/);
  assert.equal(await page.locator('#reports-form input[name="to"]').getAttribute('aria-invalid'), 'true');

  // the server's 400 for an address typed by hand: reversed, then too long
  await page.goto(`${BASE}/#/reports?from=2027-03-10&to=2027-03-01`);
  await ready(page);
  await page.locator('#reports-error').waitFor();
  assert.match(await page.locator('#reports-error').innerText(), /終了日は開始日と同じ日か/);
  assert.equal(await page.locator('#reports-table').count(), 0);
  await page.goto(`${BASE}/#/reports?from=2020-01-01&to=${today}`);
  await ready(page);
  await page.locator('#reports-error').waitFor();
  assert.match(await page.locator('#reports-error').innerText(), /期間が長すぎます。一度に集計できるのは\d+日までです/);
  assert.match(await page.locator('#reports-form [data-field="to"] .field-error').innerText(), /期間が長すぎます/);
  await page.goto(`${BASE}/#/reports?from=${today}&to=${today}&group=weekday`);
  await ready(page);
  assert.match(await page.locator('#reports-error').innerText(), /集計単位が正しくありません/);
  assert.deepEqual(page.problems, []);
});

test('staff read the live figures (asked, not pushed) and the reports, without the anger alerts', async () => {
  const staff = { login: uniq('e2r-st'), password: newPassword() };
  await createUser(adminContext, { login: staff.login, name: '閲覧 六子', roles: ['staff'], password: staff.password });
  const { context, page: staffPage } = await newPage(browser);
  try {
    await signIn(staffPage, staff);
    await staffPage.locator('#nav').getByRole('link', { name: 'モニタリング', exact: true }).click();
    await ready(staffPage);
    await staffPage.waitForFunction(() => /^\d+$/.test(document.getElementById('monitor-offered')?.textContent.replace(/[,\s]/g, '') ?? ''));
    const offered = Number((await staffPage.locator('#monitor-offered').innerText()).replace(/[,\s]/g, ''));
    const now = (await kpiTotal(context, { from: today, to: today })).total;
    assert.equal(offered, now.offered, 'today\'s offered as the report counts it');
    assert.equal(await staffPage.locator('#monitor-alerts').count(), 0, 'no anger alerts for staff');
    await staffPage.locator('#nav').getByRole('link', { name: 'レポート', exact: true }).click();
    await ready(staffPage);
    await staffPage.locator('#reports-total').waitFor();
    assert.deepEqual(staffPage.problems, []);
  } finally {
    await context.close();
  }
});

test('a batch run of ncc-report is listed with its file', async (t) => {
  const bin = process.env.NCC_TEST_BIN_DIR;
  if (!bin || !process.env.NCC_DATABASE_URL) {
    t.skip('needs NCC_TEST_BIN_DIR and NCC_DATABASE_URL (scripts/test.sh sets them)');
    return;
  }
  const out = join(tmpdir(), `ncc-e2e-report-${run}.csv`);
  try {
    execFileSync(join(bin, 'ncc-report'), ['--batch', 'daily', '--period', today, '--out', out], { stdio: 'pipe' });
    await page.goto(`${BASE}/#/reports?from=${today}&to=${today}`);
    await ready(page);
    const row = page.locator('#reports-runs tbody tr').filter({ hasText: `ncc-e2e-report-${run}.csv` });
    await row.waitFor();
    assert.match(await row.innerText(), /日次[\s\S]*成功/);
    const download = page.waitForEvent('download');
    await row.getByRole('link').click();
    const text = readFileSync(await (await download).path(), 'utf8');
    assert.equal(text, readFileSync(out, 'utf8'));
    assert.ok(text.startsWith('\ufeff時間帯,名称,入電数'), text.slice(0, 40));
    assert.deepEqual(page.problems, []);
  } finally {
    rmSync(out, { force: true });
    await supervisorContext.close();
  }
});
