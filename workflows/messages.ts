/** Signals, Updates and Queries of Ferry's workflows: what the CLI, SDK, dashboard and chat tools send. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ApprovalRequest, ChosenPlan, DeploymentStatus, MonitorStatus } from './types';

/** Current stage, progress, plans and results of a deployment run. */
export const deploymentStatusQuery = defineQuery<DeploymentStatus>('deploymentStatus');

/** Approval as an Update (CLI, SDK, dashboard): validated, so an unknown plan is refused at once. */
export const approvePlanUpdate = defineUpdate<ChosenPlan, [ApprovalRequest]>('approvePlan');

/** Approval as a Signal (chat and ops tools that cannot wait for an answer). Invalid ones are recorded and ignored. */
export const approvePlanSignal = defineSignal<[ApprovalRequest]>('approvePlanSignal');

export const monitorStatusQuery = defineQuery<MonitorStatus>('monitorStatus');

/** Stop serving: the monitor workflow destroys the replicas and ends. */
export const undeploySignal = defineSignal<[{ requestedBy?: string }]>('undeploy');
