// capture.js: records the RocketMQ remoting frames that the Node client ali-ons (3.12.0)
// sends, as golden data for librmq's codec tests.
//
// It runs a tiny fake RocketMQ name server + broker on 127.0.0.1 (free port, loopback
// only), drives an ali-ons Producer (2 sends to IopTopic) and push Consumer (group
// GID_ali, tag TagA) against it, then closes everything. Every frame received from
// ali-ons is written byte-exact to OUTDIR/alions-req-<code>-<n>.bin (at most 2 per
// code), and OUTDIR/index.json lists them. Exits 1 if 105, 310, 34 and 11 were not all
// seen within 30 s.
//
// Usage: NODE_PATH=<prefix>/node_modules node capture.js OUTDIR
'use strict';

const fs = require('fs');
const net = require('net');
const path = require('path');

const OUT = process.argv[2];
if (!OUT) {
  console.error('usage: node capture.js OUTDIR');
  process.exit(2);
}
const { Producer, Consumer, Message } = require('ali-ons');

const HOST = '127.0.0.1';
const TOPIC = 'IopTopic';
const REQUIRED = [ 105, 310, 34, 11 ];
const MAX_SAMPLES = 2;

const samples = new Map(); // request code -> index entries written
const seen = new Set(); // request codes received
const sockets = new Set();
let port = 0;
let clientId = null; // from the first HEART_BEAT, for GET_CONSUMER_LIST_BY_GROUP
let nextOffset = 0; // fake commit-log offset for send replies
const queueOffsets = [ 0, 0, 0, 0 ];

// ---- remoting codec (server side) ----

function encodeFrame(hdr, body) {
  const h = Buffer.from(JSON.stringify(hdr), 'utf8');
  const b = body ? Buffer.from(body) : Buffer.alloc(0);
  const f = Buffer.alloc(8 + h.length + b.length);
  f.writeInt32BE(4 + h.length + b.length, 0);
  f.writeInt32BE(h.length, 4); // top byte 0 = JSON
  h.copy(f, 8);
  b.copy(f, 8 + h.length);
  return f;
}

function decodeFrame(f) {
  const word = f.readUInt32BE(4);
  const ser = word >>> 24;
  const hlen = word & 0xffffff;
  const h = f.subarray(8, 8 + hlen);
  const body = f.subarray(8 + hlen);
  const hdr = ser === 0 ? JSON.parse(h.toString('utf8')) : {
    // ROCKETMQ binary header: only the fixed part (ali-ons never sends it)
    code: h.readInt16BE(0), language: h.readUInt8(2), version: h.readInt16BE(3),
    opaque: h.readInt32BE(5), flag: h.readInt32BE(9), extFields: {},
  };
  return { hdr, ser, body };
}

// Reply the way the Java broker does: keys sorted, ext values as strings.
function reply(sock, req, code, ext, body, remark) {
  const hdr = { code };
  if (ext) hdr.extFields = ext;
  Object.assign(hdr, { flag: 1, language: 'JAVA', opaque: req.opaque });
  if (remark) hdr.remark = remark;
  Object.assign(hdr, { serializeTypeCurrentRPC: 'JSON', version: 409 });
  if (!sock.destroyed) sock.write(encodeFrame(hdr, body));
}

function record(frame, hdr, ser, body) {
  seen.add(hdr.code);
  const list = samples.get(hdr.code) || [];
  samples.set(hdr.code, list);
  if (list.length >= MAX_SAMPLES) return;
  const file = `alions-req-${hdr.code}-${list.length + 1}.bin`;
  fs.writeFileSync(path.join(OUT, file), frame);
  list.push({
    file, request_code: hdr.code, opaque: hdr.opaque, flag: hdr.flag,
    serialize: ser === 0 ? 'JSON' : 'ROCKETMQ', frame_len: frame.length,
    body_len: body.length, language: hdr.language, version: hdr.version,
  });
}

// ---- fake name server + broker ----

function routeData() {
  const addr = `${HOST}:${port}`;
  return JSON.stringify({
    brokerDatas: [{ brokerAddrs: { 0: addr }, brokerName: 'broker-a', cluster: 'DefaultCluster' }],
    filterServerTable: {},
    queueDatas: [{ brokerName: 'broker-a', perm: 6, readQueueNums: 4, topicSysFlag: 0, writeQueueNums: 4 }],
  }); // JSON.stringify quotes the "0" key
}

function offsetMsgId(offset) { // IPv4 + port + commit-log offset, 32 hex chars
  const b = Buffer.alloc(16);
  b.set([ 127, 0, 0, 1 ], 0);
  b.writeInt32BE(port, 4);
  b.writeBigInt64BE(BigInt(offset), 8);
  return b.toString('hex').toUpperCase();
}

