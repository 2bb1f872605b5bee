// alions-rmqd.js: drives the Node.js RocketMQ client ali-ons@3.12.0 against our broker
// daemon rmqd (issue 4 item 7). rmqd runs on 127.0.0.1, a free port and a temp store
// (rmqd.js); it is also the name server (ali-ons' nameSrv points at it).
//
// Scenarios, all on one topic created first with UPDATE_AND_CREATE_TOPIC:
//   send       a Producer sends 1,000 messages with tags (TagA/TagB/TagC) and keys
//   cluster    two Consumers in one group (clustering) together receive every message;
//              duplicates are counted and printed (allowed), a lost message fails
//   tag        a Consumer subscribed to TagB receives every TagB message and nothing else,
//              and the broker's pull responses carry no other tag (broker-side filter)
//   broadcast  two broadcasting Consumers in one group each receive all 1,000
//   restart    after the cluster group committed its offsets, rmqd is stopped (SIGTERM)
//              and started again on the same store and port; the committed offsets are
//              unchanged, and a new Consumer in the group receives the 20 messages sent
//              after the restart and none of the 1,000 acknowledged ones
// Every wait is bounded and a failure says what was missing. Exit 0 all passed, 1 a
// scenario failed, 2 usage.
//
// Usage: NODE_PATH=<prefix>/node_modules node alions-rmqd.js /path/to/rmqd
// Env: ALIONS_VERBOSE=1 prints ali-ons' own log, ALIONS_TRACE=1 every request and its
// response; ALIONS_KEEP=1 keeps the temp dir.
'use strict';

const { Rmqd } = require('./rmqd');
const { stamp, sleep, log, elapsed, noteError, printErrors, clientOptions, waitFor, withTimeout } = require('./iop');

const RMQD = process.argv[2];
if (!RMQD) {
  console.error('usage: node alions-rmqd.js /path/to/rmqd');
  process.exit(2);
}
const { Producer, Consumer, Message } = require('ali-ons');
const RemotingClient = require('ali-ons/lib/remoting_client');

const TOPIC = 'IopTopic';
const N = 1000;
const TAGS = [ 'TagA', 'TagB', 'TagC' ];
const ONLY_TAG = 'TagB';
const N_AFTER = 20;
const G_CLUSTER = 'GID_iop_cluster';
const G_TAG = 'GID_iop_tag';
const G_BCAST = 'GID_iop_bcast';
const WATCHDOG_MS = 150000; // meson's timeout is 180 s

// ---- results ----

const results = []; // { scenario, ok, text }
function pass(scenario, text) {
  results.push({ scenario, ok: true, text });
  log(`PASS ${scenario}: ${text}`);
}
function fail(scenario, text) {
  results.push({ scenario, ok: false, text });
  log(`FAIL ${scenario}: ${text}`);
}
class Abort extends Error {} // a step the later scenarios depend on failed

// Every request ali-ons makes is tallied as `request code -> response code` (with the
// first remark of each failing pair) and printed at the end: the evidence of which
// request the broker mishandles. ALIONS_TRACE=1 also prints each exchange.
const TRACE = process.env.ALIONS_TRACE === '1';
const exchanges = new Map(); // "req->resp" -> { count, remark }
function tally(cmd, res, err) {
  const key = `${cmd.code}->${err ? 'error' : res.code}`;
  const e = exchanges.get(key) || { count: 0, remark: null };
  e.count++;
  if (!e.remark && (err || res.code !== 0)) {
    e.remark = err ? err.message : `${res.remark || ''} ext=${JSON.stringify(cmd.extFields || {})}`;
    e.remark = e.remark.replace(/\s+/g, ' ').slice(0, 200);
  }
  exchanges.set(key, e);
  if (TRACE) {
    console.error(stamp(), `[trace] ${cmd.code} ${JSON.stringify(cmd.extFields || {})} -> ` +
      (err ? `error ${err.message}` : `${res.code} ${res.remark || ''} ${JSON.stringify(res.extFields || {})} body=${res.body ? res.body.length : 0}`));
  }
}
const invoke = RemotingClient.prototype.invoke;
RemotingClient.prototype.invoke = async function(addr, cmd, timeout) {
  let res;
  try {
    res = await invoke.call(this, addr, cmd, timeout);
  } catch (err) {
    tally(cmd, null, err);
    throw err;
  }
  tally(cmd, res, null);
  return res;
};
const invokeOneway = RemotingClient.prototype.invokeOneway;
RemotingClient.prototype.invokeOneway = async function(addr, cmd) {
  const key = `${cmd.code}->oneway`;
  exchanges.set(key, { count: ((exchanges.get(key) || {}).count || 0) + 1, remark: null });
  if (TRACE) console.error(stamp(), `[trace] ${cmd.code} ${JSON.stringify(cmd.extFields || {})} (oneway)`);
  return invokeOneway.call(this, addr, cmd);
};

