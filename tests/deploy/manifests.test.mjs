// The deployment files in deploy/ checked without a cluster: every YAML file parses strictly,
// every Kubernetes object validates against the Kubernetes OpenAPI schemas (the generated
// validators of the kubernetes-models package), and the properties docs/deploy.md promises
// hold: hardened pods, pinned images, probes on /healthz, a grace period above the drain, an
// ingress fit for WebSockets and attachments, Prometheus scraping, configuration that spreekd
// itself accepts, a systemd unit and an image build file that keep their hardening.
//
// SPREEKD, SPREEKCTL and SPREEK_RELAY (set by CTest) are the binaries whose flags and
// configuration parser are the reference; without them those checks fail.
//
// deploy/kubernetes/region/ is an overlay of the base: its patches (JSON patches, RFC 6902) are
// applied here to the base's objects and the results checked like the base's.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { parseAllDocuments } from 'yaml';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEPLOY = join(ROOT, 'deploy');
const K8S = join(DEPLOY, 'kubernetes');
const read = (p) => readFileSync(p, 'utf8');
const rel = (p) => relative(ROOT, p);

// spreekd's defaults for the values checked here (docs/operations.md, common/src/config.c).
const DEFAULTS = { drain_timeout_s: 5, idle_timeout_s: 60, file_max_bytes: 10485760, max_connections: 20000 };

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

const isPatch = (p) => p.includes(`${join('kubernetes', 'region', 'patches')}/`);
const yamlFiles = walk(DEPLOY).filter((p) => /\.ya?ml$/.test(p) && !isPatch(p));

// Every document of every YAML file, parsed strictly (duplicate keys, tabs, anything the YAML
// 1.2 parser warns about is an error).
function loadYaml(file) {
  const docs = parseAllDocuments(read(file), { uniqueKeys: true, strict: true, prettyErrors: true });
  const out = [];
  for (const d of docs) {
    const problems = [...d.errors, ...d.warnings];
    assert.equal(problems.length, 0, `${rel(file)}: ${problems.map((e) => e.message).join('; ')}`);
    const obj = d.toJS();
    if (obj !== null) out.push({ file, obj });
  }
  return out;
}

const all = yamlFiles.flatMap(loadYaml);
const objects = all.filter(({ obj }) => obj.kind !== 'Kustomization');
const byKind = (kind) => objects.filter(({ obj }) => obj.kind === kind).map(({ obj }) => obj);
const one = (kind, name) => {
  const found = byKind(kind).filter((o) => o.metadata.name === name);
  assert.equal(found.length, 1, `exactly one ${kind} ${name}`);
  return found[0];
};
const workloads = () => objects.filter(({ obj }) => ['Deployment', 'DaemonSet', 'StatefulSet'].includes(obj.kind));
const spreekd = () => one('Deployment', 'spreekd');
const spreekdConfig = () => ({ ...DEFAULTS, ...JSON.parse(one('ConfigMap', 'spreekd-config').data['spreekd.json']) });

// Objects whose kind comes from a CRD (not in the Kubernetes OpenAPI schemas): checked by the
// tests below instead.
const CRD_KINDS = new Set(['ServiceMonitor']);

async function schemaFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const path = group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
  const mod = await import(path);
  return mod[kind];
}

test('every YAML file under deploy/ parses strictly, with apiVersion, kind and name', () => {
  assert.ok(yamlFiles.length >= 10, `found ${yamlFiles.length} YAML files`);
  for (const { file, obj } of all) {
    assert.equal(typeof obj.apiVersion, 'string', `${rel(file)}: apiVersion`);
    assert.equal(typeof obj.kind, 'string', `${rel(file)}: kind`);
    if (obj.kind !== 'Kustomization') assert.ok(obj.metadata?.name, `${rel(file)}: ${obj.kind} without a name`);
  }
});

test('every Kubernetes object validates against the Kubernetes OpenAPI schema', async () => {
  let n = 0;
  for (const { file, obj } of objects) {
    if (CRD_KINDS.has(obj.kind)) continue;
    const Model = await schemaFor(obj.apiVersion, obj.kind);
    assert.ok(Model, `${rel(file)}: no schema for ${obj.apiVersion} ${obj.kind}`);
    assert.doesNotThrow(() => new Model(obj).validate(), `${rel(file)}: ${obj.kind} ${obj.metadata.name}`);
    n++;
  }
  assert.ok(n >= 12, `validated ${n} objects`);
});

