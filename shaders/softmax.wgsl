// Row-wise softmax of z/T over a logits buffer, one workgroup per row: each invocation keeps a
// running (max, sum) over a strided slice, one barrier merges them, then every invocation writes
// its slice of probabilities.
override COLS: u32;
const WG: u32 = 64u;

struct Params { inv_temp: f32, rows: u32, _a: u32, _b: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> probs: array<f32>;

var<workgroup> wg_max: array<f32, WG>;
var<workgroup> wg_sum: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let r = wid.x;
  if (r >= params.rows) { return; }
  let base = r * COLS;
  var m = -3.0e38;
  var z = 0.0;
  for (var i = lid.x; i < COLS; i += WG) {
    let s = logits[base + i] * params.inv_temp;
    if (s > m) {
      z = z * exp(m - s) + 1.0;
      m = s;
    } else {
      z += exp(s - m);
    }
  }
  wg_max[lid.x] = m;
  wg_sum[lid.x] = z;
  workgroupBarrier();
  var gm = -3.0e38;
  for (var j = 0u; j < WG; j++) { gm = max(gm, wg_max[j]); }
  var gz = 0.0;
  for (var j = 0u; j < WG; j++) { gz += wg_sum[j] * exp(wg_max[j] - gm); }
  for (var i = lid.x; i < COLS; i += WG) {
    probs[base + i] = exp(logits[base + i] * params.inv_temp - gm) / gz;
  }
}
