// Every decoder, one line each. A decoder is one file (or folder) that exports its DecoderSpec
// (spec.ts); the engine, the CLI, the demo and README's table read this list. Adding a decoder:
// its file, and a line here.
import { adaptiveTemperatureSpec } from './adaptive-temperature.ts';
import { cntpSpec } from './cntp.ts';
import { eadSpec } from './ead.ts';
import { entropixSpec } from './entropix.ts';
import { entropyTopKSpec } from './entropy-top-k.ts';
import { greedySpec, sampleSpec } from './sampling-decoder.ts';
import { InvalidArgumentError } from '../errors.ts';
import type { SamplerOptions } from './samplers.ts';
import {
  type CreateContext, type DecoderSpec, type ParamSpec, type ParamTable, type ParamValues, type Requirements, kebab, resolveParams,
  shownValue,
} from './spec.ts';
import { srgenSpec } from './srgen.ts';
import type { Decoder } from './decoder.ts';

export const DECODER_SPECS = [
  greedySpec,
  sampleSpec,
  cntpSpec,
  eadSpec,
  srgenSpec,
  entropixSpec,
  adaptiveTemperatureSpec,
  entropyTopKSpec,
] as const;

type Specs = (typeof DECODER_SPECS)[number];
type AnySpec = DecoderSpec<string, ParamTable, { type: string; pos: number }, object>;

export type DecoderName = Specs['name'];
export const DECODERS: readonly DecoderName[] = DECODER_SPECS.map((s) => s.name);

type EventOf<T> = T extends DecoderSpec<string, ParamTable, infer E, object> ? E : never;
type SummaryOf<T> = T extends DecoderSpec<string, ParamTable, { type: string; pos: number }, infer S> ? S : never;

/** What a decoder did besides emitting, by `type` (a CNTP branch, an EAD switch, …). */
export type DecoderEvent = EventOf<Specs>;
/** The decoder's totals, by `decoder`. */
export type DecoderSummary = SummaryOf<Specs>;

/** Each decoder's own options: `{ decoder: 'ead', ead: { tau, window, minStay } }`. */
export type DecoderSections = {
  [S in Specs as S['key']]?: Partial<ParamValues<S['params']>>;
};

export type DecoderParams<N extends DecoderName> = ParamValues<Extract<Specs, { name: N }>['params']>;

export function decoderSpec(name: unknown): AnySpec {
  const spec = DECODER_SPECS.find((s) => s.name === name);
  if (!spec) throw new InvalidArgumentError(`unknown decoder ${shownValue(name)} (expected ${DECODERS.join(', ')})`);
  return spec as unknown as AnySpec;
}

/** The flat (deprecated) option keys of every decoder: `tau`, `window`, `maxTrials`, … */
export const LEGACY_KEYS: ReadonlySet<string> = new Set(
  DECODER_SPECS.flatMap((s) => Object.values(s.params as ParamTable).map((p) => p.legacy).filter((k): k is string => k !== undefined)),
);

export interface ResolvedDecoder {
  spec: AnySpec;
  params: Record<string, unknown>;
  sampler: SamplerOptions;
  requires: Requirements;
  decoder: Decoder;
}

/** The sampler options every decoder shares (top-level in GenerateOptions). */
export const SAMPLER_KEYS = ['temperature', 'topK', 'topP', 'minP', 'typical', 'topH', 'repetitionPenalty', 'frequencyPenalty', 'presencePenalty', 'entropyTopK'] as const;

/**
 * Validates `options` for their decoder (default 'greedy') and builds it: the decoder's section,
 * then the deprecated flat keys, then the schema's defaults; the shared sampler options over the
 * decoder's sampling defaults. Throws InvalidArgumentError (DecoderOptionError naming the
 * parameter) before any GPU work.
 */
export function resolveDecoder(options: Record<string, unknown>, context: Omit<CreateContext, 'sampler'>): ResolvedDecoder {
  const spec = decoderSpec(options.decoder ?? 'greedy');
  const params = resolveParams(spec, options);
  const sampler: SamplerOptions = { ...spec.sampling, vocabSize: context.vocabSize };
  for (const key of SAMPLER_KEYS) if (options[key] !== undefined) (sampler as Record<string, unknown>)[key] = options[key];
  Object.assign(sampler, spec.fixedSampling);
  const decoder = spec.create(params, { ...context, sampler });
  return { spec, params, sampler, requires: spec.requires(params), decoder };
}