// ---- expected messages ----

const expected = new Map(); // body -> { tags, key }
const bodyOf = i => `iop-${i}`;
const afterBodyOf = j => `iop-after-${j}`;
for (let i = 0; i < N; i++) expected.set(bodyOf(i), { tags: TAGS[i % 3], key: `key-${i}` });
for (let j = 0; j < N_AFTER; j++) expected.set(afterBodyOf(j), { tags: 'TagA', key: `key-after-${j}` });
const phase1Bodies = [ ...Array(N).keys() ].map(bodyOf);
const afterBodies = [ ...Array(N_AFTER).keys() ].map(afterBodyOf);

// What one consumer (or a group of them) received, by message body.
class Tracker {
  constructor(name) {
    this.name = name;
    this.counts = new Map(); // body -> deliveries
    this.bad = []; // descriptions of messages that were not what was sent
    this.last = 0;
  }

  handler() {
    return async msg => { this.on(msg); };
  }

  on(msg) {
    this.last = Date.now();
    const body = msg.body ? msg.body.toString('utf8') : '';
    const exp = expected.get(body);
    if (!exp) {
      this.bad.push(`unexpected body ${JSON.stringify(body.slice(0, 40))} (msgId ${msg.msgId})`);
      return;
    }
    this.counts.set(body, (this.counts.get(body) || 0) + 1);
    const keys = String(msg.keys || '').split(' ');
    if (msg.tags !== exp.tags || !keys.includes(exp.key) || msg.topic !== TOPIC) {
      this.bad.push(`${body} arrived with topic=${msg.topic} tags=${msg.tags} keys=${msg.keys}, ` +
        `sent with topic=${TOPIC} tags=${exp.tags} keys=${exp.key}`);
    }
  }

  missing(bodies) { return bodies.filter(b => !this.counts.has(b)); }
  has(bodies) { return bodies.filter(b => this.counts.has(b)).length; }
  duplicates() {
    let d = 0;
    for (const c of this.counts.values()) d += c - 1;
    return d;
  }
}

function merge(name, trackers) {
  const t = new Tracker(name);
  for (const x of trackers) {
    for (const [ b, c ] of x.counts) t.counts.set(b, (t.counts.get(b) || 0) + c);
    t.bad.push(...x.bad);
  }
  return t;
}

const sample = (list, n = 8) => list.slice(0, n).join(', ') + (list.length > n ? `, … (${list.length} in all)` : '');

// ---- ali-ons clients ----

const clients = []; // everything to close at the end

async function newProducer(rmqd, instanceName) {
  const p = new Producer(Object.assign(clientOptions(rmqd, instanceName), { producerGroup: `PID_${instanceName}` }));
  p.on('error', err => noteError(instanceName, err.message));
  clients.push(p);
  await withTimeout(p.ready(), 15000, `producer ${instanceName} ready`);
  return p;
}

// A push consumer; its pullKernelImpl is wrapped so the test also sees what the broker
// returned for each pull, before ali-ons' own client-side tag filter.
async function newConsumer(rmqd, instanceName, group, subExpression, tracker, extra) {
  const c = new Consumer(Object.assign(clientOptions(rmqd, instanceName), {
    consumerGroup: group,
    consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET', // a new group reads from the start
  }, extra || {}));
  c.on('error', err => noteError(instanceName, err.message));
  c.pulled = [];
  const pull = c.pullKernelImpl.bind(c);
  c.pullKernelImpl = async (...args) => {
    const r = await pull(...args);
    for (const m of r.msgFoundList || []) if (m.topic === TOPIC) c.pulled.push(m);
    return r;
  };
  clients.push(c);
  c.subscribe(TOPIC, subExpression, tracker.handler());
  await withTimeout(c.ready(), 15000, `consumer ${instanceName} (${group}) ready`);
  return c;
}

