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

// kv_compact keeps a chosen set of row 0's positions (SirLLM, a sliding window): kept position
// keep[i] moves to i, into `scratch` (row 0's block of one layer), which the caller copies back
// over row 0. Keys were rotated at their old position: ROTATE turns them back by the shift
// keep[i] − i (a rotation by −Δ·θ from the RoPE table's row Δ), so they sit where a key computed
// at i would, as StreamingLLM re-positions its cache. One invocation per (feature pair, kept
// position, kv head).
override HEAD_DIM: u32 = 4u;
override ROTATE: bool = false;
override ROPE_HALF: bool = false;

@group(0) @binding(2) var<uniform> kept: vec4<u32>;  // (count, 0, 0, 0)
@group(0) @binding(3) var<storage, read> keep: array<u32>;  // old positions, ascending
@group(0) @binding(4) var<storage, read> rope: array<vec2<f32>>;  // [SEQ_LEN][HEAD_DIM/2] (cos, sin)
@group(0) @binding(5) var<storage, read> src: array<f32>;  // the layer's cache
@group(0) @binding(6) var<storage, read_write> scratch: array<f32>;  // [N_KV_HEADS][SEQ_LEN][HEAD_DIM]

@compute @workgroup_size(64)
fn kv_compact(@builtin(global_invocation_id) gid: vec3<u32>) {
  let pairs = HEAD_DIM / 2u;
  let i = gid.x / pairs;
  let j = gid.x % pairs;
  let head = gid.y;
  if (i >= kept.x || head >= N_KV_HEADS) { return; }
  let old = keep[i];
  var p = vec2<u32>(2u * j, 2u * j + 1u);
  if (ROPE_HALF) { p = vec2<u32>(j, j + pairs); }
  let src_at = (head * SEQ_LEN + old) * HEAD_DIM;
  let dst_at = (head * SEQ_LEN + i) * HEAD_DIM;
  var v = vec2<f32>(src[src_at + p.x], src[src_at + p.y]);
  if (ROTATE && old != i) {
    let cs = rope[(old - i) * pairs + j];
    v = vec2<f32>(v.x * cs.x + v.y * cs.y, v.y * cs.x - v.x * cs.y);
  }
  scratch[dst_at + p.x] = v.x;
  scratch[dst_at + p.y] = v.y;
}