// ---------------------------------------------------------------------------------------------
// Generated documentation: README's table, the CLI's flags and --help.

/** The CLI flag of a parameter: `--<decoder>-<param>`. */
export const flagOf = (spec: { name: string }, param: string) => `${spec.name}-${kebab(param)}`;
/** Today's shorter flag (from the flat option name), if it is one. */
export const legacyFlagOf = (p: ParamSpec) => (p.legacy === undefined ? undefined : kebab(p.legacy));

function rangeText(p: ParamSpec): string {
  if (p.type === 'boolean') return 'true / false';
  if (p.type === 'token') return 'token id';
  return `${p.type === 'integer' ? 'integer ' : ''}[${p.min}, ${p.max}]${p.infinite ? ', ±∞' : ''}`;
}

const defaultText = (p: ParamSpec) => (p.default === null ? 'model' : String(p.default));

function samplingText(spec: AnySpec): string {
  const parts = Object.entries({ ...spec.sampling, ...spec.fixedSampling }).map(([k, v]) => `${k} ${v}`);
  return parts.length ? parts.join(', ') : '—';
}

/** README's decoder table (Markdown), generated from the registry. */
export function decoderTable(): string {
  const lines = [
    '| decoder | parameter | CLI flag | default | range | unit | what it is |',
    '|---|---|---|---:|---|---|---|',
  ];
  for (const spec of DECODER_SPECS as readonly AnySpec[]) {
    const req = Object.entries(spec.requires(Object.fromEntries(Object.entries(spec.params).map(([k, p]) => [k, p.default])) as never))
      .filter(([, v]) => v !== undefined && v !== false && v !== 1).map(([k, v]) => (v === true ? k : `${k} ${v}`));
    lines.push(`| **\`${spec.name}\`** | sampling: ${samplingText(spec)} | | | | | ${spec.doc}${req.length ? ` Requires: ${req.join(', ')}.` : ''} |`);
    for (const [name, p] of Object.entries(spec.params)) {
      const legacy = legacyFlagOf(p);
      const flags = [`\`--${flagOf(spec, name)}\``, ...(legacy ? [`\`--${legacy}\``] : [])].join(' ');
      lines.push(`| | \`${spec.key}.${name}\` | ${flags} | ${defaultText(p)} | ${rangeText(p)} | ${p.unit ?? ''} | ${p.doc} |`);
    }
  }
  return lines.join('\n');
}

/** The decoder part of `forkwise generate --help`. */
export function decoderUsage(): string {
  const lines: string[] = [];
  for (const spec of DECODER_SPECS as readonly AnySpec[]) {
    lines.push(`  ${spec.name} (sampling defaults: ${samplingText(spec)})`);
    for (const [name, p] of Object.entries(spec.params)) {
      const legacy = legacyFlagOf(p);
      const flag = `--${flagOf(spec, name)}${legacy ? ` | --${legacy}` : ''} ${p.type === 'boolean' ? '' : p.type === 'token' ? 'ID' : 'X'}`.trimEnd();
      lines.push(`    ${flag.padEnd(40)} ${p.doc} (default ${defaultText(p)}${p.unit ? ` ${p.unit}` : ''}; ${rangeText(p)})`);
    }
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Narrowing helpers for callers that know which decoder ran.

/** The summary as `name`'s type; throws InvalidArgumentError if another decoder produced it. */
export function summaryOf<N extends DecoderName>(summary: DecoderSummary, name: N): Extract<DecoderSummary, { decoder: N }> {
  if (summary?.decoder !== name) throw new InvalidArgumentError(`the summary is of decoder ${shownValue(summary?.decoder)}, not ${name}`);
  return summary as Extract<DecoderSummary, { decoder: N }>;
}

/** The events of one type, typed. */
export function eventsOf<T extends DecoderEvent['type']>(events: readonly DecoderEvent[], type: T): Extract<DecoderEvent, { type: T }>[] {
  return events.filter((e): e is Extract<DecoderEvent, { type: T }> => e.type === type);
}
