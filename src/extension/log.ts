import * as vscode from 'vscode';

/** The "OPTIN" output channel. */
export class Log implements vscode.Disposable {
  private readonly channel = vscode.window.createOutputChannel('OPTIN', { log: true });
  info(msg: string): void { this.channel.info(msg); }
  warn(msg: string): void { this.channel.warn(msg); }
  error(msg: string): void { this.channel.error(msg); }
  show(): void { this.channel.show(true); }
  dispose(): void { this.channel.dispose(); }
}
