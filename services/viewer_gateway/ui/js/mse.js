// Media Source Extensions helpers shared by live and playback: the codec string from an init
// segment, and a SourceBuffer fed in order.

/** "avc1.PPCCLL" from the avcC box of an fMP4 init segment. */
export function codecOf(bytes) {
  const b = new Uint8Array(bytes);
  for (let i = 0; i + 8 < b.length; i++) {
    if (b[i] === 0x61 && b[i + 1] === 0x76 && b[i + 2] === 0x63 && b[i + 3] === 0x43) { // avcC
      const hex = (n) => n.toString(16).padStart(2, "0");
      return `avc1.${hex(b[i + 5])}${hex(b[i + 6])}${hex(b[i + 7])}`;
    }
  }
  throw new Error("flux vidéo sans en-tête H.264 (avcC)");
}

/** A MediaSource on a <video>, whose single SourceBuffer takes appends in order. */
export class Feed {
  constructor(video) {
    this.video = video;
    this.source = new MediaSource();
    this.url = URL.createObjectURL(this.source);
    video.src = this.url;
    this.opened = new Promise((resolve) => this.source.addEventListener("sourceopen", resolve, { once: true }));
    this.buffer = null;
    this.queue = [];
    this.current = null; // the append in progress
    this.closed = false;
    this.onappended = null;
  }

  /** Resolves once these bytes are in the buffer (a seek waits for it: seeking into a part not
   * yet appended showed a picture seconds away from the instant asked for). */
  async append(bytes, { offset } = {}) {
    await this.opened;
    if (this.closed) return;
    if (!this.buffer) {
      this.buffer = this.source.addSourceBuffer(`video/mp4; codecs="${codecOf(bytes)}"`);
      this.buffer.addEventListener("updateend", () => {
        this.current?.resolve();
        this.current = null;
        this.pump();
      });
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ bytes, offset, resolve, reject });
      this.pump();
    });
  }

  pump() {
    if (!this.buffer || this.buffer.updating || this.current || !this.queue.length) return;
    const item = this.queue.shift();
    if (item.offset !== undefined) this.buffer.timestampOffset = item.offset;
    try {
      this.buffer.appendBuffer(item.bytes);
      this.current = item;
    } catch (err) {
      if (err.name === "QuotaExceededError") this.trim(10);
      item.reject(err);
      return;
    }
    this.onappended?.();
  }

  /** Forget what is more than `keep` seconds behind the playhead (a live view runs for hours). */
  trim(keep = 30) {
    const b = this.buffer;
    if (!b || b.updating || !b.buffered.length) return;
    const until = this.video.currentTime - keep;
    if (until > b.buffered.start(0) + 1) b.remove(b.buffered.start(0), until);
  }

  bufferedEnd() {
    const ranges = this.video.buffered;
    return ranges.length ? ranges.end(ranges.length - 1) : 0;
  }

  close() {
    this.closed = true;
    for (const item of this.queue.splice(0)) item.resolve();
    this.current?.resolve();
    URL.revokeObjectURL(this.url);
    this.video.removeAttribute("src");
    this.video.load();
  }
}
