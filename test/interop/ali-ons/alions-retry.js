// alions-retry.js: ali-ons@3.12.0's retry and timed delivery against our broker daemon rmqd
// (issue 7 item 5). rmqd runs on 127.0.0.1, a free port and a temp store (rmqd.js) with a
// shortened messageDelayLevel ("1s 1s 1s 2s 4s"), so retry n (level 3 + n) waits 1 s, 2 s.
//
// Scenarios, on one topic created first with UPDATE_AND_CREATE_TOPIC:
//   action-retry  the handler returns Consumer.ACTION_RETRY on the first delivery: ali-ons
//                 sends CONSUMER_SEND_MSG_BACK (36), the broker answers SUCCESS (no local
//                 fallback), and the message comes back through %RETRY%<group> with
//                 reconsumeTimes 1, its topic and id, no earlier than level 3's delay
//   throw-dlq     the handler throws on every delivery; with maxReconsumeTimes 2 ali-ons
//                 sees reconsumeTimes 0, 1, 2 at growing intervals, then the broker puts it
//                 in %DLQ%<group>; a consumer of that topic reads it (RETRY_TOPIC and
//                 ORIGIN_MESSAGE_ID kept) and re-sends it to its topic, as the console's
//                 admin would, and the group consumes it once more
//   start-deliver msg.setStartDeliverTime(now + 3 s) (__STARTDELIVERTIME) is delivered no
//                 earlier than asked and within a generous bound; a time in the past is
//                 delivered at once
// Timings are measured and printed; assertions use lower bounds and generous upper bounds.
// Exit 0 all passed, 1 a scenario failed, 2 usage.
//
// Usage: NODE_PATH=<prefix>/node_modules node alions-retry.js /path/to/rmqd
// Env: ALIONS_VERBOSE=1 prints ali-ons' own log; ALIONS_KEEP=1 keeps the temp dir.
'use strict';

const { Rmqd } = require('./rmqd');
const { sleep, log, elapsed, noteError, printErrors, clientOptions, waitFor, withTimeout } = require('./iop');

const RMQD = process.argv[2];
if (!RMQD) {
  console.error('usage: node alions-retry.js /path/to/rmqd');
  process.exit(2);
}
const { Producer, Consumer, Message } = require('ali-ons');
const RemotingClient = require('ali-ons/lib/remoting_client');

const TOPIC = 'IopRetryTopic';
const GROUP = 'GID_iop_retry';
const G_DLQ_READER = 'GID_iop_dlq_reader';
const DLQ_TOPIC = `%DLQ%${GROUP}`;
const MAX_RECONSUME = 2;
const LEVELS = '1s 1s 1s 2s 4s';
const RETRY_DELAY_MS = [ 1000, 2000 ]; // levels 3 and 4: retries 1 and 2
const START_DELAY_MS = 3000;
const LATE_BOUND_MS = 15000; // generous: 2 shared cores
const WATCHDOG_MS = 150000; // meson's timeout is 180 s

const results = [];
const pass = (s, text) => { results.push({ s, ok: true, text }); log(`PASS ${s}: ${text}`); };
const fail = (s, text) => { results.push({ s, ok: false, text }); log(`FAIL ${s}: ${text}`); };

// Responses by request code: the evidence that CONSUMER_SEND_MSG_BACK (36) succeeded rather
// than ali-ons falling back to a plain send to %RETRY%.
const responses = new Map(); // "req->resp" -> count
const invoke = RemotingClient.prototype.invoke;
RemotingClient.prototype.invoke = async function(addr, cmd, timeout) {
  let key = `${cmd.code}->error`;
  try {
    const res = await invoke.call(this, addr, cmd, timeout);
    key = `${cmd.code}->${res.code}`;
    return res;
  } finally {
    responses.set(key, (responses.get(key) || 0) + 1);
  }
};
const count = key => responses.get(key) || 0;

// A rmqd whose broker.conf also shortens the delay levels.
class RetryRmqd extends Rmqd {
  writeConf() {
    super.writeConf();
    require('fs').appendFileSync(this.confPath, `messageDelayLevel=${LEVELS}\n`);
  }
}

const clients = [];

