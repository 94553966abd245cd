// The fused LM head of lm_head_stats.wgsl (appended after it) over a classifier tile in a
// quantised or 16-bit layout: a format library (matmul_fmt_*.wgsl) and matmul_q_core.wgsl are
// prepended, K8 = DIM / 8 and N4 = V4. The columns, their order and the fold are lm_head's; only
// the weights are decoded on the way (the same float32 values, summed in the same order).
@group(0) @binding(3) var<storage, read> wq: array<vec4<u32>>;

fn xload(i: u32) -> vec4<f32> { return hidden4[i]; }

@compute @workgroup_size(LM_WG)
fn lm_head_q(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.y;
  if (t >= step.stats_rows) { return; }
  let row = step.stats_row_start + t;
  let slot = tokens[row];
  let h4 = row * (DIM / 4u);
  let half = (V4 + 1u) / 2u;
  var p = empty_partial();
  top_clear();
  for (var c = gid.x; c < half; c += LM_WG * LM_GROUPS) {
    let z = dot1(h4, c, min(c + half, V4 - 1u));
    fold_column(&p, slot, z.a, c);
    if (c + half < V4) { fold_column(&p, slot, z.b, c + half); }
  }
  write_partial(t, gid.x, p);
}
