// y[t] = x[t] · W (or y[t] += x[t] · W) for W in a quantised or 16-bit layout: the entry points of
// matmul.wgsl over a format library (matmul_fmt_*.wgsl) and matmul_q_core.wgsl, prepended. As
// there, each invocation owns two output vec4s HALF apart; `gemv` takes one token row, `gemm`
// four (or two in a batch's last tile), so each decoded weight serves every row of the tile.
// `embed` gathers embedding rows from the same layout (table W [vocab][dim]: n = token id,
// k = feature; a vocabulary tile of it holds ids ID_OFFSET .. ID_OFFSET + TABLE_ROWS − 1 and writes
// only their rows) and `dequant` writes W as float32 [K][N4] vec4, matmul.wgsl's layout.
override ACCUMULATE: bool = false;
override WG: u32 = 32;
override STATS_ROWS: bool = false;
override Y_N4: u32;
override Y_OFFSET4: u32 = 0u;
override ID_OFFSET: u32 = 0u;
override TABLE_ROWS: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> tokens: array<TokenSlot>;  // embed
@group(0) @binding(2) var<storage, read> wq: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> rows: array<f32>;  // embed: [n_tokens][dim]

fn xload(i: u32) -> vec4<f32> { return x[i]; }

fn half() -> u32 { return (N4 + 1u) / 2u; }
fn row_count() -> u32 { return select(step.n_tokens, step.stats_rows, STATS_ROWS); }
fn x_row(t: u32) -> u32 { return select(t, step.stats_row_start + t, STATS_ROWS) * 2u * K8; }
fn second(n4: u32) -> u32 { return min(n4 + half(), N4 - 1u); }

fn store(t: u32, n4: u32, value: vec4<f32>) {
  if (n4 >= N4) { return; }
  let i = t * Y_N4 + Y_OFFSET4 + n4;
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
  if (n4 >= half() || t >= row_count()) { return; }
  let r = dot1(x_row(t), n4, second(n4));
  store(t, n4, r.a);
  store(t, n4 + half(), r.b);
}

@compute @workgroup_size(WG)
fn gemm(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n4 = gid.x;
  let t0 = gid.y * 4u;
  let n = row_count();
  if (n4 >= half() || t0 >= n) { return; }
  let h = half();
  let m4 = second(n4);
  // Rows past the end re-read row t0 (always valid) and are not stored.
  if (n - t0 <= 2u) {
    let r = dot2(x_row(t0), x_row(select(t0, t0 + 1u, t0 + 1u < n)), n4, m4);
    store(t0, n4, r.a0); store(t0, n4 + h, r.b0);
    if (t0 + 1u < n) { store(t0 + 1u, n4, r.a1); store(t0 + 1u, n4 + h, r.b1); }
  } else {
    let r = dot4(x_row(t0), x_row(t0 + 1u), x_row(t0 + 2u), x_row(select(t0, t0 + 3u, t0 + 3u < n)), n4, m4);
    store(t0, n4, r.a0); store(t0, n4 + h, r.b0);
    store(t0 + 1u, n4, r.a1); store(t0 + 1u, n4 + h, r.b1);
    store(t0 + 2u, n4, r.a2); store(t0 + 2u, n4 + h, r.b2);
    if (t0 + 3u < n) { store(t0 + 3u, n4, r.a3); store(t0 + 3u, n4 + h, r.b3); }
  }
}

@compute @workgroup_size(64)
fn embed(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let t = gid.y;
  let dim = 8u * K8;
  if (i >= dim || t >= step.n_tokens) { return; }
  let id = tokens[t].id - ID_OFFSET;  // wraps for ids below the tile: ≥ TABLE_ROWS
  if (id >= TABLE_ROWS) { return; }
  rows[t * dim + i] = weight_at(id, i);
}

@compute @workgroup_size(WG)
fn dequant(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n4 = gid.x;
  let k = gid.y;
  if (n4 >= N4 || k >= 8u * K8) { return; }
  let n = 4u * n4;
  y[k * N4 + n4] = vec4<f32>(weight_at(n, k), weight_at(n + 1u, k), weight_at(n + 2u, k), weight_at(n + 3u, k));
}
