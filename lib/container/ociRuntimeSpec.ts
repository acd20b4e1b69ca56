/**
 * The parts of the OCI runtime specification's config.json (runtime-spec 1.0.2, the version Debian's
 * runc 1.1 and youki 0.7 both accept) that Ferry writes. Field names are the spec's.
 */

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface OciSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op:
    | 'SCMP_CMP_EQ'
    | 'SCMP_CMP_NE'
    | 'SCMP_CMP_LT'
    | 'SCMP_CMP_LE'
    | 'SCMP_CMP_GT'
    | 'SCMP_CMP_GE'
    | 'SCMP_CMP_MASKED_EQ';
}

export interface OciSeccompRule {
  names: string[];
  action: 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO';
  errnoRet?: number;
  args?: OciSeccompArg[];
}

export interface OciSeccomp {
  defaultAction: 'SCMP_ACT_ERRNO' | 'SCMP_ACT_KILL_PROCESS';
  defaultErrnoRet?: number;
  architectures: string[];
  syscalls: OciSeccompRule[];
}

export interface OciDeviceRule {
  allow: boolean;
  type?: 'a' | 'c' | 'b';
  major?: number;
  minor?: number;
  access: string;
}

export interface OciCapabilities {
  bounding: string[];
  effective: string[];
  inheritable: string[];
  permitted: string[];
  ambient: string[];
}

export interface OciProcess {
  terminal: boolean;
  user: { uid: number; gid: number; additionalGids?: number[] };
  args: string[];
  env: string[];
  cwd: string;
  capabilities: OciCapabilities;
  noNewPrivileges: boolean;
  oomScoreAdj?: number;
}

export interface OciResources {
  devices: OciDeviceRule[];
  memory?: { limit: number; swap?: number };
  cpu?: { quota: number; period: number };
  pids: { limit: number };
}

export interface OciRuntimeSpec {
  ociVersion: string;
  process: OciProcess;
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: OciMount[];
  linux: {
    namespaces: Array<{ type: 'pid' | 'ipc' | 'uts' | 'mount' | 'network' | 'cgroup' | 'user' }>;
    cgroupsPath: string;
    resources: OciResources;
    seccomp: OciSeccomp;
    maskedPaths: string[];
    readonlyPaths: string[];
  };
}
