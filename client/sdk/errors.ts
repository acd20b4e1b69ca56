/** The SDK's errors: their messages are what the CLI prints and the API answers. */

/** A refusal or failure explained for the user (the API answers 400). */
export class FerryError extends Error {}

/** No deployment by that reference (the API answers 404). */
export class UnknownDeploymentError extends FerryError {}

/** The run exists but does not wait for an approval now (the API answers 409): nothing was sent. */
export class NotAwaitingApprovalError extends FerryError {}
