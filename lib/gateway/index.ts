export { startGateway, type Gateway, type GatewayOptions } from './gateway';
export type { PullImageFn } from './deploymentManager';
