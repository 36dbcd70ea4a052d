// A shaped link on loopback for media tests, with tc, inside a private network namespace
// (tests/browser/run.sh): the packets to some UDP destination ports go through an htb class of a
// given rate with a short queue (netem's delay and loss added when the kernel has netem);
// everything else passes at 10 Gbit/s. tc must be run as a user that may change the namespace's
// qdiscs (root in it).
//
// The class's queue is a tbf of the same rate, which splits a UDP GSO message (the relay sends a
// run of equal-sized datagrams to one subscriber as one) into its datagrams as it enqueues them:
// a link further on sees datagrams, never the sender's GSO message, and a queue of whole GSO
// messages (pfifo counts each as one packet) would hold tens of times the bytes of the link's
// buffer. Its limit is `queue` datagrams of 1,250 bytes.
import { execFileSync } from 'node:child_process';

const tc = (...args) => execFileSync('tc', args, { stdio: 'pipe' });

// null when shaping works here, else why not.
export function shapingUnavailable() {
  if (process.env.SPK_NETNS !== '1') return 'not in a private network namespace (tests/browser/run.sh)';
  try {
    tc('qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb', 'default', '10');
    tc('qdisc', 'del', 'dev', 'lo', 'root');
    return null;
  } catch (err) {
    return `tc htb: ${err.message}`;
  }
}

// Shapes packets whose destination port matches `port` under `mask` (u32 match) to `rate`
// (tc syntax, e.g. '200kbit'). netem: [delay, jitter, loss] tried as the class's queue. Returns
// a description of what was set up.
export function shape({ port, mask = 0xffff, rate, queue = 30, netem = null }) {
  tc('qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb', 'default', '10');
  tc('class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:10', 'htb', 'rate', '10gbit');
  tc('class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:20', 'htb', 'rate', rate, 'ceil', rate);
  const limit = String(queue * 1250);
  tc('qdisc', 'add', 'dev', 'lo', 'parent', '1:20', 'handle', '20:', 'tbf', 'rate', rate, 'burst', '3000',
    'limit', limit);
  let what = `htb ${rate} + tbf limit ${limit} bytes`;
  try {
    if (!netem) throw new Error('no netem asked for');
    const [delay, jitter, loss] = netem;
    tc('qdisc', 'add', 'dev', 'lo', 'parent', '20:1', 'handle', '30:', 'netem', 'delay', delay, jitter,
      'loss', loss, 'limit', String(queue));
    what += ` + netem delay ${delay} ${jitter} loss ${loss}`;
  } catch {
    // No netem in this kernel (or none asked for): the rate limit alone, with a short queue
    // (drops and queueing delay come from the rate).
  }
  tc('filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32',
    'match', 'ip', 'dport', String(port), `0x${mask.toString(16)}`, 'flowid', '1:20');
  return what;
}

export function unshape() {
  try {
    tc('qdisc', 'del', 'dev', 'lo', 'root');
  } catch {
    // not shaped
  }
}