test('the schema check is not blind: broken objects are refused', async () => {
  const Deployment = await schemaFor('apps/v1', 'Deployment');
  const d = structuredClone(spreekd());
  d.spec.replicas = 'one';
  assert.throws(() => new Deployment(d).validate(), /replicas/);
  const e = structuredClone(spreekd());
  e.spec.template.spec.containers[0].securityContext.runAsNonRoot = 'yes';
  assert.throws(() => new Deployment(e).validate(), /runAsNonRoot/);
  const f = structuredClone(spreekd());
  delete f.spec.template.spec.containers[0].name;
  assert.throws(() => new Deployment(f).validate(), /name/);
});

test('kustomizations list exactly their files, and pin every image to a version', () => {
  const kusts = all.filter(({ obj }) => obj.kind === 'Kustomization');
  assert.equal(kusts.length, 4, 'deploy/kubernetes and its turn, relay and region');
  for (const { file, obj } of kusts) {
    const dir = dirname(file);
    const here = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml' && f !== 'secrets.example.yaml');
    const files = obj.resources.filter((r) => r !== '..'); // region/: the base, then patches
    assert.deepEqual([...files].sort(), here.sort(), `${rel(file)}: resources are the directory's files`);
    for (const pt of obj.patches ?? []) assert.ok(statSync(join(dir, pt.path)).isFile(), `${rel(file)}: ${pt.path}`);
    const base = obj.resources.includes('..')
      ? loadYaml(join(dir, '..', 'kustomization.yaml'))[0].obj.resources.map((r) => join(dir, '..', r)) : [];
    const docs = [...files.map((r) => join(dir, r)), ...base].flatMap((f) => loadYaml(f)).map((d) => d.obj);
    const mapped = new Map((obj.images ?? []).map((i) => [i.name, i]));
    for (const w of docs.filter((o) => o.spec?.template?.spec)) {
      const ps = w.spec.template.spec;
      for (const c of [...(ps.initContainers ?? []), ...ps.containers]) {
        const m = mapped.get(c.image);
        assert.ok(m, `${rel(file)}: image ${c.image} of ${w.metadata.name}/${c.name} is not pinned in images:`);
        assert.match(m.newTag, /^\d+\.\d+\.\d+$/, `${c.image}: a version tag`);
        assert.doesNotMatch(m.newName, /:latest$|@$/, `${c.image}: no latest`);
        assert.match(m.newName, /^registry\.example\//, `${c.image}: a placeholder registry, to replace`);
      }
    }
    for (const d of docs.filter((o) => o.kind !== 'Namespace')) {
      assert.ok(!d.metadata.namespace || d.metadata.namespace === obj.namespace, `${d.kind} ${d.metadata.name}: namespace`);
    }
  }
});

test('namespaces: restricted Pod Security for spreekd, privileged only where hostNetwork is', () => {
  const ns = Object.fromEntries(byKind('Namespace').map((n) => [n.metadata.name, n.metadata.labels]));
  assert.equal(ns.spreekkamer['pod-security.kubernetes.io/enforce'], 'restricted');
  assert.equal(ns['spreekkamer-turn']['pod-security.kubernetes.io/enforce'], 'privileged');
  assert.equal(ns['spreekkamer-turn']['pod-security.kubernetes.io/warn'], 'restricted');
  assert.equal(ns['spreekkamer-relay']['pod-security.kubernetes.io/enforce'], 'privileged');
  assert.equal(ns['spreekkamer-relay']['pod-security.kubernetes.io/warn'], 'restricted');
});

// The namespace a workload of deploy/kubernetes lands in (its kustomization's).
const nsOf = (file, obj) => obj.metadata.namespace ??
  (rel(file).includes('/turn/') ? 'spreekkamer-turn' : rel(file).includes('/relay/') ? 'spreekkamer-relay' : 'spreekkamer');

// The coturn container starts as root to bind 443 and drops to the turnserver user; it is the
// one container allowed to, with exactly these capabilities (turn/daemonset.yaml).
const ROOT_CONTAINERS = { coturn: ['NET_BIND_SERVICE', 'SETGID', 'SETUID'] };

test('every pod is hardened: non-root, read-only root, no escalation, no capabilities, seccomp, resources', () => {
  const ws = workloads();
  assert.ok(ws.length >= 3);
  for (const { file, obj } of ws) checkPod(file, obj);
});

function checkPod(file, obj) {
  {
    const ps = obj.spec.template.spec;
    const where = `${rel(file)}: ${obj.metadata.name}`;
    assert.equal(ps.automountServiceAccountToken, false, `${where}: no service account token`);
    assert.equal(ps.securityContext?.seccompProfile?.type, 'RuntimeDefault', `${where}: seccomp RuntimeDefault`);
    assert.ok(!ps.hostPID && !ps.hostIPC, `${where}: no host PID/IPC`);
    for (const c of [...(ps.initContainers ?? []), ...ps.containers]) {
      const at = `${where}/${c.name}`;
      const sc = c.securityContext ?? {};
      assert.equal(sc.allowPrivilegeEscalation, false, `${at}: allowPrivilegeEscalation false`);
      assert.equal(sc.readOnlyRootFilesystem, true, `${at}: readOnlyRootFilesystem`);
      assert.ok(!sc.privileged, `${at}: not privileged`);
      assert.deepEqual(sc.capabilities?.drop, ['ALL'], `${at}: drops ALL capabilities`);
      if (ROOT_CONTAINERS[c.name]) {
        assert.deepEqual([...(sc.capabilities.add ?? [])].sort(), ROOT_CONTAINERS[c.name], `${at}: capabilities`);
      } else {
        const nonRoot = sc.runAsNonRoot ?? ps.securityContext?.runAsNonRoot;
        const uid = sc.runAsUser ?? ps.securityContext?.runAsUser;
        assert.equal(nonRoot, true, `${at}: runAsNonRoot`);
        assert.ok(uid === undefined || uid > 0, `${at}: runAsUser ${uid}`);
        assert.equal(sc.capabilities?.add, undefined, `${at}: adds no capability`);
      }
      for (const k of ['cpu', 'memory']) {
        assert.ok(c.resources?.requests?.[k], `${at}: requests.${k}`);
        assert.ok(c.resources?.limits?.[k], `${at}: limits.${k}`);
      }
      assert.ok(!/:latest$/.test(c.image), `${at}: no latest tag`);
    }
    const ns = nsOf(file, obj);
    if (ns === 'spreekkamer') {
      // What Pod Security "restricted" refuses, so that the namespace label can be enforced.
      assert.ok(!ps.hostNetwork, `${where}: no hostNetwork under restricted`);
      for (const c of ps.containers) {
        for (const p of c.ports ?? []) assert.ok(!p.hostPort, `${where}: no hostPort under restricted`);
      }
      const allowed = ['configMap', 'secret', 'emptyDir', 'persistentVolumeClaim', 'projected', 'downwardAPI'];
      for (const v of ps.volumes ?? []) {
        const type = Object.keys(v).find((k) => k !== 'name');
        assert.ok(allowed.includes(type), `${where}: volume type ${type} under restricted`);
      }
    }
  }
}

test('spreekd: one replica on its volume, probes on /healthz and /livez, a grace period above the drain', () => {
  const d = spreekd();
  const cfg = spreekdConfig();
  // The current release keeps its state in SQLite: one writer, never two pods at once.
  assert.equal(d.spec.replicas, 1, 'single node (SQLite) in this release');
  assert.equal(d.spec.strategy.type, 'Recreate');
  const ps = d.spec.template.spec;
  const c = ps.containers.find((x) => x.name === 'spreekd');
  const port = c.ports.find((p) => p.name === 'http');
  assert.equal(port.containerPort, Number(cfg.listen.split(':').pop()), 'container port = listen port');
  // Liveness on /livez: /healthz says 503 while draining or while PostgreSQL is away, and
  // restarting nodes for a database outage would only add reconnecting clients.
  for (const [probe, path] of [['startupProbe', '/healthz'], ['readinessProbe', '/healthz'], ['livenessProbe', '/livez']]) {
    assert.equal(c[probe]?.httpGet?.path, path, `${probe} on ${path}`);
    assert.equal(c[probe].httpGet.port, 'http', `${probe} on the http port`);
  }
  // /livez answers while draining; even a probe that failed then would outlast the drain.
  const live = c.livenessProbe;
  assert.ok(live.periodSeconds * live.failureThreshold > cfg.drain_timeout_s, 'liveness outlasts the drain');
  assert.ok(ps.terminationGracePeriodSeconds >= cfg.drain_timeout_s + 10,
    `terminationGracePeriodSeconds ${ps.terminationGracePeriodSeconds} >= drain_timeout_s ${cfg.drain_timeout_s} + 10`);
  assert.equal(c.args[0], '--config');
  const mount = c.volumeMounts.find((m) => c.args[1].startsWith(`${m.mountPath}/`));
  assert.equal(ps.volumes.find((v) => v.name === mount.name).configMap.name, 'spreekd-config');
  const data = c.volumeMounts.find((m) => m.mountPath === cfg.data_dir);
  assert.ok(data, 'the data directory is a volume');
  const claim = ps.volumes.find((v) => v.name === data.name).persistentVolumeClaim.claimName;
  assert.deepEqual(one('PersistentVolumeClaim', claim).spec.accessModes, ['ReadWriteOnce']);
  const tmp = c.volumeMounts.find((m) => m.mountPath === '/tmp');
  assert.ok(ps.volumes.find((v) => v.name === tmp.name).emptyDir, '/tmp is writable (SQLite temp files)');
  // Secrets reach spreekd as flags or files, never through the ConfigMap.
  assert.doesNotMatch(one('ConfigMap', 'spreekd-config').data['spreekd.json'], /secret/i);
  assert.equal(c.env.find((e) => e.name === 'TURN_SECRET').valueFrom.secretKeyRef.name, 'spreekd-turn');
});

test('spreekd: Service, PodDisruptionBudget and Prometheus scraping reach the pods', () => {
  const labels = spreekd().spec.template.metadata.labels;
  const matches = (sel) => Object.entries(sel).every(([k, v]) => labels[k] === v);
  const svc = one('Service', 'spreekd');
  assert.ok(matches(svc.spec.selector), 'Service selects the pods');
  assert.equal(svc.spec.ports[0].targetPort, 'http');
  assert.ok(matches(one('PodDisruptionBudget', 'spreekd').spec.selector.matchLabels), 'PDB selects the pods');
  assert.ok(matches(one('NetworkPolicy', 'spreekd').spec.podSelector.matchLabels), 'NetworkPolicy selects the pods');
  const ann = spreekd().spec.template.metadata.annotations;
  assert.equal(ann['prometheus.io/scrape'], 'true');
  assert.equal(ann['prometheus.io/path'], '/metrics');
  assert.equal(ann['prometheus.io/port'], String(spreekd().spec.template.spec.containers[0].ports[0].containerPort));
  const sm = one('ServiceMonitor', 'spreekd');
  assert.equal(sm.apiVersion, 'monitoring.coreos.com/v1');
  assert.ok(Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => svc.metadata.labels[k] === v), 'ServiceMonitor selects the Service');
  assert.deepEqual(sm.spec.endpoints.map((e) => [e.port, e.path]), [['http', '/metrics']]);
  const cfg = spreekdConfig();
  const udp = one('NetworkPolicy', 'spreekd').spec.ingress.flatMap((r) => r.ports).find((p) => p.protocol === 'UDP');
  assert.deepEqual([udp.port, udp.endPort], [cfg.relay_port_min, cfg.relay_port_max], 'relay ports open');
});

