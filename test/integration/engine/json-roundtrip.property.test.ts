/**
 * Values the databases cannot all store (issue 11, item 12): random JSON values, with NUL
 * characters, lone surrogates, huge and tiny numbers and deep nesting mixed in, sent as run
 * arguments, task results and signal payloads on every dialect. Each one either comes back
 * exactly (as JSON text would bring it back) or is refused with a clear STOKER_INPUT_*
 * error naming where; a run whose result is refused ends (its task fails), never hangs.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unstorableText } from '../../../src/core/canonical-json.js';
import type { JsonValue } from '../../../src/core/json.js';
import { Engine } from '../../../src/engine/engine.js';
import { FlowRegistry, linear, task } from '../../../src/flow/index.js';
import type { Store } from '../../../src/store/store.js';
import { createTestStore, testDialects, type TestStore } from '../../helpers/databases.js';

const awkward = fc.constantFrom('a\u0000b', '\ud800', 'x\udc00y', '\ud83d\ude00', '', 'ü\u2028', '\u0000');
const numbers = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1e308, -1e-308, 5e-324, 2 ** 64),
);
const leaf = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), awkward, numbers, fc.boolean(), fc.constant(null));
const value: fc.Arbitrary<JsonValue> = fc.letrec<{ v: JsonValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.string(), awkward), tie('v'), { maxKeys: 4 }),
  ),
})).v;

/** Whether any string or key in `v` is one no database can store as it is. */
function hasUnstorable(v: unknown): boolean {
  if (typeof v === 'string') return unstorableText(v) !== null;
  if (Array.isArray(v)) return v.some(hasUnstorable);
  if (v !== null && typeof v === 'object') return Object.entries(v).some(([k, x]) => unstorableText(k) !== null || hasUnstorable(x));
  return false;
}

const viaJson = (v: unknown): unknown => JSON.parse(JSON.stringify(v)) as unknown;
const encode = (v: JsonValue): string => Buffer.from(JSON.stringify(v), 'utf16le').toString('base64');
const decode = (s: string): JsonValue => JSON.parse(Buffer.from(s, 'base64').toString('utf16le')) as JsonValue;

for (const dialect of testDialects()) {
  describe(`JSON values through start, result and signal on ${dialect}`, () => {
    let db: TestStore | null = null;
    let store: Store;
    let engine: Engine;
    beforeAll(async () => {
      db = await createTestStore(dialect);
      if (!db) return;
      store = db.store;
      const flows = new FlowRegistry();
      flows.register(
        linear('echo', [task({ name: 'decode', requires: ['b64'], provides: 'out', execute: ({ b64 }) => decode(b64 as string) })]),
      );
      flows.register(linear('hold', [task({ name: 'waiter', execute: (_in, ctx) => ctx.waitForSignal('never') })]));
      engine = new Engine({ store, flows, concurrency: 4, pollMs: 20, leaseMs: 10_000 });
      await engine.start();
    });
    afterAll(async () => {
      await engine?.stop();
      await db?.drop();
    });

    it('each value round-trips exactly or is refused with a clear error; no run is left stuck', async (ctx) => {
      if (db === null) return ctx.skip();
      const holder = (await engine.startRun('hold', {})).run.id;
      await fc.assert(
        fc.asyncProperty(value, async (v) => {
          const bad = hasUnstorable(v);
          const expectRefused = (e: unknown): void => {
            const err = e as { code?: string; message?: string };
            expect(err.code, String(err.message)).toMatch(/^STOKER_INPUT_(UNSTORABLE_TEXT|TOO_LARGE|TOO_DEEP|FORBIDDEN_KEY)$/);
            if (err.code === 'STOKER_INPUT_UNSTORABLE_TEXT') expect(err.message).toMatch(/ at \$/);
          };
          // as an argument
          try {
            const { run } = await engine.startRun('echo', { b64: 'e30=', v });
            expect(bad).toBe(false);
            expect((await store.getRun(run.id))!.args).toEqual(viaJson({ b64: 'e30=', v }));
          } catch (e) {
            if (!bad) throw e;
            expectRefused(e);
          }
          // as a task's result: the run ends either way
          const { run } = await engine.startRun('echo', { b64: encode(v) });
          const done = await engine.waitForRun(run.id, { timeoutMs: 20_000, pollMs: 20 });
          if (done.status === 'SUCCESS') {
            expect(bad).toBe(false);
            expect(done.result).toEqual({ out: viaJson(v) });
          } else {
            expect(done.status).toBe('REVERTED');
            expect(bad || JSON.stringify(v).length > 200_000).toBe(true);
            expect(done.failure?.code).toMatch(/^STOKER_INPUT_/);
          }
          // as a signal payload
          try {
            await engine.signal(holder, 'p', v);
            expect(bad).toBe(false);
            expect((await store.getSignals(holder)).at(-1)!.payload).toEqual(viaJson(v));
          } catch (e) {
            if (!bad) throw e;
            expectRefused(e);
          }
        }),
        { numRuns: 40, seed: Number(process.env.PROPERTY_SEED ?? 11) },
      );
      await engine.cancel(holder);
    }, 120_000);
  });
}
