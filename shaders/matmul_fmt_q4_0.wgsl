// Q4_0 weights (32-value blocks: f16 d, 32 nibbles q; x = d·q − 8d), re-laid at upload
// (src/model/weight-types.ts):
//   QS [K/8][N4] vec4<u32>: the u32 of column n holds q of k = 8r .. 8r + 7, nibble i = k 8r + i
//   SD [K/32][N8] vec4<u32>: f16 d of each block, two columns per u32 (N8 = ⌈N4/2⌉)
// 18 bytes per 32 values, as GGUF (whose nibbles pair q_j with q_j+16 in a byte instead).
override QS: u32 = 0u;
override SD: u32;

const BLOCK_CHUNKS: u32 = 4u;
// m = −8d; d·q + m as dequant.ts (gguf-py) forms it: d·q and m are exact in f32 and so is their
// sum d·(q − 8), and q = 8 gives +0 whatever the sign of d.
struct Scale { d: vec4<f32>, m: vec4<f32> }

fn block_scale(blk: u32, n4: u32) -> Scale {
  let d = half_quad(SD, blk, n4);
  return Scale(d, -8.0 * d);
}

fn chunk(g: u32, n4: u32, s: Scale) -> W8 {
  let q = wq[QS + g * N4 + n4];
  let d = s.d;
  let m = s.m;
  return W8(
    d * as_f32(nib0(q)) + m, d * as_f32(nib1(q)) + m, d * as_f32(nib2(q)) + m, d * as_f32(nib3(q)) + m,
    d * as_f32(nib4(q)) + m, d * as_f32(nib5(q)) + m, d * as_f32(nib6(q)) + m, d * as_f32(nib7(q)) + m,
  );
}

fn weight_at(n: u32, k: u32) -> f32 {
  let q = (word_at(QS, k / 8u, n) >> (4u * (k & 7u))) & 15u;
  let d = half_at(SD, k / 32u, n);
  return d * f32(q) + -8.0 * d;
}