const sizeBytes = (s) => {
  const m = /^(\d+)([kmg]?)$/i.exec(String(s));
  assert.ok(m, `size ${s}`);
  return Number(m[1]) * { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase()];
};

test('ingress: WebSocket timeouts, attachment body size, TLS, and nothing private routed', () => {
  const ing = one('Ingress', 'spreekd');
  const cfg = spreekdConfig();
  const a = ing.metadata.annotations;
  for (const k of ['proxy-read-timeout', 'proxy-send-timeout']) {
    assert.ok(Number(a[`nginx.ingress.kubernetes.io/${k}`]) > cfg.idle_timeout_s, `${k} above idle_timeout_s`);
  }
  assert.ok(sizeBytes(a['nginx.ingress.kubernetes.io/proxy-body-size']) >= cfg.file_max_bytes, 'body size >= file_max_bytes');
  const host = new URL(cfg.public_url).host;
  assert.equal(new URL(cfg.public_url).protocol, 'https:');
  assert.deepEqual(ing.spec.tls, [{ hosts: [host], secretName: 'spreekd-tls' }]);
  assert.equal(ing.spec.rules.length, 1);
  assert.equal(ing.spec.rules[0].host, host, 'ingress host = public_url');
  const paths = ing.spec.rules[0].http.paths;
  const routes = (p) => paths.some((x) => (x.pathType === 'Exact' ? x.path === p : p.startsWith(x.path)));
  for (const p of ['/ws', '/files/f_x', '/api/v1/consults', '/join', '/console', '/', '/js/join.js', '/vendor/spk_mls.wasm', '/mls/spk_mls.js']) {
    assert.ok(routes(p), `routes ${p}`);
  }
  for (const p of ['/metrics', '/healthz', '/livez']) assert.ok(!routes(p), `does not route ${p}`);
  for (const x of paths) assert.equal(x.backend.service.name, 'spreekd');
  // Every static entry of the web client is reachable.
  for (const name of readdirSync(join(ROOT, 'web'))) {
    if (name === 'README.md') continue;
    const p = statSync(join(ROOT, 'web', name)).isDirectory() ? `/${name}/x` : `/${name}`;
    assert.ok(routes(p), `web/${name} routed`);
  }
  // spreekd believes X-Forwarded-For only from the controller's addresses.
  assert.ok(cfg.trusted_proxies, 'trusted_proxies set');
  assert.equal(cfg.client_address_header, 'X-Forwarded-For');
});

