// mixed-group.js: one consumer group with two members of different makes — librmq's push
// consumer (the mixed_consumer program) and an ali-ons@3.12.0 Consumer — on one topic of 8
// queues against our broker daemon rmqd (issue 6 item 7). Both allocate AVG over the
// consumer id list the broker gives them (GET_CONSUMER_LIST_BY_GROUP), so they must split
// the queues between them without overlap and together receive every message.
//
// Scenario:
//   create   UPDATE_AND_CREATE_TOPIC MixTopic with 8 queues (route within 5 s)
//   join     the ali-ons consumer starts, then mixed_consumer; once ali-ons owns 4 queues
//            (it saw both ids) and that held for 3 s, the group is settled
//   split    an ali-ons Producer sends 800 messages (100 per queue); every one arrives,
//            each queue's messages went to exactly one member, 4 queues each, and the
//            queues ali-ons received from are the ones in its process-queue table
//   leave    mixed_consumer stops (its destroy stores offsets and unregisters); ali-ons
//            takes all 8 queues, and 80 more messages all reach it, none of the first 800
//            acknowledged by librmq coming again
// Every wait is bounded (120 s watchdog). Exit 0 passed, 1 failed, 2 usage.
//
// Usage: NODE_PATH=<prefix>/node_modules node mixed-group.js /path/to/rmqd /path/to/mixed_consumer
// Env: ALIONS_VERBOSE=1 prints ali-ons' log and mixed_consumer's stderr; ALIONS_KEEP=1 keeps
// the temp dir.
'use strict';

const readline = require('readline');
const { spawn } = require('child_process');
const { Rmqd } = require('./rmqd');
const {
  VERBOSE, sleep, stamp, log, noteError, printErrors, clientOptions, waitFor, withTimeout,
} = require('./iop');

const [ RMQD, MIXED ] = process.argv.slice(2);
if (!RMQD || !MIXED) {
  console.error('usage: node mixed-group.js /path/to/rmqd /path/to/mixed_consumer');
  process.exit(2);
}
const { Producer, Consumer, Message } = require('ali-ons');

const TOPIC = 'MixTopic';
const QUEUES = 8;
const GROUP = 'GID_iop_mixed';
const N = 800;
const N_AFTER = 80;
const WATCHDOG_MS = 120000; // meson's timeout is 180 s

let failed = 0;
const pass = (what, text) => log(`PASS ${what}: ${text}`);
const fail = (what, text) => { failed++; log(`FAIL ${what}: ${text}`); };
class Abort extends Error {}

const sample = (list, n = 8) => list.slice(0, n).join(', ') + (list.length > n ? `, … (${list.length} in all)` : '');
const bodyOf = i => `mix-${i}`;

// What one member received: deliveries by body, and the queues the messages came from.
class Member {
  constructor(name) {
    this.name = name;
    this.counts = new Map();
    this.queues = new Set();
  }
  on(body, queueId) {
    this.counts.set(body, (this.counts.get(body) || 0) + 1);
    this.queues.add(queueId);
  }
  queueList() { return [ ...this.queues ].sort((a, b) => a - b); }
}

// ---- clients ----

const clients = [];

async function closeQuietly(c, what) {
  try {
    await withTimeout(c.close(), 5000, `close ${what}`);
  } catch (err) {
    noteError(what, `close: ${err.message}`);
  }
}

const ownedByAlions = c => [ ...c._processQueueTable.values() ]
  .filter(v => v.messageQueue.topic === TOPIC && !v.processQueue.droped)
  .map(v => v.messageQueue.queueId)
  .sort((a, b) => a - b);

