import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './helpers';

const pages = ['README.md', 'CHANGELOG.md', 'README.vsix.md', ...fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

describe('documentation', () => {
  it('the README is for users first and short (at most 300 lines); the depth is in docs/', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    assert.ok(readme.split('\n').length <= 300, `README.md has ${readme.split('\n').length} lines`);
    assert.match(readme, /bash scripts\/demo\.sh/);
    assert.match(readme, /bash scripts\/test-all\.sh/);
  });

  for (const page of pages) {
    it(`${page}: every relative link and image resolves to a file in the repository`, () => {
      const text = fs.readFileSync(path.join(ROOT, page), 'utf8').replace(/```[\s\S]*?```/g, '');
      const links = [...text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!).filter((l) => !/^([a-z]+:|#)/i.test(l));
      for (const l of links) {
        const target = path.resolve(path.dirname(path.join(ROOT, page)), decodeURIComponent(l.split('#')[0]!));
        assert.ok(fs.existsSync(target), `${page} links to ${l}, which does not exist`);
      }
    });
  }
});
