/**
 * The seccomp profile of Ferry's containers: deny by default (EPERM), allow the ordinary system calls
 * of a process that has no capabilities — an inference server is Node, its native addons and libc.
 *
 * Source: modelled on Docker's default profile (moby's profiles/seccomp/default.json: default ERRNO,
 * an allowlist, `clone` only without namespace flags, `clone3` answered ENOSYS so libc falls back to
 * `clone`, `personality` only for its harmless values), but written for this case rather than copied:
 * since the container never holds a capability, none of Docker's capability-gated groups are here, and
 * neither are `ptrace`, `process_vm_*`, `io_uring_*` (Node's libuv falls back to its thread pool when
 * setup fails), the keyring calls, `unshare`/`setns`/`mount`, BPF, perf, module and reboot calls.
 * Only the native architecture is listed: 32-bit system calls (x86 on amd64, arm on arm64) are denied.
 */
import type { OciSeccomp, OciSeccompRule } from './ociRuntimeSpec';

const EPERM = 1;
const ENOSYS = 38;

/** CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET: `clone` may create threads and processes only. */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;

/** Socket families a replica may open: AF_UNIX (its listening socket), AF_INET, AF_INET6, AF_NETLINK. */
const SOCKET_FAMILIES = [1, 2, 10, 16];

/** PER_LINUX, UNAME26 and ADDR_NO_RANDOMIZE combinations, and the 0xffffffff query. */
const PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** System calls present on every 64-bit Linux architecture (the "generic" table arm64 uses). */
const COMMON = [
  // files and directories
  ...['openat', 'openat2', 'close', 'close_range', 'read', 'readv', 'pread64', 'preadv', 'preadv2'],
  ...['write', 'writev', 'pwrite64', 'pwritev', 'pwritev2', 'lseek', 'fstat', 'newfstatat', 'statx'],
  ...['statfs', 'fstatfs', 'faccessat', 'faccessat2', 'getdents64', 'getcwd', 'chdir', 'fchdir'],
  ...['mkdirat', 'unlinkat', 'renameat', 'renameat2', 'linkat', 'symlinkat', 'readlinkat', 'fchmod'],
  ...['fchmodat', 'fchown', 'fchownat', 'utimensat', 'truncate', 'ftruncate', 'fallocate', 'fadvise64'],
  ...['fsync', 'fdatasync', 'sync', 'syncfs', 'sync_file_range', 'flock', 'fcntl', 'ioctl', 'umask'],
  ...['dup', 'dup3', 'pipe2', 'copy_file_range', 'sendfile', 'splice', 'tee', 'vmsplice', 'readahead'],
  ...['getxattr', 'lgetxattr', 'fgetxattr', 'listxattr', 'llistxattr', 'flistxattr', 'memfd_create'],
  ...['inotify_init1', 'inotify_add_watch', 'inotify_rm_watch'],
  // memory
  ...['brk', 'mmap', 'munmap', 'mremap', 'mprotect', 'madvise', 'mincore', 'msync', 'mlock', 'mlock2'],
  ...['munlock', 'mlockall', 'munlockall', 'membarrier', 'pkey_alloc', 'pkey_free', 'pkey_mprotect'],
  // processes and threads (clone is below, with its flag filter)
  ...['execve', 'execveat', 'exit', 'exit_group', 'wait4', 'waitid', 'getpid', 'getppid', 'gettid'],
  ...['getpgid', 'setpgid', 'getsid', 'setsid', 'set_tid_address', 'set_robust_list', 'get_robust_list'],
  ...['futex', 'futex_waitv', 'rseq', 'prctl', 'getrlimit', 'setrlimit', 'prlimit64', 'getrusage'],
  ...['sched_yield', 'sched_getaffinity', 'sched_setaffinity', 'sched_getparam', 'sched_getscheduler'],
  ...['sched_get_priority_max', 'sched_get_priority_min', 'sched_getattr', 'getpriority', 'setpriority'],
  ...['getcpu', 'capget', 'capset', 'seccomp', 'restart_syscall', 'pidfd_open', 'pidfd_send_signal'],
  // identity (without capabilities these can only keep or drop ids)
  ...['getuid', 'geteuid', 'getgid', 'getegid', 'getresuid', 'getresgid', 'getgroups', 'setuid'],
  ...['setgid', 'setreuid', 'setregid', 'setresuid', 'setresgid', 'setfsuid', 'setfsgid', 'setgroups'],
  // signals and timers
  ...['rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn', 'rt_sigsuspend', 'rt_sigpending', 'rt_sigtimedwait'],
  ...['rt_sigqueueinfo', 'rt_tgsigqueueinfo', 'sigaltstack', 'kill', 'tgkill', 'tkill', 'signalfd4'],
  ...['clock_gettime', 'clock_getres', 'clock_nanosleep', 'gettimeofday', 'nanosleep', 'getitimer'],
  ...['setitimer', 'timer_create', 'timer_settime', 'timer_gettime', 'timer_getoverrun', 'timer_delete'],
  ...['timerfd_create', 'timerfd_settime', 'timerfd_gettime', 'times'],
  // event loops
  ...['epoll_create1', 'epoll_ctl', 'epoll_pwait', 'epoll_pwait2', 'ppoll', 'pselect6', 'eventfd2'],
  // sockets (socket itself is below, with its family filter)
  ...['socketpair', 'bind', 'listen', 'accept', 'accept4', 'connect', 'getsockname', 'getpeername'],
  ...['sendto', 'recvfrom', 'sendmsg', 'recvmsg', 'sendmmsg', 'recvmmsg', 'shutdown', 'setsockopt'],
  'getsockopt',
  // System V IPC and POSIX message queues (in the container's own IPC namespace)
  ...['shmget', 'shmat', 'shmdt', 'shmctl', 'semget', 'semop', 'semctl', 'semtimedop', 'msgget', 'msgsnd'],
  ...['msgrcv', 'msgctl', 'mq_open', 'mq_unlink', 'mq_timedsend', 'mq_timedreceive', 'mq_notify'],
  'mq_getsetattr',
  // the machine
  ...['uname', 'sysinfo', 'getrandom'],
];

