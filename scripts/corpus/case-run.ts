/**
 * Drives one case's steps through the stack layer, as a client of the library: each step's
 * request (README, "Operations"), its wait, and its expectations. The stack layer is the
 * runtime's `stacks` (an {@link Orchestrator}); engines run in this process, or in engine
 * processes for the case that kills one.
 */
import { join } from 'node:path';
import type { Orchestrator, StackRequest, StackRow } from '../../src/orchestration/stacks/index.js';
import type { Store } from '../../src/store/store.js';
import type { Case, Step, StepWait } from './cases.js';
import { killEngineOfRun, type EngineProcess } from './engine-processes.js';
import { checkExpectations, type CheckEnv, type Finding, type StepObservation } from './expectations.js';
import { StackReader, describeStack, stackState, stateOf } from './observe.js';
import { planSnapshots, snapshotKey, takeSnapshot, type Snapshot, type SnapshotPlan } from './snapshots.js';
import { validateWithCli } from './validate.js';

const POLL_MS = 100;
const DEFAULT_WAIT_S = 180;
/** how long everything must stand still before a wait for a resource state or an event gives up */
const QUIET_MS = 3_000;

export interface CaseRunOptions {
  orchestrator: Orchestrator;
  store: Store;
  /** a scratch directory of the case */
  dir: string;
  /** engine processes, when the case kills one */
  engines?: EngineProcess[];
  /** go on after a failed step */
  keepGoing?: boolean;
  log?: (line: string) => void;
}

export interface StepReport {
  index: number;
  op: string;
  failures: string[];
  advisories: string[];
}

/** A step that could not be carried out (its request failed unexpectedly, a wait timed out). */
class StepAborted extends Error {}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const REQUEST_OPS = new Set([
  'create',
  'update',
  'delete',
  'cancel_update',
  'preview_update',
  'validate',
  'signal',
  'mark_unhealthy',
  'suspend',
  'resume',
]);

export class CaseRun {
  private readonly reader: StackReader;
  /** logical stack name → the id of the stack created for it */
  private readonly ids = new Map<string, string>();
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly plan: SnapshotPlan;
  private readonly log: (line: string) => void;

  constructor(
    private readonly c: Case,
    private readonly options: CaseRunOptions,
  ) {
    this.reader = new StackReader(options.orchestrator);
    this.plan = planSnapshots(c.steps);
    this.log = options.log ?? (() => undefined);
  }

  /** Runs the steps in order; stops after the first failing step unless `keepGoing`. */
  async run(): Promise<StepReport[]> {
    const reports: StepReport[] = [];
    for (let i = 0; i < this.c.steps.length; i++) {
      const report = await this.runStep(i, this.c.steps[i]!);
      reports.push(report);
      if (report.failures.length > 0 && !this.options.keepGoing) break;
    }
    return reports;
  }

  private realName(logical: string): string {
    return `s-${logical}`.replace(/[^A-Za-z0-9_.-]/g, '_');
  }

  private async stackOf(logical: string): Promise<StackRow | null> {
    const id = this.ids.get(logical);
    return id === undefined ? null : this.reader.stack(id);
  }