async function newProducer(rmqd, name) {
  const p = new Producer(clientOptions(rmqd, name, { producerGroup: `PID_${name}` }));
  p.on('error', err => noteError(name, err.message));
  clients.push(p);
  await withTimeout(p.ready(), 15000, `producer ${name} ready`);
  return p;
}

// maxReconsumeTimes matters to ali-ons on both sides: it sends it with CONSUMER_SEND_MSG_BACK
// and drops, without calling the handler, a message whose reconsumeTimes exceeds it (a dead
// letter has MAX_RECONSUME + 1, so the DLQ reader keeps the default 16).
async function newConsumer(rmqd, name, group, topic, handler, maxReconsumeTimes) {
  const c = new Consumer(clientOptions(rmqd, name, {
    consumerGroup: group, consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET', maxReconsumeTimes,
  }));
  c.on('error', err => noteError(name, err.message));
  clients.push(c);
  c.subscribe(topic, '*', handler);
  await withTimeout(c.ready(), 15000, `consumer ${name} (${group}) ready`);
  return c;
}

async function createTopic(rmqd, admin) {
  const config = { topicName: TOPIC, readQueueNums: 2, writeQueueNums: 2, perm: 6,
    topicFilterType: 'SINGLE_TAG', topicSysFlag: 0, order: false };
  await admin._mqClient.createTopic(rmqd.addr, 'TBW102', config, 5000);
  const ok = await waitFor(async () => {
    try {
      return !!await admin._mqClient.getTopicRouteInfoFromNameServer(TOPIC, 3000);
    } catch (err) {
      return false;
    }
  }, 5000, 200);
  if (!ok) throw new Error(`no route for ${TOPIC} 5 s after UPDATE_AND_CREATE_TOPIC`);
}

// Every delivery the group's handler saw, by body: { rt, at, topic, msgId }.
const seen = new Map();
function record(msg) {
  const body = msg.body.toString();
  const list = seen.get(body) || [];
  // ali-ons' msgId is the offset id of the copy it pulled; a retry names the first one in
  // ORIGIN_MESSAGE_ID.
  list.push({ rt: msg.reconsumeTimes, at: Date.now(), topic: msg.topic, id: msg.originMessageId || msg.msgId });
  seen.set(body, list);
  return list.length;
}
const deliveries = body => seen.get(body) || [];
const intervals = list => list.slice(1).map((d, i) => d.at - list[i].at);

async function handler(msg) {
  const body = msg.body.toString();
  const n = record(msg);
  if (body === 'act-0' && n === 1) return Consumer.ACTION_RETRY;
  if (body === 'dead-0' && n <= MAX_RECONSUME + 1) throw new Error(`dead-0 fails on purpose (delivery ${n})`);
}

async function send(producer, body, startDeliverTime) {
  const msg = new Message(TOPIC, 'TagR', body);
  msg.keys = [ `key-${body}` ];
  if (startDeliverTime !== undefined) msg.setStartDeliverTime(startDeliverTime);
  const r = await producer.send(msg);
  if (r.sendStatus !== 'SEND_OK') throw new Error(`send ${body}: ${r.sendStatus}`);
  return r.msgId;
}

async function actionRetry(producer) {
  const id = await send(producer, 'act-0');
  await waitFor(() => deliveries('act-0').length >= 2, 30000);
  await sleep(500);
  const d = deliveries('act-0');
  const gap = intervals(d);
  log(`action-retry: deliveries ${JSON.stringify(d.map(x => x.rt))}, interval ${gap.join(', ')} ms (level 3 = ${RETRY_DELAY_MS[0]} ms)`);
  const problems = [];
  if (d.length !== 2) problems.push(`${d.length} deliveries, want 2 (the first and one retry)`);
  else {
    if (d[0].rt !== 0 || d[1].rt !== 1) problems.push(`reconsumeTimes ${d[0].rt}, ${d[1].rt}, want 0, 1`);
    if (d[1].topic !== TOPIC) problems.push(`the retry shows topic ${d[1].topic}`);
    if (d[1].id !== id) problems.push(`the retry has ORIGIN_MESSAGE_ID ${d[1].id}, the send's msgId is ${id}`);
    if (gap[0] < RETRY_DELAY_MS[0] - 20) problems.push(`the retry came ${gap[0]} ms later, before level 3's ${RETRY_DELAY_MS[0]} ms`);
  }
  if (!count('36->0')) problems.push('no CONSUMER_SEND_MSG_BACK (36) answered SUCCESS');
  if (problems.length) fail('action-retry', problems.join('; '));
  else pass('action-retry', `ACTION_RETRY -> 36 SUCCESS -> redelivered with reconsumeTimes 1 after ${gap[0]} ms`);
}

