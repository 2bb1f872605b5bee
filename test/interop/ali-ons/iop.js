// iop.js: what the ali-ons scenario scripts share — a clock for log lines, ali-ons' error
// reports collected as evidence, client options pointing ali-ons at rmqd, bounded waits.
'use strict';

const util = require('util');
const { HOST } = require('./rmqd');

const T0 = Date.now();
const VERBOSE = process.env.ALIONS_VERBOSE === '1';
const sleep = ms => new Promise(r => setTimeout(r, ms));
const stamp = () => `[${((Date.now() - T0) / 1000).toFixed(1).padStart(5)}s]`;
const log = (...a) => console.log(stamp(), ...a);
const elapsed = () => ((Date.now() - T0) / 1000).toFixed(1);

// ali-ons reports trouble through 'error' events and logger.error; both are collected
// (deduplicated, counted) and printed at the end as evidence.
const clientErrors = new Map();
function noteError(who, text) {
  const key = `${who}: ${String(text).replace(/\s+/g, ' ').slice(0, 240)}`;
  clientErrors.set(key, (clientErrors.get(key) || 0) + 1);
  if (VERBOSE) console.error(stamp(), '[ali-ons error]', key);
}
function makeLogger(who) {
  const fmt = args => (args[0] instanceof Error ? args[0].message : util.format(...args));
  const verbose = level => (...args) => { if (VERBOSE) console.error(stamp(), `[${who} ${level}]`, fmt(args)); };
  return {
    debug: verbose('debug'), info: verbose('info'), warn: verbose('warn'),
    error: (...args) => noteError(who, fmt(args)),
  };
}
function printErrors(note = '') {
  if (!clientErrors.size) return;
  console.log(`ali-ons reported ${clientErrors.size} distinct errors (count × message${note}):`);
  for (const [ m, c ] of clientErrors) console.log(`  ${c} × ${m}`);
}

const httpclient = { request() { throw new Error('no HTTP: nameSrv is set'); } }; // required, unused

// ali-ons options for a client of rmqd; extra is merged last.
function clientOptions(rmqd, instanceName, extra) {
  return Object.assign({
    nameSrv: rmqd.addr, // skips the HTTP name-server lookup
    httpclient,
    clientIP: HOST, // clientId = 127.0.0.1@<instanceName>
    instanceName, // distinct per client: ali-ons shares one MQClient per clientId
    logger: makeLogger(instanceName),
    rebalanceInterval: 1000, // ali-ons ignores NOTIFY_CONSUMER_IDS_CHANGED; poll instead
    persistConsumerOffsetInterval: 1000,
    heartbeatBrokerInterval: 10000,
    pollNameServerInteval: 10000,
  }, extra || {});
}

// Waits until cond() is true or ms pass; returns whether it became true.
async function waitFor(cond, ms, step = 100) {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= end) return false;
    await sleep(step);
  }
}

async function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms); });
  try {
    return await Promise.race([ promise, t ]);
  } finally {
    clearTimeout(timer);
  }
}

module.exports = {
  VERBOSE, sleep, stamp, log, elapsed, noteError, makeLogger, printErrors, clientOptions, waitFor,
  withTimeout,
};
