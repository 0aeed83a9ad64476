// bench.js - the BullMQ side of bench/run: the reference job queue
//
//   node bench.js worker REDIS_PORT QUEUE CONCURRENCY TOTAL
//       A Worker with CONCURRENCY slots whose processor does nothing but
//       return one row. Prints "ready" once connected, then, when TOTAL jobs
//       have completed, "end_ms=<wall clock ms> failed=<n>" and exits.
//   node bench.js add REDIS_PORT QUEUE N CLIENTS
//       N queue.add calls from CLIENTS Queue objects (one connection each),
//       each client adding its next job when the previous add returned, as
//       a keep-alive HTTP client does. Prints start_ms, end_ms, seconds,
//       rate (adds/s), p50_ms, p99_ms.
//   node bench.js latency REDIS_PORT QUEUE N
//       N times: add one job and wait until it completed (QueueEvents),
//       with a worker of bench.js running. Prints p50_ms and p99_ms of add
//       to completed and started_p50_ms/started_p99_ms (processedOn -
//       timestamp, ms, Redis-side job fields).
//
// Every mode prints one line of key=value figures, as bench/loadgen does.
'use strict';
const { Queue, Worker, QueueEvents, Job } = require('bullmq');
const IORedis = require('ioredis');

const [mode, portArg, queueName] = process.argv.slice(2, 5);
const port = Number(portArg);
const nowMs = () => performance.timeOrigin + performance.now();
const conn = () => new IORedis({ host: '127.0.0.1', port, maxRetriesPerRequest: null });
const quantile = (v, p) => {
    if (!v.length) return 0;
    v.sort((a, b) => a - b);
    return v[Math.min(v.length - 1, Math.floor(v.length * p))];
};

async function worker(concurrency, total) {
    let done = 0, failed = 0;
    const w = new Worker(queueName, async () => [{ n: 1 }],
        { connection: conn(), concurrency, autorun: true });
    const finish = (ok) => {
        if (!ok) failed++;
        if (++done === total) {
            process.stdout.write(`end_ms=${nowMs().toFixed(3)} failed=${failed}\n`);
            process.exit(0);     //  not close(): it waits out a blocking fetch
        }
    };
    w.on('completed', () => finish(true));
    w.on('failed', () => finish(false));
    await w.waitUntilReady();
    process.stdout.write('ready\n');
}

async function add(total, clients) {
    const queues = [];
    for (let i = 0; i < clients; i++) {
        const q = new Queue(queueName, { connection: conn() });
        await q.waitUntilReady();
        queues.push(q);
    }
    const lat = [];
    let next = 0;
    const start = nowMs();
    await Promise.all(queues.map(async (q) => {
        while (next < total) {
            const i = next++;
            const t = nowMs();
            await q.add('noop', { i });
            lat.push(nowMs() - t);
        }
    }));
    const end = nowMs();
    const secs = (end - start) / 1000;
    process.stdout.write(`start_ms=${start.toFixed(3)} end_ms=${end.toFixed(3)} seconds=${secs.toFixed(3)} ` +
        `rate=${(total / secs).toFixed(1)} p50_ms=${quantile(lat, 0.5).toFixed(3)} ` +
        `p99_ms=${quantile(lat, 0.99).toFixed(3)}\n`);
    await Promise.all(queues.map((q) => q.close()));
}

async function latency(total) {
    const q = new Queue(queueName, { connection: conn() });
    const events = new QueueEvents(queueName, { connection: conn() });
    await q.waitUntilReady();
    await events.waitUntilReady();
    const lat = [], started = [];
    for (let i = 0; i < total; i++) {
        const t = nowMs();
        const job = await q.add('noop', { i });
        await job.waitUntilFinished(events);
        lat.push(nowMs() - t);
        const done = await Job.fromId(q, job.id);
        started.push(done.processedOn - done.timestamp);
    }
    process.stdout.write(`jobs=${total} failed=0 p50_ms=${quantile(lat, 0.5).toFixed(3)} ` +
        `p99_ms=${quantile(lat, 0.99).toFixed(3)} started_p50_ms=${quantile(started, 0.5).toFixed(3)} ` +
        `started_p99_ms=${quantile(started, 0.99).toFixed(3)}\n`);
    await events.close();
    await q.close();
}

const args = process.argv.slice(5).map(Number);
let run;
if (mode === 'worker' && args.length === 2) run = worker(args[0], args[1]);
else if (mode === 'add' && args.length === 2) run = add(args[0], args[1]);
else if (mode === 'latency' && args.length === 1) run = latency(args[0]);
else {
    process.stderr.write('usage: bench.js worker|add|latency REDIS_PORT QUEUE ...\n');
    process.exit(2);
}
run.then(() => { if (mode !== 'worker') process.exit(0); },
    (err) => { process.stderr.write(`bench.js: ${err.stack || err}\n`); process.exit(1); });
