/** An error the client caused (or asked about something absent): carries the HTTP status to answer with. */
export class RequestError extends Error {
  constructor(
    readonly status: 400 | 404 | 405 | 413 | 503,
    message: string,
  ) {
    super(message);
    this.name = 'RequestError';
  }
}