test('coturn on Kubernetes keeps deploy/coturn/turnserver.conf hardening and spreekd points at it', () => {
  const conf = (text) => text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const reference = conf(read(join(DEPLOY, 'coturn/turnserver.conf')));
  const k8s = conf(one('ConfigMap', 'coturn-config').data['turnserver.conf']);
  const keys = ['no-dtls', 'no-rfc5780', 'no-tlsv1', 'no-tlsv1_1', 'use-auth-secret', 'fingerprint', 'no-multicast-peers',
    'no-tcp-relay', 'no-cli', 'no-software-attribute', 'secure-stun', 'proc-user=turnserver', 'proc-group=turnserver',
    'denied-peer-ip=0.0.0.0-255.255.255.255', 'denied-peer-ip=::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
    'tls-listening-port=443', 'listening-port=3478'];
  for (const k of keys) {
    assert.ok(reference.includes(k), `reference has ${k}`);
    assert.ok(k8s.includes(k), `Kubernetes coturn has ${k}`);
  }
  assert.ok(k8s.some((l) => l.startsWith('allowed-peer-ip=')), 'allows the relay');
  assert.ok(!k8s.some((l) => l.startsWith('static-auth-secret')), 'no secret in the ConfigMap');
  const ds = one('DaemonSet', 'coturn');
  const c = ds.spec.template.spec.containers[0];
  assert.ok(c.args.includes('--static-auth-secret=$(TURN_SECRET)'));
  assert.equal(c.env.find((e) => e.name === 'TURN_SECRET').valueFrom.secretKeyRef.name, 'coturn-secret');
  assert.equal(ds.spec.template.spec.hostNetwork, true);
  const realm = k8s.find((l) => l.startsWith('realm=')).slice(6);
  for (const u of spreekdConfig().turn_urls.split(',')) {
    assert.equal(/^turns?:([^:?]+)/.exec(u)[1], realm, `turn_urls host ${u} = coturn realm`);
  }
});

