import { OptinError } from '../engine/errors';

/** Parsed command line: positionals plus --flags (boolean or with a value). */
export interface Args {
  positional: string[];
  flags: Map<string, string | true>;
}

/** Parse argv; `valued` lists flags that take a value. */
export function parseArgs(argv: string[], valued: readonly string[]): Args {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (valued.includes(name)) {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new OptinError('usage', `--${name} needs a value`);
      flags.set(name, v);
    } else if (eq > 0) {
      throw new OptinError('usage', `--${name} takes no value`);
    } else {
      flags.set(name, true);
    }
  }
  return { positional, flags };
}

/** A positive integer flag, or undefined when absent. */
export function intFlag(args: Args, name: string): number | undefined {
  const v = args.flags.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v === true || !Number.isInteger(n) || n <= 0) throw new OptinError('usage', `--${name} must be a positive integer, got "${v}"`);
  return n;
}

/** Refuse flags the command does not know. */
export function checkFlags(args: Args, known: readonly string[], command: string): void {
  for (const k of args.flags.keys()) {
    if (!known.includes(k)) throw new OptinError('usage', `unknown option --${k} for "optin ${command}"`);
  }
}
