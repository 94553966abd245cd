// What a decoder declares about itself (registry.ts lists them): its name, a parameter schema
// (type, range, default, doc, unit), the sampler defaults it runs with, what it requires of the
// runtime, and a factory. The engine validates options against the schema, plans KV rows, the
// second model, the hidden-state history and attention statistics from the requirements, and
// the CLI flags, `--help`, the demo's controls and README's table are generated from it.
import { InvalidArgumentError } from '../errors.ts';
import type { TextTokenizer } from '../tokenizer/types.ts';
import type { Decoder, DecoderEventBase } from './decoder.ts';
import type { SamplerOptions } from './samplers.ts';

/** A caller's value in a message, without throwing on values whose String() throws. */
export function shownValue(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/** An option of one decoder that is missing its mark: InvalidArgumentError naming the parameter. */
export class DecoderOptionError extends InvalidArgumentError {
  /** `<decoder>.<parameter>`, e.g. 'ead.tau'. */
  readonly parameter: string;
  constructor(parameter: string, message: string) {
    super(message);
    this.parameter = parameter;
  }
}

interface ParamCommon {
  /** One line for --help, the demo's tooltip and README. */
  doc: string;
  /** Unit of the value ('nats', 'bits', 'tokens', …). */
  unit?: string;
  /**
   * The flat GenerateOptions key (and CLI flag, kebab-cased) this parameter had before options
   * were per decoder: still accepted, deprecated. Several decoders may share one (`window`).
   */
  legacy?: string;
  /** Shown in the demo's controls, with this input step. */
  demo?: { step: number };
}

export interface NumberParam extends ParamCommon {
  type: 'number' | 'integer';
  default: number;
  min: number;
  max: number;
  /** ±Infinity accepted besides [min, max] (EAD's τ). */
  infinite?: boolean;
}

export interface BooleanParam extends ParamCommon {
  type: 'boolean';
  default: boolean;
}

/** A token id, or null: the decoder derives one from the model's tokenizer. */
export interface TokenParam extends ParamCommon {
  type: 'token';
  default: null;
}

export type ParamSpec = NumberParam | BooleanParam | TokenParam;
export type ParamTable = Readonly<Record<string, ParamSpec>>;

type ValueOf<T extends ParamSpec> = T extends BooleanParam ? boolean : T extends TokenParam ? number | null : number;
/** The validated parameters of a decoder, every one filled. */
export type ParamValues<P extends ParamTable> = { -readonly [K in keyof P]: ValueOf<P[K]> };

/** What a decoder needs the engine to provide before its first step. */
export interface Requirements {
  /** KV rows (row 0 included), e.g. CNTP's maxTrials. Default 1. */
  rows?: number;
  /** A second model with the same vocabulary (loadModel's smallModel). */
  smallModel?: boolean;
  /** Row 0's final-normed hidden states of every position (SRGen's reflection). */
  hiddenStates?: boolean;
  /** Per-step attention statistics (StepStats.attention), when the runtime can compute them. */
  attention?: boolean;
}

/** What a factory gets besides its parameters: the resolved sampler, the seed, the model's facts. */
export interface CreateContext {
  /** Sampler options after the decoder's defaults and the caller's overrides (vocabSize included). */
  sampler: SamplerOptions;
  seed: number;
  vocabSize?: number;
  tokenizer?: TextTokenizer;
  /** Ids that end generation (EOS; BOS for llama2.c stories). */
  endIds: readonly number[];
  /** The first token id of each mark as the tokenizer encodes it mid-text (marks it cannot encode are left out). */
  tokenIds(marks: readonly string[]): number[];
  /** Parameter counts of the small and large model (EAD's cost ratio). */
  parameters: { small: number; large: number };
}

export interface DecoderSpec<
  N extends string = string, P extends ParamTable = ParamTable, E extends DecoderEventBase = DecoderEventBase, S extends object = object,
  K extends string = string,
> {
  /** The value of GenerateOptions.decoder. */
  readonly name: N;
  /** Key of the decoder's own section in GenerateOptions (camelCase of the name). */
  readonly key: K;
  /** Short label (demo's menu, README). */
  readonly title: string;
  /** One sentence: what it does. */
  readonly doc: string;
  readonly params: P;
  /** Defaults of the sampler stages for this decoder; the caller's top-level options override them. */
  readonly sampling?: Readonly<Partial<Omit<SamplerOptions, 'vocabSize'>>>;
  /** Sampler settings the caller cannot override (greedy: temperature 0). */
  readonly fixedSampling?: Readonly<Partial<Omit<SamplerOptions, 'vocabSize'>>>;
  /** Relations between parameters (throw DecoderOptionError). */
  check?(p: ParamValues<P>): void;
  requires(p: ParamValues<P>): Requirements;
  create(p: ParamValues<P>, c: CreateContext): Decoder<E, S>;
  /** Phantom: the decoder's event and summary types. */
  readonly types?: { event: E; summary: S };
}

/** Declares a decoder: `defineDecoder<Event, Summary>()({ name, params, … })` keeps the literal types. */
export function defineDecoder<E extends DecoderEventBase = never, S extends object = Record<string, never>>() {
  return <const N extends string, const P extends ParamTable, const K extends string>(spec: DecoderSpec<N, P, E, S, K>): DecoderSpec<N, P, E, S, K> => spec;
}

export const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * Validates one value against its schema (InvalidArgumentError naming `name`); `undefined`
 * gives the default.
 */
export function checkParam(name: string, spec: ParamSpec, value: unknown): number | boolean | null {
  if (value === undefined) return spec.default;
  switch (spec.type) {
    case 'boolean':
      if (typeof value !== 'boolean') throw new DecoderOptionError(name, `${name} must be true or false, got ${shownValue(value)}`);
      return value;
    case 'token':
      if (value === null) return null;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
        throw new DecoderOptionError(name, `${name} must be a token id (an integer ≥ 0) or null, got ${shownValue(value)}`);
      }
      return value;
    default: {
      const n = value as number;
      if (spec.infinite && typeof n === 'number' && (n === Infinity || n === -Infinity)) return n;
      const integer = spec.type === 'integer';
      if (typeof n !== 'number' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < spec.min || n > spec.max) {
        const what = integer ? 'an integer' : `a finite number${spec.infinite ? ' (or ±Infinity)' : ''}`;
        throw new DecoderOptionError(name, `${name} must be ${what} in [${spec.min}, ${spec.max}], got ${shownValue(value)}`);
      }
      return n;
    }
  }
}

