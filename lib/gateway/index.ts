export type { PullImageFn } from './deploymentManager';
export { type Gateway, type GatewayOptions, startGateway } from './gateway';
export { type GatewayAccessOptions, gatewayAccessOptions } from './gatewayAccess';