// mixed_consumer as a child process; its MSG lines feed a Member.
class Ours {
  constructor(rmqd) {
    this.member = new Member('librmq');
    this.ready = false;
    this.stopped = false;
    this.exit = null;
    this.proc = spawn(MIXED, [ rmqd.addr, GROUP, TOPIC, 'librmq-mixed' ],
      { stdio: [ 'pipe', 'pipe', VERBOSE ? 'inherit' : 'pipe' ] });
    this.stderr = '';
    if (!VERBOSE) this.proc.stderr.on('data', d => { this.stderr = (this.stderr + d).slice(-4000); });
    this.exited = new Promise(resolve => this.proc.once('exit', (code, signal) => {
      this.exit = { code, signal };
      resolve(this.exit);
    }));
    readline.createInterface({ input: this.proc.stdout }).on('line', line => this.onLine(line));
  }
  onLine(line) {
    if (line === 'READY') this.ready = true;
    else if (line === 'STOPPED') this.stopped = true;
    else {
      const m = /^MSG (\d+) (\d+) (.*)$/.exec(line);
      if (m) this.member.on(m[3], Number(m[1]));
    }
  }
  // Closes its stdin: it destroys the consumer (offsets stored, group left) and exits.
  async stop() {
    this.proc.stdin.end();
    const res = await Promise.race([ this.exited, sleep(15000).then(() => null) ]);
    if (!res) {
      this.proc.kill('SIGKILL');
      throw new Abort(`mixed_consumer did not exit within 15 s of its stdin closing\n${this.stderr}`);
    }
    if (res.code !== 0 || !this.stopped) {
      throw new Abort(`mixed_consumer ended with ${JSON.stringify(res)} (STOPPED ${this.stopped})\n${this.stderr}`);
    }
  }
}

// ---- steps ----

async function createTopic(rmqd, producer) {
  const config = {
    topicName: TOPIC, readQueueNums: QUEUES, writeQueueNums: QUEUES, perm: 6,
    topicFilterType: 'SINGLE_TAG', topicSysFlag: 0, order: false,
  };
  await producer._mqClient.createTopic(rmqd.addr, 'TBW102', config, 5000);
  const ok = await waitFor(async () => {
    try {
      const r = await producer._mqClient.getTopicRouteInfoFromNameServer(TOPIC, 3000);
      return r && r.queueDatas && r.queueDatas[0] && r.queueDatas[0].readQueueNums === QUEUES;
    } catch (err) {
      return false;
    }
  }, 5000, 200);
  if (!ok) throw new Abort(`no route with ${QUEUES} queues for ${TOPIC} 5 s after creating it`);
  pass('create', `${TOPIC} with ${QUEUES} queues`);
}

async function send(producer, first, count) {
  const problems = [];
  for (let i = first; i < first + count; i += 16) {
    await Promise.all([ ...Array(Math.min(16, first + count - i)).keys() ].map(async k => {
      try {
        const r = await producer.send(new Message(TOPIC, 'TagMix', bodyOf(i + k)));
        if (r.sendStatus !== 'SEND_OK') problems.push(`${bodyOf(i + k)}: ${r.sendStatus}`);
      } catch (err) {
        problems.push(`${bodyOf(i + k)}: ${err.message}`);
      }
    }));
  }
  if (problems.length) throw new Abort(`${problems.length} sends failed: ${sample(problems, 4)}`);
}

function received(members, first, count) {
  const missing = [];
  for (let i = first; i < first + count; i++) {
    if (!members.some(m => m.counts.has(bodyOf(i)))) missing.push(bodyOf(i));
  }
  return missing;
}

