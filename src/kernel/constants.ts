/**
 * Kernel constants used by the bindings in `src/kernel`. Each group names the header it comes
 * from. Values are for Linux on x86_64 and aarch64 (where they differ, the syscall table is
 * chosen at load time in `syscall-numbers.ts`).
 *
 * @module
 */

// <linux/sched.h>: namespace flags for unshare(2), setns(2) and clone(2).
/** New mount namespace. */
export const CLONE_NEWNS = 0x00020000;
/** New cgroup namespace. */
export const CLONE_NEWCGROUP = 0x02000000;
/** New UTS (hostname) namespace. */
export const CLONE_NEWUTS = 0x04000000;
/** New System V IPC namespace. */
export const CLONE_NEWIPC = 0x08000000;
/** New user namespace. */
export const CLONE_NEWUSER = 0x10000000;
/** New PID namespace (for the caller's future children). */
export const CLONE_NEWPID = 0x20000000;
/** New network namespace. */
export const CLONE_NEWNET = 0x40000000;
/** Unshare the file-system attributes (root, cwd, umask). */
export const CLONE_FS = 0x00000200;

// <sys/mount.h>: mount(2) flags.
/** Mount read-only. */
export const MS_RDONLY = 1;
/** Ignore set-user-ID and set-group-ID bits. */
export const MS_NOSUID = 2;
/** Disallow access to device special files. */
export const MS_NODEV = 4;
/** Disallow program execution. */
export const MS_NOEXEC = 8;
/** Writes are synced at once. */
export const MS_SYNCHRONOUS = 16;
/** Alter flags of a mounted file system. */
export const MS_REMOUNT = 32;
/** Do not update access times. */
export const MS_NOATIME = 1024;
/** Do not update directory access times. */
export const MS_NODIRATIME = 2048;
/** Bind mount. */
export const MS_BIND = 4096;
/** Move a subtree. */
export const MS_MOVE = 8192;
/** Recursive (with MS_BIND or a propagation flag). */
export const MS_REC = 16384;
/** Unbindable propagation. */
export const MS_UNBINDABLE = 1 << 17;
/** Private propagation. */
export const MS_PRIVATE = 1 << 18;
/** Slave propagation. */
export const MS_SLAVE = 1 << 19;
/** Shared propagation. */
export const MS_SHARED = 1 << 20;
/** Update atime relative to mtime/ctime. */
export const MS_RELATIME = 1 << 21;
/** Always update the last access time. */
export const MS_STRICTATIME = 1 << 24;

// <sys/mount.h>: umount2(2) flags.
/** Force unmount. */
export const MNT_FORCE = 1;
/** Lazy unmount: detach now, clean up when no longer busy. */
export const MNT_DETACH = 2;
/** Do not follow a symlink at the target. */
export const UMOUNT_NOFOLLOW = 8;

// <linux/mount.h>: open_tree(2) and move_mount(2).
/** open_tree: clone the mount instead of opening it. */
export const OPEN_TREE_CLONE = 1;
/** open_tree: close the fd on exec (O_CLOEXEC). */
export const OPEN_TREE_CLOEXEC = 0o2000000;
/** open_tree/move_mount: recursive (AT_RECURSIVE). */
export const AT_RECURSIVE = 0x8000;
/** move_mount: the source is the fd itself (empty path). */
export const MOVE_MOUNT_F_EMPTY_PATH = 0x00000004;
/** move_mount: follow symlinks on the target path. */
export const MOVE_MOUNT_T_SYMLINKS = 0x00000010;
/** <fcntl.h>: use the current working directory for *at calls. */
export const AT_FDCWD = -100;
/** <fcntl.h>: do not follow a trailing symlink. */
export const AT_SYMLINK_NOFOLLOW = 0x100;
/** <fcntl.h>: an empty path names the fd itself. */
export const AT_EMPTY_PATH = 0x1000;

// <fcntl.h>: open(2) flags.
/** Read only. */
export const O_RDONLY = 0;
/** Write only. */
export const O_WRONLY = 1;
/** Read and write. */
export const O_RDWR = 2;
/** Create if missing. */
export const O_CREAT = 0o100;
/** Fail if it exists (with O_CREAT). */
export const O_EXCL = 0o200;
/** Do not become the controlling terminal. */
export const O_NOCTTY = 0o400;
/** Truncate. */
export const O_TRUNC = 0o1000;
/** Append. */
export const O_APPEND = 0o2000;
/** Non-blocking. */
export const O_NONBLOCK = 0o4000;
/** Must be a directory. */
export const O_DIRECTORY = 0o200000;
/** Do not follow a trailing symlink. */
export const O_NOFOLLOW = 0o400000;
/** Close on exec. */
export const O_CLOEXEC = 0o2000000;
/** Path-only descriptor. */
export const O_PATH = 0o10000000;

