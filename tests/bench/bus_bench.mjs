// Event latency between spreekd nodes through Redis (docs/performance.md "Several nodes").
// Usage: node tests/bench/bus_bench.mjs SPREEKD [--rounds N]
// Runs under tests/lib/with_postgres.sh and tests/lib/with_redis.sh: nodes A and B share one
// PostgreSQL database and one Redis. A GP on A admits and sends back two waiting patients in
// turn, one connected to A and one to B, N rounds each, one at a time; measured is the time from
// the GP's request until the patient receives `admitted` (and `sent_back`): on A that is the
// node's own event path (the baseline of the same run), on B it adds the publish once durable,
// Redis, and B reading the consult again from the store. Then the same for chat: a device of
// the GP on A sends N application messages one at a time; measured is the time until the
// patient's device receives the entry, on A and on B. Prints p50/p99 per path and a JSON line.
import { startNodes } from '../integration/lib/nodes.mjs';
import { ChatDevice, loadMls } from '../integration/chat/lib.mjs';

const GP = { sub: 'gp-bench', name: 'Dr. Bench', role: 'gp', practice: 'p' };
const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 300;
process.env.SPREEKD = process.argv[2] ?? process.env.SPREEKD;

const q = (a, p) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))];
const ms = (ns) => Number(ns) / 1e6;

async function lobbyLatency(env, gp, consult, patients) {
  const out = { a: [], b: [] };
  for (let i = 0; i < rounds; i++) {
    for (const [node, p] of Object.entries(patients)) {
      for (const [req, ev] of [['lobby.admit', 'admitted'], ['lobby.send_back', 'sent_back']]) {
        p.client.drain(ev);
        const t0 = process.hrtime.bigint();
        const got = p.client.next(ev, 10000);
        got.catch(() => {}); // awaited below; a failed request must not leave it unhandled
        await gp.ok(req, { consult, participant: p.id });
        await got;
        out[node].push(ms(process.hrtime.bigint() - t0));
      }
    }
  }
  return out;
}

async function chatLatency(gpDev, conv, devs) {
  const out = { a: [], b: [] };
  for (let i = 0; i < rounds; i++) {
    const want = Object.fromEntries(Object.entries(devs).map(([k, d]) => [k, d.texts(conv).length + 1]));
    const t0 = process.hrtime.bigint();
    const sent = gpDev.send(conv, `meting ${i}`);
    const done = Object.entries(devs).map(async ([k, d]) => {
      while (d.texts(conv).length < want[k]) await new Promise((r) => setImmediate(r));
      out[k].push(ms(process.hrtime.bigint() - t0));
    });
    if ((await sent).type !== 'ok') throw new Error('chat.send failed');
    await Promise.all(done);
  }
  return out;
}

const env = await startNodes(['a', 'b'], {
  redis: process.env.SPK_TEST_REDIS,
  args: ['--rate', '1000000', '--burst', '1000000'],
});
const [A, B] = env.srv;
try {
  const mls = await loadMls();
  const gp = await env.connect(A, env.token(GP));
  const { consult } = await gp.ok('consult.create', { patient: 'pseudo-bench' });
  await gp.ok('consult.join', { consult: consult.id });
  const patients = {};
  for (const [k, node] of [['a', A], ['b', B]]) {
    const { invite } = await gp.ok('invite.create', { consult: consult.id });
    const client = await env.connect(node);
    const r = await client.ok('invite.redeem', { invite: invite.code, name: `Patiënt ${k}` });
    patients[k] = { client, id: r.participant.id };
  }
  const lobby = await lobbyLatency(env, gp, consult.id, patients);

  for (const p of Object.values(patients)) await gp.ok('lobby.admit', { consult: consult.id, participant: p.id });
  const { conversation } = await gp.ok('chat.create', { kind: 'consult', consult: consult.id });
  const gpDev = await ChatDevice.open(gp, mls, 'gp-laptop');
  await gpDev.sync();
  const devs = {};
  for (const [k, p] of Object.entries(patients)) {
    devs[k] = await ChatDevice.open(p.client, mls, `phone-${k}`);
    await devs[k].sync();
  }
  await gpDev.createGroup(conversation.id);
  for (const p of Object.values(patients)) {
    await gpDev.addUser(conversation.id, { sub: p.id }, 'patient', 'P');
  }
  for (const d of Object.values(devs)) await d.until(() => d.groups.has(conversation.id), 10000);
  const chat = await chatLatency(gpDev, conversation.id, devs);

  const row = (name, v) => `${name.padEnd(34)} p50 ${q(v, 0.5).toFixed(2)} ms  p99 ${q(v, 0.99).toFixed(2)} ms  (n=${v.length})`;
  console.log(row('lobby event, same node (A→A)', lobby.a));
  console.log(row('lobby event, across nodes (A→B)', lobby.b));
  console.log(row('chat entry, same node (A→A)', chat.a));
  console.log(row('chat entry, across nodes (A→B)', chat.b));
  const f = (v) => ({ p50: +q(v, 0.5).toFixed(3), p99: +q(v, 0.99).toFixed(3), n: v.length });
  console.log(JSON.stringify({ bench: 'bus', lobby_same: f(lobby.a), lobby_cross: f(lobby.b), chat_same: f(chat.a), chat_cross: f(chat.b) }));
} finally {
  await env.close();
}
