// Building the page with DOM APIs only. Nothing here parses HTML: text (including
// anything the server sent) always becomes a Text node or an attribute value, so
// "<script>" in a user's name shows as those characters and never runs.

const FORBIDDEN_PROPS = new Set(['innerHTML', 'outerHTML', 'srcdoc']);

// h('button', {type: 'button', class: 'primary', onclick: fn}, 'text', childNode, [more])
//   props: class, dataset {..}, on<event> listeners, aria-* / other attributes
//   (setAttribute), and element properties (type, value, checked, htmlFor, hidden, ...).
//   children: strings and numbers become text; null/undefined/false are skipped.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (FORBIDDEN_PROPS.has(key)) throw new Error(`h(): ${key} is not allowed`);
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') {
        el.className = value;
      } else if (key === 'dataset') {
        Object.assign(el.dataset, value);
      } else if (key.startsWith('on') && typeof value === 'function') {
        el.addEventListener(key.slice(2), value);
      } else if (key.includes('-') || !(key in el)) {
        el.setAttribute(key, value === true ? '' : String(value));
      } else {
        el[key] = value;
      }
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Replaces everything inside el.
export function clear(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let idCounter = 0;
export function uid(prefix = 'id') {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

// A message box: kind 'error' (role=alert), 'ok' or 'info' (role=status).
export function notice(kind, ...children) {
  return h('div', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    ...children);
}

// A modal confirmation (<dialog>: focus stays inside, Escape cancels). Resolves true/false.
export function confirmDialog({ title, text, ok, cancel, danger = false }) {
  return new Promise((resolve) => {
    const titleId = uid('dialog-title');
    const textId = uid('dialog-text');
    const dialog = h('dialog', { class: 'confirm', 'aria-labelledby': titleId, 'aria-describedby': textId },
      h('h2', { id: titleId }, title),
      h('p', { id: textId }, text),
      h('form', { method: 'dialog', class: 'actions' },
        h('button', { type: 'submit', value: 'cancel', class: 'secondary' }, cancel),
        h('button', { type: 'submit', value: 'ok', class: danger ? 'danger' : 'primary' }, ok)));
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'ok');
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
    dialog.querySelector('button[value="cancel"]').focus();
  });
}

// Page links under a table: "全 N 件中 a〜b 件目" and previous / next links (links, so
// the back button and a new tab work). href(page) gives each page's address.
export function pager({ page, perPage, total, href, label, t }) {
  const last = Math.max(1, Math.ceil(total / perPage));
  const start = total === 0 ? 0 : (page - 1) * perPage + 1;
  const end = Math.min(total, page * perPage);
  const info = total === 0 ? t('common.page_empty') : t('common.page_info', { total, start, end });
  const link = (target, key, rel) => (target >= 1 && target <= last && target !== page
    ? h('a', { href: href(target), rel, class: 'button secondary' }, t(key))
    : h('span', { class: 'button secondary disabled', 'aria-disabled': 'true' }, t(key)));
  return h('nav', { class: 'pager', 'aria-label': label },
    link(page - 1, 'common.prev', 'prev'),
    h('span', { class: 'page-info', 'aria-live': 'polite' }, info),
    link(page + 1, 'common.next', 'next'));
}
