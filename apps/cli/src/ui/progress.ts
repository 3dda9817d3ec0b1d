import { formatDuration } from "./format";
import type { Io } from "./io";

/**
 * Progress of long work on stderr: "label  3/5 layer  [=====-----]  60%  ETA 4.2 s  detail".
 * On a TTY the line is redrawn in place (at most 10 times a second); elsewhere nothing is shown,
 * unless LOWBIT_PROGRESS=1, which prints one plain line per step (for logs and tests).
 */
export class Progress {
  private done = 0;
  private readonly started: number;
  private lastDraw = -Infinity;
  private drawn = false;
  private readonly live: boolean;
  private readonly enabled: boolean;

  constructor(
    private readonly io: Io,
    private readonly label: string,
    private total: number,
    private readonly unit = "layer",
  ) {
    this.started = io.now();
    this.enabled = io.progress;
    this.live = io.stderr.isTTY === true;
  }

  /** Seconds since start. */
  get elapsed(): number {
    return (this.io.now() - this.started) / 1000;
  }

  /** Remaining seconds estimated from the mean time per finished step (undefined before the first). */
  get eta(): number | undefined {
    if (this.done <= 0 || this.total <= 0) return undefined;
    return (this.elapsed / this.done) * Math.max(0, this.total - this.done);
  }

  setTotal(total: number): void {
    this.total = total;
  }

  /** `done` steps of `total` are finished; `detail` says what is being worked on now. */
  update(done: number, detail = ""): void {
    this.done = done;
    if (!this.enabled) return;
    const t = this.io.now();
    const last = done >= this.total;
    if (this.live && !last && t - this.lastDraw < 100) return;
    this.lastDraw = t;
    const line = this.render(detail);
    if (this.live) {
      const cols = this.io.stderr.columns ?? 120;
      this.io.stderr.write(`\r\u001B[2K${line.slice(0, Math.max(20, cols - 1))}`);
      this.drawn = true;
    } else {
      this.io.stderr.write(`${line}\n`);
    }
  }

  /** One more step finished. */
  tick(detail = ""): void {
    this.update(this.done + 1, detail);
  }

  /** Clears the live line (the caller prints a summary after). */
  finish(): void {
    if (this.enabled && this.live && this.drawn) this.io.stderr.write("\r\u001B[2K");
    this.drawn = false;
  }

  render(detail = ""): string {
    const c = this.io.ce;
    const n = Math.max(1, this.total);
    const frac = Math.min(1, this.done / n);
    const width = 20;
    const filled = Math.round(frac * width);
    const bar = `[${c.cyan("=".repeat(filled))}${" ".repeat(width - filled)}]`;
    const eta = this.eta;
    const parts = [
      c.bold(this.label),
      `${this.unit} ${Math.min(this.done + (this.done < this.total ? 1 : 0), this.total)} of ${this.total}`,
      bar,
      `${Math.round(frac * 100)}%`.padStart(4),
      this.done >= this.total ? `done in ${formatDuration(this.elapsed)}` : `ETA ${eta === undefined ? "-" : formatDuration(eta)}`,
    ];
    if (detail) parts.push(c.dim(detail));
    return parts.join("  ");
  }
}