async function throwToDlq(rmqd, producer, admin) {
  const id = await send(producer, 'dead-0');
  const dlqMax = async () => {
    try {
      return await admin._mqClient.getMaxOffset(rmqd.addr, DLQ_TOPIC, 0, 3000);
    } catch (err) {
      return -1;
    }
  };
  const dead = await waitFor(async () => await dlqMax() === 1, 60000, 200);
  const d = deliveries('dead-0');
  const gap = intervals(d);
  log(`throw-dlq: deliveries ${JSON.stringify(d.map(x => x.rt))}, intervals ${gap.join(', ')} ms ` +
    `(levels 3, 4 = ${RETRY_DELAY_MS.join(', ')} ms)`);
  const problems = [];
  if (!dead) problems.push(`${DLQ_TOPIC} holds ${await dlqMax()} messages 60 s after the send, want 1`);
  if (d.length !== MAX_RECONSUME + 1 || d.some((x, i) => x.rt !== i)) {
    problems.push(`reconsumeTimes seen ${JSON.stringify(d.map(x => x.rt))}, want [0,1,2]`);
  } else {
    gap.forEach((g, i) => {
      if (g < RETRY_DELAY_MS[i] - 20) problems.push(`retry ${i + 1} came after ${g} ms, before its level's ${RETRY_DELAY_MS[i]} ms`);
    });
    if (gap[1] <= gap[0]) problems.push(`intervals do not grow: ${gap.join(', ')} ms`);
  }
  if (problems.length) {
    fail('throw-dlq', problems.join('; '));
    return;
  }
  pass('throw-dlq', `thrown 3 times: reconsumeTimes 0, 1, 2 at ${gap.join(', ')} ms, then ${DLQ_TOPIC}`);

  // An admin reads the dead letter (a consumer of the DLQ topic) and re-sends it.
  let letter = null;
  await newConsumer(rmqd, 'dlqreader', G_DLQ_READER, DLQ_TOPIC, async msg => { letter = letter || msg; }, 16);
  await waitFor(() => letter !== null, 30000);
  if (!letter) {
    fail('dlq-resend', `a consumer of ${DLQ_TOPIC} got nothing within 30 s`);
    return;
  }
  const got = { body: letter.body.toString(), retryTopic: letter.retryTopic, origin: letter.originMessageId,
    msgId: letter.msgId, rt: letter.reconsumeTimes };
  log(`dead letter: ${JSON.stringify(got)}`);
  if (got.body !== 'dead-0' || got.retryTopic !== TOPIC || got.origin !== id || got.rt !== MAX_RECONSUME + 1) {
    fail('dlq-resend', `the dead letter is ${JSON.stringify(got)}; want body dead-0, RETRY_TOPIC ${TOPIC}, ` +
      `ORIGIN_MESSAGE_ID ${id} (the send's msgId), reconsumeTimes ${MAX_RECONSUME + 1}`);
    return;
  }
  const copy = new Message(letter.retryTopic, letter.tags, letter.body);
  copy.keys = [ 'key-dead-0' ];
  await producer.send(copy);
  const back = await waitFor(() => deliveries('dead-0').length === MAX_RECONSUME + 2, 30000);
  await sleep(1500);
  const after = deliveries('dead-0');
  if (!back || after.length !== MAX_RECONSUME + 2 || after[after.length - 1].rt !== 0) {
    fail('dlq-resend', `after the re-send the group saw dead-0 ${after.length} times in all ` +
      `(reconsumeTimes ${JSON.stringify(after.map(x => x.rt))}), want once more with 0`);
  } else {
    pass('dlq-resend', `read from ${DLQ_TOPIC} (RETRY_TOPIC ${got.retryTopic}, ORIGIN_MESSAGE_ID ${got.origin}), ` +
      're-sent to its topic and consumed once more');
  }
}

