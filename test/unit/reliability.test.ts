import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../../src/engine/onnx/model';
import { saveModel } from '../../src/engine/onnx/writer';
import { DataType } from '../../src/engine/onnx/schema';
import { elementCount, tensorFloat32 } from '../../src/engine/onnx/tensor';
import { removeStaleTemps } from '../../src/engine/util/temps';
import { EngineClient } from '../../src/engine/worker/client';
import type { OptinError } from '../../src/engine/errors';
import { FIXTURES, ROOT, expectOptinError, fixture, sha256, tempDir } from './helpers';

const CLI = path.join(ROOT, 'dist', 'cli.js');
const BERT = fixture('bert-sst2/model-opset17.onnx');
const TINY = fixture('torch-bert-like-random/model-opset17.onnx');
const TRAIN = path.join(FIXTURES, 'data', 'sst2', 'train.tsv');
/** Lines that only appear once work on the model has started. */
const WORK_STARTED = /scoring heads and neurons|ranking by weight magnitude|elements|planning at budget/;
const TEMP = /\.tmp$/;
/** What a native abort prints (onnxruntime-node torn down while a run is in flight). */
const NATIVE_ABORT = /terminate called|Napi::Error|what\(\)|core dumped/;

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Run the CLI; `onStderr` sees stderr as it arrives and may kill the child. */
function optin(args: string[], onStderr?: (text: string, child: ReturnType<typeof spawn>) => void, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); onStderr?.(stderr, child); });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

function temps(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => TEMP.test(f));
}

/** float32 -> IEEE half bits (round to nearest, enough for a test model). */
function half(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  const man = u & 0x7fffff;
  if (exp <= 0) return sign;
  if (exp >= 31) return sign | 0x7c00;
  return sign | (exp << 10) | Math.round(man / 8192);
}

/** The onnxruntime-optimized BERT with its weights converted to float16. */
function float16Model(dir: string): string {
  const m = loadModel(fixture('torch-bert-like-random/model-opset17.ort-fused.onnx'));
  for (const t of m.proto.graph!.initializer) {
    if (t.dataType !== DataType.FLOAT || elementCount(t.dims) < 2) continue;
    const v = tensorFloat32(t, m.ext);
    t.rawData = new Uint8Array(Uint16Array.from(v, half).buffer);
    t.floatData = [];
    t.dataType = DataType.FLOAT16;
  }
  const out = path.join(dir, 'fp16.onnx');
  saveModel(m, out);
  return out;
}

/** The tiny BERT with its first MatMul turned into an integer MatMul, as a quantizer leaves it. */
function quantizedModel(dir: string): string {
  const m = loadModel(TINY);
  const mm = m.proto.graph!.node.find((n) => n.opType === 'MatMul')!;
  mm.opType = 'MatMulInteger';
  const out = path.join(dir, 'int8.onnx');
  saveModel(m, out);
  return out;
}

async function assertCompleteOrAbsent(file: string): Promise<'absent' | 'complete'> {
  if (!fs.existsSync(file)) return 'absent';
  loadModel(file);
  const s = await ort.InferenceSession.create(file);
  await s.release();
  return 'complete';
}