test('host names in deploy/ are placeholders (.example) or loopback', () => {
  const hostRe = /\b(?:https?|wss?|turns?):\/{0,2}([a-z0-9.-]+)|newName:\s*([a-z0-9.-]+)\/|host:\s*([a-z0-9.-]+)|hosts:\s*\["([a-z0-9.-]+)"\]|realm=([a-z0-9.-]+)/gi;
  let n = 0;
  for (const file of walk(DEPLOY)) {
    for (const m of read(file).matchAll(hostRe)) {
      const host = m.slice(1).find(Boolean);
      if (!host.includes('.')) continue;
      n++;
      assert.ok(/\.example$/.test(host) || /^(127\.0\.0\.1|localhost|0\.0\.0\.0)$/.test(host),
        `${rel(file)}: host ${host} is not a placeholder`);
    }
  }
  assert.ok(n >= 5, `found ${n} host names`);
});

// The configuration files deploy/ ships, run through spreekd's own parser (spreekctl reads the
// same file with the same table): an unknown key or a bad value fails here, not in production.
test('every configuration file in deploy/ is accepted by spreekd\'s configuration parser', () => {
  const ctl = process.env.SPREEKCTL;
  assert.ok(ctl, 'SPREEKCTL not set (CTest sets it)');
  const configs = [
    ['deploy/kubernetes/configmap.yaml', one('ConfigMap', 'spreekd-config').data['spreekd.json']],
    ['deploy/systemd/spreekd.json', read(join(DEPLOY, 'systemd/spreekd.json'))],
    ['deploy/oci/spreekd.json', read(join(DEPLOY, 'oci/spreekd.json'))],
  ];
  const dir = mkdtempSync(join(tmpdir(), 'spk-deploy-'));
  try {
    for (const [name, text] of configs) {
      JSON.parse(text);
      const f = join(dir, `${basename(name)}.json`);
      writeFileSync(f, text);
      const r = spawnSync(ctl, ['--config', f, '--data', join(dir, 'data'), 'init'], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    }
    // And the parser does refuse: an unknown key.
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ ...JSON.parse(configs[0][1]), stoer: 'postgresql://db' }));
    const r = spawnSync(ctl, ['--config', bad, '--data', join(dir, 'data'), 'init'], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /unknown key "stoer"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every flag the manifests and the unit pass is one spreekd knows', () => {
  const bin = process.env.SPREEKD;
  assert.ok(bin, 'SPREEKD not set (CTest sets it)');
  const help = spawnSync(bin, ['--help'], { encoding: 'utf8' }).stdout;
  const flags = new Set([...help.matchAll(/^\s+(--[a-z-]+)/gm)].map((m) => m[1]));
  assert.ok(flags.size > 40, `parsed ${flags.size} flags from --help`);
  const used = [...spreekd().spec.template.spec.containers[0].args.filter((a) => a.startsWith('--'))];
  const unit = read(join(DEPLOY, 'systemd/spreekd.service'));
  used.push(...(/^ExecStart=\S+ (.*)$/m.exec(unit)[1].match(/--[a-z-]+/g)));
  assert.ok(used.length >= 4);
  for (const f of used) assert.ok(flags.has(f), `${f} is a spreekd flag`);
});

