// Reading results back: a small ring of MAP_READ staging buffers, reused across steps, so a
// decode step costs one copyBufferToBuffer and one mapAsync of a few bytes. All staging buffers
// of a ring have one size: at least MIN_STAGING_BYTES, more only for a larger read (then the
// largest so far, to a power of two); a read maps only its own bytes. The ring holds as many
// buffers as reads were ever in flight at once, so its memory is the same after every generation
// whatever sizes the reads had (a CNTP step reads one record per trial it ran, a sampler reads
// the logits row only when its candidates cannot decide).
//
// With GpuContext.mapWait 'paced' a read first sleeps, then maps (MapPacer below): Node's
// `webgpu` package re-polls Dawn on every event-loop turn while a map is pending, which on a CPU
// adapter takes a core from the adapter's threads (×1.3–2 decode tok/s on SwiftShader, 2 cores).
import { MAP_MODE_READ, READBACK, createBufferChecked } from './buffers.ts';
import type { GpuContext } from './device.ts';

/**
 * Smallest staging buffer: every statistics read and the logits row of a vocabulary up to 64k
 * fit, so those reads never resize the ring (each ring holds two or three of these).
 */
export const MIN_STAGING_BYTES = 256 << 10;

/** The staging size of a read of `size` bytes: the next power of two, at least `min`. */
function stagingSize(size: number, min: number): number {
  let n = 16;
  while (n < size || n < min) n *= 2;
  return n;
}

export class ReadbackRing {
  private idle: GPUBuffer[] = [];
  /** Size of every staging buffer (grows with the largest read). */
  private size = 0;
  /** Every staging buffer alive, idle or in flight (destroy() frees them all). */
  private readonly all = new Set<GPUBuffer>();
  /** Bytes mapped back to the CPU since creation; benchmarks report it per step. */
  bytesRead = 0;
  private readonly pacer: MapPacer | null;
  constructor(private readonly ctx: GpuContext, private readonly capacity: number) {
    this.pacer = ctx.mapWait === 'paced' ? new MapPacer() : null;
  }

  /**
   * Records a copy of [offset, offset+size) of `src` into a staging buffer. `kind` names reads
   * that take about as long as each other (the same step shape), for the pacer.
   */
  async enqueue(encoder: GPUCommandEncoder, src: GPUBuffer, offset: number, size: number, kind = 'read'): Promise<PendingRead> {
    const bytes = stagingSize(size, Math.max(this.capacity, MIN_STAGING_BYTES));
    if (bytes > this.size) {
      // a larger read than any before: the idle buffers are replaced as they are wanted
      this.size = bytes;
      for (const b of this.idle) this.drop(b);
      this.idle = [];
    }
    let staging = this.idle.pop();
    if (!staging) {
      staging = await createBufferChecked(this.ctx, 'readback', this.size, READBACK, 'readback');
      this.all.add(staging);
    }
    encoder.copyBufferToBuffer(src, offset, staging, 0, size);
    return new PendingRead(this, staging, size, this.pacer ? { pacer: this.pacer, kind, since: performance.now() } : null);
  }

  /** @internal */
  recycle(staging: GPUBuffer, size: number): void {
    this.bytesRead += size;
    if (!this.all.has(staging)) return; // the ring was destroyed meanwhile
    if (staging.size < this.size) this.drop(staging); // in flight while the size grew
    else this.idle.push(staging);
  }

  private drop(staging: GPUBuffer): void {
    this.all.delete(staging);
    staging.destroy();
  }

  destroy(): void {
    for (const b of this.all) b.destroy();
    this.all.clear();
    this.idle = [];
  }
}

export class PendingRead {
  constructor(
    private readonly ring: ReadbackRing, private readonly staging: GPUBuffer, readonly size: number,
    private readonly paced: { pacer: MapPacer; kind: string; since: number } | null,
  ) {}

  /** Maps the staging buffer (after the encoder was submitted) and returns a copy of the bytes. */
  async read(): Promise<ArrayBuffer> {
    const map = () => this.staging.mapAsync(MAP_MODE_READ, 0, this.size);
    await (this.paced ? this.paced.pacer.map(this.paced.kind, this.paced.since, map) : map());
    const bytes = this.staging.getMappedRange(0, this.size).slice(0);
    this.staging.unmap();
    this.ring.recycle(this.staging, this.size);
    return bytes;
  }
}

/**
 * Sleeps before a map for about as long as reads of the same kind took, so that little of the
 * wait is spent polling. Per kind it keeps a sleep s (ms from the read's enqueue): a map still
 * pending after waking by more than SLACK_MS means the GPU was not done (s grows by half that
 * remainder); a map that resolves at once may have overslept (s shrinks by 15 %). So s settles
 * just under the reads' time and the poll covers the rest.
 */
export class MapPacer {
  private readonly sleepMs = new Map<string, number>();

  /** The sleep (ms from enqueue) before the next map of `kind`. */
  sleepFor(kind: string): number {
    return this.sleepMs.get(kind) ?? 0;
  }

  async map(kind: string, since: number, map: () => Promise<void>): Promise<void> {
    const s = this.sleepFor(kind);
    const remaining = since + s - performance.now();
    if (remaining >= 1) await new Promise((wake) => setTimeout(wake, remaining));
    const t0 = performance.now();
    await map();
    const polled = performance.now() - t0;
    this.sleepMs.set(kind, polled > SLACK_MS ? s + polled / 2 : s * 0.85);
  }
}

const SLACK_MS = 1.5;