async function run(rmqd) {
  await rmqd.start();
  log(`rmqd at ${rmqd.addr}`);
  const producer = new Producer(Object.assign(clientOptions(rmqd, 'mix-producer'), { producerGroup: 'PID_iop_mixed' }));
  clients.push(producer);
  await withTimeout(producer.ready(), 15000, 'producer ready');
  await createTopic(rmqd, producer);

  // join
  const theirs = new Member('ali-ons');
  const consumer = new Consumer(Object.assign(clientOptions(rmqd, 'alions-mixed'), {
    consumerGroup: GROUP,
    consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET',
  }));
  consumer.on('error', err => noteError('alions-mixed', err.message));
  clients.push(consumer);
  consumer.subscribe(TOPIC, '*', async msg => theirs.on(msg.body.toString('utf8'), msg.queueId));
  await withTimeout(consumer.ready(), 15000, 'ali-ons consumer ready');
  const ours = new Ours(rmqd);
  clients.push({ close: async () => { if (!ours.exit) ours.proc.kill('SIGKILL'); } });
  if (!await waitFor(() => ours.ready || ours.exit, 15000) || !ours.ready) {
    throw new Abort(`mixed_consumer did not start: ${JSON.stringify(ours.exit)}\n${ours.stderr}`);
  }
  let settledAt = 0;
  const settled = await waitFor(() => {
    if (ownedByAlions(consumer).length !== QUEUES / 2) settledAt = 0;
    else if (!settledAt) settledAt = Date.now();
    return settledAt && Date.now() - settledAt >= 3000;
  }, 30000);
  if (!settled) throw new Abort(`ali-ons never settled on ${QUEUES / 2} queues: owns ${ownedByAlions(consumer)}`);
  pass('join', `ali-ons owns queues ${ownedByAlions(consumer)} of ${QUEUES} (it sees 2 members)`);

  // split
  await send(producer, 0, N);
  const all = await waitFor(() => received([ ours.member, theirs ], 0, N).length === 0, 30000);
  const missing = received([ ours.member, theirs ], 0, N);
  const a = theirs.queueList();
  const b = ours.member.queueList();
  const overlap = a.filter(q => b.includes(q));
  const union = new Set([ ...a, ...b ]);
  const dups = [ ...ours.member.counts.values(), ...theirs.counts.values() ].reduce((s, c) => s + c, 0) - (N - missing.length);
  log(`librmq got ${ours.member.counts.size} messages from queues ${b}; ali-ons ${theirs.counts.size} from ${a}; ${dups} duplicates`);
  if (!all) fail('split', `${missing.length} of ${N} never arrived: ${sample(missing)}`);
  else if (overlap.length) fail('split', `queues ${overlap} were consumed by both members`);
  else if (union.size !== QUEUES || a.length !== QUEUES / 2 || b.length !== QUEUES / 2) {
    fail('split', `queues not split ${QUEUES / 2}/${QUEUES / 2}: librmq ${b}, ali-ons ${a}`);
  } else if (a.join() !== ownedByAlions(consumer).join()) {
    fail('split', `ali-ons received from ${a} but its table holds ${ownedByAlions(consumer)}`);
  } else {
    pass('split', `every one of ${N} messages arrived; librmq consumed queues ${b}, ali-ons ${a}, no overlap`);
  }

  // leave
  const oursBefore = new Set(ours.member.counts.keys());
  await ours.stop();
  const tookAll = await waitFor(() => ownedByAlions(consumer).length === QUEUES, 30000);
  if (!tookAll) throw new Abort(`after librmq left, ali-ons owns ${ownedByAlions(consumer)}, not all ${QUEUES}`);
  const seenBefore = new Map(theirs.counts);
  await send(producer, N, N_AFTER);
  const gotAfter = await waitFor(() => received([ theirs ], N, N_AFTER).length === 0, 30000);
  const again = [ ...oursBefore ].filter(body => theirs.counts.get(body) !== seenBefore.get(body));
  if (!gotAfter) {
    fail('leave', `ali-ons missed ${sample(received([ theirs ], N, N_AFTER))} after taking over`);
  } else if (again.length) {
    fail('leave', `${again.length} messages librmq had acknowledged came again: ${sample(again)}`);
  } else {
    pass('leave', `librmq stopped cleanly; ali-ons took all ${QUEUES} queues and got the ${N_AFTER} new messages, none of librmq's again`);
  }
}

async function main() {
  const rmqd = new Rmqd(RMQD);
  const watchdog = setTimeout(() => {
    console.error(`${stamp()} FAIL watchdog: still running after ${WATCHDOG_MS} ms\n${rmqd.logTail()}`);
    rmqd.cleanup(true);
    process.exit(1);
  }, WATCHDOG_MS);
  try {
    await run(rmqd);
  } catch (err) {
    fail(err instanceof Abort ? 'abort' : 'error', err instanceof Abort ? err.message : err.stack);
    console.log(rmqd.logTail());
  }
  for (const c of clients.reverse()) await closeQuietly(c, 'client');
  try {
    const res = await rmqd.stop();
    if (res && (res.code !== 0 || res.signal)) fail('stop', `rmqd exited ${rmqd.describeExit()}\n${rmqd.logTail()}`);
  } catch (err) {
    fail('stop', err.message);
  }
  printErrors();
  clearTimeout(watchdog);
  rmqd.cleanup(process.env.ALIONS_KEEP === '1' || failed > 0);
  log(failed ? `${failed} check(s) FAILED` : 'all passed');
  process.exit(failed ? 1 : 0);
}

main();
