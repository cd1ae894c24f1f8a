import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';

/**
 * Entry point VS Code calls inside the extension host (extensionTestsPath). Runs every
 * out/test/suite/*.test.js and writes "N passed, N failed" plus failures to OPTIN_TEST_RESULT.
 */
export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', timeout: 120_000, color: false, reporter: 'spec' });
  const grep = process.env.OPTIN_TEST_GREP;
  if (grep) mocha.grep(grep);
  for (const f of fs.readdirSync(__dirname).filter((f) => f.endsWith('.test.js')).sort()) mocha.addFile(path.join(__dirname, f));
  const resultFile = process.env.OPTIN_TEST_RESULT;
  return new Promise((resolve, reject) => {
    const failures: string[] = [];
    let passed = 0;
    const runner = mocha.run((failed) => {
      const summary = { passed, failed, failures };
      if (resultFile) fs.writeFileSync(resultFile, JSON.stringify(summary));
      if (failed > 0) reject(new Error(`${failed} extension tests failed`));
      else resolve();
    });
    runner.on('pass', () => passed++);
    runner.on('fail', (t, err: Error) => failures.push(`${t.fullTitle()}: ${err.message}`));
  });
}
