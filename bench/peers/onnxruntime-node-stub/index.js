// Stand-in for onnxruntime-node, installed by the `overrides` entry of the root package.json.
// forkwise benchmarks transformers.js only in the browser (onnxruntime-web); the real package's
// install script downloads CUDA binaries from a host outside the npm registry and fails offline.
throw new Error(
  'onnxruntime-node is a stub in this repository (package.json "overrides"): run transformers.js in the browser bench (bench/peers/transformers.ts)',
);