  private async runStep(index: number, step: Step): Promise<StepReport> {
    const logical = step.stack ?? 'main';
    const started = Date.now();
    const report: StepReport = { index, op: step.op, failures: [], advisories: [] };
    const before = await this.stackOf(logical);
    const obs: StepObservation = {
      index,
      step,
      logical,
      stack: null,
      rejected: null,
      changedByRejected: null,
      eventsBefore: await this.reader.lastEventId(before),
      preview: null,
      validate: null,
    };
    const expect = step.expect ?? {};
    try {
      const fingerprint = await this.fingerprint(logical, before);
      try {
        await this.request(index, step, logical, obs);
      } catch (e) {
        if (e instanceof StepAborted || !REQUEST_OPS.has(step.op)) throw e;
        obs.rejected = { error: e };
      }
      if (obs.rejected !== null) {
        if (expect['api_error'] === undefined) {
          const err = obs.rejected.error as { code?: string; message?: string };
          throw new StepAborted(`the request was rejected: ${err.code ? `${err.code}: ` : ''}${err.message ?? String(err)}`);
        }
        const after = await this.fingerprint(logical, await this.stackOf(logical));
        if (after !== fingerprint) obs.changedByRejected = `before ${fingerprint}, after ${after}`;
      } else {
        await this.wait(step, logical);
      }
      obs.stack = await this.stackOf(logical);
      const env: CheckEnv = {
        reader: this.reader,
        stackOf: (l) => this.stackOf(l),
        snapshot: (s, l) => this.snapshots.get(snapshotKey(s, l)),
      };
      const findings: Finding[] = await checkExpectations(expect, obs, env);
      for (const f of findings) (f.advisory ? report.advisories : report.failures).push(f.message);
    } catch (e) {
      report.failures.push(
        e instanceof StepAborted ? e.message : `runner error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
      );
    }
    await this.capture(index);
    this.log(
      `  step ${index} ${step.op} ${logical}: ${describeStack(await this.stackOf(logical))} [${((Date.now() - started) / 1000).toFixed(1)} s]`,
    );
    if (report.failures.length > 0 || report.advisories.length > 0) {
      for (const f of report.failures) this.log(`    FAIL ${f}`);
      for (const a of report.advisories) this.log(`    advisory: ${a}`);
    }
    if (obs.stack !== null || (await this.stackOf(logical)) !== null) await this.logState(logical, obs.eventsBefore);
    return report;
  }

  /** What a rejected request must leave alone: the stack row and its events, or the name free. */
  private async fingerprint(logical: string, stack: StackRow | null): Promise<string> {
    const named = await this.reader.stackNamed(this.realName(logical));
    const s = stack ?? named;
    if (s === null) return 'no stack';
    return JSON.stringify({
      id: s.id,
      state: stateOf(s),
      reason: s.statusReason,
      set: s.templateSet,
      traversal: s.traversal,
      tags: s.tags,
      events: await this.reader.lastEventId(s),
    });
  }

  private async capture(index: number): Promise<void> {
    for (const [key, paths] of this.plan.wanted) {
      const [step, logical] = [Number(key.slice(0, key.indexOf('/'))), key.slice(key.indexOf('/') + 1)];
      if (step !== index) continue;
      this.snapshots.set(key, await takeSnapshot(this.reader, await this.stackOf(logical), paths));
    }
  }

  private async logState(logical: string, eventsBefore: number): Promise<void> {
    const stack = await this.stackOf(logical);
    if (stack === null) return;
    const events = (await this.reader.events(stack)).filter((e) => e.id > eventsBefore);
    if (events.length > 0)
      this.log(
        `    events: ${events.map((e) => `${e.resourceName} ${e.status}${e.reason ? ` "${e.reason.slice(0, 80)}"` : ''}`).join(' | ')}`,
      );
    if (stack.deletedAt !== null) return;
    const rows = await this.reader.resources(stack);
    if (rows.length > 0) this.log(`    resources: ${rows.map((r) => `${r.name}=${stateOf(r)}`).join(', ')}`);
  }

  // ------------------------------------------------------------------ requests

  private stackRequest(step: Step): StackRequest {
    const files = step.file_set !== undefined ? this.lookup(this.c.fileSets, step.file_set, 'file set') : undefined;
    const request: StackRequest = {
      disableRollback: step.disable_rollback ?? true,
    };
    if (step.template !== undefined) request.template = this.lookup(this.c.templates, step.template, 'template');
    if (files !== undefined) request.files = files;
    if (step.environment_files !== undefined) {
      request.environments = step.environment_files.map((name) => ({
        label: name,
        text: this.lookup(files ?? {}, name, 'environment file'),
      }));
    } else if (step.environment !== undefined) {
      request.environments = [{ label: 'environment', text: this.lookup(this.c.environments, step.environment, 'environment') }];
    }
    if (step.parameters !== undefined) request.parameters = step.parameters;
    if (step.timeout_mins !== undefined) request.timeoutMins = step.timeout_mins;
    if (step.tags !== undefined) request.tags = step.tags.split(',').filter((t) => t !== '');
    if (step.existing) request.existing = true;
    if (step.show_nested) request.showNested = true;
    return request;
  }

  private lookup<T>(map: Record<string, T>, key: string, what: string): T {
    const v = map[key];
    if (v === undefined) throw new StepAborted(`the case has no ${what} "${key}"`);
    return v;
  }

  private async idOf(logical: string): Promise<string> {
    const id = this.ids.get(logical);
    if (id === undefined) throw new StepAborted(`stack ${logical} was never created`);
    return id;
  }

  private async request(index: number, step: Step, logical: string, obs: StepObservation): Promise<void> {
    const orch = this.options.orchestrator;
    switch (step.op) {
      case 'create': {
        const created = await orch.create(this.realName(logical), this.stackRequest(step));
        this.ids.set(logical, created.id);
        return;
      }
      case 'update':
        await orch.update(await this.idOf(logical), this.stackRequest(step));
        return;
      case 'preview_update':
        obs.preview = await orch.preview(await this.idOf(logical), this.stackRequest(step));
        return;
      case 'delete':
        await orch.delete(await this.idOf(logical));
        return;
      case 'cancel_update':
        await orch.cancel(await this.idOf(logical), { rollback: step.rollback ?? true });
        return;
      case 'signal':
        await orch.signal(await this.idOf(logical), this.field(step, 'resource'), step.data ?? null);
        return;
      case 'mark_unhealthy':
        await orch.markUnhealthy(await this.idOf(logical), this.field(step, 'resource'), step.reason ?? '');
        return;
      case 'suspend':
        await orch.lifecycle(await this.idOf(logical), 'SUSPEND');
        return;
      case 'resume':
        await orch.lifecycle(await this.idOf(logical), 'RESUME');
        return;
      case 'validate': {
        const request = this.stackRequest(step);
        const result = await validateWithCli(join(this.options.dir, `validate-${index}`), {
          template: request.template ?? '',
          ...(request.environments?.[0] ? { environment: request.environments[0].text } : {}),
          files: request.files ?? {},
          ...(request.parameters ? { parameters: request.parameters } : {}),
          showNested: step.show_nested === true,
        });
        obs.validate = result;
        if (!result.ok) throw new Error(result.message);
        return;
      }
      case 'sleep':
        await sleep((step.seconds ?? 0) * 1000);
        return;
      case 'wait_resource_status':
        await this.waitFor(step, logical, { resource: this.field(step, 'resource'), status: this.field(step, 'status') });
        return;
      case 'wait_stack_status':
        await this.waitStackStatus(step, logical, this.field(step, 'status'));
        return;
      case 'kill_engine': {
        const engines = this.options.engines;
        if (!engines) throw new StepAborted('kill_engine: the case runs without engine processes');
        const stack = await orch.get(await this.idOf(logical));
        if (!stack.runId) throw new StepAborted(`kill_engine: stack ${logical} has no current run (${stateOf(stack)})`);
        try {
          this.log(`    ${await killEngineOfRun(this.options.store, stack.runId, engines)}`);
        } catch (e) {
          throw new StepAborted(`kill_engine: ${e instanceof Error ? e.message : String(e)}`);
        }
        return;
      }
      default:
        throw new StepAborted(`unknown op "${step.op}"`);
    }
  }

  private field(step: Step, key: 'resource' | 'status'): string {
    const v = step[key];
    if (typeof v !== 'string') throw new StepAborted(`${step.op}: the step has no "${key}"`);
    return v;
  }

  // ------------------------------------------------------------------ waits

  private async wait(step: Step, logical: string): Promise<void> {
    if (!REQUEST_OPS.has(step.op) || step.op === 'validate' || step.op === 'preview_update') return;
    await this.waitFor(step, logical, step.wait ?? 'complete');
  }

  private async waitFor(step: Step, logical: string, wait: StepWait): Promise<void> {
    if (wait === 'none') {
      await sleep(POLL_MS);
      return;
    }
    const limitS = step.timeout ?? DEFAULT_WAIT_S;
    const deadline = Date.now() + limitS * 1000;
    let quietSince: number | null = null;
    for (;;) {
      const { done, state } = await this.poll(logical, wait);
      if (done) return;
      if (Date.now() > deadline) throw new StepAborted(`timed out after ${limitS} s waiting for ${describeWait(wait)}: ${state}`);
      // nothing moves any more: what is waited for will not come (instead of sitting out the limit)
      if (wait !== 'complete' && (await this.quiet(logical))) {
        quietSince ??= Date.now();
        if (Date.now() - quietSince > QUIET_MS)
          throw new StepAborted(`gave up waiting for ${describeWait(wait)}: nothing is in progress any more: ${state}`);
      } else quietSince = null;
      await sleep(POLL_MS);
    }
  }

  /** The stack, its resources and its nested stacks are all settled. */
  private async quiet(logical: string): Promise<boolean> {
    const stack = await this.stackOf(logical);
    if (stack === null) return true;
    if (stack.status === 'IN_PROGRESS') return false;
    if ((await this.reader.resources(stack)).some((r) => r.status === 'IN_PROGRESS')) return false;
    return !(await this.reader.descendants(stack.id)).some((s) => s.status === 'IN_PROGRESS');
  }

  private async poll(logical: string, wait: Exclude<StepWait, 'none'>): Promise<{ done: boolean; state: string }> {
    const stack = await this.stackOf(logical);
    if (wait === 'complete') {
      if (stack === null || stack.status !== 'IN_PROGRESS') {
        const busy = stack === null ? [] : (await this.reader.descendants(stack.id)).filter((s) => s.status === 'IN_PROGRESS');
        if (busy.length === 0) return { done: true, state: '' };
        return {
          done: false,
          state: `stack ${describeStack(stack)}, nested stacks in progress: ${busy.map((s) => `${s.name} ${stateOf(s)}`).join(', ')}`,
        };
      }
      return { done: false, state: `stack ${describeStack(stack)}` };
    }
    if (stack === null) return { done: false, state: 'the stack does not exist' };
    if ('event' in wait) {
      const events = await this.reader.events(stack);
      const found = events.some((e) => e.resourceName === wait.event.resource && e.reason === wait.event.status_reason);
      const of = events.filter((e) => e.resourceName === wait.event.resource).map((e) => `${e.status} "${e.reason}"`);
      return { done: found, state: `events of ${wait.event.resource}: ${of.join(', ') || 'none'}; stack ${describeStack(stack)}` };
    }
    const path = 'resource' in wait ? [wait.resource] : wait.nested_resource;
    const holder = path.length > 1 ? await this.reader.nested(stack, path.slice(0, -1)) : { stack };
    if ('missing' in holder) return { done: false, state: `${holder.missing}; stack ${describeStack(stack)}` };
    const row = await this.reader.resourceShown(holder.stack, path[path.length - 1]!);
    const state = row ? stateOf(row) : 'not listed';
    return { done: state === wait.status, state: `resource ${path.join('/')} is ${state}; stack ${describeStack(stack)}` };
  }

  private async waitStackStatus(step: Step, logical: string, status: string): Promise<void> {
    const limitS = step.timeout ?? DEFAULT_WAIT_S;
    const deadline = Date.now() + limitS * 1000;
    let quietSince: number | null = null;
    for (;;) {
      const stack = await this.stackOf(logical);
      if (stackState(stack) === status) return;
      if (Date.now() > deadline) throw new StepAborted(`timed out after ${limitS} s waiting for stack ${status}: ${describeStack(stack)}`);
      if (await this.quiet(logical)) {
        quietSince ??= Date.now();
        if (Date.now() - quietSince > QUIET_MS)
          throw new StepAborted(`gave up waiting for stack ${status}: it settled as ${describeStack(stack)}`);
      } else quietSince = null;
      await sleep(POLL_MS);
    }
  }
}

function describeWait(wait: StepWait): string {
  if (typeof wait === 'string') return wait === 'complete' ? 'the stack to settle' : 'nothing';
  if ('event' in wait) return `event ${wait.event.resource} "${wait.event.status_reason}"`;
  if ('resource' in wait) return `resource ${wait.resource} ${wait.status}`;
  return `resource ${wait.nested_resource.join('/')} ${wait.status}`;
}
