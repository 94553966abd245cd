// The LM head fused with the statistics of its softmax (docs/algorithms.md §2). Logits never leave registers:
//
//   lm_head: each invocation computes the logits of a strided set of vocabulary columns
//            (transposed classifier [DIM][V/4] vec4) and folds each one into running
//            (max m, Z, A, B) of s = z/T_stats, the argmax, a private top-K, and the Gumbel-max
//            sample of softmax(z/T_sample). It writes one partial per invocation.
//   logits_partials: the same fold over a logits buffer that already exists (the standalone
//            entropy / argmax / top-K reduction, for callers that asked for logits).
//   merge:   one workgroup per token row merges those partials into the StepStats record.
//   merge_select: the merge after logits_partials, whose partials then carry no top-K lists: the
//            top-K is selected from the logits row itself (below).
//
// Online form: Z = Σ e^(s−m), A = Σ e^(s−m)(s−m), B = Σ e^(s−m)(s−m)²; then LSE = m + ln Z,
// entropy = ln Z − A/Z, varentropy = B/Z − (A/Z)².
override DIM: u32;
// A classifier larger than one storage binding is split by vocabulary into TILES tiles, each its
// own buffer and launch; tile TILE holds ids ID_OFFSET.. ID_OFFSET + VOCAB − 1 and writes its own
// block of partials, and the merge folds all tiles' partials.
override V4: u32;            // this tile's vocabulary / 4, rounded up
override VOCAB: u32;         // ids in this tile
override ID_OFFSET: u32 = 0u;
override TILE: u32 = 0u;
override TILES: u32 = 1u;
override TOP_K: u32 = 8u;    // 1..MAX_K
override LM_WG: u32 = 64u;
override LM_GROUPS: u32 = 16u;  // workgroups per token row: LM_WG * LM_GROUPS partials per row
// Whether each partial keeps a private top-K list (false: logits_partials before merge_select).
override PARTIAL_TOP_K: bool = true;

const MAX_K: u32 = 64u;
const MERGE_WG: u32 = 32u;
const NEG_INF: f32 = -3.0e38;
// lse, entropy, varentropy, the next token's logit (the slot's `next` when known, else the
// sampled id's), argmax, sampled id. The max logit is the first top-K entry's.
const STATS_HEADER: u32 = 6u;


