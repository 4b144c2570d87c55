/**
 * The deployment files of infra/ are valid, offline, with the tools this machine has:
 * - Kubernetes: every manifest parsed with a YAML parser and each object validated against the
 *   Kubernetes API's JSON schemas (kubernetes-models, schemas bundled in the npm package), the
 *   kustomization rendered by `kubectl kustomize` (no cluster needed), and the cross-references
 *   and the settings graceful drain depends on checked here;
 * - compose: `docker-compose config` (Compose's own schema check, no Docker engine needed);
 * - HAProxy (`haproxy -c`) and NATS (`nats-server -t`) configurations by the programs themselves.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { ROOT } from './support/services.js';

const run = promisify(execFile);
const INFRA = join(ROOT, 'infra');

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  [key: string]: unknown;
}

interface Container {
  name: string;
  image?: string;
  readinessProbe?: { httpGet?: { path?: string; port?: string | number } };
  livenessProbe?: unknown;
  lifecycle?: { preStop?: { exec?: { command?: string[] } } };
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  ports?: Array<{ name?: string; containerPort: number }>;
}

interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  terminationGracePeriodSeconds?: number;
  volumes?: Array<{ name: string; configMap?: { name: string }; secret?: { secretName: string } }>;
}

async function manifests(): Promise<Array<{ file: string; object: K8sObject }>> {
  const dir = join(INFRA, 'k8s');
  const out: Array<{ file: string; object: K8sObject }> = [];
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(await readFile(join(dir, file), 'utf8'))) {
      expect(doc.errors.map((e) => e.message), file).toEqual([]);
      const object = doc.toJS() as K8sObject | null;
      if (object) out.push({ file, object });
    }
  }
  return out;
}

/** The API groups the manifests use, each with its models (classes that validate against the schemas). */
const MODELS: Record<string, () => Promise<object>> = {
  v1: () => import('kubernetes-models/v1'),
  'apps/v1': () => import('kubernetes-models/apps/v1'),
  'batch/v1': () => import('kubernetes-models/batch/v1'),
  'policy/v1': () => import('kubernetes-models/policy/v1'),
};

/** The model of an object's apiVersion and kind, e.g. kubernetes-models/apps/v1 Deployment. */
async function modelOf(object: K8sObject): Promise<{ validate(): void } | undefined> {
  const module = (await MODELS[object.apiVersion]?.()) as Record<string, new (o: unknown) => { validate(): void }> | undefined;
  const Model = module?.[object.kind];
  return Model ? new Model(object) : undefined;
}

const podSpecOf = (o: K8sObject): PodSpec | undefined =>
  (o.spec as { template?: { spec?: PodSpec } } | undefined)?.template?.spec;

const podLabelsOf = (o: K8sObject): Record<string, string> | undefined =>
  (o.spec as { template?: { metadata?: { labels?: Record<string, string> } } } | undefined)?.template?.metadata?.labels;

const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** A program, installed from the distribution's packages when missing (root with apt), or the reason it cannot be. */
async function ensureProgram(program: string, aptPackage: string): Promise<string> {
  const found = await run('bash', ['-c', `command -v ${program} || ls /usr/sbin/${program} 2>/dev/null`]).then((r) => r.stdout.trim(), () => '');
  if (found !== '') return found.split('\n')[0] as string;
  const root = process.getuid?.() === 0;
  const apt = existsSync('/usr/bin/apt-get');
  if (!root || !apt) throw new Error(`${program} is missing: install it with 'sudo apt-get install --no-install-recommends ${aptPackage}'`);
  await run('bash', ['-c', `apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${aptPackage} >/dev/null`], {
    timeout: 300_000,
  }).catch((error: { stderr?: string; message: string }) => {
    throw new Error(`${program} is missing and 'apt-get install ${aptPackage}' failed: ${error.stderr || error.message}`);
  });
  return program;
}

