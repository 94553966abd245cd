// Q8_0 weights (32-value blocks: f16 d, 32 × i8 q; x = d·q), re-laid at upload (src/model/weight-types.ts):
//   QS [K/4][N4] vec4<u32>: the u32 of column n holds q of k = 4r .. 4r + 3, byte i = k 4r + i
//   SD [K/32][N8] vec4<u32>: f16 d of each block, two columns per u32 (N8 = ⌈N4/2⌉)
// 34 bytes per 32 values, as GGUF.
override QS: u32 = 0u;
override SD: u32;

const BLOCK_CHUNKS: u32 = 4u;
struct Scale { d: vec4<f32> }

fn block_scale(blk: u32, n4: u32) -> Scale {
  return Scale(half_quad(SD, blk, n4));
}

// The i8 in byte 0, 1, 2, 3 of each lane, exactly as f32. Every shift amount is a literal:
// SwiftShader turns a shift by a computed amount (say 8·i for a parameter i) into far slower code
// (measured: more than the whole f32 GEMV again).
fn q8_b0(v: vec4<i32>) -> vec4<f32> { return vec4<f32>((v << vec4<u32>(24u)) >> vec4<u32>(24u)); }
fn q8_b1(v: vec4<i32>) -> vec4<f32> { return vec4<f32>((v << vec4<u32>(16u)) >> vec4<u32>(24u)); }
fn q8_b2(v: vec4<i32>) -> vec4<f32> { return vec4<f32>((v << vec4<u32>(8u)) >> vec4<u32>(24u)); }
fn q8_b3(v: vec4<i32>) -> vec4<f32> { return vec4<f32>(v >> vec4<u32>(24u)); }

fn chunk(g: u32, n4: u32, s: Scale) -> W8 {
  let a = bitcast<vec4<i32>>(wq[QS + 2u * g * N4 + n4]);
  let b = bitcast<vec4<i32>>(wq[QS + (2u * g + 1u) * N4 + n4]);
  let d = s.d;
  return W8(d * q8_b0(a), d * q8_b1(a), d * q8_b2(a), d * q8_b3(a), d * q8_b0(b), d * q8_b1(b), d * q8_b2(b), d * q8_b3(b));
}

fn weight_at(n: u32, k: u32) -> f32 {
  let q = bitcast<i32>(word_at(QS, k / 4u, n) << (24u - 8u * (k & 3u))) >> 24u;
  return half_at(SD, k / 32u, n) * f32(q);
}
