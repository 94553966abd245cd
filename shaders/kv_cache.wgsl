// KV cache maintenance. kv_fork copies the first `length` positions of one KV row into other
// rows of the same buffer (copyBufferToBuffer cannot copy within one buffer). One invocation per
// (vec4 of a position, kv head, destination).
override N_KV_HEADS: u32;
override SEQ_LEN: u32;
override HEAD4: u32;  // head size / 4

struct Fork { src_row: u32, length: u32, n_dst: u32, _pad: u32, dst_rows: array<vec4<u32>, 16> }

@group(0) @binding(0) var<uniform> fork: Fork;
@group(0) @binding(1) var<storage, read_write> cache: array<vec4<f32>>;

fn block(row: u32, head: u32) -> u32 {
  return (row * N_KV_HEADS + head) * SEQ_LEN * HEAD4;
}

@compute @workgroup_size(64)
fn kv_fork(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let head = gid.y;
  let d = gid.z;
  if (i >= fork.length * HEAD4 || head >= N_KV_HEADS || d >= fork.n_dst) { return; }
  let dst = fork.dst_rows[d / 4u][d % 4u];
  cache[block(dst, head) + i] = cache[block(fork.src_row, head) + i];
}
