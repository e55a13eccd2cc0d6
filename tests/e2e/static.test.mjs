// Static checks of gateway/web (no browser, no server): nothing parses HTML from strings,
// no inline script or style (the CSP forbids them), and one complete message table per
// language.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HERE } from './lib.mjs';

const WEB = join(HERE, '..', '..', 'gateway', 'web');

function files(dir, ext) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...files(path, ext));
    else if (name.endsWith(ext)) out.push(path);
  }
  return out;
}

const scripts = files(join(WEB, 'js'), '.js');
const pages = files(WEB, '.html');

test('the client has scripts and pages to check', () => {
  assert.ok(scripts.length >= 5, `scripts: ${scripts.length}`);
  assert.ok(pages.length >= 1, `pages: ${pages.length}`);
});

test('no script builds HTML from strings or evaluates code', () => {
  const forbidden = [
    /\.innerHTML\s*=/, /\.outerHTML\s*=/, /insertAdjacentHTML/, /document\.write/, /\beval\s*\(/,
    /new\s+Function\s*\(/, /createContextualFragment/, /DOMParser/, /setTimeout\s*\(\s*['"`]/,
    /setInterval\s*\(\s*['"`]/, /\.setHTML(Unsafe)?\s*\(/, /\.srcdoc\s*=/,
  ];
  for (const path of scripts) {
    const text = readFileSync(path, 'utf8');
    for (const pattern of forbidden) {
      assert.doesNotMatch(text, pattern, `${relative(WEB, path)} uses ${pattern}`);
    }
  }
});

test('pages have no inline script, style or event handler', () => {
  for (const path of pages) {
    const text = readFileSync(path, 'utf8');
    const name = relative(WEB, path);
    for (const tag of text.match(/<script\b[^>]*>/gi) ?? []) {
      assert.match(tag, /\ssrc=/, `${name}: inline script ${tag}`);
    }
    assert.doesNotMatch(text, /<script\b[^>]*>\s*[^<\s]/i, `${name}: script with a body`);
    assert.doesNotMatch(text, /<style\b/i, `${name}: <style>`);
    assert.doesNotMatch(text, /\sstyle\s*=/i, `${name}: style attribute`);
    assert.doesNotMatch(text, /\son[a-z]+\s*=/i, `${name}: event handler attribute`);
    assert.doesNotMatch(text, /javascript:/i, `${name}: javascript: URL`);
  }
});

test('the Japanese and English tables hold the same keys, and every key used exists', async () => {
  const { MESSAGES } = await import(pathToFileURL(join(WEB, 'js', 'i18n.js')).href);
  const ja = Object.keys(MESSAGES.ja).sort();
  const en = Object.keys(MESSAGES.en).sort();
  assert.deepEqual(en.filter((k) => !ja.includes(k)), [], 'keys only in English');
  assert.deepEqual(ja.filter((k) => !en.includes(k)), [], 'keys only in Japanese');
  for (const [lang, table] of Object.entries(MESSAGES)) {
    for (const [key, text] of Object.entries(table)) {
      assert.equal(typeof text, 'string', `${lang} ${key}`);
      assert.ok(text.length > 0, `${lang} ${key} is empty`);
      const ownVars = (text.match(/\{\w+\}/g) ?? []).sort().join();
      const jaVars = (MESSAGES.ja[key].match(/\{\w+\}/g) ?? []).sort().join();
      assert.equal(ownVars, jaVars, `${lang} ${key}: placeholders differ from Japanese`);
    }
  }
  const used = new Set();
  for (const path of scripts) {
    const text = readFileSync(path, 'utf8').replace(/^\s*\/\/.*$/gm, '');
    for (const m of text.matchAll(/\bt\(\s*'([a-z_.]+)'/g)) used.add(m[1]);
    for (const m of text.matchAll(/\bkey:\s*'([a-z_.]+)'/g)) used.add(m[1]);
    for (const m of text.matchAll(/titleKey:\s*'([a-z_.]+)'/g)) used.add(m[1]);
  }
  for (const path of pages) {
    const text = readFileSync(path, 'utf8');
    for (const m of text.matchAll(/data-i18n(?:-label)?="([a-z_.]+)"/g)) used.add(m[1]);
  }
  assert.ok(used.size > 50, `found ${used.size} keys in use`);
  const missing = [...used].filter((key) => !Object.hasOwn(MESSAGES.ja, key));
  assert.deepEqual(missing, [], 'keys used but not in the table');
});

test('the page keeps the status view and loads only same-origin modules', () => {
  const index = readFileSync(join(WEB, 'index.html'), 'utf8');
  assert.match(index, /中野区コンタクトセンター/);
  assert.match(index, /js\/health\.js/);
  assert.match(index, /<html lang="ja">/);
  for (const m of index.matchAll(/(?:src|href)="([^"]+)"/g)) {
    assert.ok(m[1].startsWith('/') || m[1].startsWith('#'), `not same-origin: ${m[1]}`);
  }
  assert.match(readFileSync(join(WEB, 'js', 'health.js'), 'utf8'), /\/api\/v1\/health/);
});
