/**
 * The EC2 target against moto's EC2 server, an emulator of an AWS account (not AWS itself): it answers
 * the EC2 API, returns fake spot prices and never interrupts an instance.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DescribeAvailabilityZonesCommand } from '@aws-sdk/client-ec2';
import { ec2Client } from '../../lib/targets/ec2/awsEnvironment';
import { type MotoServer, startMotoServer } from '../helpers/motoServer';

let moto: MotoServer;
before(async () => {
  moto = await startMotoServer();
});
after(async () => {
  await moto?.stop();
});

test('moto EC2 emulator: the client built from the AWS environment reaches it and lists the zones', async () => {
  const ec2 = ec2Client(moto.env);
  const zones = await ec2.send(new DescribeAvailabilityZonesCommand({}));
  const names = (zones.AvailabilityZones ?? []).map((z) => z.ZoneName);
  assert.ok(names.includes('us-east-1a'), `zones: ${names.join(', ')}`);
});
