// Prepended to every graph kernel (src/gpu/kernels.ts): the per-step uniform and the token slot.
// src/gpu/step.ts is the one TypeScript encoder of `Step`; keep the two in the same order.
struct Step {
  n_tokens: u32,          // token rows in this step
  stats_row_start: u32,   // first token row the LM head runs on
  stats_rows: u32,        // how many rows it runs on
  seed: u32,              // RNG seed of the GPU sample
  counter: u32,           // RNG stream salt (e.g. a retry)
  inv_stats_temp: f32,    // 1 / temperature of the reported statistics
  inv_sample_temp: f32,   // 1 / temperature of the GPU sample, 0 = no sample
  _pad: u32,
}

// One token row of a step: its id, its position, the KV row (sequence) it belongs to, and the id
// of the token that follows it in this step (teacher forcing; NO_TOKEN when the step does not know).
struct TokenSlot { id: u32, pos: u32, row: u32, next: u32 }
const NO_TOKEN: u32 = 0xffffffffu;
