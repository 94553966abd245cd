// The demo's engine worker: the whole engine runs here (src/worker/serve.ts), off the main thread.
import { serveEngine } from '../src/worker/serve.ts';

serveEngine(self as unknown as DedicatedWorkerGlobalScope);
