/** Where a command writes: the process's streams, or captured ones in tests. */
export interface Output {
  write(text: string): unknown;
  /** True on a terminal: progress lines instead of a final result. */
  isTTY?: boolean;
}

export interface Io {
  stdout: Output;
  stderr: Output;
}

export function line(out: Output, text = ''): void {
  out.write(`${text}\n`);
}
