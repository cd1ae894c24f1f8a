/** Tool name and version recorded in every file the engine writes. */
export const TOOL = { name: 'optin-vscode', version: '0.1.0' } as const;
