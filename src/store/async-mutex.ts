/** A FIFO mutex for async critical sections (one SQLite connection used by many callers). */
export class AsyncMutex {
  private tail: Promise<void> = Promise.resolve();
  /** callers that entered `run` and have not settled yet */
  private entered = 0;

  /**
   * Runs `fn` once every earlier caller has finished: at once (in this call) when there is
   * none, so an uncontended caller waits no turn of the microtask queue.
   */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.entered === 0 ? start(fn) : this.tail.then(fn);
    this.entered += 1;
    const leave = (): void => {
      this.entered -= 1;
    };
    this.tail = result.then(leave, leave);
    return result;
  }
}

/** `fn()`, with a synchronous throw as a rejection (as `then` would give it). */
function start<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (e) {
    return Promise.reject(e);
  }
}
