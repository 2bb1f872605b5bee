// rmqd.js: starts and stops our broker daemon (tools/rmqd) for the ali-ons interop test.
// One Rmqd owns a temp directory (store + broker.conf + logs) and a loopback port; start()
// spawns `rmqd -c broker.conf` and waits until the port accepts connections, stop()
// sends SIGTERM to that PID and waits for a clean exit. The same object can be started
// again on the same store and port (restart). cleanup() removes the temp directory.
'use strict';

const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');

const HOST = '127.0.0.1';
const sleep = ms => new Promise(r => setTimeout(r, ms));

// A free loopback port: bind port 0, read it, release it. rmqd binds it right after.
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise(resolve => {
    const s = net.connect({ host: HOST, port });
    const done = ok => { s.destroy(); resolve(ok); };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(500, () => done(false));
  });
}

class Rmqd {
  constructor(bin) {
    this.bin = bin;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'librmq-alions-'));
    this.storeDir = path.join(this.dir, 'store');
    this.confPath = path.join(this.dir, 'broker.conf');
    this.port = 0;
    this.proc = null;
    this.runs = 0;
    this.logPath = null;
    this.exit = null; // { code, signal } of the last process once it exited
  }

  get addr() { return `${HOST}:${this.port}`; }

  writeConf() {
    // broker.conf keys as in RocketMQ; no namesrvAddr: rmqd is its own name server. No
    // brokerIP1: empty means advertise 127.0.0.1 and listen on loopback only.
    const conf = [
      '# written by test/interop/ali-ons/rmqd.js',
      'brokerClusterName=DefaultCluster',
      'brokerName=broker-iop',
      'brokerId=0',
      `listenPort=${this.port}`,
      `storePathRootDir=${this.storeDir}`,
      'mappedFileSizeCommitLog=16777216',
      'flushDiskType=ASYNC_FLUSH',
      'autoCreateTopicEnable=true',
      'defaultTopicQueueNums=4',
      // ali-ons sends its 1000-message burst without a window: on a loaded 2-core machine
      // under ASan a send can wait longer than the 200 ms default in the send queue, and
      // flow control (TIMEOUT_CLEAN_QUEUE) is the right answer there, not a test failure.
      'waitTimeMillsInSendQueue=2000',
      '',
    ].join('\n');
    fs.writeFileSync(this.confPath, conf);
  }

  // Spawns rmqd and resolves once 127.0.0.1:port accepts connections; rejects with the
  // log tail if rmqd exits first or is not listening within timeoutMs.
  async start(timeoutMs = 10000) {
    if (this.proc) throw new Error('rmqd already running');
    if (!this.port) {
      this.port = await freePort();
      this.writeConf();
    }
    this.runs++;
    this.logPath = path.join(this.dir, `rmqd-${this.runs}.log`);
    const log = fs.openSync(this.logPath, 'w');
    const proc = spawn(this.bin, [ '-c', this.confPath ], { stdio: [ 'ignore', log, log ] });
    fs.closeSync(log);
    this.proc = proc;
    this.exit = null;
    this.exited = new Promise(resolve => proc.once('exit', (code, signal) => {
      this.exit = { code, signal };
      if (this.proc === proc) this.proc = null;
      resolve(this.exit);
    }));
    proc.once('error', err => { this.exit = { code: null, signal: null, error: err }; });
    const t0 = Date.now();
    while (Date.now() - t0 < timeoutMs) {
      if (this.exit) {
        throw new Error(`rmqd (run ${this.runs}) exited before listening on ${this.addr}: ` +
          `${this.describeExit()}\n${this.logTail()}`);
      }
      if (await canConnect(this.port)) return Date.now() - t0;
      await sleep(50);
    }
    throw new Error(`rmqd (run ${this.runs}, pid ${proc.pid}) not listening on ${this.addr} ` +
      `after ${timeoutMs} ms\n${this.logTail()}`);
  }

  describeExit() {
    const e = this.exit;
    if (!e) return 'running';
    if (e.error) return `spawn failed: ${e.error.message}`;
    return e.signal ? `killed by ${e.signal}` : `exit code ${e.code}`;
  }

  // SIGTERM to our PID; resolves with the exit once it is gone. If it is still there
  // after timeoutMs it gets SIGKILL and the promise rejects (a clean shutdown is required).
  async stop(timeoutMs = 10000) {
    const proc = this.proc;
    if (!proc) return this.exit;
    const t0 = Date.now();
    proc.kill('SIGTERM');
    const res = await Promise.race([ this.exited, sleep(timeoutMs).then(() => null) ]);
    if (!res) {
      proc.kill('SIGKILL');
      await this.exited;
      throw new Error(`rmqd (pid ${proc.pid}) did not exit within ${timeoutMs} ms of SIGTERM\n${this.logTail()}`);
    }
    return Object.assign({ ms: Date.now() - t0 }, res);
  }

  // Last lines of the current run's log (stderr + stdout), for failure messages.
  logTail(lines = 40) {
    try {
      const text = fs.readFileSync(this.logPath, 'utf8').trimEnd().split('\n');
      return `--- rmqd log (${this.logPath}), last ${Math.min(lines, text.length)} lines ---\n` +
        text.slice(-lines).join('\n');
    } catch (e) {
      return '(no rmqd log)';
    }
  }

  // Stops a still-running rmqd the hard way (used on the failure path) and removes the
  // temp directory unless keep is set.
  cleanup(keep) {
    if (this.proc) {
      try { this.proc.kill('SIGKILL'); } catch (e) { /* already gone */ }
    }
    if (keep) return;
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

module.exports = { Rmqd, HOST };
