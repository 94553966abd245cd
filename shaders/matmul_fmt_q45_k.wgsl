// Q4_K and Q5_K weights (super-blocks of 256 = 8 sub-blocks of 32: f16 d, f16 dmin, 6-bit scale
// sc and min m per sub-block; x = d·sc·q − dmin·m with q 4 bits, or 5 for Q5_K), re-laid at upload
// (src/model/weight-types.ts), the 6-bit packed scales decoded to bytes:
//   QS [K/8][N4] vec4<u32>: the u32 of column n holds the low 4 bits of q, k = 8r + i in nibble i
//   DM [K/256][N4] vec4<u32>: f16 d (low half) and f16 dmin (high half) of each super-block
//   SM [K/256][4][N4] vec4<u32>: rows 0, 1: sc of sub-blocks 0..3, 4..7 (a byte each); rows 2, 3: m
//   QH [K/32][N4] vec4<u32> (Q5_K): bit l = the fifth bit of element l of the sub-block
// 148 bytes per 256 values for Q4_K (GGUF 144), 180 for Q5_K (GGUF 176): decoding the 12 bytes of
// packed scales into 16 costs 4 bytes per super-block and saves the kernel the 6-bit unpacking.
override Q5: bool = false;
override QS: u32 = 0u;
override DM: u32;
override SM: u32;
override QH: u32 = 0u;

const BLOCK_CHUNKS: u32 = 4u;
// ds = d·sc, dm = dmin·m (both exact in f32: 11 × 6 significant bits); qh: Q5_K's fifth bits.
struct Scale { ds: vec4<f32>, dm: vec4<f32>, qh: vec4<u32> }

fn block_scale(blk: u32, n4: u32) -> Scale {
  let sb = blk / 8u;
  let j = blk & 7u;
  let dd = wq[DM + sb * N4 + n4];
  let d = vec4<f32>(unpack2x16float(dd.x).x, unpack2x16float(dd.y).x, unpack2x16float(dd.z).x, unpack2x16float(dd.w).x);
  let dmin = vec4<f32>(unpack2x16float(dd.x).y, unpack2x16float(dd.y).y, unpack2x16float(dd.z).y, unpack2x16float(dd.w).y);
  let shift = vec4<u32>(8u * (j & 3u));
  let sc = (wq[SM + (4u * sb + j / 4u) * N4 + n4] >> shift) & vec4<u32>(255u);
  let mn = (wq[SM + (4u * sb + 2u + j / 4u) * N4 + n4] >> shift) & vec4<u32>(255u);
  var qh = vec4<u32>(0u);
  if (Q5) { qh = wq[QH + blk * N4 + n4]; }
  return Scale(d * vec4<f32>(sc), dmin * vec4<f32>(mn), qh);
}

// ds·q − dm: ds·q is exact (at most 22 significant bits), so the one rounding is the difference's,
// as in dequant.ts. Q5_K's fifth bit of element i is bit i of h, moved to bit 4 (literal shifts).
fn k_w(v: vec4<u32>, s: Scale) -> vec4<f32> { return s.ds * as_f32(v) - s.dm; }

fn chunk(g: u32, n4: u32, s: Scale) -> W8 {
  let q = wq[QS + g * N4 + n4];
  if (!Q5) {
    return W8(k_w(nib0(q), s), k_w(nib1(q), s), k_w(nib2(q), s), k_w(nib3(q), s),
              k_w(nib4(q), s), k_w(nib5(q), s), k_w(nib6(q), s), k_w(nib7(q), s));
  }
  let h = s.qh >> vec4<u32>(8u * (g & 3u));
  let b = vec4<u32>(16u);
  return W8(
    k_w(nib0(q) | ((h << vec4<u32>(4u)) & b), s), k_w(nib1(q) | ((h << vec4<u32>(3u)) & b), s),
    k_w(nib2(q) | ((h << vec4<u32>(2u)) & b), s), k_w(nib3(q) | ((h << vec4<u32>(1u)) & b), s),
    k_w(nib4(q) | (h & b), s), k_w(nib5(q) | ((h >> vec4<u32>(1u)) & b), s),
    k_w(nib6(q) | ((h >> vec4<u32>(2u)) & b), s), k_w(nib7(q) | ((h >> vec4<u32>(3u)) & b), s),
  );
}

fn weight_at(n: u32, k: u32) -> f32 {
  let sb = k / 256u;
  let j = (k / 32u) & 7u;
  let dd = unpack2x16float(word_at(DM, sb, n));
  let shift = 8u * (j & 3u);
  let sc = (word_at(SM, 4u * sb + j / 4u, n) >> shift) & 255u;
  let mn = (word_at(SM, 4u * sb + 2u + j / 4u, n) >> shift) & 255u;
  var q = (word_at(QS, k / 8u, n) >> (4u * (k & 7u))) & 15u;
  if (Q5) { q |= ((word_at(QH, k / 32u, n) >> (k & 31u)) & 1u) << 4u; }
  return dd.x * f32(sc) * f32(q) - dd.y * f32(mn);
}
