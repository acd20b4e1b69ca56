/** A failed registry operation: the message names the registry, what was being done and why. */
export class RegistryError extends Error {
  constructor(
    readonly registryUrl: string,
    readonly operation: string,
    detail: string,
    readonly status?: number,
    /** The registry's error code (DIGEST_INVALID, ...) or, for a connection that failed, its errno. */
    readonly code?: string,
  ) {
    super(`registry ${registryUrl}: ${operation} failed: ${detail}`);
    this.name = 'RegistryError';
  }
}
