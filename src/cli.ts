// `forkwise generate …`: the engine from the command line, on Node's WebGPU.
import { parseArgs } from 'node:util';
import { DECODERS, DECODER_SPECS, decoderSpec, decoderUsage, flagOf, legacyFlagOf } from './decode/registry.ts';
import type { ParamSpec } from './decode/spec.ts';
import { type GenerateOptions, type GenerationResult, type ModelInfo, checkGenerateOptions } from './engine.ts';
import { ForkwiseError, InvalidArgumentError } from './errors.ts';
import { bundledModel, createNodeEngine, modelFromPath, readLocal } from './node/index.ts';
import { serve } from './server/cli.ts';

const USAGE = `usage: forkwise generate [options]   (or: forkwise serve --help, the OpenAI-compatible server)
  --prompt TEXT          prompt (default: empty, i.e. BOS only)
  --max-tokens N         new tokens at most (default: until the context is full)
  --decoder NAME         ${DECODERS.join(' | ')} (default greedy)
  --temperature T        sampling temperature (default 1, or the decoder's own below)
  --top-k K  --top-p P  --min-p P  --typical TAU  --top-h ALPHA  --repetition-penalty THETA
                         sampler stages, applied in that order after the penalty and temperature
  --frequency-penalty F  --presence-penalty P   (OpenAI's additive penalties, [−2, 2])
  --seed N               RNG seed (default 0)
  --small-model PATH     EAD's small model (default: the bundled stories-student)
  --model PATH           a llama2.c checkpoint, a .gguf file, a Hugging Face folder (config.json,
                         *.safetensors, tokenizer.json), a URL, or hf:Owner/Name (default: the
                         bundled stories15M)
  --tokenizer PATH       tokenizer.bin of a llama2.c checkpoint (default: the bundled one; other
                         formats carry their own tokenizer)
  --chat                 apply the model's chat template to --prompt (one user message)
  --context N            positions to allocate (default: min(trained context, 4096))
  --json                 print one JSON object instead of streaming text
Decoder parameters (--<decoder>-<parameter>, or the older short flag, for the chosen --decoder):
${decoderUsage()}
Numbers may be negative or infinite as written: --tau -inf.`;

function numberOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const infinity = /^([+-]?)inf(inity)?$/i.exec(value.trim());
  if (infinity) return infinity[1] === '-' ? -Infinity : Infinity;
  const n = Number(value);
  if (value.trim() === '' || Number.isNaN(n)) throw new InvalidArgumentError(`--${name} must be a number, got ${JSON.stringify(value)}`);
  return n;
}

/** Every decoder parameter's flags: `--<decoder>-<param>` and the older short one (shared: `--window`). */
function decoderFlags(): Record<string, { type: 'string' | 'boolean' }> {
  const flags: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const spec of DECODER_SPECS) {
    for (const [name, p] of Object.entries(spec.params as Record<string, ParamSpec>)) {
      const type = p.type === 'boolean' ? 'boolean' : 'string';
      flags[flagOf(spec, name)] = { type };
      const legacy = legacyFlagOf(p);
      if (legacy) flags[legacy] = { type };
    }
  }
  return flags;
}

/**
 * The chosen decoder's section from its flags. A flag of another decoder is an error (it would
 * do nothing); a short flag several decoders share (`--window`) is the chosen one's.
 */
function decoderSection(decoder: string, values: Record<string, string | boolean | undefined>): Partial<GenerateOptions> {
  const spec = decoderSpec(decoder);
  const section: Record<string, unknown> = {};
  const own = new Set<string>();
  for (const [name, p] of Object.entries(spec.params)) {
    for (const flag of [flagOf(spec, name), legacyFlagOf(p)]) {
      if (flag === undefined) continue;
      own.add(flag);
      const raw = values[flag];
      if (raw === undefined) continue;
      section[name] = typeof raw === 'boolean' ? raw : p.type === 'token' && /^(auto|null)$/i.test(raw) ? null : numberOption(flag, raw);
    }
  }
  for (const flag of Object.keys(decoderFlags())) {
    if (values[flag] !== undefined && !own.has(flag)) {
      throw new InvalidArgumentError(`--${flag} is not a parameter of decoder ${spec.name} (see forkwise --help)`);
    }
  }
  return Object.keys(section).length ? { [spec.key]: section } : {};
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
      'frequency-penalty': { type: 'string' },
      'presence-penalty': { type: 'string' },
      'small-model': { type: 'string' },
      model: { type: 'string', default: bundledModel.model },
      tokenizer: { type: 'string' },
      chat: { type: 'boolean', default: false },
      context: { type: 'string' },
      json: { type: 'boolean', default: false },
      ...decoderFlags(),
  } as const;
  const valued = new Set(Object.entries(options_).filter(([, o]) => o.type === 'string').map(([k]) => k));
  const { values } = parseArgs({ args: joinNegativeNumbers(rest, valued), strict: true, options: options_ });
  const v = values as Record<string, string | boolean | undefined>;
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
    frequencyPenalty: numberOption('frequency-penalty', values['frequency-penalty']),
    presencePenalty: numberOption('presence-penalty', values['presence-penalty']),
    ...decoderSection(values.decoder!, v),
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
