// y[t] = x[t] · W (or y[t] += x[t] · W: the residual add, fused). W is stored transposed as
// [K][N/4] vec4, so neighbouring invocations stream neighbouring bytes: the fastest matmul pattern
// on SwiftShader (DESIGN §7). Each output is summed serially over k, like llama2.c's matmul.
// Entry points: `gemv` takes one token row per invocation (decode), `gemm` four (prefill), so each
// weight vec4 read from memory serves four tokens.
override K: u32;                    // input features
override N4: u32;                   // output features / 4
override ACCUMULATE: bool = false;  // add into y instead of overwriting it
override WG: u32 = 64;

struct Step { n_tokens: u32, stats_row_start: u32, stats_rows: u32, seed: u32, counter: u32, inv_stats_temp: f32, inv_sample_temp: f32, _pad: u32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;

fn store(t: u32, n4: u32, value: vec4<f32>) {
  let i = t * N4 + n4;
  if (ACCUMULATE) {
    y[i] = y[i] + value;
  } else {
    y[i] = value;
  }
}

@compute @workgroup_size(WG)
fn gemv(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n4 = gid.x;
  let t = gid.y;
  if (n4 >= N4 || t >= step.n_tokens) { return; }
  var acc = vec4<f32>(0.0);
  let xb = t * K;
  for (var k = 0u; k < K; k++) {
    acc += x[xb + k] * w[k * N4 + n4];
  }
  store(t, n4, acc);
}

@compute @workgroup_size(WG)
fn gemm(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n4 = gid.x;
  let t0 = gid.y * 4u;
  if (n4 >= N4 || t0 >= step.n_tokens) { return; }
  // Rows past the end read row t0 again (always valid) and are not stored.
  let t1 = select(t0, t0 + 1u, t0 + 1u < step.n_tokens);
  let t2 = select(t0, t0 + 2u, t0 + 2u < step.n_tokens);
  let t3 = select(t0, t0 + 3u, t0 + 3u < step.n_tokens);
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var k = 0u; k < K; k++) {
    let wk = w[k * N4 + n4];
    a0 += x[t0 * K + k] * wk;
    a1 += x[t1 * K + k] * wk;
    a2 += x[t2 * K + k] * wk;
    a3 += x[t3 * K + k] * wk;
  }
  store(t0, n4, a0);
  if (t0 + 1u < step.n_tokens) { store(t1, n4, a1); }
  if (t0 + 2u < step.n_tokens) { store(t2, n4, a2); }
  if (t0 + 3u < step.n_tokens) { store(t3, n4, a3); }
}
