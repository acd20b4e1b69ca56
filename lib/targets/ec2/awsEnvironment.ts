/**
 * Where the EC2 target talks to: credentials and region from the standard AWS environment, and an
 * endpoint override (AWS_ENDPOINT_URL_EC2, else AWS_ENDPOINT_URL) that points it at an emulator such as
 * moto. The SDK reads the same variables; they are read here too so that "is EC2 configured?" has one
 * answer (the deploy stage offers ec2 only then) and a status can say which account it talks to.
 */
import { EC2Client } from '@aws-sdk/client-ec2';

/** The AWS_* and FERRY_EC2_* variables as set (config.aws.variables; a test's own for an emulator). */
export type AwsVariables = Readonly<Record<string, string | undefined>>;

export interface AwsEnvironment {
  region: string;
  /** Set when the standard endpoint is overridden (an emulator, a VPC endpoint). */
  endpoint?: string;
}

/**
 * The configured AWS environment, or undefined when there are no credentials or no region: static keys
 * (AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY) or a named profile / web identity that the SDK resolves.
 */
export function awsEnvironment(env: AwsVariables): AwsEnvironment | undefined {
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  const hasKeys = Boolean(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY);
  const hasOther = Boolean(
    env.AWS_PROFILE || env.AWS_WEB_IDENTITY_TOKEN_FILE || env.AWS_CONTAINER_CREDENTIALS_FULL_URI,
  );
  if (!region || !(hasKeys || hasOther)) return undefined;
  const endpoint = env.AWS_ENDPOINT_URL_EC2 || env.AWS_ENDPOINT_URL || undefined;
  return endpoint ? { region, endpoint } : { region };
}

/** True when the ec2 target can be used here (the deploy stage's "deployable" test). */
export function ec2Configured(env: AwsVariables): boolean {
  return awsEnvironment(env) !== undefined;
}

/** An EC2 client for that environment; throws, naming what is missing, when it is not configured. */
export function ec2Client(env: AwsVariables): EC2Client {
  const aws = awsEnvironment(env);
  if (!aws) {
    throw new Error(
      'the ec2 target needs AWS credentials and a region: set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY ' +
        '(or AWS_PROFILE) and AWS_REGION',
    );
  }
  // Static keys from `env`; otherwise the SDK's own provider chain.
  const credentials =
    env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? {
          accessKeyId: env.AWS_ACCESS_KEY_ID,
          secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
          ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
        }
      : undefined;
  return new EC2Client({
    region: aws.region,
    ...(aws.endpoint ? { endpoint: aws.endpoint } : {}),
    ...(credentials ? { credentials } : {}),
  });
}
