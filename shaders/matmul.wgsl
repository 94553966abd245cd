// y[t] = x[t] · W (or y[t] += x[t] · W: the residual add, fused). W is stored transposed as
// [K][N/4] vec4, so neighbouring invocations stream neighbouring bytes: the fastest matmul pattern
// on SwiftShader (measured in bench/kernels.ts). Each invocation owns two output vec4s, HALF apart, and reads x four
// features at a time; both cut loads per multiply-add, which is what bounds SwiftShader here
// (measured in bench/kernels.ts). Each output is still summed serially over k, as llama2.c does.
// Entry points: `gemv` takes one token row per invocation (decode), `gemm` four (prefill,
// batches), so each weight vec4 read from memory serves four tokens.
override K4: u32;                   // input features / 4
override N4: u32;                   // output features / 4
override ACCUMULATE: bool = false;  // add into y instead of overwriting it
override WG: u32 = 32;
// Rows to multiply: all n_tokens rows of the step, or (STATS_ROWS) only the step's stats rows
// [stats_row_start, +stats_rows) of x, written to y rows 0.. (the LM head over a batch).
override STATS_ROWS: bool = false;
// y's row stride and first column, in vec4s: a tile of a wider output (the LM head's logits when
// the classifier is split into tiles) writes its columns at Y_OFFSET4.. of rows Y_N4 wide.
override Y_N4: u32;
override Y_OFFSET4: u32 = 0u;


@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;

fn half() -> u32 { return (N4 + 1u) / 2u; }

fn row_count() -> u32 { return select(step.n_tokens, step.stats_rows, STATS_ROWS); }
fn x_row(t: u32) -> u32 { return select(t, step.stats_row_start + t, STATS_ROWS); }

fn store(t: u32, n4: u32, value: vec4<f32>) {
  if (n4 >= N4) { return; }
  let i = t * Y_N4 + Y_OFFSET4 + n4;
  if (ACCUMULATE) {
    y[i] = y[i] + value;
  } else {
    y[i] = value;
  }
}

// Column index of the second output, clamped so its loads stay in bounds (stored only if valid).
fn second(n4: u32) -> u32 { return min(n4 + half(), N4 - 1u); }

@compute @workgroup_size(WG)
fn gemv(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n4 = gid.x;
  let t = gid.y;
  if (n4 >= half() || t >= row_count()) { return; }
  let m4 = second(n4);
  let xb = x_row(t) * K4;
  var a = vec4<f32>(0.0);
  var b = vec4<f32>(0.0);
  for (var k4 = 0u; k4 < K4; k4++) {
    let xv = x[xb + k4];
    let r = 4u * k4 * N4;
    a += xv.x * w[r + n4];
    b += xv.x * w[r + m4];
    a += xv.y * w[r + N4 + n4];
    b += xv.y * w[r + N4 + m4];
    a += xv.z * w[r + 2u * N4 + n4];
    b += xv.z * w[r + 2u * N4 + m4];
    a += xv.w * w[r + 3u * N4 + n4];
    b += xv.w * w[r + 3u * N4 + m4];
  }
  store(t, n4, a);
  store(t, n4 + half(), b);
}

// One weight vec4 pair feeds four token rows (two in a batch's last tile when only one or two
// are left: a whole four-row tile there costs as much as four rows). Written out by hand:
// SwiftShader spills private arrays indexed in loops to memory. The tile size is uniform per
// workgroup (one tile row per workgroup row), so the branch does not diverge.
@compute @workgroup_size(WG)
fn gemm(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n4 = gid.x;
  let t0 = gid.y * 4u;
  let n = row_count();
  if (n4 >= half() || t0 >= n) { return; }
  if (n - t0 <= 2u) {
    gemm2(n4, t0, n);
  } else {
    gemm4(n4, t0, n);
  }
}

fn gemm4(n4: u32, t0: u32, n: u32) {
  let m4 = second(n4);
  // Rows past the end re-read row t0 (always valid) and are not stored.
  let x0 = x_row(t0) * K4;
  let x1 = x_row(t0 + 1u) * K4;
  let x2 = x_row(t0 + 2u) * K4;
  let x3 = x_row(select(t0, t0 + 3u, t0 + 3u < n)) * K4;
  var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
  var b0 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0); var b2 = vec4<f32>(0.0); var b3 = vec4<f32>(0.0);
  for (var k4 = 0u; k4 < K4; k4++) {
    let v0 = x[x0 + k4];
    let v1 = x[x1 + k4];
    let v2 = x[x2 + k4];
    let v3 = x[x3 + k4];
    for (var j = 0u; j < 4u; j++) {
      let r = (4u * k4 + j) * N4;
      let wa = w[r + n4];
      let wb = w[r + m4];
      a0 += v0[j] * wa; b0 += v0[j] * wb;
      a1 += v1[j] * wa; b1 += v1[j] * wb;
      a2 += v2[j] * wa; b2 += v2[j] * wb;
      a3 += v3[j] * wa; b3 += v3[j] * wb;
    }
  }
  let h = half();
  store(t0, n4, a0); store(t0, n4 + h, b0);
  store(t0 + 1u, n4, a1); store(t0 + 1u, n4 + h, b1);
  store(t0 + 2u, n4, a2); store(t0 + 2u, n4 + h, b2);
  if (t0 + 3u < n) { store(t0 + 3u, n4, a3); store(t0 + 3u, n4 + h, b3); }
}

fn gemm2(n4: u32, t0: u32, n: u32) {
  let m4 = second(n4);
  let x0 = x_row(t0) * K4;
  let x1 = x_row(select(t0, t0 + 1u, t0 + 1u < n)) * K4;
  var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0);
  var b0 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0);
  for (var k4 = 0u; k4 < K4; k4++) {
    let v0 = x[x0 + k4];
    let v1 = x[x1 + k4];
    for (var j = 0u; j < 4u; j++) {
      let r = (4u * k4 + j) * N4;
      let wa = w[r + n4];
      let wb = w[r + m4];
      a0 += v0[j] * wa; b0 += v0[j] * wb;
      a1 += v1[j] * wa; b1 += v1[j] * wb;
    }
  }
  let h = half();
  store(t0, n4, a0); store(t0, n4 + h, b0);
  if (t0 + 1u < n) { store(t0 + 1u, n4, a1); store(t0 + 1u, n4 + h, b1); }
}
