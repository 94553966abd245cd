// Q6_K weights (super-blocks of 256 = 16 sub-blocks of 16: i8 scale per sub-block, f16 d; x =
// d·scale·(q − 32), q 6 bits), re-laid at upload (src/model/weight-types.ts):
//   QL [K/8][N4] vec4<u32>: the u32 of column n holds the low 4 bits of q, k = 8r + i in nibble i
//   QH [K/16][N4] vec4<u32>: bits 2i, 2i + 1 = the high 2 bits of element i of sub-block r
//   SC [K/64][N4] vec4<u32>: byte i = the i8 scale of sub-block 4r + i
//   SD [K/256][N8] vec4<u32>: f16 d, two columns per u32 (N8 = ⌈N4/2⌉)
// 210 bytes per 256 values, as GGUF.
override QL: u32 = 0u;
override QH: u32;
override SC: u32;
override SD: u32;

const BLOCK_CHUNKS: u32 = 2u;
// ds = d·scale (exact: 11 × 7 significant bits); qh: the sub-block's high bits.
struct Scale { ds: vec4<f32>, qh: vec4<u32> }

fn block_scale(blk: u32, n4: u32) -> Scale {
  let d = half_quad(SD, blk / 16u, n4);
  let sc = bitcast<vec4<i32>>(wq[SC + (blk / 4u) * N4 + n4] << vec4<u32>(24u - 8u * (blk & 3u))) >> vec4<u32>(24u);
  return Scale(d * vec4<f32>(sc), wq[QH + blk * N4 + n4]);
}

// ds·(q − 32): exact (at most 23 significant bits), as in dequant.ts. The high 2 bits of element
// i are bits 2i, 2i + 1 of h, moved to bits 4, 5 (literal shifts).
fn q6_w(v: vec4<u32>, ds: vec4<f32>) -> vec4<f32> { return ds * (as_f32(v) - 32.0); }

fn chunk(g: u32, n4: u32, s: Scale) -> W8 {
  let q = wq[QL + g * N4 + n4];
  let h = s.qh >> vec4<u32>(16u * (g & 1u));
  let b = vec4<u32>(48u);
  let ds = s.ds;
  return W8(
    q6_w(nib0(q) | ((h << vec4<u32>(4u)) & b), ds), q6_w(nib1(q) | ((h << vec4<u32>(2u)) & b), ds),
    q6_w(nib2(q) | (h & b), ds), q6_w(nib3(q) | ((h >> vec4<u32>(2u)) & b), ds),
    q6_w(nib4(q) | ((h >> vec4<u32>(4u)) & b), ds), q6_w(nib5(q) | ((h >> vec4<u32>(6u)) & b), ds),
    q6_w(nib6(q) | ((h >> vec4<u32>(8u)) & b), ds), q6_w(nib7(q) | ((h >> vec4<u32>(10u)) & b), ds),
  );
}

fn weight_at(n: u32, k: u32) -> f32 {
  let s = k / 16u;
  let sc = bitcast<i32>(word_at(SC, s / 4u, n) << (24u - 8u * (s & 3u))) >> 24u;
  let lo = (word_at(QL, k / 8u, n) >> (4u * (k & 7u))) & 15u;
  let hi = (word_at(QH, s, n) >> (2u * (k & 15u))) & 3u;
  return half_at(SD, k / 256u, n) * f32(sc) * (f32(lo | (hi << 4u)) - 32.0);
}
