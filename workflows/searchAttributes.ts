/** Search attributes Ferry sets on its runs so users can filter them in the Temporal UI (registered by infra/stack.sh). */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const ferryModelKey = defineSearchAttributeKey('FerryModel', SearchAttributeType.KEYWORD);
export const ferryModelVersionKey = defineSearchAttributeKey('FerryModelVersion', SearchAttributeType.KEYWORD);
export const ferryStageKey = defineSearchAttributeKey('FerryStage', SearchAttributeType.KEYWORD);
export const ferryDeploymentKey = defineSearchAttributeKey('FerryDeployment', SearchAttributeType.KEYWORD);
/** Where the deploy stage deploys (local, kubernetes, ec2): the cost engine's choice, or the target the user named. */
export const ferryTargetKey = defineSearchAttributeKey('FerryTarget', SearchAttributeType.KEYWORD);
