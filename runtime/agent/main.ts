/**
 * Entry point of the replica agent (bundled to one file by lib/targets/ec2/agentBundle.ts; the user data
 * runs it with the image's node). Settings (agent.ts agentSettingsFromEnv):
 *   FERRY_AGENT_METADATA_URL   the metadata service (default http://169.254.169.254)
 *   FERRY_AGENT_POLL_MS        poll interval (default 5000)
 *   FERRY_AGENT_ON_REBALANCE   drain | ignore (default drain)
 *   FERRY_AGENT_FERRY_URL, FERRY_AGENT_KEY, FERRY_AGENT_DEPLOYMENT   where to ask for the drain and a replacement
 *   FERRY_AGENT_REPLICA        the replica's id at Ferry (default its pid)
 *   FERRY_AGENT_REPLICA_PID or FERRY_AGENT_REPLICA_CMDLINE   the replica process
 */
import { agentSettingsFromEnv, ReplicaAgent } from './agent';

const agent = new ReplicaAgent(agentSettingsFromEnv(process.env));
agent.start();
for (const signal of ['SIGTERM', 'SIGINT'] as const)
  process.on(signal, () => {
    agent.stop();
    process.exit(0);
  });
