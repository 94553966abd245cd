// F16 or BF16 weights (BF16: the high half of an f32), re-laid at upload (src/model/weight-types.ts):
//   W [K/2][N4] vec4<u32>: the u32 of column n holds k = 2r (low half) and 2r + 1 (high half)
// 2 bytes per value. F16 unpacks with unpack2x16float (exact for every half; no shader-f16
// needed), BF16 by a shift or a mask (the high half of an f32). On SwiftShader unpack2x16float
// costs about as much as decoding the half by bit moves (measured); one shift is far cheaper.
override BF16: bool = false;
override W: u32 = 0u;

const BLOCK_CHUNKS: u32 = 1u;
struct Scale { unused: u32 }

fn block_scale(blk: u32, n4: u32) -> Scale {
  return Scale(0u);
}

fn lo_halves(r: vec4<u32>) -> vec4<f32> {
  if (BF16) { return bitcast<vec4<f32>>(r << vec4<u32>(16u)); }
  return vec4<f32>(unpack2x16float(r.x).x, unpack2x16float(r.y).x, unpack2x16float(r.z).x, unpack2x16float(r.w).x);
}

fn hi_halves(r: vec4<u32>) -> vec4<f32> {
  if (BF16) { return bitcast<vec4<f32>>(r & vec4<u32>(0xffff0000u)); }
  return vec4<f32>(unpack2x16float(r.x).y, unpack2x16float(r.y).y, unpack2x16float(r.z).y, unpack2x16float(r.w).y);
}

fn chunk(g: u32, n4: u32, s: Scale) -> W8 {
  let r0 = wq[W + 4u * g * N4 + n4];
  let r1 = wq[W + (4u * g + 1u) * N4 + n4];
  let r2 = wq[W + (4u * g + 2u) * N4 + n4];
  let r3 = wq[W + (4u * g + 3u) * N4 + n4];
  return W8(lo_halves(r0), hi_halves(r0), lo_halves(r1), hi_halves(r1), lo_halves(r2), hi_halves(r2), lo_halves(r3), hi_halves(r3));
}

fn weight_at(n: u32, k: u32) -> f32 {
  let u = vec4<u32>(word_at(W, k / 2u, n));
  return select(lo_halves(u), hi_halves(u), (k & 1u) == 1u).x;
}
