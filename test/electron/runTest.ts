import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runTests } from '@vscode/test-electron';

/**
 * Runs the same extension suite as the code-server harness, in a desktop VS Code downloaded by
 * @vscode/test-electron (needs internet; CI here uses test/e2e instead).
 */
async function main(): Promise<void> {
  const root = path.resolve(__dirname, '..', '..', '..');
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-ws-'));
  const fix = path.join(root, 'test', 'fixtures', 'models');
  fs.copyFileSync(path.join(fix, 'torch-bert-like-random', 'model-opset17.onnx'), path.join(ws, 'bert-tiny.onnx'));
  fs.copyFileSync(path.join(fix, 'gpt2-decoder', 'model.onnx'), path.join(ws, 'gpt2-decoder.onnx'));
  const result = path.join(ws, 'result.json');
  await runTests({
    extensionDevelopmentPath: root,
    extensionTestsPath: path.join(root, 'out', 'test', 'suite', 'index'),
    launchArgs: [ws, '--disable-extensions'],
    extensionTestsEnv: { OPTIN_TEST_RESULT: result },
  });
  const r = JSON.parse(fs.readFileSync(result, 'utf8')) as { passed: number; failed: number };
  console.log(`${r.passed} passed, ${r.failed} failed`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
