// Helpers for the /api/v1 tests: the real spreekd, a registered practice system integration
// (role service) and a local webhook receiver on 127.0.0.1 that checks every signature.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { boot, registerIntegration, serviceToken } from '../signaling/fixture.mjs';

export { serviceToken };

// A webhook receiver. `behave(req)` may return a status (default 200) or 'hang'.
export async function receiver(behave = () => 200) {
  const events = [];
  const bad = [];
  let secret = null;
  const hung = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const sig = req.headers['spreekkamer-signature'] ?? '';
      const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(sig);
      const ok = m && secret && Math.abs(Date.now() / 1000 - Number(m[1])) <= 300 &&
        timingSafeEqual(Buffer.from(m[2], 'hex'),
          createHmac('sha256', Buffer.from(secret, 'hex')).update(`${m[1]}.${body}`).digest());
      const what = behave({ headers: req.headers, body });
      if (what === 'hang') { hung.push(res); return; }
      if (!ok) bad.push({ sig, body });
      else if (what >= 200 && what < 300) events.push(JSON.parse(body));
      res.writeHead(ok ? what : 401).end();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/hook`;
  return {
    url, events, bad,
    setSecret(s) { secret = s; },
    // Resolves when an event matching pred has been received.
    async waitFor(pred, timeoutMs = 10000, what = 'event') {
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        const e = events.find(pred);
        if (e) return e;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`no webhook ${what} within ${timeoutMs} ms; got ${events.map((e) => e.type).join(', ')}`);
    },
    close() { for (const r of hung) r.destroy(); server.closeAllConnections?.(); server.close(); },
  };
}

// spreekd, the integration (with the receiver's URL as webhook) and an API client.
export async function setup(t, { args = [], behave, practices } = {}) {
  const hook = await receiver(behave);
  const env = await boot(['--webhook-timeout', '1000', ...args]);
  const integ = registerIntegration(env.srv.dataDir, { id: 'his-day', webhook: hook.url, practices });
  hook.setSecret(integ.secret);
  const token = (claims) => serviceToken(integ, claims);
  const api = async (method, path, { body, headers = {}, tok = token(), raw } = {}) => {
    const h = { ...headers };
    if (tok) h.authorization = `Bearer ${tok}`;
    if (body !== undefined && !h['content-type']) h['content-type'] = 'application/json';
    const r = await fetch(`${env.srv.url}${path}`, {
      method, headers: h, body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: r.status, json, text, headers: r.headers };
  };
  t.after(async () => { hook.close(); await env.close(); });
  return { env, hook, integ, token, api };
}

// Today's date in Europe/Amsterdam (the practices' day).
export function today() {
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Amsterdam' }).format(new Date());
}
