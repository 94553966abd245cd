// Reading results back: a small ring of MAP_READ staging buffers, reused across steps, so a
// decode step costs one copyBufferToBuffer and one mapAsync of a few bytes.
import { MAP_MODE_READ, READBACK, createBufferChecked } from './buffers.ts';
import type { GpuContext } from './device.ts';

export class ReadbackRing {
  private idle: GPUBuffer[] = [];
  /** Bytes mapped back to the CPU since creation; benchmarks report it per step. */
  bytesRead = 0;
  constructor(private readonly ctx: GpuContext, private readonly capacity: number) {}

  /** Records a copy of [offset, offset+size) of `src` into a staging buffer. */
  async enqueue(encoder: GPUCommandEncoder, src: GPUBuffer, offset: number, size: number): Promise<PendingRead> {
    let staging = this.idle.pop();
    if (!staging || staging.size < size) {
      staging?.destroy();
      staging = await createBufferChecked(this.ctx, 'readback', Math.max(size, this.capacity), READBACK);
    }
    encoder.copyBufferToBuffer(src, offset, staging, 0, size);
    return new PendingRead(this, staging, size);
  }

  /** @internal */
  recycle(staging: GPUBuffer, size: number): void {
    this.bytesRead += size;
    this.idle.push(staging);
  }

  destroy(): void {
    for (const b of this.idle) b.destroy();
    this.idle = [];
  }
}

export class PendingRead {
  constructor(private readonly ring: ReadbackRing, private readonly staging: GPUBuffer, readonly size: number) {}

  /** Maps the staging buffer (after the encoder was submitted) and returns a copy of the bytes. */
  async read(): Promise<ArrayBuffer> {
    await this.staging.mapAsync(MAP_MODE_READ, 0, this.size);
    const bytes = this.staging.getMappedRange(0, this.size).slice(0);
    this.staging.unmap();
    this.ring.recycle(this.staging, this.size);
    return bytes;
  }
}