describe('Kubernetes manifests (infra/k8s, infra/kustomization.yaml)', () => {
  it('parse, and every object is valid against the Kubernetes API schemas', async () => {
    const all = await manifests();
    expect(all.length).toBeGreaterThan(15);
    for (const { file, object } of all) {
      expect(object.apiVersion, `${file}: apiVersion`).toBeTypeOf('string');
      expect(object.metadata?.name, `${file}: metadata.name`).toBeTypeOf('string');
      if (object.kind !== 'Namespace') expect(object.metadata.namespace, `${file} ${object.kind}/${object.metadata.name}: namespace`).toBe('mps');
      const model = await modelOf(object);
      if (!model) throw new Error(`${file}: no schema for ${object.apiVersion} ${object.kind}`);
      try {
        model.validate();
      } catch (error) {
        throw new Error(`${file} ${object.kind}/${object.metadata.name}: ${(error as Error).message}`);
      }
    }
  });

  it('has every workload its pieces, selectors that select, and references that resolve', async () => {
    const all = (await manifests()).map((m) => m.object);
    const kustomization = parse(await readFile(join(INFRA, 'kustomization.yaml'), 'utf8')) as {
      resources: string[];
      configMapGenerator: Array<{ name: string; files: string[] }>;
    };
    const byKind = (kind: string) => all.filter((o) => o.kind === kind);
    const names = (kind: string) => new Set(byKind(kind).map((o) => o.metadata.name));
    const configMaps = new Set([...names('ConfigMap'), ...kustomization.configMapGenerator.map((g) => g.name)]);
    const secrets = names('Secret');
    const secretKeys = new Set(byKind('Secret').flatMap((s) => Object.keys((s.stringData ?? {}) as object).map((k) => `${s.metadata.name}/${k}`)));

    // What the issue asks for: gateways, control planes, analytics, senders, NATS, PostgreSQL, ClickHouse, Grafana.
    for (const name of ['gateway', 'control-plane', 'analytics', 'sender', 'grafana']) expect(names('Deployment'), name).toContain(name);
    for (const name of ['nats', 'postgres', 'clickhouse']) expect(names('StatefulSet'), name).toContain(name);
    for (const name of ['gateway', 'control-plane', 'nats']) expect(names('PodDisruptionBudget'), `a disruption budget for ${name}`).toContain(name);

    const workloads = all.filter((o) => podSpecOf(o));
    for (const w of workloads) {
      const where = `${w.kind}/${w.metadata.name}`;
      const selector = (w.spec as { selector?: { matchLabels?: Record<string, string> } }).selector?.matchLabels;
      if (w.kind !== 'Job') expect(selector && matches(selector, podLabelsOf(w)), `${where}: its selector selects its pods`).toBe(true);
      const pod = podSpecOf(w) as PodSpec;
      for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
        for (const from of c.envFrom ?? []) {
          if (from.configMapRef) expect(configMaps, `${where}: ConfigMap ${from.configMapRef.name}`).toContain(from.configMapRef.name);
          if (from.secretRef) expect(secrets, `${where}: Secret ${from.secretRef.name}`).toContain(from.secretRef.name);
        }
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          if (ref) expect(secretKeys, `${where}: secret key ${ref.name}/${ref.key}`).toContain(`${ref.name}/${ref.key}`);
        }
      }
      for (const v of pod.volumes ?? []) if (v.configMap) expect(configMaps, `${where}: ConfigMap ${v.configMap.name}`).toContain(v.configMap.name);
    }
    for (const s of byKind('Service')) {
      const selector = (s.spec as { selector?: Record<string, string> }).selector ?? {};
      expect(workloads.some((w) => matches(selector, podLabelsOf(w))), `Service/${s.metadata.name} selects a workload`).toBe(true);
    }
    for (const pdb of byKind('PodDisruptionBudget')) {
      const selector = (pdb.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
      expect(workloads.some((w) => matches(selector, podLabelsOf(w))), `PodDisruptionBudget/${pdb.metadata.name} selects a workload`).toBe(true);
    }

    // Graceful drain of the gateways: ready only while accepting, a pause before SIGTERM, and a
    // grace period that covers the pause, the drain window and the final close.
    const gateway = byKind('Deployment').find((d) => d.metadata.name === 'gateway') as K8sObject;
    const pod = podSpecOf(gateway) as PodSpec;
    const container = pod.containers[0] as Container;
    const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value]));
    const adminPort = container.ports?.find((p) => p.name === container.readinessProbe?.httpGet?.port)?.containerPort;
    expect(container.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(String(adminPort)).toBe(env.GATEWAY_ADMIN_PORT);
    expect(env.GATEWAY_ADMIN_HOST, 'the kubelet must reach the admin port').toBe('0.0.0.0');
    const preStop = container.lifecycle?.preStop?.exec?.command ?? [];
    expect(preStop[0]).toBe('sleep');
    const pauseS = Number(preStop[1]);
    const drainS = Number(env.GATEWAY_DRAIN_WINDOW_MS) / 1000;
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(pauseS + drainS + 1);

    // Every file the kustomization names exists.
    for (const file of [...kustomization.resources, ...kustomization.configMapGenerator.flatMap((g) => g.files)]) {
      expect(existsSync(join(INFRA, file)), `infra/${file}`).toBe(true);
    }
  });

  it('renders with kubectl kustomize, as kubectl apply -k would apply it', async () => {
    const kubectl = await ensureProgram('kubectl', 'kubernetes-client');
    const { stdout } = await run(kubectl, ['kustomize', INFRA], { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
    const rendered = parseAllDocuments(stdout).map((d) => d.toJS() as K8sObject);
    const kinds = rendered.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(kinds).toContain('Deployment/gateway');
    expect(kinds.filter((k) => k.startsWith('ConfigMap/grafana-dashboards-'))).toHaveLength(1);
    expect(rendered.every((o) => o.kind === 'Namespace' || o.metadata.namespace === 'mps')).toBe(true);
  }, 60_000);
});