// --- the region overlay and the relay nodes ------------------------------------------------

// RFC 6902 on a copy of obj: the operations the region's patches use (add, replace, remove).
function jsonPatch(obj, ops) {
  const out = structuredClone(obj);
  for (const op of ops) {
    const keys = op.path.split('/').slice(1).map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = keys.pop();
    let at = out;
    for (const k of keys) {
      at = at[k];
      assert.ok(at !== undefined, `patch path ${op.path} exists`);
    }
    if (op.op === 'replace' || op.op === 'remove') assert.ok(last in at, `patch path ${op.path} exists`);
    if (op.op === 'remove') {
      if (Array.isArray(at)) at.splice(Number(last), 1);
      else delete at[last];
    } else {
      assert.ok(['add', 'replace'].includes(op.op), `patch op ${op.op}`);
      at[last] = structuredClone(op.value);
    }
  }
  return out;
}

const REGION = join(K8S, 'region');

// The base's objects as the region renders them (its patches applied; local-config dropped).
function region() {
  const k = loadYaml(join(REGION, 'kustomization.yaml'))[0].obj;
  const out = objects.filter(({ file }) => dirname(file) === K8S).map(({ obj }) => obj);
  return out.map((o) => {
    const pt = (k.patches ?? []).find((p) => p.target.kind === o.kind && p.target.name === o.metadata.name);
    if (!pt) return o;
    const ops = parseAllDocuments(read(join(REGION, pt.path)), { uniqueKeys: true, strict: true })[0].toJS();
    assert.ok(Array.isArray(ops), `${pt.path}: a JSON patch`);
    return jsonPatch(o, ops);
  }).filter((o) => o.metadata.annotations?.['config.kubernetes.io/local-config'] !== 'true');
}

