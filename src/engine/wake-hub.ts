/**
 * In-process wake-ups: when one engine (or a client in the same process) makes atoms
 * claimable, the engines of that process are told at once instead of waiting for their
 * poll. A lost wake-up costs only the poll interval (DESIGN.md protocol 6).
 */
export class WakeHub {
  private readonly listeners = new Set<() => void>();

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  wake(): void {
    for (const fn of this.listeners) fn();
  }
}
