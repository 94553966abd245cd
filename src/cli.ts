// `forkwise generate …`: the engine from the command line, on Node's WebGPU.
import { parseArgs } from 'node:util';
import { type GenerateOptions, type GenerationResult, checkGenerateOptions } from './engine.ts';
import { ForkwiseError, InvalidArgumentError } from './errors.ts';
import { bundledModel, createNodeEngine, readLocal } from './node/index.ts';

const USAGE = `usage: forkwise generate [options]
  --prompt TEXT          prompt (default: empty, i.e. BOS only)
  --max-tokens N         new tokens at most (default: until the context is full)
  --decoder NAME         greedy | sample | cntp (default greedy)
  --temperature T        sampling temperature (default 1)
  --top-k K  --top-p P  --min-p P  --typical TAU  --top-h ALPHA  --repetition-penalty THETA
                         sampler stages, applied in that order after the penalty and temperature
  --seed N               RNG seed (default 0)
  --h-lo H  --h-hi H  --max-trials N
                         CNTP: entropy thresholds (nats) and N_max (defaults 0.01, 1.5, 10)
  --model PATH           llama2.c checkpoint (default: the bundled stories15M)
  --tokenizer PATH       tokenizer.bin (default: the bundled one)
  --json                 print one JSON object instead of streaming text`;

function numberOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || Number.isNaN(n)) throw new InvalidArgumentError(`--${name} must be a number, got ${JSON.stringify(value)}`);
  return n;
}

export function toJson(r: GenerationResult) {
  return {
    tokens: r.tokens,
    text: r.text,
    steps: r.steps.map((s) => ({
      pos: s.pos, input_token: s.inputToken, next_token: s.tokenId, lse: s.lse, entropy: s.entropy, varentropy: s.varentropy,
    })),
    timing: r.timing,
    finish: r.finish,
    events: r.events,
  };
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== 'generate') {
    console.error(USAGE);
    return command === '--help' || command === '-h' ? 0 : 2;
  }
  const { values } = parseArgs({
    args: rest,
    strict: true,
    options: {
      prompt: { type: 'string', default: '' },
      'max-tokens': { type: 'string' },
      decoder: { type: 'string', default: 'greedy' },
      temperature: { type: 'string' },
      seed: { type: 'string' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      'min-p': { type: 'string' },
      typical: { type: 'string' },
      'top-h': { type: 'string' },
      'repetition-penalty': { type: 'string' },
      'h-lo': { type: 'string' },
      'h-hi': { type: 'string' },
      'max-trials': { type: 'string' },
      model: { type: 'string', default: bundledModel.model },
      tokenizer: { type: 'string', default: bundledModel.tokenizer },
      json: { type: 'boolean', default: false },
    },
  });
  const options: GenerateOptions = {
    maxTokens: numberOption('max-tokens', values['max-tokens']),
    decoder: values.decoder as GenerateOptions['decoder'],
    temperature: numberOption('temperature', values.temperature),
    seed: numberOption('seed', values.seed),
    topK: numberOption('top-k', values['top-k']),
    topP: numberOption('top-p', values['top-p']),
    minP: numberOption('min-p', values['min-p']),
    typical: numberOption('typical', values.typical),
    topH: values['top-h'] === undefined ? undefined : { alpha: numberOption('top-h', values['top-h']) },
    repetitionPenalty: numberOption('repetition-penalty', values['repetition-penalty']),
    hLo: numberOption('h-lo', values['h-lo']),
    hHi: numberOption('h-hi', values['h-hi']),
    maxTrials: numberOption('max-trials', values['max-trials']),
  };
  for (const key of Object.keys(options) as (keyof GenerateOptions)[]) if (options[key] === undefined) delete options[key];
  checkGenerateOptions(options); // fail on bad options before spending seconds on loading
  const engine = await createNodeEngine();
  await engine.loadModel({ model: await readLocal(values.model!), tokenizer: await readLocal(values.tokenizer!) });
  const generation = engine.generate(values.prompt!, options);
  if (values.json) {
    console.log(JSON.stringify(toJson(await generation.complete())));
  } else {
    for await (const step of generation) process.stdout.write(step.text);
    const r = await generation.result;
    process.stdout.write('\n');
    console.error(`[${r.finish}] ${r.timing.decodeTokPerSec.toFixed(1)} tok/s decode, ${r.timing.prefillTokPerSec.toFixed(1)} tok/s prefill`);
  }
  engine.dispose();
  return 0;
}

export async function run(argv: string[]): Promise<void> {
  try {
    process.exitCode = await main(argv);
  } catch (error) {
    if (error instanceof ForkwiseError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`forkwise: ${(error as Error).message}`);
      process.exitCode = 2;
    } else {
      throw error;
    }
  }
}
