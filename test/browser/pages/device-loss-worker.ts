// The worker of device-loss.html: the engine served as the demo's worker serves it
// (demo/engine-worker.ts: serveEngine), on a MessagePort the page hands over, and one test hook on
// the worker's own scope: { kind: 'destroy' } destroys the engine's current GPU device, as a
// driver reset does.
import { type Engine, createEngine } from '../../../src/engine.ts';
import { serveEngine } from '../../../src/worker/serve.ts';

let engine: Engine | null = null;

self.addEventListener('message', (event: MessageEvent) => {
  const message = event.data as { kind: 'serve'; port: MessagePort } | { kind: 'destroy' };
  if (message.kind === 'serve') serveEngine(message.port, async (options) => (engine = await createEngine(options)));
  else engine?.gpu.device.destroy();
});