const queuesOf = c => [ ...c._processQueueTable.values() ]
  .filter(v => v.messageQueue.topic === TOPIC)
  .map(v => v.messageQueue.queueId)
  .sort();

async function closeQuietly(c, what) {
  try {
    await withTimeout(c.close(), 5000, `close ${what}`);
  } catch (err) {
    noteError(what, `close: ${err.message}`);
  }
}

// ---- scenarios ----

async function createTopic(rmqd, admin) {
  const config = {
    topicName: TOPIC, readQueueNums: 4, writeQueueNums: 4, perm: 6,
    topicFilterType: 'SINGLE_TAG', topicSysFlag: 0, order: false,
  };
  try {
    await admin._mqClient.createTopic(rmqd.addr, 'TBW102', config, 5000);
  } catch (err) {
    throw new Abort(`UPDATE_AND_CREATE_TOPIC (17) for ${TOPIC} on ${rmqd.addr} failed: ${err.message}`);
  }
  // rmqd is its own name server: the route must appear right after creation.
  let route = null;
  let lastErr = null;
  const ok = await waitFor(async () => {
    try {
      route = await admin._mqClient.getTopicRouteInfoFromNameServer(TOPIC, 3000);
      return !!route;
    } catch (err) {
      lastErr = err;
      return false;
    }
  }, 5000, 200);
  if (!ok) {
    throw new Abort(`topic ${TOPIC} created, but GET_ROUTEINFO_BY_TOPIC (105) still fails after 5 s: ` +
      `${lastErr && lastErr.message}`);
  }
  const qd = route.queueDatas || [];
  const bd = route.brokerDatas || [];
  const addrs = bd.map(b => JSON.stringify(b.brokerAddrs)).join(' ');
  if (qd.length !== 1 || qd[0].writeQueueNums !== 4 || qd[0].readQueueNums !== 4 || (qd[0].perm & 6) !== 6 ||
      bd.length !== 1 || bd[0].brokerAddrs[0] !== rmqd.addr) {
    throw new Abort(`route of ${TOPIC} is not 1 broker at ${rmqd.addr} with 4+4 queues, perm 6: ` +
      `queueDatas=${JSON.stringify(qd)} brokerAddrs=${addrs}`);
  }
  pass('create', `UPDATE_AND_CREATE_TOPIC ${TOPIC} (4 queues), route ${bd[0].brokerName} @ ${bd[0].brokerAddrs[0]}`);
}

// Sends the given bodies, 16 in flight; returns per-queue counts.
async function send(producer, bodies, scenario) {
  const perQueue = [ 0, 0, 0, 0 ];
  const problems = [];
  const t = Date.now();
  for (let i = 0; i < bodies.length; i += 16) {
    await Promise.all(bodies.slice(i, i + 16).map(async body => {
      const exp = expected.get(body);
      const msg = new Message(TOPIC, exp.tags, body);
      msg.keys = [ exp.key ];
      try {
        const r = await producer.send(msg);
        if (r.sendStatus !== 'SEND_OK') problems.push(`${body}: ${r.sendStatus}`);
        else if (!/^[0-9A-F]{32}$|^[0-9A-F]{56}$/.test(r.msgId || '')) problems.push(`${body}: msgId ${r.msgId}`);
        perQueue[r.messageQueue.queueId]++;
      } catch (err) {
        problems.push(`${body}: ${err.message}`);
      }
    }));
  }
  const ms = Date.now() - t;
  if (problems.length) {
    fail(scenario, `${problems.length} of ${bodies.length} sends failed: ${sample(problems, 4)}`);
    throw new Abort(`${scenario}: the broker did not accept every message`);
  }
  pass(scenario, `${bodies.length} messages SEND_OK in ${ms} ms (queues 0..3: ${perQueue.join('/')})`);
  return perQueue;
}

