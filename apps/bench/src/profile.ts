// `node dist/profile.js FILE.cpuprofile [N]`: the N functions with the most self time, and the
// same grouped by file, from a profile written by `--profile DIR` (node --cpu-prof).
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const pk = url.search(/\/(packages|apps)\//);
  return pk >= 0 ? url.slice(pk + 1) : url.replace(/^file:\/\//, '');
}

function top(map: Map<string, number>, total: number, n: number): string {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, us]) => `${((us / total) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(1).padStart(8)} ms  ${k}`)
    .join('\n');
}

function frameName(f: CallFrame): string {
  const file = f.url === '' ? '(native/vm)' : shortUrl(f.url);
  return `${f.functionName || '(anonymous)'}  ${file}${f.url === '' ? '' : `:${f.lineNumber + 1}`}`;
}

export function summarizeProfile(p: CpuProfile, n: number): string {
  const byId = new Map(p.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of p.nodes) for (const c of node.children ?? []) parent.set(c, node.id);
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const fns = new Map<string, number>();
  const files = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const fn = frameName(f);
    const file = f.url === '' ? '(native/vm)' : shortUrl(f.url);
    fns.set(fn, (fns.get(fn) ?? 0) + us);
    files.set(file, (files.get(file) ?? 0) + us);
    total += us;
    if (f.functionName === '(idle)') idle += us;
    // Inclusive time: every function on the sampled stack, once even if it recurses.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const name = frameName(byId.get(at)!.callFrame);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + us);
    }
  }
  for (const k of ['(root)  (native/vm)', '(idle)  (native/vm)']) inclusive.delete(k);
  return [
    `total ${(total / 1000).toFixed(0)} ms sampled, ${(idle / 1000).toFixed(0)} ms idle`,
    `self time by function\n${top(fns, total, n)}`,
    `total (inclusive) time by function\n${top(inclusive, total, n)}`,
    `self time by file\n${top(files, total, n)}`,
  ].join('\n\n');
}

const file = process.argv[2];
if (file === undefined) {
  console.error('usage: node dist/profile.js FILE.cpuprofile [N]');
  process.exitCode = 2;
} else {
  console.log(summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, Number(process.argv[3] ?? 25)));
}
