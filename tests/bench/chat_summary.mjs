// Prints spreekload --chat's JSON summary (tests/bench/run_chat.sh) as a table, then the JSON.
import { readFileSync } from 'node:fs';

const s = JSON.parse(readFileSync(process.argv[2], 'utf8').trim().split('\n').at(-1) || '{}');
const row = (cells) => console.log(`| ${cells.join(' | ')} |`);
if (s.steps) {
  console.log(`${s.conversations} conversations x ${s.devices_per_conversation} devices (${s.kind}), ` +
    `${s.plaintext_bytes}-byte messages, set up in ${s.setup_s?.toFixed(1)} s`);
  row(['offered/s', 'messages/s', 'deliveries/s', 'e2e p50 ms', 'e2e p99 ms', 'incomplete', 'refused', 'spreekd CPU', 'control thread', 'µs/message (control)', 'control waited s', 'client CPU']);
  row(Array(12).fill('---:'));
  for (const t of s.steps) {
    row([t.rate_offered, Math.round(t.messages_per_s), Math.round(t.deliveries_per_s),
      (t.e2e_p50_us / 1000).toFixed(2), (t.e2e_p99_us / 1000).toFixed(2), t.incomplete,
      t.refused_unavailable ?? 0,
      t.spreekd_cpu_util.toFixed(2), t.control_thread_util.toFixed(2),
      `${t.spreekd_cpu_us_per_message.toFixed(1)} (${t.control_thread_us_per_message.toFixed(1)})`,
      t.control_thread_runqueue_wait_s.toFixed(2), t.client_cpu_util.toFixed(2)]);
  }
  if (s.deferred_messages !== undefined) {
    console.log(`messages left for a later loop turn (back-pressure): ${s.deferred_messages}`);
  }
  if (s.connections_lost !== undefined) {
    console.log(`connections lost: ${s.connections_lost}; closed by spreekd for an incomplete ` +
      `request head (408, header_timeout): ${s.header_timeouts ?? 'n/a'}`);
  }
}
if (s.modes) {
  console.log(`core: ${s.conversations} conversations x ${s.devices} devices, ` +
    `${s.messages_per_mode_and_round} messages per mode and round, ${s.rounds} rounds (medians), ` +
    `${s.out_per_message} messages out per message, ${s.out_bytes_per_message} bytes`);
  row(['batch', 'messages/s (loop)', 'µs/message (control thread)', 'µs/message (process)', 'thread CPU vs first']);
  row(Array(5).fill('---:'));
  for (const m of s.modes) {
    row([m.batch, m.messages_per_s, m.thread_cpu_us_per_message.toFixed(2),
      m.process_cpu_us_per_message.toFixed(2), m.thread_cpu_vs_first.toFixed(2)]);
  }
}
if (s.commit_sizes) {
  row(['group size', 'kind', 'commits', 'Commit bytes', 'Welcome bytes', 'round trip p50 ms', 'p99 ms', 'control thread ms/commit']);
  row(Array(8).fill('---:'));
  for (const g of s.commit_sizes) {
    for (const k of ['update', 'add_one', 'remove_one']) {
      const x = g[k];
      row([g.group_size, k, x.commits, x.commit_bytes ?? '', x.welcome_bytes ?? '', x.rtt_p50_ms.toFixed(2), x.rtt_p99_ms.toFixed(2), x.control_thread_ms_per_commit.toFixed(2)]);
    }
  }
}
console.log(JSON.stringify(s));
