/**
 * Ready before the kubelet says so: the gateway probes a started pod's readiness endpoint itself, every
 * 50 ms, as Knative's activator probes a new pod. A request held through a wake from zero then goes to
 * the pod the moment its server answers, not after the kubelet's next probe period and the status
 * update that follows (together up to about a second). Only a pod never yet reported Ready is probed:
 * once the kubelet has, its probes alone decide (a pod it finds unready leaves routing).
 */
import type { V1Pod } from '@kubernetes/client-node';
import { SERVER_PORT } from '../../image/imageKinds';
import { podReady } from './kubernetesTarget';

const PROBE_EVERY_MS = 50;
/** How long a started pod is probed before the gateway leaves it to the kubelet. */
const PROBE_FOR_MS = 120_000;

export class PodProbes {
  /** Pods (by uid) that answered a probe, and pods the kubelet has reported Ready. */
  private readonly answered = new Set<string>();
  private readonly kubeletReady = new Set<string>();
  private readonly probing = new Set<string>();
  private closed = false;

  /** `onAnswered`: a probed pod answered (its deployment's endpoints are synced again). */
  constructor(
    private readonly onAnswered: (pod: V1Pod) => void,
    private readonly port = SERVER_PORT,
  ) {}

  /** May the pod take requests now? Starts probing a started pod the kubelet has not reported Ready yet. */
  routable(p: V1Pod): boolean {
    const uid = p.metadata?.uid ?? '';
    if (p.metadata?.deletionTimestamp) return false;
    if (podReady(p)) {
      this.kubeletReady.add(uid);
      this.answered.delete(uid);
      return true;
    }
    if (this.kubeletReady.has(uid)) return false;
    if (this.answered.has(uid)) return true;
    const started = p.status?.containerStatuses?.some((c) => c.state?.running) ?? false;
    if (uid && started && p.status?.podIP && !this.probing.has(uid)) void this.probe(p, uid, p.status.podIP);
    return false;
  }

  /** The pod is gone: nothing more to remember of it. */
  forget(p: V1Pod): void {
    const uid = p.metadata?.uid ?? '';
    this.answered.delete(uid);
    this.kubeletReady.delete(uid);
  }

  close(): void {
    this.closed = true;
  }

  private async probe(p: V1Pod, uid: string, ip: string): Promise<void> {
    this.probing.add(uid);
    const deadline = Date.now() + PROBE_FOR_MS;
    try {
      while (!this.closed && !this.kubeletReady.has(uid) && Date.now() < deadline) {
        const ok = await fetch(`http://${ip}:${this.port}/v2/health/ready`, {
          signal: AbortSignal.timeout(1000),
        }).then(
          async (res) => {
            await res.arrayBuffer();
            return res.ok;
          },
          () => false,
        );
        if (ok) {
          if (!this.kubeletReady.has(uid)) {
            this.answered.add(uid);
            this.onAnswered(p);
          }
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, PROBE_EVERY_MS).unref());
      }
    } finally {
      this.probing.delete(uid);
    }
  }
}