// Committed offsets of a group per queue (QUERY_CONSUMER_OFFSET) and max offsets (GET_MAX_OFFSET).
async function offsets(admin, rmqd, group) {
  const out = [];
  for (let q = 0; q < 4; q++) {
    let committed;
    let max;
    try {
      committed = await admin._mqClient.queryConsumerOffset(rmqd.addr, { consumerGroup: group, topic: TOPIC, queueId: q }, 3000);
    } catch (err) {
      committed = `error(${err.message.replace(/\s+/g, ' ').slice(0, 120)})`;
    }
    try {
      max = await admin._mqClient.getMaxOffset(rmqd.addr, TOPIC, q, 3000);
    } catch (err) {
      max = `error(${err.message.replace(/\s+/g, ' ').slice(0, 120)})`;
    }
    out.push({ q, committed, max });
  }
  return out;
}
const fmtOffsets = o => o.map(x => `q${x.q} ${x.committed}/${x.max}`).join(', ');

async function phase1(rmqd) {
  const admin = await newProducer(rmqd, 'admin');
  await createTopic(rmqd, admin);

  // Consumers first (reading from the first offset), so the sends also exercise long
  // polling; the clustering group is given time to split the 4 queues.
  const cl = [ new Tracker('c1'), new Tracker('c2') ];
  const tag = new Tracker('t1');
  const bc = [ new Tracker('b1'), new Tracker('b2') ];
  const c1 = await newConsumer(rmqd, 'c1', G_CLUSTER, '*', cl[0]);
  const c2 = await newConsumer(rmqd, 'c2', G_CLUSTER, '*', cl[1]);
  const t1 = await newConsumer(rmqd, 't1', G_TAG, ONLY_TAG, tag);
  const b1 = await newConsumer(rmqd, 'b1', G_BCAST, '*', bc[0], { isBroadcast: true });
  const b2 = await newConsumer(rmqd, 'b2', G_BCAST, '*', bc[1], { isBroadcast: true });
  log('consumers ready: c1 c2 (clustering), t1 (tag), b1 b2 (broadcasting)');

  const split = () => {
    const a = queuesOf(c1);
    const b = queuesOf(c2);
    return a.length + b.length === 4 && new Set([ ...a, ...b ]).size === 4;
  };
  const allQueues = c => queuesOf(c).length === 4;
  const settled = await waitFor(() => split() && allQueues(t1) && allQueues(b1) && allQueues(b2), 15000);
  log(`queue assignment ${settled ? 'settled' : 'NOT settled after 15 s'}: c1=[${queuesOf(c1)}] c2=[${queuesOf(c2)}] ` +
    `t1=[${queuesOf(t1)}] b1=[${queuesOf(b1)}] b2=[${queuesOf(b2)}]`);
  if (!split()) {
    log('note: c1 and c2 do not split the queues; GET_CONSUMER_LIST_BY_GROUP (38) should list both clients');
  }

  const producer = await newProducer(rmqd, 'p1');
  await send(producer, phase1Bodies, 'send');
  const sentAt = Date.now();

  const tagBodies = phase1Bodies.filter(b => expected.get(b).tags === ONLY_TAG);
  const done = () => merge('cluster', cl).missing(phase1Bodies).length === 0 &&
    tag.missing(tagBodies).length === 0 &&
    bc.every(t => t.missing(phase1Bodies).length === 0);
  const all = await waitFor(done, 45000, 200);
  await sleep(1000); // late duplicates or wrong tags
  log(`consumption ${all ? 'complete' : 'INCOMPLETE'} ${Date.now() - sentAt} ms after the last send`);
  if (all && Date.now() - sentAt > 12000) {
    log('note: consumption took more than 12 s: are parked pulls (suspend flag) woken when messages arrive?');
  }

  // cluster
  {
    const u = merge('cluster', cl);
    const miss = u.missing(phase1Bodies);
    const counts = cl.map(t => `${t.name} ${[ ...t.counts.values() ].reduce((a, b) => a + b, 0)}`).join(', ');
    const dup = u.duplicates();
    log(`cluster: duplicates=${dup} (${counts} deliveries)`);
    if (miss.length) fail('cluster', `${miss.length} of ${N} messages never reached c1 or c2 within 45 s: ${sample(miss)}`);
    else if (u.bad.length) fail('cluster', `messages changed in transit: ${sample(u.bad, 4)}`);
    else if (!cl.every(t => t.counts.size > 0)) fail('cluster', `one consumer got nothing (${counts}): the group did not share the queues`);
    else pass('cluster', `c1+c2 received all ${N} (${counts}), duplicates=${dup}`);
  }
  // tag
  {
    const miss = tag.missing(tagBodies);
    const wrongPulled = t1.pulled.filter(m => m.tags !== ONLY_TAG);
    const wrongHandled = [ ...tag.counts.keys() ].filter(b => expected.get(b).tags !== ONLY_TAG);
    if (miss.length) fail('tag', `${miss.length} of ${tagBodies.length} ${ONLY_TAG} messages never arrived within 45 s: ${sample(miss)}`);
    else if (wrongHandled.length) fail('tag', `handler got ${wrongHandled.length} messages of other tags: ${sample(wrongHandled)}`);
    else if (wrongPulled.length) {
      fail('tag', `PULL_MESSAGE (11) returned ${wrongPulled.length} messages of other tags to a '${ONLY_TAG}' subscription ` +
        `(broker-side filter missing; ali-ons hid them from the handler): ` +
        sample(wrongPulled.map(m => `${m.body.toString()}[${m.tags}]@q${m.queueId}:${m.queueOffset}`), 4));
    } else if (tag.bad.length) fail('tag', `messages changed in transit: ${sample(tag.bad, 4)}`);
    else pass('tag', `t1 (${ONLY_TAG}) received all ${tagBodies.length} ${ONLY_TAG} messages, duplicates=${tag.duplicates()}, ` +
      `and the broker returned ${t1.pulled.length} messages, none of another tag`);
  }
  // broadcast
  {
    const problems = [];
    for (const t of bc) {
      const miss = t.missing(phase1Bodies);
      if (miss.length) problems.push(`${t.name} is missing ${miss.length} of ${N}: ${sample(miss)}`);
      else if (t.bad.length) problems.push(`${t.name}: messages changed in transit: ${sample(t.bad, 4)}`);
    }
    if (problems.length) fail('broadcast', problems.join('; '));
    else pass('broadcast', `b1 and b2 each received all ${N} (duplicates ${bc.map(t => t.duplicates()).join('/')})`);
  }

  // Close everything of phase 1; the clustering consumers persist their offsets on close
  // (UPDATE_CONSUMER_OFFSET, oneway), so wait until the broker reports them.
  for (const [ c, n ] of [[ c1, 'c1' ], [ c2, 'c2' ], [ t1, 't1' ], [ b1, 'b1' ], [ b2, 'b2' ]]) await closeQuietly(c, n);
  await closeQuietly(producer, 'p1');
  return admin;
}

