import { createRuntime, graph, task } from 'stoker';

// Order comes from data: `score` requires what `fetch` provides, `approve` and `review`
// require the score. Deciders on the links choose one of the two at run time; the other is
// SKIPPED.
const loan = graph(
  'loan',
  [
    task({ name: 'fetch', requires: ['applicant'], provides: 'history', execute: ({ applicant }) => ({ applicant, defaults: 0 }) }),
    task({
      name: 'score',
      requires: ['history', 'amount'],
      provides: 'score',
      execute: ({ amount }) => (Number(amount) < 10_000 ? 0.9 : 0.4),
    }),
    task({ name: 'approve', requires: ['score'], provides: 'decision', execute: () => 'approved' }),
    task({ name: 'review', requires: ['score'], provides: 'ticket', execute: () => 'sent to a person' }),
  ],
  [
    { from: 'score', to: 'approve', decider: (score) => Number(score) >= 0.5 },
    { from: 'score', to: 'review', decider: (score) => Number(score) < 0.5 },
  ],
);

const runtime = await createRuntime({ store: process.env.STOKER_STORE ?? 'sqlite:./stoker.db', flows: [loan] });
await runtime.start();
const { run } = await runtime.client.startRun('loan', { applicant: 'ada', amount: 2_500 });
const done = await runtime.client.waitForRun(run.id);
const atoms = await runtime.store.getAtoms(run.id);
console.log(done.status, atoms.map((a) => `${a.name}:${a.state}`).join(' '));
await runtime.stop();