/** x86-64 keeps the older calls the generic table dropped; glibc and static binaries still use them. */
const AMD64_ONLY = [
  ...['open', 'creat', 'stat', 'lstat', 'access', 'getdents', 'readlink', 'rename', 'mkdir', 'rmdir'],
  ...['unlink', 'symlink', 'link', 'chmod', 'chown', 'lchown', 'utime', 'utimes', 'futimesat', 'pipe'],
  ...['dup2', 'poll', 'select', 'epoll_create', 'epoll_wait', 'eventfd', 'signalfd', 'inotify_init'],
  ...['fork', 'vfork', 'getpgrp', 'alarm', 'pause', 'time', 'arch_prctl'],
];

export type SeccompArchitecture = 'x64' | 'arm64';

const SECCOMP_ARCH: Record<SeccompArchitecture, string> = { x64: 'SCMP_ARCH_X86_64', arm64: 'SCMP_ARCH_AARCH64' };

/** The profile for `arch` (Node's `process.arch` names). */
export function seccompProfile(arch: SeccompArchitecture): OciSeccomp {
  if (!(arch in SECCOMP_ARCH)) throw new Error(`no seccomp profile for architecture "${arch}" (only x64, arm64)`);
  const oneOf = (name: string, values: readonly number[]): OciSeccompRule[] =>
    values.map((value) => ({
      names: [name],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }],
    }));
  const allowed = arch === 'x64' ? [...COMMON, ...AMD64_ONLY] : COMMON;
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    architectures: [SECCOMP_ARCH[arch]],
    syscalls: [
      { names: [...new Set(allowed)].sort(), action: 'SCMP_ACT_ALLOW' },
      {
        names: ['clone'],
        action: 'SCMP_ACT_ALLOW',
        args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
      },
      // clone3 passes its flags in memory, where seccomp cannot look: ENOSYS makes libc use clone.
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
      ...oneOf('socket', SOCKET_FAMILIES),
      ...oneOf('personality', PERSONALITIES),
    ],
  };
}
