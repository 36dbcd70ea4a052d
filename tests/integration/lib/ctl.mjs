// Runs spreekctl (the binary in $SPREEKCTL, else build/server/spreekctl) against a data directory.
import { spawnSync } from 'node:child_process';

const bin = () => process.env.SPREEKCTL ?? 'build/server/spreekctl';

// Runs `spreekctl --data dir ...args` and returns {status, stdout, stderr}.
export function ctl(dataDir, args) {
  const r = spawnSync(bin(), ['--data', dataDir, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Runs a spreekctl command with --json and returns the parsed output; throws on failure.
export function ctlJson(dataDir, args) {
  const r = ctl(dataDir, [...args, '--json']);
  if (r.status !== 0) throw new Error(`spreekctl ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}