async function phase2(rmqd, admin) {
  let before = null;
  const committed = await waitFor(async () => {
    before = await offsets(admin, rmqd, G_CLUSTER);
    return before.every(x => typeof x.max === 'number' && x.committed === x.max);
  }, 10000, 300);
  log(`offsets of ${G_CLUSTER} before the restart (committed/max): ${fmtOffsets(before)}`);
  if (!committed) {
    fail('restart', `the group consumed everything, but QUERY_CONSUMER_OFFSET (14) does not report ` +
      `committed == max for every queue 10 s after its consumers closed: ${fmtOffsets(before)}`);
    return;
  }

  const stopped = await rmqd.stop(10000);
  if (stopped.code !== 0) {
    fail('restart', `rmqd did not shut down cleanly on SIGTERM: ${rmqd.describeExit()}\n${rmqd.logTail()}`);
  } else {
    log(`rmqd stopped by SIGTERM in ${stopped.ms} ms (exit 0)`);
  }
  const ms = await rmqd.start(10000);
  log(`rmqd restarted on the same store and ${rmqd.addr} in ${ms} ms (pid ${rmqd.proc.pid})`);

  // The admin client reconnects by itself; the committed offsets must be what they were.
  let after = null;
  await waitFor(async () => {
    after = await offsets(admin, rmqd, G_CLUSTER);
    return after.every(x => typeof x.max === 'number');
  }, 5000, 300);
  log(`offsets of ${G_CLUSTER} after the restart (committed/max): ${fmtOffsets(after)}`);
  const changed = after.filter((x, i) => x.committed !== before[i].committed || x.max !== before[i].max);
  if (changed.length) {
    fail('restart', `offsets changed across the restart: before ${fmtOffsets(before)}; after ${fmtOffsets(after)}`);
  }

  const c3t = new Tracker('c3');
  const c3 = await newConsumer(rmqd, 'c3', G_CLUSTER, '*', c3t);
  const got4 = await waitFor(() => queuesOf(c3).length === 4, 15000);
  if (!got4) log(`note: c3 holds queues [${queuesOf(c3)}] after 15 s, expected all 4 (it is alone in ${G_CLUSTER})`);
  const p2 = await newProducer(rmqd, 'p2');
  await send(p2, afterBodies, 'send-after-restart');
  await waitFor(() => c3t.missing(afterBodies).length === 0, 30000, 200);
  await sleep(1000); // anything old would have come before the new ones
  const old = phase1Bodies.filter(b => c3t.counts.has(b));
  const miss = c3t.missing(afterBodies);
  const problems = [];
  if (old.length) {
    problems.push(`the new consumer c3 in ${G_CLUSTER} received ${old.length} of the ${N} messages the group ` +
      `had already acknowledged: ${sample(old)}`);
  }
  if (miss.length) problems.push(`c3 did not receive ${miss.length} of the ${N_AFTER} messages sent after the restart within 30 s: ${sample(miss)}`);
  if (c3t.bad.length) problems.push(`messages changed in transit: ${sample(c3t.bad, 4)}`);
  if (problems.length) fail('restart', problems.join('; '));
  else if (!changed.length && stopped.code === 0) {
    pass('restart', `offsets survived SIGTERM + restart; new consumer c3 got the ${N_AFTER} new messages and none of the ${N} acknowledged`);
  }
  await closeQuietly(c3, 'c3');
  await closeQuietly(p2, 'p2');
}