/**
 * The parameters of `spec` from its section (`options[spec.key]`) and, deprecated, the flat
 * options' legacy keys; the section wins. Unknown keys in the section are errors.
 */
export function resolveParams<P extends ParamTable>(
  spec: DecoderSpec<string, P, DecoderEventBase, object, string>, options: Record<string, unknown>,
): ParamValues<P> {
  const section = options[spec.key];
  if (section !== undefined && (typeof section !== 'object' || section === null || Array.isArray(section))) {
    throw new DecoderOptionError(spec.key, `${spec.key} must be an object of ${spec.name}'s parameters, got ${shownValue(section)}`);
  }
  const given = (section ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(spec.params, key)) {
      const known = Object.keys(spec.params);
      throw new DecoderOptionError(`${spec.key}.${key}`, `unknown ${spec.name} parameter ${JSON.stringify(key)} (expected ${known.length ? known.join(', ') : 'none'})`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, param] of Object.entries(spec.params)) {
    const fromSection = given[key];
    const fromLegacy = param.legacy === undefined ? undefined : options[param.legacy];
    const name = fromSection === undefined && fromLegacy !== undefined ? param.legacy! : `${spec.key}.${key}`;
    out[key] = checkParam(name, param, fromSection ?? fromLegacy);
  }
  const values = out as ParamValues<P>;
  spec.check?.(values);
  return values;
}

/** Python's round(): to the nearest integer, halves to the even one. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
