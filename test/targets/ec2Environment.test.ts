import assert from 'node:assert/strict';
import { test } from 'node:test';
import { awsEnvironment, ec2Client, ec2Configured } from '../../lib/targets/ec2/awsEnvironment';

test('ec2 is configured only with credentials and a region; the endpoint override is read', () => {
  assert.equal(ec2Configured({}), false);
  assert.equal(ec2Configured({ AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' }), false);
  assert.equal(ec2Configured({ AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'a' }), false);
  assert.deepEqual(awsEnvironment({ AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' }), {
    region: 'eu-west-1',
  });
  assert.deepEqual(
    awsEnvironment({
      AWS_DEFAULT_REGION: 'us-east-2',
      AWS_PROFILE: 'dev',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:1',
      AWS_ENDPOINT_URL_EC2: 'http://127.0.0.1:2',
    }),
    { region: 'us-east-2', endpoint: 'http://127.0.0.1:2' },
  );
  assert.throws(() => ec2Client({}), /AWS_ACCESS_KEY_ID/);
});