describe('the compose file (infra/docker-compose.yml)', () => {
  it('is valid for docker-compose config, with every service the issue names', async () => {
    const compose = await ensureProgram('docker-compose', 'docker-compose');
    const file = join(INFRA, 'docker-compose.yml');
    const env = { ...process.env, MASTER_KEY: 'placeholder-for-validation' };
    await run(compose, ['-f', file, 'config', '-q'], { env, timeout: 60_000 }).catch((error: { stderr?: string; message: string }) => {
      throw new Error(`docker-compose config refused infra/docker-compose.yml: ${error.stderr || error.message}`);
    });
    const { stdout } = await run(compose, ['-f', file, 'config'], { env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
    const resolved = parse(stdout) as { services: Record<string, { depends_on?: Record<string, unknown>; environment?: Record<string, string>; stop_grace_period?: string }> };
    const services = Object.keys(resolved.services);
    for (const name of ['nats-1', 'nats-2', 'nats-3', 'nats-init', 'postgres', 'clickhouse', 'control-plane-1', 'control-plane-2', 'gateway-1', 'gateway-2', 'analytics', 'sender', 'haproxy', 'grafana']) {
      expect(services, name).toContain(name);
    }
    for (const [name, service] of Object.entries(resolved.services)) {
      for (const dependency of Object.keys(service.depends_on ?? {})) expect(services, `${name} depends on ${dependency}`).toContain(dependency);
    }
    // Every node service lists the three NATS nodes; gateways get time to drain.
    for (const name of ['control-plane-1', 'gateway-1', 'analytics', 'sender']) {
      expect(resolved.services[name]?.environment?.NATS_URL?.split(',')).toHaveLength(3);
    }
    const gateway = resolved.services['gateway-1'];
    expect(Number.parseInt(gateway?.stop_grace_period ?? '0', 10)).toBeGreaterThan(Number(gateway?.environment?.GATEWAY_DRAIN_WINDOW_MS) / 1000 + 1);
  }, 360_000);

  it('has HAProxy and NATS configurations their programs accept', async () => {
    const haproxy = await ensureProgram('haproxy', 'haproxy');
    await run(haproxy, ['-c', '-q', '-f', join(INFRA, 'haproxy/haproxy.cfg')], { timeout: 30_000 }).catch((error: { stderr?: string; message: string }) => {
      throw new Error(`haproxy -c refused infra/haproxy/haproxy.cfg: ${error.stderr || error.message}`);
    });
    const nats = await ensureProgram('nats-server', 'nats-server');
    const { stdout, stderr } = await run(nats, ['-t', '-c', join(INFRA, 'nats/nats-cluster.conf')], { env: { ...process.env, SERVER_NAME: 'nats-1' }, timeout: 30_000 });
    expect(`${stdout}${stderr}`).toMatch(/is valid/);
  }, 360_000);
});
