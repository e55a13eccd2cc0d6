// The push stream (docs/push.md): one EventSource per tab on GET /api/v1/stream, and a
// small event bus in front of it. Views subscribe with on('call.answered', fn) and get the
// event's JSON object; on('status', fn) tells 'off' | 'connecting' | 'open'.
//
// Reconnection: the browser reconnects by itself after a dropped connection (the server
// sends `retry: 3000`). When it gives up (the stream answered an error, e.g. 401 or 503),
// this module asks GET /api/v1/me first: a 401 there hands over to the app (back to the
// login screen, api.js onUnauthorized) and the stream stays off; anything else is tried
// again after 1, 2, 4 ... at most 30 seconds. `session.ended` (signed out, idle, expired)
// stops the stream until start() is called again (the next sign-in), unless the tab has a
// working session of the same user again.

import { api, ApiError } from './api.js';

const URL_STREAM = '/api/v1/stream';
const EVENTS = ['call.ringing', 'call.answered', 'call.transferred', 'call.ended',
  'transcript.segment', 'session.ended', 'push.dropped',
  'summary.updated', 'emotion.updated', 'faq.suggested', 'emotion.alert', // ncc-summary (docs/summary.md)
  'metrics.live']; // ncc-report (docs/kpi.md)
const MAX_DELAY_MS = 30000;

let source = null;
let wanted = false; // start() was called and neither stop() nor session.ended came since
let state = 'off';
let retryTimer = null;
let failures = 0;
let owner = null; // the user the stream was opened for
const listeners = new Map(); // event name -> Set of functions

function emit(name, data) {
  for (const fn of [...(listeners.get(name) ?? [])]) {
    try {
      fn(data);
    } catch (error) {
      console.error(error); // one broken listener does not silence the others
    }
  }
}

function setState(next) {
  if (state === next) return;
  state = next;
  emit('status', state);
}

// fn(data) for every push named `name` ('status' for the connection state). Returns the
// function that unsubscribes.
export function on(name, fn) {
  if (!listeners.has(name)) listeners.set(name, new Set());
  listeners.get(name).add(fn);
  return () => listeners.get(name)?.delete(fn);
}

export function status() {
  return state;
}

function close() {
  if (retryTimer) clearTimeout(retryTimer);
  retryTimer = null;
  if (source) {
    source.close();
    source = null;
  }
}

function parse(event) {
  try {
    const data = JSON.parse(event.data);
    return data && typeof data === 'object' ? data : {};
  } catch {
    return {};
  }
}

function connect() {
  close();
  if (!wanted) return;
  setState('connecting');
  const es = new EventSource(URL_STREAM, { withCredentials: true });
  source = es;
  es.addEventListener('open', () => {
    if (source !== es) return;
    failures = 0;
    setState('open');
  });
  es.addEventListener('error', () => {
    if (source !== es) return;
    if (es.readyState === EventSource.CONNECTING) {
      setState('connecting'); // the browser retries by itself
      return;
    }
    // CLOSED: the browser gave up (an error answer). Find out why before trying again.
    source = null;
    es.close();
    setState('connecting');
    recover();
  });
  for (const name of EVENTS) {
    es.addEventListener(name, (event) => {
      if (source !== es) return;
      const data = parse(event);
      if (name === 'session.ended') {
        close();
        setState('off');
        emit(name, data);
        // The stream's session is gone. Ask the server: a 401 hands over to the app (the
        // login screen) and the stream stays off; a session that works (the same user
        // signed in again meanwhile in this tab) gets a new stream.
        api('GET', '/api/v1/me').then((me) => {
          if (wanted && !source && !retryTimer && me?.user?.id === owner) connect();
        }, () => {
          wanted = false;
        });
        return;
      }
      emit(name, data);
    });
  }
}

async function recover() {
  try {
    await api('GET', '/api/v1/me');
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      wanted = false;
      setState('off');
      return;
    }
  }
  if (!wanted) return;
  failures += 1;
  const delay = Math.min(MAX_DELAY_MS, 1000 * 2 ** Math.min(failures - 1, 5));
  retryTimer = setTimeout(connect, delay);
}

// Opens the stream for the signed-in user `userId` unless it is open or opening for them
// already (idempotent). Another user (a sign-in after a sign-out in this tab) gets a new
// connection: the old one belongs to the old session.
export function start(userId) {
  wanted = true;
  if (owner !== userId) {
    owner = userId;
    connect();
    return;
  }
  if (source || retryTimer) return;
  connect();
}

// Closes the stream (sign-out).
export function stop() {
  wanted = false;
  owner = null;
  close();
  setState('off');
}
