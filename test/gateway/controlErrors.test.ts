/** The control API's error → status/code mapping, and that validation throws the classes it maps. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { normalizeAutoscaling } from '../../lib/gateway/autoscaler';
import { ControlRequestError, errorAnswer, MethodNotAllowed, SpecError } from '../../lib/gateway/controlErrors';
import { applyScalingChange, parseDeploymentSpec } from '../../lib/gateway/deploymentSpec';
import { normalizeTrafficPolicy } from '../../lib/gateway/trafficPolicy';

describe('control API errors', () => {
  test('each error class and code gets its status, and the code goes in the body', () => {
    assert.deepEqual(errorAnswer(new SpecError('"model" must be a non-empty string')), {
      status: 400,
      body: { error: '"model" must be a non-empty string', code: 'bad_request' },
    });
    assert.deepEqual(errorAnswer(new ControlRequestError('deployment_not_found', 'no deployment "x"')), {
      status: 404,
      body: { error: 'no deployment "x"', code: 'deployment_not_found' },
    });
    assert.equal(errorAnswer(new ControlRequestError('no_route', 'no control route GET /_ferry/x')).status, 404);
    assert.equal(errorAnswer(new ControlRequestError('spec_changed', 'changed since it was read')).status, 409);
    assert.deepEqual(errorAnswer(new MethodNotAllowed(['GET', 'PUT'], 'POST is not allowed')), {
      status: 405,
      body: { error: 'POST is not allowed', code: 'method_not_allowed' },
      headers: { allow: 'GET, PUT' },
    });
    assert.deepEqual(errorAnswer(new Error('replica did not get ready')), {
      status: 500,
      body: { error: 'replica did not get ready', code: 'internal' },
    });
  });

  test('validation anywhere in a spec throws SpecError, so it is a 400', () => {
    const specError = (pattern: RegExp) => (err: unknown) => err instanceof SpecError && pattern.test(err.message);
    assert.throws(() => normalizeTrafficPolicy({ split: { a: 50 } }, ['a']), specError(/must add up to 100/));
    assert.throws(() => normalizeAutoscaling({ minReplicas: 0 }, 1), specError(/"autoscaling.minReplicas"/));
    assert.throws(
      () => parseDeploymentSpec('d', { model: 'm', replicas: 1, modelDir: '/x', autoscaling: { nope: 1 } }),
      specError(/"autoscaling" has an unknown field "nope"/),
    );
    assert.throws(
      () =>
        applyScalingChange(
          { replicas: 1, autoscaling: null, scaleToZeroAfterMs: null },
          { autoscaling: { maxReplicas: 0 } },
        ),
      specError(/"autoscaling.maxReplicas"/),
    );
  });
});
