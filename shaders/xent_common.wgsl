// Prepended to xent.wgsl and xent_linear.wgsl (src/gpu/kernels.ts): the running-sums merge both
// cross-entropy families fold with.

// Merges the running sums (m2, z2, a2) into p = (m, z, a, ·) (both taken against their own max;
// algorithms.md §2); p.w is carried along.
fn merge_sums(p: vec4<f32>, m2: f32, z2: f32, a2: f32) -> vec4<f32> {
  if (z2 == 0.0) { return p; }
  if (p.y == 0.0) { return vec4<f32>(m2, z2, a2, p.w); }
  if (m2 <= p.x) {
    let d = m2 - p.x;
    let w = exp(d);
    return vec4<f32>(p.x, p.y + w * z2, p.z + w * (a2 + d * z2), p.w);
  }
  let d = p.x - m2;
  let w = exp(d);
  return vec4<f32>(m2, z2 + w * p.y, a2 + w * (p.z + d * p.y), p.w);
}