function handle(sock, req, body) {
  const ext = req.extFields || {};
  switch (req.code) {
    case 105: // GET_ROUTEINFO_BY_TOPIC
      return reply(sock, req, 0, null, routeData());
    case 34: // HEART_BEAT
      try { clientId = clientId || JSON.parse(body.toString('utf8')).clientID; } catch (e) { /* keep */ }
      return reply(sock, req, 0, null);
    case 10: // SEND_MESSAGE
    case 310: { // SEND_MESSAGE_V2
      const q = Number(req.code === 310 ? ext.e : ext.queueId) & 3;
      const off = nextOffset;
      nextOffset += 200 + body.length;
      return reply(sock, req, 0, {
        msgId: offsetMsgId(off), queueId: String(q), queueOffset: String(queueOffsets[q]++),
        MSG_REGION: 'DefaultRegion', TRACE_ON: 'true',
      });
    }
    case 14: // QUERY_CONSUMER_OFFSET
    case 30: // GET_MAX_OFFSET
    case 31: // GET_MIN_OFFSET
      return reply(sock, req, 0, { offset: '0' });
    case 38: // GET_CONSUMER_LIST_BY_GROUP
      return reply(sock, req, 0, {}, JSON.stringify({ consumerIdList: clientId ? [ clientId ] : [] }));
    case 11: // PULL_MESSAGE: nothing new, answered after a short "long poll"
      return setTimeout(() => reply(sock, req, 19, {
        suggestWhichBrokerId: '0', nextBeginOffset: String(ext.queueOffset || 0),
        minOffset: '0', maxOffset: '0',
      }, null, 'NO_MESSAGE_IN_QUEUE'), 200);
    default: // 15, 17, 35, ...: plain success
      return reply(sock, req, 0, {});
  }
}

const server = net.createServer(sock => {
  sockets.add(sock);
  sock.on('close', () => sockets.delete(sock));
  sock.on('error', () => {});
  let buf = Buffer.alloc(0);
  sock.on('data', data => {
    buf = Buffer.concat([ buf, data ]);
    while (buf.length >= 4) {
      const len = buf.readInt32BE(0);
      if (len < 4 || len > 16 << 20) return sock.destroy();
      if (buf.length < 4 + len) break;
      const frame = Buffer.from(buf.subarray(0, 4 + len));
      buf = buf.subarray(4 + len);
      const { hdr, ser, body } = decodeFrame(frame);
      record(frame, hdr, ser, body);
      if (!(hdr.flag & 1) && !(hdr.flag & 2)) handle(sock, hdr, body); // oneway: no reply
    }
  });
});

// ---- driver ----

const sleep = ms => new Promise(r => setTimeout(r, ms));
const missing = () => REQUIRED.filter(c => !seen.has(c));
const withTimeout = (p, ms) => Promise.race([ p, sleep(ms) ]);

function writeIndex() {
  const index = [ ...samples.keys() ].sort((a, b) => a - b).flatMap(c => samples.get(c));
  fs.writeFileSync(path.join(OUT, 'index.json'), JSON.stringify(index, null, 1) + '\n');
}

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  for (const f of fs.readdirSync(OUT)) {
    if (/^alions-req-\d+-\d+\.bin$/.test(f)) fs.unlinkSync(path.join(OUT, f));
  }
  await new Promise((resolve, reject) => server.listen(0, HOST, resolve).on('error', reject));
  port = server.address().port;

  const opts = {
    nameSrv: `${HOST}:${port}`, // skips the HTTP name-server lookup
    httpclient: { request() { throw new Error('no HTTP in capture'); } }, // required, unused
    clientIP: HOST, // clientId = 127.0.0.1@<pid>, not the host's address
    logger: { debug() {}, info() {}, warn() {}, error: console.error }, // quiet
  };
  const onError = err => console.warn('[ali-ons]', err.message);

  const producer = new Producer(Object.assign({ producerGroup: 'PID_ali' }, opts));
  producer.on('error', onError);
  await producer.ready();
  for (let i = 0; i < 2; i++) {
    const msg = new Message(TOPIC, i ? 'TagB' : 'TagA', `hello ali-ons ${i}`);
    msg.keys = [ `key${i}`, 'iop' ];
    const r = await producer.send(msg);
    console.log('sent', r.sendStatus, r.msgId, 'queue', r.messageQueue.queueId);
  }

  const consumer = new Consumer(Object.assign({ consumerGroup: 'GID_ali' }, opts));
  consumer.on('error', onError);
  consumer.subscribe(TOPIC, 'TagA || TagB', async msg => console.log('got', msg.msgId));
  await consumer.ready();
  for (let t = 0; t < 50 && (!seen.has(11) || !seen.has(14) || !seen.has(38)); t++) await sleep(100);
  await sleep(1500); // let a few pull rounds happen

  await withTimeout(consumer.close(), 5000); // 15 (oneway), 35
  await withTimeout(producer.close(), 5000); // 35
  await sleep(300);
  for (const s of sockets) s.destroy();
  server.close();
  writeIndex();
  const miss = missing();
  if (miss.length) throw new Error(`required codes not captured: ${miss.join(', ')}`);
  console.log('captured codes:', [ ...samples.keys() ].sort((a, b) => a - b).join(' '));
}

setTimeout(() => {
  writeIndex();
  console.error(`timeout after 30 s; missing: ${missing().join(', ') || 'none (close hung)'}`);
  process.exit(1);
}, 30000);

main().then(() => process.exit(0), err => {
  console.error('capture failed:', err && err.stack || err);
  process.exit(1);
});