describe('preflight: refusals before any work', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => {
    assert.ok(fs.existsSync(CLI), 'run the build first (dist/cli.js)');
    dir = tempDir();
    fs.mkdirSync(path.join(dir, 'a-folder'));
    fs.writeFileSync(path.join(dir, 'empty.tsv'), '');
  });

  const cases: Array<[string, () => string[], RegExp]> = [
    ['--out names an existing folder', () => ['prune', BERT, '--budget', '0.6', '--data', TRAIN, '--out', path.join(dir, 'a-folder')], /output .*a-folder is a folder; give a file path/],
    ['--out is the input model', () => ['prune', BERT, '--budget', '0.6', '--out', BERT], /is the input model; OPTIN never overwrites the original/],
    ['--out in a folder that does not exist', () => ['prune', BERT, '--budget', '0.6', '--out', path.join(dir, 'nope', 'x.onnx')], /folder .*nope does not exist/],
    ['an image folder for a text model', () => ['prune', BERT, '--budget', '0.6', '--data', path.join(FIXTURES, 'data', 'digits', 'train'), '--out', path.join(dir, 'x.onnx')],
      /calibration data .*digits.train is a folder, but .*model-opset17\.onnx is a text model \(inputs input_ids .*\): give a \.tsv\/\.csv\/\.txt\/\.jsonl file/],
    ['a text file for a vision model', () => ['prune', fixture('vit-digits/model-opset17.onnx'), '--budget', '0.6', '--data', TRAIN, '--out', path.join(dir, 'x.onnx')],
      /train\.tsv is a \.tsv file, but .*vit-digits.model-opset17\.onnx is a vision model \(input pixel_values \[batch,1,8,8\]\): give an image folder/],
    ['an empty data file', () => ['prune', BERT, '--budget', '0.6', '--data', path.join(dir, 'empty.tsv'), '--out', path.join(dir, 'x.onnx')], /calibration data .*empty\.tsv is empty/],
    ['a text model without its tokenizer', () => ['prune', fixture('optimum-tiny-distilbert-sst2/model.onnx'), '--budget', '0.6', '--data', TRAIN, '--out', path.join(dir, 'x.onnx')],
      /no tokenizer\.json in .*optimum-tiny-distilbert-sst2; .*--tokenizer DIR/],
    ['float16 weights of an onnxruntime-optimized graph', () => ['prune', float16Model(dir), '--budget', '0.6', '--out', path.join(dir, 'x.onnx')],
      /fp16\.onnx: weight ".+" of [A-Za-z]+ node ".+" is float16 \(\d+ float16 weights in all\); OPTIN needs a float32 model/],
    ['an image folder for a vision model without its preprocessor_config.json', () => {
      const bare = path.join(dir, 'bare');
      fs.mkdirSync(bare, { recursive: true });
      fs.copyFileSync(fixture('vit-digits/model-opset17.onnx'), path.join(bare, 'vit.onnx'));
      return ['prune', path.join(bare, 'vit.onnx'), '--budget', '0.6', '--data', path.join(FIXTURES, 'data', 'digits', 'train'), '--out', path.join(dir, 'x.onnx')];
    }, /no preprocessor_config\.json at .*bare.preprocessor_config\.json: images are resized and normalised as the model was trained .* --preprocessor FILE/],
    ['a quantized graph', () => ['prune', quantizedModel(dir), '--budget', '0.6', '--out', path.join(dir, 'x.onnx')], /node ".+" \(MatMulInteger\) belongs to a quantized model/],
    ['score --out names a folder', () => ['score', BERT, '--data', TRAIN, '--out', path.join(dir, 'a-folder')], /output .*a-folder is a folder/],
    ['apply with an image folder for a text model', () => ['apply', BERT, '--plan', path.join(dir, 'plan.json'), '--data', path.join(FIXTURES, 'data', 'digits', 'train')], /is a folder, but .* is a text model/],
  ];

  for (const [name, args, message] of cases) {
    it(`refuses ${name}: one line, exit 2, nothing scored or written`, async () => {
      if (name.startsWith('apply')) {
        const r = await optin(['score', TINY, '--ranking', 'magnitude', '--out', path.join(dir, 's.json'), '--quiet']);
        assert.equal(r.code, 0, r.stderr);
        assert.equal((await optin(['plan', path.join(dir, 's.json'), '--budget', '0.6', '--out', path.join(dir, 'plan.json')])).code, 0);
        const p = JSON.parse(fs.readFileSync(path.join(dir, 'plan.json'), 'utf8'));
        p.model.sha256 = sha256(BERT);
        fs.writeFileSync(path.join(dir, 'plan.json'), JSON.stringify(p));
      }
      const before = fs.readdirSync(dir).sort();
      const r = await optin(args());
      assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
      const errors = r.stderr.split('\n').filter((l) => l.startsWith('optin:'));
      assert.equal(errors.length, 1, r.stderr);
      assert.match(errors[0]!, message);
      assert.doesNotMatch(r.stderr, WORK_STARTED, 'refused before any scoring');
      assert.deepEqual(fs.readdirSync(dir).sort().filter((f) => !/^(fp16|int8)\.onnx$|^bare$/.test(f)), before.filter((f) => !/^(fp16|int8)\.onnx$|^bare$/.test(f)), 'nothing written');
    });
  }
});

