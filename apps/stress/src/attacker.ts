/**
 * An attacker process: runs one task (JSON in argv[2]) against the server and reports over IPC:
 *   → { type: 'progress', done }   (calls only, every 1000 calls)
 *   → { type: 'result', result }   then exits 0
 * The harness kills it by pid if it overruns; it also exits if the harness goes away.
 */
import { runTask, type Task } from './attacks.js';

const task = JSON.parse(process.argv[2] ?? '{}') as Task;
const send = (msg: unknown): Promise<void> =>
  new Promise((resolve) => {
    if (!process.send || !process.connected) resolve();
    else process.send(msg, () => resolve());
  });
process.on('disconnect', () => process.exit(0));

runTask(task, (done) => void send({ type: 'progress', done })).then(
  async (result) => {
    await send({ type: 'result', result });
    process.exit(0);
  },
  (e: unknown) => {
    console.error(`attacker ${task.attack} failed:`, e);
    process.exit(2);
  },
);
