// `forkwise serve`: the OpenAI-compatible server on Node's WebGPU, until SIGINT or SIGTERM.
import { basename, extname } from 'node:path';
import { parseArgs } from 'node:util';
import { InvalidArgumentError } from '../errors.ts';
import { bundledModel, createNodeEngine, modelFromPath, readLocal } from '../node/index.ts';
import { startServer } from './server.ts';

export const SERVE_USAGE = `usage: forkwise serve [options]
  --model PATH           as for generate (default: the bundled stories15M, which has no chat
                         template: /v1/completions only)
  --tokenizer PATH       tokenizer.bin of a llama2.c checkpoint (default: the bundled one)
  --small-model PATH     EAD's small model (forkwise: { decoder: 'ead' } in a request)
  --context N            positions to allocate (default: min(trained context, 4096))
  --top-k K              candidates per token, the most top_logprobs (default 20; 1..64)
  --port N               default 8080 (0: any free port)
  --host HOST            default 127.0.0.1 (this machine only)
  --name ID              the model id /v1/models lists (default: the model file's name)
Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models.`;

function integer(flag: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`--${flag} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
  return n;
}

/** The id a model path is served as: its file or folder name without the extension. */
export function modelId(path: string): string {
  const name = basename(path.replace(/[/\\]+$/, ''));
  return (name.slice(0, name.length - extname(name).length) || name || 'forkwise').replace(/^hf:/, '');
}

/** Resolves when the server has closed (a signal); prints the URL on stderr once it listens. */
export async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      model: { type: 'string', default: bundledModel.model },
      tokenizer: { type: 'string' },
      'small-model': { type: 'string' },
      context: { type: 'string' },
      'top-k': { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      name: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.error(SERVE_USAGE);
    return 0;
  }
  const port = integer('port', values.port, 0, 65535) ?? 8080;
  const topK = integer('top-k', values['top-k'], 1, 64) ?? 20;
  const contextLength = integer('context', values.context, 1, 1 << 24);
  const engine = await createNodeEngine();
  const tokenizer = values.tokenizer ?? (values.model!.endsWith('.bin') ? bundledModel.tokenizer : undefined);
  const info = await engine.loadModel({
    model: await modelFromPath(values.model!),
    tokenizer: tokenizer === undefined ? undefined : await readLocal(tokenizer),
    smallModel: values['small-model'] === undefined ? undefined : await modelFromPath(values['small-model']),
    contextLength,
    topK,
  });
  const name = values.name ?? modelId(values.model!);
  const server = await startServer({ engine, port, host: values.host, model: name, topK, log: (line) => console.error(line) });
  console.error(
    `forkwise: serving ${name} (${info.config.architecture}, ${info.parameterCount} parameters, ` +
    `${info.hasChatTemplate ? 'chat template' : 'no chat template'}) at ${server.url}/v1`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  await engine.dispose();
  return 0;
}
