import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FIXTURES, sha256 } from './helpers';

function snapshot(): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(path.relative(FIXTURES, p), sha256(p));
    }
  };
  walk(FIXTURES);
  return out;
}

let hashed: Map<string, string> | undefined;

// Root hooks: every fixture is hashed before the first unit test and compared after the last, so any
// test (or engine path) that writes into, renames or leaves files beside a user's model fails here.
before(() => { hashed = snapshot(); });
after(() => {
  const now = snapshot();
  const changed = [...hashed!].filter(([f, h]) => now.get(f) !== h).map(([f]) => f);
  const added = [...now.keys()].filter((f) => !hashed!.has(f));
  assert.deepEqual({ changed, added }, { changed: [], added: [] }, 'the unit suite must leave test/fixtures byte-identical');
});

describe('fixtures', () => {
  it('are hashed before the suite (compared after it)', () => {
    assert.ok(hashed && hashed.size > 100, `${hashed?.size ?? 0} fixture files hashed`);
  });
});
