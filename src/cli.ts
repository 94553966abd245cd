// `forkwise generate …`: the engine from the command line, on Node's WebGPU.
import { parseArgs } from 'node:util';
import { type GenerateOptions, type GenerationResult, checkGenerateOptions } from './engine.ts';
import { ForkwiseError, InvalidArgumentError } from './errors.ts';
import { bundledModel, createNodeEngine, readLocal } from './node/index.ts';

const USAGE = `usage: forkwise generate [options]
  --prompt TEXT          prompt (default: empty, i.e. BOS only)
  --max-tokens N         new tokens at most (default: until the context is full)
  --decoder NAME         greedy | sample | cntp | srgen (default greedy)
  --temperature T        sampling temperature (default 1)
  --top-k K  --top-p P  --min-p P  --typical TAU  --top-h ALPHA  --repetition-penalty THETA
                         sampler stages, applied in that order after the penalty and temperature
  --seed N               RNG seed (default 0)
  --h-lo H  --h-hi H  --max-trials N
                         CNTP: entropy thresholds (nats) and N_max (defaults 0.01, 1.5, 10)
  --small-model PATH  --tau BITS  --window W  --min-stay D
                         EAD: the small model (default: the bundled stories-student), threshold τ
                         on the rolling mean entropy in bits (inf / -inf allowed; default 1),
                         window (5) and minimum stay d_min (4)
  --lambda L  --lr LR  --opt-steps N  --max-reflections N  --window N  --k K
  --sigma-min S  --theta-min T  --theta0 T
                         SRGen (temperature default 0.6): entropy-term weight (0.05), AdamW rate
                         (0.01) and steps (3), reflections at most (20), threshold window (25),
                         K (4), σ_min (0.5), θ_min (1.8), θ_0 (3.0)
  --model PATH           llama2.c checkpoint (default: the bundled stories15M)
  --tokenizer PATH       tokenizer.bin (default: the bundled one)
  --json                 print one JSON object instead of streaming text`;

function numberOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const infinity = /^([+-]?)inf(inity)?$/i.exec(value.trim());
  if (infinity) return infinity[1] === '-' ? -Infinity : Infinity;
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
      ...(s.model ? { model: s.model } : {}),
    })),
    timing: r.timing,
    finish: r.finish,
    events: r.events,
    summary: r.summary,
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
      'small-model': { type: 'string' },
      tau: { type: 'string' },
      window: { type: 'string' },
      'min-stay': { type: 'string' },
      lambda: { type: 'string' },
      lr: { type: 'string' },
      'opt-steps': { type: 'string' },
      'max-reflections': { type: 'string' },
      k: { type: 'string' },
      'sigma-min': { type: 'string' },
      'theta-min': { type: 'string' },
      theta0: { type: 'string' },
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
    tau: numberOption('tau', values.tau),
    window: numberOption('window', values.window),
    minStay: numberOption('min-stay', values['min-stay']),
    lambda: numberOption('lambda', values.lambda),
    lr: numberOption('lr', values.lr),
    optSteps: numberOption('opt-steps', values['opt-steps']),
    maxReflections: numberOption('max-reflections', values['max-reflections']),
    k: numberOption('k', values.k),
    sigmaMin: numberOption('sigma-min', values['sigma-min']),
    thetaMin: numberOption('theta-min', values['theta-min']),
    theta0: numberOption('theta0', values.theta0),
  };
  checkGenerateOptions(options); // fail on bad options before spending seconds on loading
  const engine = await createNodeEngine();
  const smallModel = values['small-model'] ?? (options.decoder === 'ead' ? bundledModel.smallModel : undefined);
  await engine.loadModel({
    model: await readLocal(values.model!),
    tokenizer: await readLocal(values.tokenizer!),
    smallModel: smallModel === undefined ? undefined : await readLocal(smallModel),
  });
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
