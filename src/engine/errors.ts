/** Machine-readable category of an {@link OptinError}. */
export type OptinErrorCode =
  | 'io'
  | 'corrupt'
  | 'unsupported'
  | 'not-transformer'
  | 'decoder'
  | 'runtime'
  | 'data'
  | 'cancelled'
  | 'crashed'
  | 'usage';

/**
 * An error the user can act on: one sentence saying what, where and why.
 * Everything the engine refuses is reported as an OptinError; anything else is a bug.
 */
export class OptinError extends Error {
  constructor(
    readonly code: OptinErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'OptinError';
  }
}

/** Narrow an unknown thrown value to an OptinError. */
export function isOptinError(e: unknown): e is OptinError {
  return e instanceof OptinError;
}
