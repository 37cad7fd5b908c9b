/**
 * `stoker demo`, the quick start: it must finish, show both outcomes, leave them in the
 * store for the next commands, and stay in step with examples/order-flows.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { compileFlow } from '../../../src/flow/index.js';
import demoFlows, { DEMO_ARGS } from '../../../src/cli/demo-flows.js';
import exampleFlows, { EXAMPLE_ARGS } from '../../../examples/order-flows.js';
import { buildCliAsync, json, runCli, tempDir, type Built, type RunJson } from './harness.js';

let built: Built;
let cwd: { path: string; remove(): void };

beforeAll(async () => {
  built = await buildCliAsync();
  cwd = tempDir('stoker-demo-');
});

afterAll(() => {
  built?.remove();
  cwd?.remove();
});

const cli = (args: string[]) => runCli(built, args, { cwd: cwd.path, timeoutMs: 60_000 });

describe('stoker demo', () => {
  it('runs both order flows on a fresh ./.stoker/demo.db, shows them, and exits 0', async () => {
    const r = await cli(['demo']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toContain('every state is stored in sqlite:./.stoker/demo.db (a fresh file).');
    expect(out).toMatch(/Started run [0-9a-f-]{36} \(order, order A-1001\)/);
    expect(out).toMatch(/Started run [0-9a-f-]{36} \(order-express, order A-1002\)/);
    // live progress: the retry, the failure, the compensations and both endings
    expect(out).toMatch(/order\s+charge-payment\s+RUNNING → READY\s+payment gateway did not answer within 2 s; attempt 2 in \d+ ms/);
    expect(out).toMatch(/order-express\s+ship-order\s+RUNNING → FAILURE/);
    expect(out).toMatch(/order-express\s+charge-payment\s+REVERTING → REVERTED\s+its revert ran/);
    expect(out).toMatch(/order\s+\(run\)\s+RUNNING → SUCCESS/);
    expect(out).toMatch(/order-express\s+\(run\)\s+REVERTING → REVERTED/);
    // the stored summary
    expect(out).toMatch(/^Run [0-9a-f-]{36} {2}order@1 {2}SUCCESS$/m);
    expect(out).toMatch(/^Run [0-9a-f-]{36} {2}order-express@1 {2}REVERTED$/m);
    expect(out).toContain('failure: CarrierRejected: the express courier does not deliver to Longyearbyen, SJ');
    expect(out).toMatch(/^\s+2\s+charge-payment\s+SUCCESS\s+2\s+1\s/m);
    expect(out).toMatch(/^\s+1\s+reserve-inventory\s+REVERTED\s+1\s+1\s/m);
    expect(out).toContain('Try next:');
    expect(out).toMatch(/runs list --store sqlite:\.\/\.stoker\/demo\.db/);
    expect(existsSync(join(cwd.path, '.stoker', 'demo.db'))).toBe(true);

    // what the demo stored is there for the next commands
    const list = await cli(['runs', 'list', '--store', 'sqlite:./.stoker/demo.db', '-f', 'json']);
    expect(list.code).toBe(0);
    const runs = json<RunJson[]>(list);
    expect(runs.map((x) => [x.flow, x.status]).sort()).toEqual([
      ['order', 'SUCCESS'],
      ['order-express', 'REVERTED'],
    ]);

    // a second demo starts from a fresh file: still exactly two runs
    const again = await cli(['demo']);
    expect(again.code).toBe(0);
    const after = json<RunJson[]>(await cli(['runs', 'list', '--store', 'sqlite:./.stoker/demo.db', '-f', 'json']));
    expect(after).toHaveLength(2);
    expect(after.map((x) => x.id).some((id) => runs.some((old) => old.id === id))).toBe(false);
  });

  it('-f json reports the runs, their atoms and events; reverts ran in reverse order', async () => {
    const r = await cli(['demo', '-f', 'json', '--store', 'sqlite:./other.db']);
    expect(r.code).toBe(0);
    const report = json<{ store: string; runs: RunJson[] }>(r);
    expect(report.store).toBe('sqlite:./other.db');
    const [order, express] = report.runs;
    expect(order?.flow).toBe('order');
    expect(order?.status).toBe('SUCCESS');
    const result = order?.result as {
      payment: { amountCents: number; attempt: number; idempotencyKey: string };
      shipment: { trackingNumber: string };
    };
    expect(result.payment).toMatchObject({ amountCents: 3499 + 2 * 1850, attempt: 2, idempotencyKey: `${order!.id}/charge-payment/2` });
    expect(result.shipment.trackingNumber).toBe('3SPOST1001NL');
    expect(order?.atoms?.map((a) => [a.name, a.state, a.attempt])).toEqual([
      ['validate-order', 'SUCCESS', 1],
      ['reserve-inventory', 'SUCCESS', 1],
      ['charge-payment', 'SUCCESS', 2],
      ['ship-order', 'SUCCESS', 1],
    ]);

    expect(express?.status).toBe('REVERTED');
    expect(express?.result).toBeNull();
    expect(express?.failure).toMatchObject({
      type: 'CarrierRejected',
      message: 'the express courier does not deliver to Longyearbyen, SJ',
    });
    expect(express?.atoms?.map((a) => a.state)).toEqual(['REVERTED', 'REVERTED', 'REVERTED', 'REVERTED']);
    // ship-order's error is not retryable: one attempt although its policy allows three
    expect(express?.atoms?.[3]).toMatchObject({ name: 'ship-order', attempt: 1 });
    const compensations = (express?.events ?? [])
      .filter((e) => e.atom !== null && e.fromState === 'REVERTING' && e.toState === 'REVERTED')
      .map((e) => e.atomName);
    expect(compensations).toEqual(['charge-payment', 'reserve-inventory']);
  });

  it('--help explains the demo with an example', async () => {
    const r = await cli(['demo', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: stoker demo [options]');
    expect(r.stdout).toMatch(/Examples:\n\s+\$ stoker demo/);
  });
});

describe('examples/order-flows.ts', () => {
  it('defines the same flows and arguments as the demo', () => {
    const graphs = (flows: typeof demoFlows) => flows.map((f) => compileFlow(f).graph);
    expect(graphs(exampleFlows)).toEqual(graphs(demoFlows));
    expect(graphs(demoFlows).map((g) => g.flow)).toEqual(['order', 'order-express']);
    expect(EXAMPLE_ARGS).toEqual(DEMO_ARGS);
  });
});
