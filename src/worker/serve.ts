// The worker side: runs an Engine inside a Web Worker and answers client.ts's requests, so GPU
// submission, readback waits and tokenizing stay off the page's main thread. A worker file is
// two lines:
//
//   import { serveEngine } from 'forkwise/worker';   // or '../src/worker/serve.ts'
//   serveEngine(self);
import { type Engine, createEngine } from '../engine.ts';
import { InvalidArgumentError } from '../errors.ts';
import type { GpuContextOptions } from '../gpu/device.ts';
import { type MessageEndpoint, type Reply, type Request, serializeError } from './protocol.ts';

/** Serves one engine on `endpoint`; `create` makes it (Node tests pass the `webgpu` package's). */
export function serveEngine(
  endpoint: MessageEndpoint, create: (options: GpuContextOptions) => Promise<Engine> = createEngine,
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
      case 'dispose':
        engine?.dispose();
        engine = null;
        return null;
    }
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
    ).finally(() => controllers.delete(request.id));
  });
  endpoint.start?.();
}