async function startDeliver(producer) {
  const at = Date.now() + START_DELAY_MS;
  await send(producer, 'sdt-future', at);
  const sentPast = Date.now();
  await send(producer, 'sdt-past', sentPast - 1000);
  await waitFor(() => deliveries('sdt-future').length > 0 && deliveries('sdt-past').length > 0,
    START_DELAY_MS + LATE_BOUND_MS);
  await sleep(500);
  const f = deliveries('sdt-future');
  const p = deliveries('sdt-past');
  const late = f.length ? f[0].at - at : null;
  const pastAfter = p.length ? p[0].at - sentPast : null;
  log(`start-deliver: sdt-future delivered ${late} ms after its start time; sdt-past ${pastAfter} ms after its send`);
  const problems = [];
  if (f.length !== 1) problems.push(`sdt-future delivered ${f.length} times`);
  else if (late < -20) problems.push(`sdt-future delivered ${-late} ms before its start time`);
  else if (late > LATE_BOUND_MS) problems.push(`sdt-future delivered ${late} ms late`);
  if (p.length !== 1) problems.push(`sdt-past delivered ${p.length} times`);
  else if (pastAfter > LATE_BOUND_MS) problems.push(`sdt-past (start time in the past) took ${pastAfter} ms`);
  if (problems.length) fail('start-deliver', problems.join('; '));
  else pass('start-deliver', `__STARTDELIVERTIME now+${START_DELAY_MS} ms delivered ${late} ms after it; a past time at once (${pastAfter} ms)`);
}

async function main() {
  const rmqd = new RetryRmqd(RMQD);
  const watchdog = setTimeout(() => { fail('watchdog', `not done within ${WATCHDOG_MS / 1000} s`); finish(rmqd); }, WATCHDOG_MS);
  try {
    const ms = await rmqd.start(10000);
    log(`rmqd listening on ${rmqd.addr} after ${ms} ms (messageDelayLevel=${LEVELS})`);
    const admin = await newProducer(rmqd, 'radmin');
    await createTopic(rmqd, admin);
    await newConsumer(rmqd, 'r1', GROUP, TOPIC, handler, MAX_RECONSUME);
    const producer = await newProducer(rmqd, 'rp1');
    await Promise.all([ actionRetry(producer), throwToDlq(rmqd, producer, admin), startDeliver(producer) ]);
  } catch (err) {
    fail('error', (err && err.stack) || String(err));
  }
  clearTimeout(watchdog);
  await finish(rmqd);
}

let finishing = false;
async function finish(rmqd) {
  if (finishing) return;
  finishing = true;
  for (const c of clients.reverse()) {
    try {
      await withTimeout(c.close(), 5000, 'close');
    } catch (err) {
      noteError('close', err.message);
    }
  }
  try {
    const stopped = await rmqd.stop(10000);
    if (stopped && stopped.code !== 0) fail('shutdown', `rmqd exited with ${rmqd.describeExit()} on SIGTERM`);
  } catch (err) {
    fail('shutdown', err.message.split('\n')[0]);
  }
  const failed = results.filter(r => !r.ok);
  if (failed.length && rmqd.logPath) console.log(rmqd.logTail(60));
  printErrors('; the thrown handler errors are expected');
  console.log('requests (code -> response: count): ' +
    [ ...responses.entries() ].sort((a, b) => parseInt(a[0], 10) - parseInt(b[0], 10)).map(([ k, c ]) => `${k}: ${c}`).join(', '));
  console.log('---- summary ----');
  for (const r of results) console.log(`${r.ok ? 'PASS' : 'FAIL'} ${r.s}: ${r.text.split('\n')[0]}`);
  console.log(`${failed.length ? 'FAILED' : 'OK'}: ${results.length - failed.length} passed, ${failed.length} failed, ` +
    `${elapsed()} s`);
  const keep = process.env.ALIONS_KEEP === '1';
  if (keep) console.log(`kept ${rmqd.dir}`);
  rmqd.cleanup(keep);
  process.exit(failed.length || !results.length ? 1 : 0);
}

process.on('unhandledRejection', err => noteError('unhandled', (err && err.message) || err));
main();
