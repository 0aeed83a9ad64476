// paced_post.js - POST jobs at a fixed rate and report what was reached
//
//   node bench/paced_post.js PORT RATE SECONDS PREFIX [CONNECTIONS]
//
// Sends request i at start + i / RATE (open loop: a slow answer does not
// delay the next request) over CONNECTIONS keep-alive connections (32),
// each job {"job_id": PREFIX_i} to /tasks/one/jobs. Prints one line on
// stderr (count, seconds, rate reached, round trip p50/p99, non-200s) and
// the round trip p50 in ms on stdout, for the calling script.
'use strict';
const http = require('http');
const [port, rate, seconds, prefix, conns] = [Number(process.argv[2]), Number(process.argv[3]),
    Number(process.argv[4]), process.argv[5], Number(process.argv[6] || 32)];
const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
const total = Math.round(rate * seconds);
const lat = [];
let done = 0, bad = 0, sent = 0;
const start = process.hrtime.bigint();
const nowMs = () => Number(process.hrtime.bigint() - start) / 1e6;

function post(i) {
    const body = JSON.stringify({ job_id: prefix + '_' + i });
    const t = nowMs();
    const req = http.request({ port, host: '127.0.0.1', method: 'POST', path: '/tasks/one/jobs', agent,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } },
        (res) => {
            res.resume();
            res.on('end', () => {
                lat.push(nowMs() - t);
                if (res.statusCode !== 200) bad++;
                if (++done === total) finish();
            });
        });
    req.on('error', () => { bad++; if (++done === total) finish(); });
    req.end(body);
}

function tick() {
    const due = Math.min(total, Math.floor(nowMs() * rate / 1000) + 1);
    while (sent < due) post(sent++);
    if (sent < total) setTimeout(tick, 1);
}

function finish() {
    const took = nowMs() / 1000;
    lat.sort((a, b) => a - b);
    const q = (p) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))];
    process.stderr.write(`  posted ${done} in ${took.toFixed(1)} s (${(done / took).toFixed(0)} jobs/s), ` +
        `round trip p50 ${q(0.5).toFixed(2)} ms p99 ${q(0.99).toFixed(2)} ms, ${bad} not 200\n`);
    process.stdout.write(q(0.5).toFixed(3) + '\n');
    agent.destroy();
}
tick();
