// The worker side: runs an Engine inside a Web Worker and answers client.ts's requests, so GPU
// submission, readback waits and tokenizing stay off the page's main thread. A worker file is
// two lines:
//
//   import { serveEngine } from 'forkwise/worker';   // or '../src/worker/serve.ts'
//   serveEngine(self);
import { type Engine, type EngineOptions, createEngine } from '../engine.ts';
import { InvalidArgumentError } from '../errors.ts';
import { type MessageEndpoint, type Reply, type Request, serializeError } from './protocol.ts';

/** Serves one engine on `endpoint`; `create` makes it (Node tests pass the `webgpu` package's). */
export function serveEngine(
  endpoint: MessageEndpoint, create: (options: EngineOptions) => Promise<Engine> = createEngine,
): void {
  let engine: Engine | null = null;
  const controllers = new Map<number, AbortController>();
  const reply = (message: Reply) => endpoint.postMessage(message);

  const handle = async (request: Exclude<Request, { kind: 'abort' }>): Promise<unknown> => {
    switch (request.kind) {
      case 'init':
        engine ??= await create(request.options);
        return engine.adapter;
      case 'load':
        return ready().loadModel({
          ...request.options,
          signal: track(request.id),
          onProgress: (progress) => reply({ kind: 'progress', id: request.id, progress }),
        });
      case 'generate': {
        const generation = ready().generate(request.prompt, { ...request.options, signal: track(request.id) });
        for await (const step of generation) reply({ kind: 'step', id: request.id, step });
        return generation.result;
      }
      case 'score':
        return ready().score(request.tokens);
      case 'recover':
        return ready().recover();
      case 'dispose':
        // frees the model; the engine (and its device) stays for the next load
        await engine?.dispose();
        return null;
    }
  };
  /**
   * Tells the page when the engine's current device is lost (the page's `lost` flag; its calls
   * still get DeviceLostError); looked at after every request, as recovery replaces the device.
   */
  let watched: Engine['gpu'] | null = null;
  const watch = () => {
    const ctx = engine?.gpu;
    if (!ctx || ctx === watched) return;
    watched = ctx;
    void ctx.whenLost.then(() => reply({ kind: 'lost', id: 0, message: ctx.lostError().message }));
  };
  const ready = () => {
    if (!engine) throw new InvalidArgumentError('the worker engine is not initialised');
    return engine;
  };
  const track = (id: number) => {
    const controller = new AbortController();
    controllers.set(id, controller);
    return controller.signal;
  };

  endpoint.addEventListener('message', (event) => {
    const request = event.data as Request;
    // An abort is a notice about another request (its id): that request answers, the abort does not.
    if (request.kind === 'abort') return void controllers.get(request.id)?.abort();
    handle(request).then(
      (value) => reply({ kind: 'done', id: request.id, value } as Reply),
      (error) => reply({ kind: 'error', id: request.id, error: serializeError(error) }),
    ).finally(() => {
      controllers.delete(request.id);
      watch();
    });
  });
  endpoint.start?.();
}
