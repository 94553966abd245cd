// `forkwise generate …`: the engine from the command line, on Node's WebGPU.
import { parseArgs } from 'node:util';
import { type GenerateOptions, type GenerationResult, type ModelInfo, checkGenerateOptions } from './engine.ts';
import { ForkwiseError, InvalidArgumentError } from './errors.ts';
import { bundledModel, createNodeEngine, modelFromPath, readLocal } from './node/index.ts';
import { serve } from './server/cli.ts';

const USAGE = `usage: forkwise generate [options]   (or: forkwise serve --help, the OpenAI-compatible server)
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
  --model PATH           a llama2.c checkpoint, a .gguf file, a Hugging Face folder (config.json,
                         *.safetensors, tokenizer.json), a URL, or hf:Owner/Name (default: the
                         bundled stories15M)
  --tokenizer PATH       tokenizer.bin of a llama2.c checkpoint (default: the bundled one; other
                         formats carry their own tokenizer)
  --chat                 apply the model's chat template to --prompt (one user message)
  --context N            positions to allocate (default: min(trained context, 4096))
  --json                 print one JSON object instead of streaming text
Numbers may be negative or infinite as written: --tau -inf.`;

function numberOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const infinity = /^([+-]?)inf(inity)?$/i.exec(value.trim());
  if (infinity) return infinity[1] === '-' ? -Infinity : Infinity;
  const n = Number(value);
  if (value.trim() === '' || Number.isNaN(n)) throw new InvalidArgumentError(`--${name} must be a number, got ${JSON.stringify(value)}`);
  return n;
}

export function toJson(r: GenerationResult, model: ModelInfo) {
  return {
    model: {
      architecture: model.config.architecture, format: model.format, dtype: model.dtype,
      parameters: model.parameterCount, gpu_bytes: model.gpuBytes, context: model.contextLength, load_ms: model.loadMs,
    },
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

/**
 * `--tau -inf` as `--tau=-inf`: parseArgs takes a value that starts with '-' for an option of its
 * own, so a negative or infinite number after a valued option is joined to it first.
 */
function joinNegativeNumbers(args: string[], valued: Set<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith('--') ? args[i].slice(2) : null;
    const next = args[i + 1];
    if (name && valued.has(name) && next !== undefined && /^-(\d|\.\d|inf)/i.test(next)) {
      out.push(`${args[i]}=${next}`);
      i++;
    } else {
      out.push(args[i]);
    }
  }
  return out;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'serve') return serve(rest);
  if (command !== 'generate') {
    console.error(USAGE);
    return command === '--help' || command === '-h' ? 0 : 2;
  }
  const options_ = {
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
      tokenizer: { type: 'string' },
      chat: { type: 'boolean', default: false },
      context: { type: 'string' },
      json: { type: 'boolean', default: false },
  } as const;
  const valued = new Set(Object.entries(options_).filter(([, o]) => o.type === 'string').map(([k]) => k));
  const { values } = parseArgs({ args: joinNegativeNumbers(rest, valued), strict: true, options: options_ });
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
    chat: values.chat,
  };
  const contextLength = numberOption('context', values.context);
  checkGenerateOptions(options); // fail on bad options before spending seconds on loading
  const engine = await createNodeEngine();
  const smallModel = values['small-model'] ?? (options.decoder === 'ead' ? bundledModel.smallModel : undefined);
  // llama2.c checkpoints (.bin) take the bundled tokenizer.bin unless told otherwise; other formats carry theirs.
  const tokenizer = values.tokenizer ?? (values.model!.endsWith('.bin') ? bundledModel.tokenizer : undefined);
  const info = await engine.loadModel({
    model: await modelFromPath(values.model!),
    tokenizer: tokenizer === undefined ? undefined : await readLocal(tokenizer),
    smallModel: smallModel === undefined ? undefined : await modelFromPath(smallModel),
    contextLength,
  });
  const generation = engine.generate(values.prompt!, options);
  if (values.json) {
    console.log(JSON.stringify(toJson(await generation.complete(), info)));
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
