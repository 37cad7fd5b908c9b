import { createRuntime, graph, task } from 'stoker';

// When steps pass no data, links give the order: build first, then test and lint (in any
// order, or at once), then release after both.
const done: string[] = [];
const step = (name: string) => task({ name, execute: () => void done.push(name) });
const deploy = graph(
  'deploy',
  [step('build'), step('test'), step('lint'), step('release')],
  [
    { from: 'build', to: 'test' },
    { from: 'build', to: 'lint' },
    { from: 'test', to: 'release' },
    { from: 'lint', to: 'release' },
  ],
);

const runtime = await createRuntime({ store: process.env.STOKER_STORE ?? 'sqlite:./stoker.db', flows: [deploy] });
await runtime.start();
const { run } = await runtime.client.startRun('deploy', {});
const finished = await runtime.client.waitForRun(run.id);
console.log(finished.status, done[0], done.at(-1), done.length);
await runtime.stop();