async function main() {
  const rmqd = new Rmqd(RMQD);
  for (const sig of [ 'SIGTERM', 'SIGINT' ]) {
    process.once(sig, () => {
      fail('signal', `interrupted by ${sig}`);
      finish(rmqd, 1);
    });
  }
  const watchdog = setTimeout(() => {
    fail('watchdog', `the run did not finish within ${WATCHDOG_MS / 1000} s`);
    finish(rmqd, 1);
  }, WATCHDOG_MS);
  let code = 0;
  try {
    const ms = await rmqd.start(10000);
    log(`rmqd ${RMQD} listening on ${rmqd.addr} after ${ms} ms (pid ${rmqd.proc.pid}, store ${rmqd.storeDir})`);
    const admin = await phase1(rmqd);
    await phase2(rmqd, admin);
    await closeQuietly(admin, 'admin');
    const stopped = await rmqd.stop(10000);
    if (stopped.code !== 0) fail('shutdown', `rmqd exited with ${rmqd.describeExit()} on SIGTERM\n${rmqd.logTail()}`);
  } catch (err) {
    fail(err instanceof Abort ? 'abort' : 'error', err instanceof Abort ? err.message : (err && err.stack) || String(err));
    code = 1;
  }
  clearTimeout(watchdog);
  await finish(rmqd, code);
}

let finishing = false;
async function finish(rmqd, code) {
  if (finishing) return;
  finishing = true;
  if (rmqd.proc) { // failure path: still stop it by its PID with SIGTERM first
    try {
      await rmqd.stop(5000);
    } catch (err) {
      console.log(err.message.split('\n')[0]);
    }
  }
  const failed = results.filter(r => !r.ok);
  if (failed.length) {
    code = 1;
    if (rmqd.proc || rmqd.logPath) console.log(rmqd.logTail(60));
  }
  printErrors();
  const ex = [ ...exchanges.entries() ].sort((a, b) => parseInt(a[0], 10) - parseInt(b[0], 10));
  console.log('requests ali-ons made (request code -> response code: count [first remark of a failure]):');
  console.log('  ' + ex.map(([ k, e ]) => `${k}: ${e.count}`).join(', '));
  for (const [ k, e ] of ex) if (e.remark) console.log(`  ${k}: ${e.remark}`);
  console.log('---- summary ----');
  for (const r of results) console.log(`${r.ok ? 'PASS' : 'FAIL'} ${r.scenario}: ${r.text.split('\n')[0]}`);
  console.log(`${failed.length ? 'FAILED' : 'OK'}: ${results.length - failed.length} passed, ${failed.length} failed, ` +
    `${elapsed()} s`);
  const keep = process.env.ALIONS_KEEP === '1';
  if (keep) console.log(`kept ${rmqd.dir}`);
  rmqd.cleanup(keep);
  process.exit(code);
}

process.on('unhandledRejection', err => noteError('unhandled', (err && err.message) || err));
main();
