// Small views: the operator desk placeholder, home, "not allowed" and "not found".

import { h, clear } from '../dom.js';
import { t } from '../i18n.js';

function page(ctx, headingKey, ...body) {
  clear(ctx.view, h('h2', { tabindex: '-1' }, t(headingKey)), ctx.flashSlot, ...body);
}

// 通話待ち: later issues fill this with the screen pop, transcript and FAQ suggestions.
export const desk = {
  async mount(ctx) {
    page(ctx, 'desk.heading',
      h('section', { class: 'card desk-waiting', 'aria-live': 'polite' },
        h('p', { class: 'big' }, t('desk.waiting'))));
  },
};

export const home = {
  async mount(ctx) {
    page(ctx, 'home.heading', h('p', null, t('home.welcome', { name: ctx.user.name || ctx.user.login })));
  },
};

export const forbidden = {
  async mount(ctx) {
    page(ctx, 'forbidden.heading', h('p', null, t('forbidden.text')));
  },
};

export const notFound = {
  async mount(ctx) {
    page(ctx, 'notfound.heading', h('p', null, t('notfound.text')));
  },
};