// Running statistics; `m` is the reference the sums are taken against.
struct Partial {
  m: f32, z: f32, a: f32, b: f32,
  argmax_logit: f32, argmax: u32,
  gumbel_key: f32, gumbel_id: u32, gumbel_logit: f32,
  next_logit: f32,  // the logit of the slot's `next` token, if this partial saw it
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> tokens: array<TokenSlot>;
@group(0) @binding(2) var<storage, read> hidden4: array<vec4<f32>>;  // [rows][DIM/4]
@group(0) @binding(3) var<storage, read> wcls: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> partials: array<Partial>;
@group(0) @binding(5) var<storage, read_write> partial_topk: array<vec2<u32>>;  // (id, logit bits)
@group(0) @binding(6) var<storage, read_write> stats: array<u32>;
@group(0) @binding(7) var<storage, read> logits: array<f32>;  // [stats rows][4 V4]

var<private> top_ids: array<u32, MAX_K>;
var<private> top_logits: array<f32, MAX_K>;

fn empty_partial() -> Partial {
  return Partial(NEG_INF, 0.0, 0.0, 0.0, NEG_INF, NO_TOKEN, NEG_INF, NO_TOKEN, NEG_INF, NEG_INF);
}

// Folds (m2, z2, a2, b2) into p; both sums are re-expressed against the larger max.
fn merge_sums(p: ptr<function, Partial>, m2: f32, z2: f32, a2: f32, b2: f32) {
  if (z2 == 0.0) { return; }
  if ((*p).z == 0.0) {
    (*p).m = m2; (*p).z = z2; (*p).a = a2; (*p).b = b2;
    return;
  }
  if (m2 <= (*p).m) {
    let d = m2 - (*p).m;
    let w = exp(d);
    (*p).b += w * (b2 + 2.0 * d * a2 + d * d * z2);
    (*p).a += w * (a2 + d * z2);
    (*p).z += w * z2;
  } else {
    let d = (*p).m - m2;
    let w = exp(d);
    (*p).b = b2 + w * ((*p).b + 2.0 * d * (*p).a + d * d * (*p).z);
    (*p).a = a2 + w * ((*p).a + d * (*p).z);
    (*p).z = z2 + w * (*p).z;
    (*p).m = m2;
  }
}

// Lower id wins ties, so every reduction order picks llama2.c's first maximum.
fn better(logit: f32, id: u32, than_logit: f32, than_id: u32) -> bool {
  return logit > than_logit || (logit == than_logit && id < than_id);
}

fn merge_argmax(p: ptr<function, Partial>, logit: f32, id: u32, key: f32, key_id: u32, key_logit: f32) {
  if (better(logit, id, (*p).argmax_logit, (*p).argmax)) {
    (*p).argmax_logit = logit;
    (*p).argmax = id;
  }
  if (better(key, key_id, (*p).gumbel_key, (*p).gumbel_id)) {
    (*p).gumbel_key = key;
    (*p).gumbel_id = key_id;
    (*p).gumbel_logit = key_logit;
  }
}

fn top_clear() {
  for (var j = 0u; j < TOP_K; j++) {
    top_ids[j] = 0xffffffffu;
    top_logits[j] = NEG_INF;
  }
}

// Sorted insertion into the private top-K (descending logit, ascending id on ties); false when
// the entry does not make the list.
fn top_insert(logit: f32, id: u32) -> bool {
  var j = TOP_K - 1u;
  if (!better(logit, id, top_logits[j], top_ids[j])) { return false; }
  while (j > 0u && better(logit, id, top_logits[j - 1u], top_ids[j - 1u])) {
    top_logits[j] = top_logits[j - 1u];
    top_ids[j] = top_ids[j - 1u];
    j--;
  }
  top_logits[j] = logit;
  top_ids[j] = id;
  return true;
}

// Counter-based RNG (PCG hash): the same (seed, row, pos, counter, id) gives the same uniform on
// every device; src/decode/rng.ts mirrors it on the CPU.
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

// 23 bits: (bits + 1/2) / 2^23 is exact in f32 and strictly inside (0, 1). (With 24 bits the
// largest value rounds to 1.0, and −log(−log 1) = +∞ would pick that token whatever its logit.)
fn uniform01(slot: TokenSlot, id: u32) -> f32 {
  let h = pcg(id ^ pcg(step.counter ^ pcg(slot.pos ^ pcg(slot.row ^ pcg(step.seed)))));
  return (f32(h >> 9u) + 0.5) / 8388608.0;
}

// Folds one logit into the invocation's running partial and top-K.
fn fold_logit(p: ptr<function, Partial>, slot: TokenSlot, logit: f32, id: u32) {
  merge_sums(p, logit * step.inv_stats_temp, 1.0, 0.0, 0.0);
  var key = NEG_INF;
  if (step.inv_sample_temp > 0.0) {
    key = logit * step.inv_sample_temp - log(-log(uniform01(slot, id)));
  }
  merge_argmax(p, logit, id, key, id, logit);
  if (id == slot.next) { (*p).next_logit = logit; }
  if (PARTIAL_TOP_K) { _ = top_insert(logit, id); }
}

fn write_partial(t: u32, i: u32, p: Partial) {
  let out = (t * TILES + TILE) * LM_WG * LM_GROUPS + i;
  partials[out] = p;
  if (!PARTIAL_TOP_K) { return; }
  for (var j = 0u; j < TOP_K; j++) {
    partial_topk[out * TOP_K + j] = vec2<u32>(top_ids[j], bitcast<u32>(top_logits[j]));
  }
}

// Two column vec4s per iteration, HALF apart, x read four features at a time (as matmul.wgsl).
@compute @workgroup_size(LM_WG)
fn lm_head(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.y;
  if (t >= step.stats_rows) { return; }
  let row = step.stats_row_start + t;
  let slot = tokens[row];
  let h4 = row * (DIM / 4u);
  let half = (V4 + 1u) / 2u;
  var p = empty_partial();
  top_clear();
  for (var c = gid.x; c < half; c += LM_WG * LM_GROUPS) {
    let d = min(c + half, V4 - 1u);
    var za = vec4<f32>(0.0);
    var zb = vec4<f32>(0.0);
    for (var k4 = 0u; k4 < DIM / 4u; k4++) {
      let xv = hidden4[h4 + k4];
      let r = 4u * k4 * V4;
      za += xv.x * wcls[r + c];
      zb += xv.x * wcls[r + d];
      za += xv.y * wcls[r + V4 + c];
      zb += xv.y * wcls[r + V4 + d];
      za += xv.z * wcls[r + 2u * V4 + c];
      zb += xv.z * wcls[r + 2u * V4 + d];
      za += xv.w * wcls[r + 3u * V4 + c];
      zb += xv.w * wcls[r + 3u * V4 + d];
    }
    fold_column(&p, slot, za, c);
    if (c + half < V4) { fold_column(&p, slot, zb, c + half); }
  }
  write_partial(t, gid.x, p);
}

fn fold_column(p: ptr<function, Partial>, slot: TokenSlot, z: vec4<f32>, c: u32) {
  for (var lane = 0u; lane < 4u; lane++) {
    let i = 4u * c + lane;
    if (i < VOCAB) { fold_logit(p, slot, z[lane], ID_OFFSET + i); }
  }
}

@compute @workgroup_size(LM_WG)
fn logits_partials(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.y;
  if (t >= step.stats_rows) { return; }
  let slot = tokens[step.stats_row_start + t];
  var p = empty_partial();
  if (PARTIAL_TOP_K) { top_clear(); }
  for (var id = gid.x; id < VOCAB; id += LM_WG * LM_GROUPS) {
    fold_logit(&p, slot, logits[t * 4u * V4 + id], id);
  }
  write_partial(t, gid.x, p);
}

// The merge keeps no workgroup arrays: each invocation folds a strided share of the partials and
// writes its result back into the first slot of that share (slot l, which only it reads), then
// invocation 0 folds those MERGE_WG slots. Dawn zero-fills workgroup memory, and a 16 KB array for
// 64 candidates made this pipeline take seconds to compile on SwiftShader.
@compute @workgroup_size(MERGE_WG)
fn merge(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let t = wid.y;
  let l = lid.x;
  let count = LM_WG * LM_GROUPS * TILES;
  let base = t * count;
  let live = t < step.stats_rows;  // barriers must be reached by every invocation
  var p = empty_partial();
  top_clear();
  if (live) {
    for (var i = l; i < count; i += MERGE_WG) {
      fold_slot(&p, base + i);
    }
    write_slot(base + l, p);
  }
  storageBarrier();
  if (!live || l != 0u) { return; }
  for (var i = 1u; i < MERGE_WG; i++) {
    fold_slot(&p, base + i);
  }
  write_header(t, p);
  for (var j = 0u; j < TOP_K; j++) {
    write_candidate(t, j, top_ids[j], top_logits[j]);
  }
}

fn record_start(t: u32) -> u32 {
  return t * (STATS_HEADER + 2u * TOP_K);
}

/** Row t's record header from its merged partial. */
fn write_header(t: u32, p: Partial) {
  let mean = p.a / p.z;
  let o = record_start(t);
  let sampling = step.inv_sample_temp > 0.0;
  var next_logit = select(p.argmax_logit, p.gumbel_logit, sampling);
  if (tokens[step.stats_row_start + t].next != NO_TOKEN) { next_logit = p.next_logit; }
  stats[o] = bitcast<u32>(p.m + log(p.z));
  stats[o + 1u] = bitcast<u32>(log(p.z) - mean);
  stats[o + 2u] = bitcast<u32>(max(p.b / p.z - mean * mean, 0.0));
  stats[o + 3u] = bitcast<u32>(next_logit);
  stats[o + 4u] = p.argmax;
  stats[o + 5u] = select(p.argmax, p.gumbel_id, sampling);
}

/** Candidate `rank` of row t's record (an empty slot is (0xffffffff, NEG_INF)). */
fn write_candidate(t: u32, rank: u32, id: u32, logit: f32) {
  let o = record_start(t) + STATS_HEADER + 2u * rank;
  stats[o] = id;
  stats[o + 1u] = bitcast<u32>(logit);
}

/**
 * Folds partial slot `i` (its sums and its top-K list) into p and the private top-K. The slot's
 * list is sorted, so once one entry misses the private list every later one does too.
 */
fn fold_slot(p: ptr<function, Partial>, i: u32) {
  fold(p, partials[i]);
  for (var j = 0u; j < TOP_K; j++) {
    let e = partial_topk[i * TOP_K + j];
    if (!top_insert(bitcast<f32>(e.y), e.x)) { break; }
  }
}

fn write_slot(i: u32, p: Partial) {
  partials[i] = p;
  for (var j = 0u; j < TOP_K; j++) {
    partial_topk[i * TOP_K + j] = vec2<u32>(top_ids[j], bitcast<u32>(top_logits[j]));
  }
}

fn fold(p: ptr<function, Partial>, q: Partial) {
  merge_sums(p, q.m, q.z, q.a, q.b);
  merge_argmax(p, q.argmax_logit, q.argmax, q.gumbel_key, q.gumbel_id, q.gumbel_logit);
  (*p).next_logit = max((*p).next_logit, q.next_logit);
}

// ---- merge_select: the top-K of a logits row without private lists -----------------------------
// Sorted private lists cost a divergent, dynamically indexed shift per insertion, which on
// SwiftShader made 64 candidates most of a step. Here one workgroup per row:
//   1. folds the partials' sums (as merge) and writes the header;
//   2. bounds the K-th largest logit from below: the partials split into TOP_K groups, and the
//      smallest of the groups' maxima, L, is at most the K-th largest (K distinct logits reach it);
//   3. gathers every logit >= L (typically a few per candidate) into workgroup memory;
//   4. writes each gathered entry whose rank (by `better`: logit descending, lower id first)
//      is below K at that rank. Ties are exact: every entry equal to a gathered one is gathered.
// A row with more than SELECT_CAP logits >= L (a flat row: many equal logits) instead bisects
// for the K-th largest key and gathers exactly the K selected entries (select_by_bisection).

const SELECT_WG: u32 = 64u;  // ≥ MAX_K (invocation l writes candidate slot l); faster here than 256
const SELECT_CAP: u32 = 1024u;

var<workgroup> wg_count: atomic<u32>;
var<workgroup> wg_total: u32;
var<workgroup> wg_group_max: array<f32, MAX_K>;
var<workgroup> wg_ids: array<u32, SELECT_CAP>;
var<workgroup> wg_logits: array<f32, SELECT_CAP>;

/** wg_count's value, the same for every invocation, with wg_count reset to 0 for the next use. */
fn take_count(l: u32) -> u32 {
  workgroupBarrier();
  if (l == 0u) {
    wg_total = atomicLoad(&wg_count);
    atomicStore(&wg_count, 0u);
  }
  return workgroupUniformLoad(&wg_total);
}

@compute @workgroup_size(SELECT_WG)
fn merge_select(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let t = wid.y;
  if (t >= step.stats_rows) { return; }
  let l = lid.x;
  let count = LM_WG * LM_GROUPS;
  let slots = t * count;
  // 1. the sums: a strided share per invocation into slot l, then invocation 0
  var p = empty_partial();
  for (var i = l; i < count; i += SELECT_WG) { fold(&p, partials[slots + i]); }
  // 2. group maxima (before slot l is overwritten: each group reads its own slots)
  if (l < TOP_K) {
    var m = NEG_INF;
    for (var i = l * count / TOP_K; i < (l + 1u) * count / TOP_K; i++) { m = max(m, partials[slots + i].argmax_logit); }
    wg_group_max[l] = m;
  }
  storageBarrier();
  partials[slots + l] = p;
  storageBarrier();
  if (l == 0u) {
    for (var i = 1u; i < min(SELECT_WG, count); i++) { fold(&p, partials[slots + i]); }
    write_header(t, p);
  }
  workgroupBarrier();
  var bound = wg_group_max[0];
  for (var g = 1u; g < TOP_K; g++) { bound = min(bound, wg_group_max[g]); }

  // 3. gather every logit >= bound
  let base = t * 4u * V4;
  for (var id = l; id < VOCAB; id += SELECT_WG) {
    let z = logits[base + id];
    if (z >= bound) {
      let slot = atomicAdd(&wg_count, 1u);
      if (slot < SELECT_CAP) { wg_ids[slot] = id; wg_logits[slot] = z; }
    }
  }
  let n = take_count(l);
  if (n > SELECT_CAP) {
    select_by_bisection(t, l, base);
    return;
  }
  // 4. each gathered entry at its rank
  for (var i = l; i < n; i += SELECT_WG) {
    let id = wg_ids[i];
    let z = wg_logits[i];
    var rank = 0u;
    for (var j = 0u; j < n; j++) { rank += select(0u, 1u, better(wg_logits[j], wg_ids[j], z, id)); }
    if (rank < TOP_K) { write_candidate(t, rank, id, z); }
  }
  if (l >= n && l < TOP_K) { write_candidate(t, l, NO_TOKEN, NEG_INF); }
}

// Larger logit, larger key; −0 as +0 (equal logits, equal keys); NaN 0, never selected.
fn order_key(x: f32) -> u32 {
  if (x != x) { return 0u; }
  if (x == 0.0) { return 0x80000000u; }
  let b = bitcast<u32>(x);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// Whether (tau, theta) selects an entry: key > tau, or key == tau and id < theta.
fn selected(key: u32, id: u32, tau: u32, theta: u32) -> bool {
  return key != 0u && (key > tau || (key == tau && id < theta));
}

// How many entries of the row (tau, theta) selects, over the workgroup.
fn count_selected(base: u32, l: u32, tau: u32, theta: u32) -> u32 {
  var n = 0u;
  for (var id = l; id < VOCAB; id += SELECT_WG) {
    n += select(0u, 1u, selected(order_key(logits[base + id]), id, tau, theta));
  }
  atomicAdd(&wg_count, n);
  return take_count(l);
}

// The exact K selected entries by bisection: tau, the largest key with at least K entries at or
// above it (bit by bit from the top, one counting pass per bit); then, if tau is tied, theta, the
// smallest id bound that selects exactly K; then each selected entry at its rank.
fn select_by_bisection(t: u32, l: u32, base: u32) {
  let any_id = 0xffffffffu;
  var tau = 0u;
  for (var bit = 31i; bit >= 0i; bit--) {
    let at = tau | (1u << u32(bit));
    if (count_selected(base, l, at - 1u, 0u) >= TOP_K) { tau = at; }  // key >= at
  }
  var theta = any_id;
  if (count_selected(base, l, tau, any_id) > TOP_K) {
    theta = 0u;
    for (var bit = 31i; bit >= 0i; bit--) {
      let b = 1u << u32(bit);
      if (count_selected(base, l, tau, theta | (b - 1u)) < TOP_K) { theta |= b; }
    }
  }
  for (var id = l; id < VOCAB; id += SELECT_WG) {
    let z = logits[base + id];
    if (selected(order_key(z), id, tau, theta)) {
      let slot = atomicAdd(&wg_count, 1u);
      if (slot < TOP_K) { wg_ids[slot] = id; wg_logits[slot] = z; }
    }
  }
  let n = min(take_count(l), TOP_K);
  if (l < n) {
    let id = wg_ids[l];
    let z = wg_logits[l];
    var rank = 0u;
    for (var j = 0u; j < n; j++) { rank += select(0u, 1u, better(wg_logits[j], wg_ids[j], z, id)); }
    write_candidate(t, rank, id, z);
  } else if (l < TOP_K) {
    write_candidate(t, l, NO_TOKEN, NEG_INF);
  }
}
