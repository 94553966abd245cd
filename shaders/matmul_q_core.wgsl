// The k loops of the quantised matmuls (matmul_q.wgsl) and LM head (matmul_q_head.wgsl), over a
// weight format library prepended to this file (one of matmul_fmt_*.wgsl). The library owns its
// layout in `wq` (array<vec4<u32>>, declared by the host file) and provides:
//
//   const BLOCK_CHUNKS: u32               chunks of 8 k that share one scale block
//   struct Scale                          what a scale block decodes to, per 4 columns
//   fn block_scale(blk: u32, n4: u32) -> Scale
//   fn chunk(g: u32, n4: u32, s: Scale) -> W8     W[k][4 n4 .. 4 n4 + 3] for k = 8g .. 8g + 7
//   fn weight_at(n: u32, k: u32) -> f32           one element (the embedding gather)
//
// Every weight is dequantised to exactly the float32 of src/model/dequant.ts and only then
// multiplied by x, and each output is summed serially over k, as matmul.wgsl does for float32
// weights: the same products in the same order. The host defines xload(i), the i-th vec4 of x.
override K8: u32;  // input features / 8
override N4: u32;  // output columns / 4 (the layout's width)

struct W8 { w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>, w4: vec4<f32>, w5: vec4<f32>, w6: vec4<f32>, w7: vec4<f32> }
struct Acc2 { a: vec4<f32>, b: vec4<f32> }
struct Acc4 { a0: vec4<f32>, a1: vec4<f32>, b0: vec4<f32>, b1: vec4<f32> }
struct Acc8 {
  a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>,
  b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>,
}

// s + Σ_j x_j·w_j over 8 k, one product at a time (x0 holds k 0..3 of the chunk, x1 k 4..7).
fn fma8(s0: vec4<f32>, x0: vec4<f32>, x1: vec4<f32>, w: W8) -> vec4<f32> {
  var s = s0;
  s += x0.x * w.w0; s += x0.y * w.w1; s += x0.z * w.w2; s += x0.w * w.w3;
  s += x1.x * w.w4; s += x1.y * w.w5; s += x1.z * w.w6; s += x1.w * w.w7;
  return s;
}

// One row of x (vec4 index xb) times column quads n4 and m4.
fn dot1(xb: u32, n4: u32, m4: u32) -> Acc2 {
  var a = vec4<f32>(0.0);
  var b = vec4<f32>(0.0);
  for (var blk = 0u; blk < K8 / BLOCK_CHUNKS; blk++) {
    let sa = block_scale(blk, n4);
    let sb = block_scale(blk, m4);
    for (var j = 0u; j < BLOCK_CHUNKS; j++) {
      let g = blk * BLOCK_CHUNKS + j;
      let x0 = xload(xb + 2u * g);
      let x1 = xload(xb + 2u * g + 1u);
      a = fma8(a, x0, x1, chunk(g, n4, sa));
      b = fma8(b, x0, x1, chunk(g, m4, sb));
    }
  }
  return Acc2(a, b);
}