test('region: three spreekd replicas on PostgreSQL and Redis, rolling, a budget of N-1, media on relay nodes', async () => {
  const objs = region();
  const d = objs.find((o) => o.kind === 'Deployment' && o.metadata.name === 'spreekd');
  const Deployment = await schemaFor('apps/v1', 'Deployment');
  assert.doesNotThrow(() => new Deployment(d).validate(), 'the patched Deployment validates');
  checkPod(join(REGION, 'patches/spreekd.yaml'), d);
  assert.ok(d.spec.replicas >= 3, `replicas ${d.spec.replicas}`);
  assert.equal(d.spec.strategy.type, 'RollingUpdate');
  assert.equal(d.spec.strategy.rollingUpdate.maxUnavailable, 1);
  const pdb = objs.find((o) => o.kind === 'PodDisruptionBudget');
  assert.equal(pdb.spec.minAvailable, d.spec.replicas - 1, 'minAvailable N-1');
  assert.ok(!objs.some((o) => o.kind === 'PersistentVolumeClaim'), 'no SQLite volume');
  const ps = d.spec.template.spec;
  assert.ok(ps.volumes.every((v) => !v.persistentVolumeClaim), 'no volume a second pod could not mount');
  const c = ps.containers[0];
  assert.ok(!c.args.includes('--relay-address'), 'no in-process relay');
  const cfgVol = ps.volumes.find((v) => v.name === c.volumeMounts.find((m) => c.args[1].startsWith(`${m.mountPath}/`)).name);
  assert.equal(cfgVol.secret?.secretName, 'spreekd-region-config', 'the configuration (credentials) from a Secret');
  const help = spawnSync(process.env.SPREEKD, ['--help'], { encoding: 'utf8' }).stdout;
  for (const f of c.args.filter((a) => a.startsWith('--'))) assert.ok(help.includes(f), `${f} is a spreekd flag`);

  // The configuration the Secret is made from: spreekd's parser accepts it; it names the shared
  // store, Redis and the relay nodes, with placeholders for every credential.
  const text = read(join(REGION, 'spreekd-region.example.json'));
  const cfg = JSON.parse(text);
  assert.match(cfg.store, /^postgresql:\/\//);
  assert.ok(cfg.redis && cfg.relay_nodes.split(',').length >= 2 && cfg.relay_secret);
  for (const k of ['store', 'redis_password', 'relay_secret']) assert.match(cfg[k], /REPLACE/, `${k} is a placeholder`);
  assert.equal(cfg.relay_port_min, undefined, 'no in-process relay settings');
  const dir = mkdtempSync(join(tmpdir(), 'spk-deploy-region-'));
  try {
    const r = spawnSync(process.env.SPREEKCTL, ['--config', join(REGION, 'spreekd-region.example.json'), '--store', '',
      '--data', join(dir, 'data'), 'init'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // Relay nodes: the DaemonSet's flags are spreek-relay's, its link port the one spreekd lists.
  const relay = one('DaemonSet', 'spreek-relay');
  const rc = relay.spec.template.spec.containers[0];
  assert.ok(relay.spec.template.spec.hostNetwork, 'relay nodes on the host network');
  const rhelp = spawnSync(process.env.SPREEK_RELAY, ['--help'], { encoding: 'utf8' }).stdout;
  assert.ok(rhelp.includes('--secret-file'), 'SPREEK_RELAY is spreek-relay');
  for (const f of rc.args.filter((a) => a.startsWith('--'))) assert.ok(rhelp.includes(`${f} `), `${f} is a spreek-relay flag`);
  const listen = rc.args[rc.args.indexOf('--listen') + 1];
  for (const n of cfg.relay_nodes.split(',')) assert.equal(n.split(':').pop(), listen.split(':').pop(), `${n}: the link port`);
  const secret = rc.args[rc.args.indexOf('--secret-file') + 1];
  assert.ok(rc.volumeMounts.some((m) => secret.startsWith(`${m.mountPath}/`)), 'the link secret from a Secret volume');
  assert.ok(!rc.args.some((a) => /secret/i.test(a) && !a.startsWith('/') && !a.startsWith('--')), 'no secret on the command line');
});

// --- systemd and the image build file -----------------------------------------------------

function unitDirectives(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1], [...(out.get(m[1]) ?? []), m[2]]);
  }
  return out;
}

test('the systemd unit keeps its hardening and agrees with its config file', () => {
  const u = unitDirectives(read(join(DEPLOY, 'systemd/spreekd.service')));
  const last = (k) => u.get(k)?.at(-1);
  const expect = {
    User: 'spreekkamer', StateDirectory: 'spreekkamer', StateDirectoryMode: '0700', UMask: '0077',
    NoNewPrivileges: 'yes', ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes', PrivateDevices: 'yes',
    PrivateUsers: 'yes', ProtectKernelTunables: 'yes', ProtectKernelModules: 'yes', ProtectControlGroups: 'yes',
    RestrictNamespaces: 'yes', RestrictSUIDSGID: 'yes', LockPersonality: 'yes', MemoryDenyWriteExecute: 'yes',
    SystemCallArchitectures: 'native', CapabilityBoundingSet: '', AmbientCapabilities: '', Restart: 'on-failure',
    RestartPreventExitStatus: '2', KillSignal: 'SIGTERM',
  };
  for (const [k, v] of Object.entries(expect)) assert.equal(last(k), v, `${k}=${v}`);
  assert.deepEqual(last('RestrictAddressFamilies').split(/\s+/).sort(), ['AF_INET', 'AF_INET6', 'AF_UNIX']);
  assert.equal(u.get('SystemCallFilter')[0], '@system-service');
  const json = JSON.parse(read(join(DEPLOY, 'systemd/spreekd.json')));
  const cfg = { ...DEFAULTS, ...json };
  assert.ok(Number(last('TimeoutStopSec')) >= cfg.drain_timeout_s + 10, 'TimeoutStopSec >= drain_timeout_s + 10');
  assert.ok(Number(last('LimitNOFILE')) > cfg.max_connections * 2, 'LimitNOFILE above max_connections with room for media');
  assert.equal(cfg.data_dir, `/var/lib/${last('StateDirectory')}`, 'data_dir is the StateDirectory');
  assert.match(last('ExecStart'), /^\/usr\/local\/bin\/spreekd --config \/etc\/spreekkamer\/spreekd\.json /);
  assert.equal(cfg.web_root, '/usr/local/share/spreekkamer/web', 'web_root where cmake --install puts it');
  const sysusers = read(join(DEPLOY, 'systemd/spreekkamer.sysusers')).split('\n').find((l) => l.startsWith('u '));
  assert.equal(sysusers.split(/\s+/)[1], last('User'), 'sysusers.d makes the unit\'s user');
  // docs/operations.md points at the unit instead of keeping a second copy that could drift.
  const ops = read(join(ROOT, 'docs/operations.md'));
  assert.doesNotMatch(ops, /^\[Service\]$/m, 'no copy of the unit in docs/operations.md');
  assert.match(ops, /deploy\/systemd\/spreekd\.service/);
});

test('the image build file: multi-stage bookworm, no registry named, runtime stage non-root with libraries only', () => {
  const text = read(join(DEPLOY, 'oci/Containerfile'));
  const lines = text.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
  const arg = lines.find((l) => l.startsWith('ARG DEBIAN_IMAGE='));
  const base = arg.split('=')[1];
  assert.match(base, /^debian:bookworm(-slim)?$/, 'a short name: the registry is the builder\'s to choose');
  const froms = lines.filter((l) => l.startsWith('FROM '));
  assert.ok(froms.length >= 3, 'build, web and runtime stages');
  for (const f of froms) assert.match(f, /^FROM \$\{DEBIAN_IMAGE\}/, 'every stage from the one base');
  assert.doesNotMatch(lines.join('\n'), /sources\.list|deb https?:|:latest/, 'no apt sources written, no latest');
  const last = lines.slice(lines.lastIndexOf(froms.at(-1)));
  const runtime = last.join('\n');
  assert.doesNotMatch(runtime, /-dev\b|build-essential|cmake|emscripten|gcc/, 'no build tools in the runtime stage');
  assert.match(runtime, / ca-certificates\b/, 'the CA store, for HTTPS webhooks');
  for (const lib of ['libuv1', 'libwebsockets17', 'libwebsockets-evlib-uv', 'libjansson4', 'libsqlite3-0', 'libssl3', 'libnice10', 'libglib2.0-0']) {
    assert.ok(runtime.includes(` ${lib}`), `runtime installs ${lib}`);
  }
  const user = last.find((l) => l.startsWith('USER ')).split(' ')[1];
  assert.match(user, /^[1-9]\d*:[1-9]\d*$/, 'numeric non-root user');
  assert.equal(user.split(':')[0], String(spreekd().spec.template.spec.securityContext.runAsUser), 'same uid as the pod');
  assert.ok(last.includes('STOPSIGNAL SIGTERM'));
  assert.ok(last.some((l) => l.startsWith('ENTRYPOINT ["/usr/local/bin/spreekd"]')));
  const cfg = JSON.parse(read(join(DEPLOY, 'oci/spreekd.json')));
  assert.equal(cfg.web_root, spreekdConfig().web_root);
  assert.equal(cfg.data_dir, spreekdConfig().data_dir);
  assert.ok(lines.some((l) => /^FROM \$\{DEBIAN_IMAGE\} AS coturn$/.test(l)), 'a coturn stage');
  const ignore = read(join(ROOT, '.dockerignore'));
  for (const p of ['.deps', 'build', 'node_modules', 'web/vendor']) assert.match(ignore, new RegExp(`^${p}$`, 'm'));
});
