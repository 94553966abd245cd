// AdamW on the GPU for SRGen's δ (algorithms.md §4), so a reflection's steps run in one command
// encoder with no readback between them. The update of src/runtime/adamw.ts (PyTorch's
// torch.optim.AdamW), in float32:
//   θ ← θ − lr·wd·θ;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//   θ ← θ − lr·m̂ / (√v̂ + eps),  m̂ = m/(1−β1^t),  v̂ = v/(1−β2^t)
// The bias corrections come from the CPU (float64, rounded once) per step t = 1, 2, …; `count`
// holds the steps taken (zeroed with the moments before the first step). One workgroup.
override DIM: u32;
override AW: u32 = 64u;

struct Adam { lr: f32, weight_decay: f32, eps: f32, beta1: f32, beta2: f32, _p0: f32, _p1: f32, _p2: f32 }

@group(0) @binding(0) var<uniform> adam: Adam;
@group(0) @binding(1) var<storage, read> grad: array<f32>;                   // [DIM]
@group(0) @binding(2) var<storage, read_write> theta: array<f32>;            // [DIM]: δ
@group(0) @binding(3) var<storage, read_write> moments: array<vec2<f32>>;    // [DIM]: (m, v)
@group(0) @binding(4) var<storage, read_write> count: array<u32>;            // [1]: steps taken
@group(0) @binding(5) var<storage, read> corrections: array<vec2<f32>>;      // [t − 1]: (1−β1^t, 1−β2^t)

@compute @workgroup_size(AW)
fn step(@builtin(local_invocation_id) lid: vec3<u32>) {
  let t = count[0];
  // Every invocation has read the count before invocation 0 advances it.
  storageBarrier();
  if (lid.x == 0u) { count[0] = t + 1u; }
  let c = corrections[t];
  for (var k = lid.x; k < DIM; k += AW) {
    let g = grad[k];
    var p = theta[k];
    p -= adam.lr * adam.weight_decay * p;
    let mv = moments[k];
    let m = adam.beta1 * mv.x + (1.0 - adam.beta1) * g;
    let v = adam.beta2 * mv.y + (1.0 - adam.beta2) * g * g;
    moments[k] = vec2<f32>(m, v);
    theta[k] = p - (adam.lr * (m / c.x)) / (sqrt(v / c.y) + adam.eps);
  }
}