describe('crash safety: kills, full disks, concurrent runs', function () {
  this.timeout(600_000);
  const original = sha256(BERT);
  const prune = (out: string, budget = '0.6'): string[] => ['prune', BERT, '--budget', budget, '--ranking', 'magnitude', '--no-bench', '--samples', '2', '--out', out];

  it('removes temp files of dead processes and keeps those of live ones', () => {
    const dir = tempDir();
    const dead = path.join(dir, '.m.onnx.999999999.deadbeef.tmp');
    const live = path.join(dir, `.m.onnx.${process.pid}.0badcafe.tmp`);
    fs.writeFileSync(dead, 'x');
    fs.writeFileSync(live, 'x');
    fs.writeFileSync(path.join(dir, 'keep.tmp'), 'not ours');
    assert.deepEqual(removeStaleTemps(dir), [dead]);
    assert.deepEqual(fs.readdirSync(dir).sort(), [path.basename(live), 'keep.tmp'].sort());
  });

  const points = ['checking model, data and destination', 'ranking by weight magnitude', 'planning at budget', 'loading calibration data', 'cutting weights', 'verifying', 'writing', 'temp file created'];
  for (const sig of ['SIGKILL', 'SIGTERM'] as const) {
    it(`${sig} at ${points.length} points of a prune: destination absent or complete, original intact, no temp file after the next run`, async () => {
      const dir = tempDir();
      const out = path.join(dir, 'pruned.onnx');
      const outcomes: string[] = [];
      for (const point of points) {
        fs.rmSync(out, { force: true });
        let watcher: fs.FSWatcher | undefined;
        let killed = false;
        const kill = (child: ReturnType<typeof spawn>): void => { if (!killed) { killed = true; child.kill(sig); } };
        const r = await new Promise<Run>((resolve) => {
          const p = optin(prune(out), (text, child) => {
            if (point !== 'temp file created' && text.includes(`${point}`)) kill(child);
            if (point === 'temp file created' && !watcher) watcher = fs.watch(dir, () => { if (temps(dir).length) kill(child); });
          });
          void p.then(resolve);
        });
        watcher?.close();
        const state = await assertCompleteOrAbsent(out);
        outcomes.push(`${point}: ${state}, ${r.signal ?? r.code}`);
        assert.ok(killed, `${point}: the run was killed (${r.stderr})`);
        if (sig === 'SIGTERM') {
          assert.ok(r.code === 143 || r.signal === 'SIGTERM', `${point}: exit ${r.code} ${r.signal} ${r.stderr}`);
          assert.doesNotMatch(r.stderr, NATIVE_ABORT, `${point}: no native abort after the exit message`);
          assert.deepEqual(temps(dir), [], `${point}: SIGTERM leaves no temp file`);
        }
        assert.equal(sha256(BERT), original, `${point}: original untouched`);
      }
      const r = await optin(prune(out));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await assertCompleteOrAbsent(out), 'complete');
      assert.deepEqual(temps(dir), [], `no temp file after the next run (${outcomes.join('; ')})`);
      assert.equal(sha256(BERT), original);
    });
  }

  it('a full filesystem: refused before scoring, and a write that runs out of space leaves nothing', async function () {
    if (process.getuid?.() !== 0) {
      console.log('      (skipped: mounting a small tmpfs needs root)');
      this.skip();
    }
    const mnt = tempDir();
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt], { encoding: 'utf8' });
    if (m.status !== 0) {
      console.log(`      (skipped: cannot mount a tmpfs here: ${m.stderr.trim()})`);
      this.skip();
    }
    try {
      const r = await optin(prune(path.join(mnt, 'p.onnx')));
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /optin: not enough free space for .*p\.onnx: it needs about 43\.3 MB \(the model's size\), 4\.0 MB free in /);
      assert.doesNotMatch(r.stderr, WORK_STARTED);
      await expectOptinError(() => saveModel(loadModel(BERT), path.join(mnt, 'direct.onnx')), 'io',
        /cannot write .*direct\.onnx: no space left on the device \(ENOSPC\); it needs about 42\.3 MB, [0-9.]+ MB free in .*; nothing was written/);
      assert.deepEqual(fs.readdirSync(mnt), [], 'no partial or temp file left');
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  it('two processes pruning the same model to different outputs both succeed', async () => {
    const dir = tempDir();
    const [a, b] = await Promise.all([optin(prune(path.join(dir, 'a.onnx'))), optin(prune(path.join(dir, 'b.onnx'), '0.5'))]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(await assertCompleteOrAbsent(path.join(dir, 'a.onnx')), 'complete');
    assert.equal(await assertCompleteOrAbsent(path.join(dir, 'b.onnx')), 'complete');
    assert.deepEqual(temps(dir), []);
    assert.equal(sha256(BERT), original);
  });
});

describe('crash containment: onnxruntime aborts in the engine process, not in the CLI', function () {
  this.timeout(600_000);
  const cases: Array<[string, string, (dir: string, model: string) => string[], RegExp]> = [
    ['while scoring', 'scoring layer 1',
      (dir, model) => ['prune', model, '--budget', '0.6', '--data', TRAIN, '--tokenizer', path.dirname(BERT), '--samples', '2', '--no-bench', '--out', path.join(dir, 'out.onnx')],
      /^optin: the engine process aborted while scoring layer 1 \(\d+ of 4128 elements\) of crash\.onnx \(it said: injected fault \(OPTIN_FAULT_INJECT\)\); nothing was written; run it again; if it repeats, try --ep cpu and report it with the model$/],
    ['while cutting weights', 'cutting weights',
      (dir, model) => ['prune', model, '--budget', '0.6', '--ranking', 'magnitude', '--samples', '2', '--no-bench', '--out', path.join(dir, 'out.onnx')],
      /^optin: the engine process aborted while cutting weights of crash\.onnx \(it said: injected fault \(OPTIN_FAULT_INJECT\)\); nothing was written; /],
  ];
  for (const [name, words, args, message] of cases) {
    it(`${name}: one line naming the step, exit 1, nothing written, original intact`, async () => {
      const dir = tempDir();
      const model = path.join(dir, 'crash.onnx');
      fs.copyFileSync(BERT, model);
      const before = sha256(model);
      const r = await optin(args(dir, model), undefined, { OPTIN_FAULT_INJECT: `abort:crash.onnx:${words}` });
      assert.equal(r.code, 1, r.stderr);
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('optin:') && !l.startsWith('optin: warning:'));
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, message);
      assert.doesNotMatch(r.stderr, NATIVE_ABORT, 'the native abort stays in the engine process');
      assert.deepEqual(fs.readdirSync(dir).sort(), ['crash.onnx'], 'no output, no temp file');
      assert.equal(sha256(model), before);
    });
  }

  it('the same fault on another model name does nothing (the hook is off unless named)', async () => {
    const dir = tempDir();
    const r = await optin(['prune', TINY, '--budget', '0.6', '--ranking', 'magnitude', '--samples', '2', '--no-bench', '--out', path.join(dir, 'out.onnx')], undefined, { OPTIN_FAULT_INJECT: 'abort:crash.onnx:cutting weights' });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(fs.existsSync(path.join(dir, 'out.onnx')));
  });

  it('an engine client survives its engine process: the failed job rejects, the next job runs in a fresh process', async () => {
    const dir = tempDir();
    const model = path.join(dir, 'crash.onnx');
    fs.copyFileSync(TINY, model);
    const saved = process.env.OPTIN_FAULT_INJECT;
    process.env.OPTIN_FAULT_INJECT = 'abort:crash.onnx:scoring layer 0';
    const engine = new EngineClient(path.join(ROOT, 'dist', 'engineWorker.js'));
    try {
      const first = engine.pid;
      assert.equal(first, undefined, 'no process before the first job');
      await assert.rejects(engine.score({ model, data: { samples: 2 }, ep: 'cpu', mode: 'exact' }), (e: OptinError) => {
        assert.equal(e.code, 'crashed');
        assert.match(e.message, /^the engine process aborted while scoring layer 0 \(\d+ of \d+ elements\) of crash\.onnx/);
        return true;
      });
      const report = await engine.inspect(TINY);
      assert.deepEqual(report.structure.layers.map((l) => l.attention!.heads), [4, 4]);
      assert.ok(engine.pid, 'a fresh engine process');
    } finally {
      if (saved === undefined) delete process.env.OPTIN_FAULT_INJECT;
      else process.env.OPTIN_FAULT_INJECT = saved;
      await engine.dispose();
    }
  });
});