// <fcntl.h>: fcntl(2) commands.
/** Get fd flags. */
export const F_GETFD = 1;
/** Set fd flags. */
export const F_SETFD = 2;
/** Get file status flags. */
export const F_GETFL = 3;
/** Set file status flags. */
export const F_SETFL = 4;
/** The close-on-exec fd flag. */
export const FD_CLOEXEC = 1;
/** Add seals to a memfd (`F_ADD_SEALS`). */
export const F_ADD_SEALS = 1033;
/** Read a memfd's seals (`F_GET_SEALS`). */
export const F_GET_SEALS = 1034;
/** Seal: no further seals may be added. */
export const F_SEAL_SEAL = 0x1;
/** Seal: the file cannot shrink. */
export const F_SEAL_SHRINK = 0x2;
/** Seal: the file cannot grow. */
export const F_SEAL_GROW = 0x4;
/** Seal: the file's content cannot be written (write(2), writable shared mappings). */
export const F_SEAL_WRITE = 0x8;

// <sys/mman.h>: memfd_create(2) flags.
/** The memfd is close-on-exec. */
export const MFD_CLOEXEC = 0x1;
/** The memfd accepts seals (`F_ADD_SEALS`). */
export const MFD_ALLOW_SEALING = 0x2;

// <sys/stat.h>: file types for mknod(2).
/** Character device. */
export const S_IFCHR = 0o020000;
/** Block device. */
export const S_IFBLK = 0o060000;
/** FIFO. */
export const S_IFIFO = 0o010000;
/** Regular file. */
export const S_IFREG = 0o100000;

// <sys/prctl.h>
/** Signal sent to this process when its parent thread dies. */
export const PR_SET_PDEATHSIG = 1;
/** Set the process's dumpable flag (0: no core dumps, /proc/<pid> files and ptrace need CAP_SYS_PTRACE). */
export const PR_SET_DUMPABLE = 4;
/** Keep capabilities across setuid. */
export const PR_SET_KEEPCAPS = 8;
/** Set the thread's name. */
export const PR_SET_NAME = 15;
/** Drop a capability from the bounding set. */
export const PR_CAPBSET_DROP = 24;
/** Make this process a child subreaper. */
export const PR_SET_CHILD_SUBREAPER = 36;
/** Set no_new_privs. */
export const PR_SET_NO_NEW_PRIVS = 38;
/** Ambient capability operations. */
export const PR_CAP_AMBIENT = 47;
/** PR_CAP_AMBIENT: clear all ambient capabilities. */
export const PR_CAP_AMBIENT_CLEAR_ALL = 4;

// <sys/wait.h>
/** Do not block. */
export const WNOHANG = 1;
/** Also report stopped children. */
export const WUNTRACED = 2;
/** <linux/wait.h>: wait for all children, whatever their clone flags. */
export const __WALL = 0x40000000;

// <sys/mman.h>: madvise(2).
/** Undo MADV_DONTFORK: the range is copied into a forked child again. */
export const MADV_DOFORK = 11;

// <linux/close_range.h>
/** close_range: set close-on-exec instead of closing. */
export const CLOSE_RANGE_CLOEXEC = 1 << 2;

// <sys/socket.h> and <net/if.h>
/** IPv4 sockets. */
export const AF_INET = 2;
/** Datagram sockets. */
export const SOCK_DGRAM = 2;
/** Close-on-exec socket flag. */
export const SOCK_CLOEXEC = 0o2000000;
/** Stream (TCP) sockets. */
export const SOCK_STREAM = 1;
/** Non-blocking socket flag. */
export const SOCK_NONBLOCK = 0o4000;
/** ioctl: get interface flags. */
export const SIOCGIFFLAGS = 0x8913;
/** ioctl: set interface flags. */
export const SIOCSIFFLAGS = 0x8914;
/** Interface is up. */
export const IFF_UP = 0x1;

// <linux/capability.h>
/** capset(2)/capget(2) header version 3 (64-bit sets). */
export const _LINUX_CAPABILITY_VERSION_3 = 0x20080522;

// <sys/resource.h>
/** Resource limit numbers (`RLIMIT_*`) by their lower-case name without the prefix (`nofile`, …). */
export const RLIMITS: Readonly<Record<string, number>> = Object.freeze({
  cpu: 0,
  fsize: 1,
  data: 2,
  stack: 3,
  core: 4,
  rss: 5,
  nproc: 6,
  nofile: 7,
  memlock: 8,
  as: 9,
  locks: 10,
  sigpending: 11,
  msgqueue: 12,
  nice: 13,
  rtprio: 14,
  rttime: 15,
});
/** RLIM_INFINITY: no limit. */
export const RLIM_INFINITY = 0xffffffffffffffffn;

// <linux/keyctl.h>
/** The calling thread's session keyring. */
export const KEY_SPEC_SESSION_KEYRING = -3;
/** keyctl: join (NULL: make) a session keyring. */
export const KEYCTL_JOIN_SESSION_KEYRING = 1;
/** keyctl: unlink a key from a keyring. */
export const KEYCTL_UNLINK = 9;
/** keyctl: search a keyring tree for a key. */
export const KEYCTL_SEARCH = 10;

/** Signal numbers (<signal.h>) by name. */
export const SIGNALS: Readonly<Record<string, number>> = Object.freeze({
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGIOT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPOLL: 29,
  SIGPWR: 30,
  SIGSYS: 31,
});
