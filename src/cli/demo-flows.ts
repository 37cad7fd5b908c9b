/**
 * The flows of `stoker demo`: an order pipeline, compiled into dist so the demo runs with
 * plain node. examples/order-flows.ts is the same code written for users to copy; a test
 * checks that both compile to the same graphs.
 *
 * - `order`: validate → reserve inventory → charge payment → ship. The payment gateway
 *   times out on the first attempt (a retryable error) and the task's retry policy tries
 *   again after a backoff.
 * - `order-express`: the same, but the express courier refuses the address (a permanent
 *   error), so the run reverts what was done, in reverse order: refund, then release the
 *   inventory. The run ends REVERTED.
 */
import type { JsonValue } from '../core/json.js';
import { linear, task, type TaskContext } from '../flow/index.js';

/** An error a task throws; `retryable: false` tells the retry policy not to try again. */
class OrderError extends Error {
  constructor(
    name: string,
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = name;
  }
}

const CATALOG: Record<string, { title: string; priceCents: number }> = {
  kettle: { title: 'Electric kettle', priceCents: 3499 },
  'tea-sampler': { title: 'Tea sampler (12 kinds)', priceCents: 1850 },
  'espresso-machine': { title: 'Espresso machine', priceCents: 24900 },
};

/** Pretend work that stops early when the engine aborts the task (cancel, shutdown). */
function work(ms: number, ctx: TaskContext): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ctx.signal.aborted) return reject(ctx.signal.reason as Error);
    const timer = setTimeout(resolve, ms);
    ctx.signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(ctx.signal.reason as Error);
      },
      { once: true },
    );
  });
}

interface OrderLine {
  sku: string;
  title: string;
  qty: number;
  priceCents: number;
}
interface Order {
  orderId: string;
  customer: string;
  lines: OrderLine[];
  totalCents: number;
}

const validateOrder = task({
  name: 'validate-order',
  requires: ['orderId', 'customer', 'items'],
  provides: 'order',
  execute: async ({ orderId, customer, items }, ctx) => {
    await work(60, ctx);
    if (!Array.isArray(items) || items.length === 0) throw new OrderError('InvalidOrder', 'an order needs at least one item', false);
    const lines: OrderLine[] = items.map((raw) => {
      const item = raw as { sku?: unknown; qty?: unknown };
      const product = typeof item.sku === 'string' ? CATALOG[item.sku] : undefined;
      if (!product) throw new OrderError('InvalidOrder', `unknown product ${JSON.stringify(item.sku)}`, false);
      const qty = typeof item.qty === 'number' && Number.isInteger(item.qty) && item.qty > 0 ? item.qty : 1;
      return { sku: item.sku as string, title: product.title, qty, priceCents: product.priceCents };
    });
    const order: Order = {
      orderId: String(orderId),
      customer: String(customer),
      lines,
      totalCents: lines.reduce((sum, l) => sum + l.qty * l.priceCents, 0),
    };
    return order as unknown as JsonValue;
  },
});

const reserveInventory = task({
  name: 'reserve-inventory',
  requires: ['order'],
  provides: 'reservation',
  execute: async ({ order }, ctx) => {
    await work(120, ctx);
    const o = order as unknown as Order;
    // A real warehouse API would take ctx.idempotencyKey so that a retried call reserves once.
    return { reservationId: `RSV-${o.orderId}`, warehouse: 'AMS-1', units: o.lines.reduce((n, l) => n + l.qty, 0) };
  },
  // Compensation: runs when a later step fails and the run reverts.
  revert: async ({ order }, ctx) => {
    await work(80, ctx);
    void (order as unknown as Order).orderId; // release RSV-<orderId> in the warehouse system
  },
});

const chargePayment = task({
  name: 'charge-payment',
  requires: ['order'],
  provides: 'payment',
  retry: { attempts: 3, backoffMs: 200 },
  execute: async ({ order }, ctx) => {
    await work(100, ctx);
    const o = order as unknown as Order;
    if (ctx.attempt === 1) {
      // The first call always times out: the retry policy schedules attempt 2 after ~200 ms.
      throw new OrderError('PaymentGatewayTimeout', 'payment gateway did not answer within 2 s', true);
    }
    return {
      paymentId: `PAY-${o.orderId}`,
      amountCents: o.totalCents,
      currency: 'EUR',
      idempotencyKey: ctx.idempotencyKey,
      attempt: ctx.attempt,
    };
  },
  revert: async ({ order }, ctx) => {
    await work(80, ctx);
    void (order as unknown as Order).orderId; // refund PAY-<orderId> with the payment provider
  },
});

const shipOrder = task({
  name: 'ship-order',
  requires: ['order', 'reservation', 'address'],
  provides: 'shipment',
  execute: async ({ order, address }, ctx) => {
    await work(150, ctx);
    const o = order as unknown as Order;
    const a = address as { city?: string; country?: string };
    return { carrier: 'PostNL', trackingNumber: `3SPOST${o.orderId.replace(/\D/g, '')}NL`, to: `${a.city ?? '?'}, ${a.country ?? '?'}` };
  },
});

const shipExpress = task({
  name: 'ship-order',
  requires: ['order', 'reservation', 'address'],
  provides: 'shipment',
  // Three attempts are allowed, but a non-retryable error ends them at once.
  retry: 3,
  execute: async ({ address }, ctx) => {
    await work(150, ctx);
    const a = address as { city?: string; country?: string };
    throw new OrderError('CarrierRejected', `the express courier does not deliver to ${a.city ?? '?'}, ${a.country ?? '?'}`, false);
  },
});

/** validate → reserve → charge (retried once) → ship; ends SUCCESS. */
export const orderFlow = linear('order', [validateOrder, reserveInventory, chargePayment, shipOrder]);

/** The same with an express courier that refuses the address; ends REVERTED after refund and release. */
export const expressOrderFlow = linear('order-express', [validateOrder, reserveInventory, chargePayment, shipExpress]);

/** Arguments the demo starts the two flows with. */
export const DEMO_ARGS = {
  order: {
    orderId: 'A-1001',
    customer: 'ada@example.com',
    items: [
      { sku: 'kettle', qty: 1 },
      { sku: 'tea-sampler', qty: 2 },
    ],
    address: { street: 'Keizersgracht 123', city: 'Amsterdam', country: 'NL' },
  },
  'order-express': {
    orderId: 'A-1002',
    customer: 'grace@example.com',
    items: [{ sku: 'espresso-machine', qty: 1 }],
    address: { street: 'Vei 600', city: 'Longyearbyen', country: 'SJ' },
  },
} satisfies Record<string, Record<string, JsonValue>>;

export default [orderFlow, expressOrderFlow];