// Two rows: each decoded chunk serves both.
fn dot2(x0b: u32, x1b: u32, n4: u32, m4: u32) -> Acc4 {
  var r = Acc4(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  for (var blk = 0u; blk < K8 / BLOCK_CHUNKS; blk++) {
    let sa = block_scale(blk, n4);
    let sb = block_scale(blk, m4);
    for (var j = 0u; j < BLOCK_CHUNKS; j++) {
      let g = blk * BLOCK_CHUNKS + j;
      let wa = chunk(g, n4, sa);
      let wb = chunk(g, m4, sb);
      let u0 = xload(x0b + 2u * g); let u1 = xload(x0b + 2u * g + 1u);
      let v0 = xload(x1b + 2u * g); let v1 = xload(x1b + 2u * g + 1u);
      r.a0 = fma8(r.a0, u0, u1, wa); r.b0 = fma8(r.b0, u0, u1, wb);
      r.a1 = fma8(r.a1, v0, v1, wa); r.b1 = fma8(r.b1, v0, v1, wb);
    }
  }
  return r;
}

// Four rows (the GEMM tile).
fn dot4(x0b: u32, x1b: u32, x2b: u32, x3b: u32, n4: u32, m4: u32) -> Acc8 {
  let z = vec4<f32>(0.0);
  var r = Acc8(z, z, z, z, z, z, z, z);
  for (var blk = 0u; blk < K8 / BLOCK_CHUNKS; blk++) {
    let sa = block_scale(blk, n4);
    let sb = block_scale(blk, m4);
    for (var j = 0u; j < BLOCK_CHUNKS; j++) {
      let g = blk * BLOCK_CHUNKS + j;
      let wa = chunk(g, n4, sa);
      let wb = chunk(g, m4, sb);
      var p = xload(x0b + 2u * g); var q = xload(x0b + 2u * g + 1u);
      r.a0 = fma8(r.a0, p, q, wa); r.b0 = fma8(r.b0, p, q, wb);
      p = xload(x1b + 2u * g); q = xload(x1b + 2u * g + 1u);
      r.a1 = fma8(r.a1, p, q, wa); r.b1 = fma8(r.b1, p, q, wb);
      p = xload(x2b + 2u * g); q = xload(x2b + 2u * g + 1u);
      r.a2 = fma8(r.a2, p, q, wa); r.b2 = fma8(r.b2, p, q, wb);
      p = xload(x3b + 2u * g); q = xload(x3b + 2u * g + 1u);
      r.a3 = fma8(r.a3, p, q, wa); r.b3 = fma8(r.b3, p, q, wb);
    }
  }
  return r;
}

// Nibble i (bits 4i .. 4i + 3) of each lane, by literal shifts (a shift by a computed amount is
// far slower on SwiftShader), and u32 lanes below 2^31 as f32 (by way of i32: the signed
// conversion is one instruction on SwiftShader's x86 backends, the unsigned one several).
fn nib0(q: vec4<u32>) -> vec4<u32> { return q & vec4<u32>(15u); }
fn nib1(q: vec4<u32>) -> vec4<u32> { return (q >> vec4<u32>(4u)) & vec4<u32>(15u); }
fn nib2(q: vec4<u32>) -> vec4<u32> { return (q >> vec4<u32>(8u)) & vec4<u32>(15u); }
fn nib3(q: vec4<u32>) -> vec4<u32> { return (q >> vec4<u32>(12u)) & vec4<u32>(15u); }
fn nib4(q: vec4<u32>) -> vec4<u32> { return (q >> vec4<u32>(16u)) & vec4<u32>(15u); }
fn nib5(q: vec4<u32>) -> vec4<u32> { return (q >> vec4<u32>(20u)) & vec4<u32>(15u); }
fn nib6(q: vec4<u32>) -> vec4<u32> { return (q >> vec4<u32>(24u)) & vec4<u32>(15u); }
fn nib7(q: vec4<u32>) -> vec4<u32> { return q >> vec4<u32>(28u); }
fn as_f32(v: vec4<u32>) -> vec4<f32> { return vec4<f32>(bitcast<vec4<i32>>(v)); }

// The f16 halves of a scale pair section (two columns per u32, eight per vec4): column quad n4's
// four values from vec4 row `row` of the section at `base`.
fn half_quad(base: u32, row: u32, n4: u32) -> vec4<f32> {
  let p = wq[base + row * ((N4 + 1u) / 2u) + n4 / 2u];
  let h = select(p.xy, p.zw, (n4 & 1u) == 1u);
  return vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y));
}

fn half_at(base: u32, row: u32, n: u32) -> f32 {
  let p = wq[base + row * ((N4 + 1u) / 2u) + n / 8u][(n / 2u) & 3u];
  return unpack2x16float(p)[n & 1u];
}

// The u32 of column n in vec4 row `row` of a per-column section at `base`.
fn word_at(base: u32, row: u32, n: u32) -> u32 {
  return wq[base + row * N4 + n / 4u][n & 3u];
}
