// The decoder registry: every decoder's schema is self-consistent, options resolve per decoder
// (section over the deprecated flat keys over the defaults), bad values are DecoderOptionErrors
// naming the parameter, requirements come from the declarations, and README's table is the
// generated one (`npm run docs:decoders` rewrites it).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CntpDecoder } from '../../src/decode/cntp.ts';
import { EadDecoder } from '../../src/decode/ead.ts';
import { EntropixDecoder } from '../../src/decode/entropix.ts';
import { DECODERS, DECODER_SPECS, decoderSpec, decoderTable, resolveDecoder, summaryOf } from '../../src/decode/registry.ts';
import { DecoderOptionError, checkParam } from '../../src/decode/spec.ts';
import { SrgenDecoder } from '../../src/decode/srgen.ts';
import { checkGenerateOptions } from '../../src/engine.ts';
import { InvalidArgumentError } from '../../src/errors.ts';
import { withTable } from '../../scripts/decoder-docs.ts';

const context = { seed: 0, endIds: [], tokenIds: () => [], parameters: { small: 1, large: 2 } };
const resolve = (o: Record<string, unknown>) => resolveDecoder(o, context);

describe('decoder registry', () => {
  test('names and section keys are unique; every default passes its own schema', () => {
    assert.equal(new Set(DECODERS).size, DECODERS.length);
    assert.equal(new Set(DECODER_SPECS.map((s) => s.key)).size, DECODERS.length);
    for (const spec of DECODER_SPECS) {
      for (const [name, p] of Object.entries(spec.params)) {
        assert.equal(checkParam(`${spec.key}.${name}`, p, undefined), p.default);
        assert.equal(checkParam(`${spec.key}.${name}`, p, p.default), p.default, `${spec.name}.${name}`);
        assert.ok(p.doc.length > 0);
      }
      const d = resolve({ decoder: spec.name });
      assert.equal(d.decoder.name, spec.name, 'the factory builds its decoder');
    }
  });

  test('README\u2019s decoder table is the generated one (npm run docs:decoders)', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
    assert.equal(withTable(readme), readme, 'README.md is stale: run npm run docs:decoders');
    assert.ok(readme.includes(decoderTable()));
  });

  test('per-decoder sections; flat keys are read for the chosen decoder only (deprecated); the section wins', () => {
    assert.equal(resolve({ decoder: 'ead' }).params.window, 5);
    assert.equal(resolve({ decoder: 'srgen' }).params.window, 25);
    assert.equal(resolve({ decoder: 'ead', window: 7 }).params.window, 7);
    assert.equal(resolve({ decoder: 'srgen', window: 7 }).params.window, 7);
    assert.equal(resolve({ decoder: 'srgen', window: 7, srgen: { window: 9 } }).params.window, 9);
    assert.equal(resolve({ decoder: 'cntp', trialsInSequence: true }).params.sequential, true);
    // another decoder's section is ignored (one options object can serve a comparison)
    assert.equal(resolve({ decoder: 'cntp', ead: { tau: 3 } }).params.maxTrials, 10);
  });

  test('sampler defaults per decoder; the caller\u2019s top-level options override them; greedy stays greedy', () => {
    assert.equal(resolve({ decoder: 'srgen' }).sampler.temperature, 0.6);
    assert.equal(resolve({ decoder: 'srgen', temperature: 0.9 }).sampler.temperature, 0.9);
    assert.equal(resolve({ decoder: 'greedy', temperature: 0.9 }).sampler.temperature, 0);
    assert.deepEqual(
      (({ temperature, topK, topP, minP }) => ({ temperature, topK, topP, minP }))(resolve({ decoder: 'entropix' }).sampler),
      { temperature: 0.666, topK: 27, topP: 0.9, minP: 0.03 });
    assert.equal(resolve({ decoder: 'cntp' }).sampler.topK, 50);
  });

  test('bad values: DecoderOptionError (invalid-argument) naming the parameter', () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ decoder: 'ead', ead: { tau: Number.NaN } }, 'ead.tau', /ead\.tau must be a finite number \(or ±Infinity\)/],
      [{ decoder: 'ead', tau: 'x' }, 'tau', /tau must be/],
      [{ decoder: 'ead', ead: { window: 1.5 } }, 'ead.window', /ead\.window must be an integer in \[1, 4096\], got 1\.5/],
      [{ decoder: 'cntp', cntp: { hLo: 2, hHi: 1 } }, 'cntp.hHi', /above/],
      [{ decoder: 'cntp', cntp: { sequential: 'yes' } }, 'cntp.sequential', /true or false/],
      [{ decoder: 'cntp', cntp: { trials: 3 } }, 'cntp.trials', /unknown cntp parameter "trials" \(expected hLo, hHi, maxTrials, sequential\)/],
      [{ decoder: 'cntp', cntp: 5 }, 'cntp', /must be an object/],
      [{ decoder: 'entropix', entropix: { clarifyingToken: -1 } }, 'entropix.clarifyingToken', /token id/],
      [{ decoder: 'entropy-top-k', entropyTopK: { kMin: 10, kMax: 5 } }, 'entropyTopK.kMax', /at least/],
      [{ decoder: 'adaptive-temperature', adaptiveTemperature: { tau: 2 } }, 'adaptiveTemperature.tau', /\[0, 1\]/],
    ];
    for (const [o, parameter, message] of cases) {
      assert.throws(() => resolve(o), (e: unknown) => {
        assert.ok(e instanceof DecoderOptionError && e instanceof InvalidArgumentError, `${JSON.stringify(o)}: ${e}`);
        assert.equal(e.code, 'invalid-argument');
        assert.equal(e.parameter, parameter);
        assert.match(e.message, message);
        return true;
      });
    }
    assert.throws(() => decoderSpec('beam'), /unknown decoder "beam" \(expected greedy, sample, cntp, ead, srgen, entropix, adaptive-temperature, entropy-top-k\)/);
    assert.equal(resolve({ decoder: 'ead', ead: { tau: -Infinity } }).params.tau, -Infinity);
  });

  test('requirements come from the declarations', () => {
    assert.deepEqual(resolve({ decoder: 'cntp', cntp: { maxTrials: 6 } }).requires, { rows: 6 });
    assert.deepEqual(resolve({ decoder: 'ead' }).requires, { smallModel: true });
    assert.deepEqual(resolve({ decoder: 'srgen' }).requires, { hiddenStates: true });
    assert.deepEqual(resolve({ decoder: 'entropix' }).requires, { attention: true });
    assert.deepEqual(resolve({ decoder: 'sample' }).requires, {});
  });

  test('the engine\u2019s checkGenerateOptions builds each decoder with its parameters', () => {
    const cntp = checkGenerateOptions({ decoder: 'cntp', cntp: { maxTrials: 4 } });
    assert.ok(cntp.decoder instanceof CntpDecoder && cntp.decoder.maxTrials === 4);
    assert.ok(checkGenerateOptions({ decoder: 'ead', ead: { tau: 2 } }).decoder instanceof EadDecoder);
    const srgen = checkGenerateOptions({ decoder: 'srgen', srgen: { theta0: 1, window: 3 } }).decoder as SrgenDecoder;
    assert.deepEqual([srgen.threshold.theta0, srgen.threshold.window], [1, 3]);
    const entropix = checkGenerateOptions({ decoder: 'entropix', temperature: 0.5, entropix: { clarifyingToken: 13 } }).decoder;
    assert.ok(entropix instanceof EntropixDecoder && entropix.base.temperature === 0.5);
    assert.throws(() => summaryOf({ decoder: 'cntp', branches: 0, trials: 0 }, 'ead'), InvalidArgumentError);
  });
});
