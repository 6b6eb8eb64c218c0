/**
 * Docker's default seccomp profile, as policy of the container service (the runtime only compiles
 * the profile it is given). The policy follows moby's
 * `profiles/seccomp/default.json` (the allow-list, the capability groups, the argument filters):
 * a container may make the calls a normal program needs, and the ones that reach kernel
 * facilities shared with the host (keyrings, BPF, perf, mounts, namespaces, module loading,
 * clocks …) only when it holds the capability that guards them. Everything else fails with EPERM.
 *
 * The lists below are grouped by why a call is allowed; {@link DEFAULT_SECCOMP_PROFILE} turns
 * them into a profile in Docker's format, compiled like any custom one.
 *
 * @module
 */
import type { SeccompProfile, SeccompRule } from '../runtime/seccomp/index.js';

const words = (s: string): string[] => s.trim().split(/\s+/);

/** Calls every container may make: Docker's unconditional allow-list. */
const ALLOWED = words(`
  accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
  clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
  clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3
  epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old
  eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate
  fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr
  flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate
  ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat getcpu getcwd
  getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer
  getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32 getresuid
  getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid
  gettimeofday getuid getuid32 getxattr getxattrat inotify_add_watch inotify_init inotify_init1
  inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get
  ioprio_set io_setup io_submit ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self
  lchown lchown32 lgetxattr link linkat listen listmount listxattr listxattrat llistxattr _llseek
  lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack membarrier memfd_create memfd_secret
  mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify
  mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal
  msgctl msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat
  _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free
  pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6
  pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg
  recvmmsg_time64 recvmsg remap_file_pages removexattr removexattrat rename renameat renameat2
  restart_syscall riscv_hwprobe rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo
  rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity
  sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
  sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
  sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send
  sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
  setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid
  setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area
  set_tid_address setuid setuid32 setxattr setxattrat shmat shmctl shmdt shmget shutdown sigaltstack
  signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64
  statmount statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create
  timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create
  timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64
  ugetrlimit umask uname unlink unlinkat uretprobe utime utimensat utimensat_time64 utimes vfork vmsplice
  wait4 waitid waitpid write writev
`);

/** Calls allowed only to a container holding a capability (Docker's `includes.caps` groups). */
const BY_CAPABILITY: Readonly<Record<string, readonly string[]>> = {
  CAP_DAC_READ_SEARCH: words('open_by_handle_at'),
  CAP_SYS_ADMIN: words(`bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie lsm_get_self_attr
    lsm_list_modules lsm_set_self_attr mount mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd
    setdomainname sethostname setns syslog umount umount2 unshare`),
  CAP_SYS_BOOT: words('reboot'),
  CAP_SYS_CHROOT: words('chroot'),
  CAP_SYS_MODULE: words('delete_module init_module finit_module'),
  CAP_SYS_PACCT: words('acct'),
  CAP_SYS_PTRACE: words('kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace'),
  CAP_SYS_RAWIO: words('iopl ioperm'),
  CAP_SYS_TIME: words('settimeofday stime clock_settime clock_settime64'),
  CAP_SYS_TTY_CONFIG: words('vhangup'),
  CAP_SYS_NICE: words('get_mempolicy mbind set_mempolicy set_mempolicy_home_node'),
  CAP_SYSLOG: words('syslog'),
  CAP_BPF: words('bpf'),
  CAP_PERFMON: words('perf_event_open'),
};

/** Calls of one architecture family (Docker's `includes.arches`, Go's architecture names). */
const BY_ARCH: ReadonlyArray<[arches: string[], names: string[]]> = [
  [['amd64', 'x32'], ['arch_prctl']],
  [['amd64', 'x32', 'x86'], ['modify_ldt']],
  [['arm', 'arm64'], words('arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls')],
];

/** The namespace flags of clone(2) (CLONE_NEWNS … CLONE_NEWCGROUP, CLONE_NEWTIME excepted): 0x7e020000. */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;

/** personality(2) values a container may set: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the query 0xffffffff. */
const PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** Socket families refused as Docker does: AF_ALG (the kernel's crypto API) and AF_VSOCK (the hypervisor and other VMs). */
const AF_ALG = 38;
const AF_VSOCK = 40;

const allow = (names: string[], more: Partial<SeccompRule> = {}): SeccompRule => ({
  names,
  action: 'SCMP_ACT_ALLOW',
  ...more,
});

/**
 * Docker's default profile: every call not listed fails with EPERM (`defaultErrnoRet` 1), on the
 * native architecture and its compat ones (x86 and x32 on x86_64, arm on aarch64).
 */
export const DEFAULT_SECCOMP_PROFILE: SeccompProfile = Object.freeze({
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: 1,
  archMap: [
    { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
    { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
  ],
  syscalls: [
    allow(ALLOWED),
    // ptrace and cross-process memory access need no capability on 4.8 and later, where ptrace
    // can no longer be used to get around seccomp.
    allow(words('process_vm_readv process_vm_writev ptrace'), { includes: { minKernel: '4.8' } }),
    // socket(2) of any family but AF_ALG and AF_VSOCK.
    allow(['socket'], { args: [{ index: 0, value: AF_ALG, op: 'SCMP_CMP_LT' }] }),
    allow(['socket'], { args: [{ index: 0, value: AF_ALG + 1, op: 'SCMP_CMP_EQ' }] }),
    allow(['socket'], { args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_GT' }] }),
    ...PERSONALITIES.map((value) => allow(['personality'], { args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }] })),
    ...BY_ARCH.map(([arches, names]) => allow(names, { includes: { arches } })),
    ...Object.entries(BY_CAPABILITY).map(([cap, names]) => allow([...names], { includes: { caps: [cap] } })),
    // Without CAP_SYS_ADMIN: clone(2) without namespace flags, and clone3 (whose flags are in
    // memory, out of seccomp's reach) fails with ENOSYS so that libc falls back to clone.
    allow(['clone'], {
      args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
      excludes: { caps: ['CAP_SYS_ADMIN'] },
    }),
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38, excludes: { caps: ['CAP_SYS_ADMIN'] } },
  ],
}) as SeccompProfile;
