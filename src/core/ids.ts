import { randomUUID } from 'node:crypto';

/** Generates ids for runs and engines; injected so simulations can make them deterministic. */
export type IdGenerator = () => string;

export const randomId: IdGenerator = () => randomUUID();
